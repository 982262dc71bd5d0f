#include "server/driver.h"

#include <cstdio>
#include <utility>
#include <vector>

#include "dolmen/internal.pb.h"

namespace dolmen::server {

Driver::Driver(wal::Wal* wal, mvcc::Store* store, Applier* applier, Term term, Index last_index,
               DriverOptions options, FatalHandler on_fatal)
    : wal_(wal),
      store_(store),
      applier_(applier),
      term_(term),
      options_(options),
      on_fatal_(std::move(on_fatal)),
      applied_(last_index),
      last_index_(last_index),
      last_checkpoint_(std::chrono::steady_clock::now()) {}

Driver::~Driver() { Stop(); }

void Driver::Start() {
  CHECK(!thread_.joinable());
  thread_ = std::thread([this] { Loop(); });
}

void Driver::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::deque<Item> rest;
  {
    std::lock_guard lock(mu_);
    rest.swap(queue_);
    queued_proposals_ = 0;
  }
  FailAll(rest, Status(Code::kStopped, "server stopped"));
}

void Driver::Propose(std::string data, Done done) {
  {
    std::unique_lock lock(mu_);
    if (stopping_ || failed_) {
      lock.unlock();
      done(ApplyResult{Status(Code::kStopped, "server stopped"), {}});
      return;
    }
    if (queued_proposals_ >= options_.max_pending) {
      lock.unlock();
      done(ApplyResult{Status(Code::kTooManyRequests, "too many requests"), {}});
      return;
    }
    queue_.push_back(Item{std::move(data), std::move(done), nullptr});
    ++queued_proposals_;
  }
  cv_.notify_one();
}

bool Driver::RunInOrder(Task task) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || failed_) return false;
    queue_.push_back(Item{{}, nullptr, std::move(task)});
  }
  cv_.notify_one();
  return true;
}

Index Driver::applied_index() const {
  std::lock_guard lock(mu_);
  return applied_;
}

void Driver::Loop() {
  std::deque<Item> batch;
  while (TakeBatch(&batch)) {
    if (Status s = Persist(batch); !s.ok()) {
      // The log could not be made durable: nothing in this batch may be acknowledged, and
      // no later write may be accepted, since the log's state on disk is now unknown.
      {
        std::lock_guard lock(mu_);
        failed_ = true;
      }
      FailAll(batch, Status(Code::kStopped, "server stopped: " + s.ToString()));
      if (on_fatal_) on_fatal_(s);
      return;
    }
    if (!ApplyBatch(batch)) return;
    batch.clear();
    MaybeCheckpoint();
  }
}

bool Driver::TakeBatch(std::deque<Item>* batch) {
  std::unique_lock lock(mu_);
  // Wake up for work, or now and then for a time-based checkpoint.
  cv_.wait_for(lock, options_.checkpoint_interval, [&] { return stopping_ || !queue_.empty(); });
  if (stopping_) return false;
  size_t bytes = 0;
  while (!queue_.empty() && batch->size() < options_.max_batch_entries &&
         (batch->empty() || bytes + queue_.front().data.size() <= options_.max_batch_bytes)) {
    bytes += queue_.front().data.size();
    if (!queue_.front().task) --queued_proposals_;
    batch->push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return true;
}

Status Driver::Persist(std::deque<Item>& batch) {
  std::vector<raft::Entry> entries;
  entries.reserve(batch.size());
  Index next = last_index_;
  for (Item& item : batch) {
    if (item.task) continue;
    next = Index(next.value() + 1);
    raft::Entry e;
    e.term = term_;
    e.index = next;
    e.type = raft::EntryType::kNormal;
    e.data = item.data;  // kept in the item too: apply decodes it
    entries.push_back(std::move(e));
  }
  if (entries.empty()) return OkStatus();
  raft::HardState hs;
  hs.term = term_;
  hs.commit = next;
  RETURN_IF_ERROR(wal_->Append(entries, hs));
  RETURN_IF_ERROR(wal_->Sync());
  last_index_ = next;
  return OkStatus();
}

bool Driver::ApplyBatch(std::deque<Item>& batch) {
  std::vector<std::pair<Done*, ApplyResult>> results;
  results.reserve(batch.size());
  Index index = applied_index();
  bool any_entry = false;
  std::vector<mvcc::Event> events;
  applier_->set_event_sink(observer_ ? &events : nullptr);
  for (Item& item : batch) {
    if (item.task) continue;
    index = Index(index.value() + 1);
    any_entry = true;
    internal::InternalRequest request;
    ApplyResult result;
    if (!request.ParseFromString(item.data)) {
      // The entry came from this process a moment ago; a failure to parse is a bug.
      CHECK(false) << "undecodable log entry at index " << index;
    }
    result = applier_->Apply(request);
    results.emplace_back(&item.done, std::move(result));
    if (applier_->storage_failed()) break;
  }
  if (any_entry) {
    Status s = applier_->storage_failed()
                   ? Status(Code::kIoError, "the store failed while applying index " +
                                                std::to_string(index.value()))
                   : store_->Commit(index);
    if (!s.ok()) {
      // The entries are durable in the log and will be re-applied at restart; this member
      // cannot go on serving a state it failed to record. Callers learn only that the server
      // stopped: their write may still take effect at the restart, as with any timeout.
      applier_->set_event_sink(nullptr);
      {
        std::lock_guard lock(mu_);
        failed_ = true;
      }
      FailAll(batch, Status(Code::kStopped, "server stopped: " + s.ToString()));
      if (on_fatal_) on_fatal_(s);
      return false;
    }
    {
      std::lock_guard lock(mu_);
      applied_ = index;
    }
    entries_since_checkpoint_ += results.size();
  }
  applier_->set_event_sink(nullptr);
  // Watchers hear of a batch only once readers can see it, so a watcher that reads after an
  // event always finds that event's revision.
  if (observer_ && !events.empty()) observer_(std::move(events), store_->CurrentRevision());
  for (auto& [done, result] : results) (*done)(std::move(result));
  for (Item& item : batch) {
    if (item.task) item.task();
  }
  return true;
}

void Driver::MaybeCheckpoint() {
  auto now = std::chrono::steady_clock::now();
  bool due =
      entries_since_checkpoint_ >= options_.checkpoint_entries ||
      (entries_since_checkpoint_ > 0 && now - last_checkpoint_ >= options_.checkpoint_interval);
  if (!due) return;
  // The backend is durable up to applied_; the log before it is no longer needed to recover.
  Index applied = applied_index();
  Status s = store_->Sync();
  if (s.ok()) s = wal_->ReleaseTo(Index(applied.value() + 1));
  if (!s.ok()) {
    // Not fatal: the log still holds everything; the next checkpoint tries again.
    std::fprintf(stderr, "dolmen: checkpoint at index %llu failed: %s\n",
                 static_cast<unsigned long long>(applied.value()), s.ToString().c_str());
  }
  entries_since_checkpoint_ = 0;
  last_checkpoint_ = now;
}

void Driver::FailAll(std::deque<Item>& items, const Status& status) {
  for (Item& item : items) {
    if (item.done) item.done(ApplyResult{status, {}});
  }
  items.clear();
}

}  // namespace dolmen::server
