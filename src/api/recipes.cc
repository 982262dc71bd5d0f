#include "api/recipes.h"

#include <pthread.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <utility>
#include <vector>

#include "api/errors.h"
#include "base/key_range.h"

namespace dolmen::api {

void KeyWaiter::WaitGone(const mvcc::Store* store, std::string key, int64_t create_revision,
                         int64_t mod_revision, std::function<bool()> cancelled,
                         std::function<void(Status)> done) {
  auto ready = [store, key, create_revision, mod_revision]() -> Result<bool> {
    mvcc::RangeOptions opts;
    opts.key = key;
    opts.keys_only = true;
    ASSIGN_OR_RETURN(mvcc::RangeResult rr, store->Range(opts));
    if (rr.kvs.empty() || rr.kvs.front().create_revision.value() != create_revision) return true;
    return mod_revision > 0 && rr.kvs.front().mod_revision.value() != mod_revision;
  };
  WaitUntil(std::move(key), "", std::move(ready), std::move(cancelled), std::move(done));
}

WatchKeyWaiter::WatchKeyWaiter(watch::Hub* hub, WatchWaiterOptions options)
    : hub_(hub), options_(options) {
  stream_ = hub_->OpenStream([this] {
    // On a hub thread: only note it; the loop pops.
    std::lock_guard lock(mu_);
    woken_ = true;
    cv_.notify_all();
  });
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "dolmen-keywait");  // for top -H and perf
    Loop();
  });
}

WatchKeyWaiter::~WatchKeyWaiter() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  hub_->CloseStream(stream_);  // after this the wake callback never runs again
  std::map<int64_t, std::shared_ptr<Wait>> left;
  {
    std::lock_guard lock(mu_);
    left.swap(waits_);
  }
  for (auto& [id, w] : left) w->done(Status(Code::kCancelled, "server stopped"));
}

size_t WatchKeyWaiter::pending() const {
  std::lock_guard lock(mu_);
  return waits_.size();
}

void WatchKeyWaiter::WaitUntil(std::string key, std::string range_end,
                               std::function<Result<bool>()> ready, std::function<bool()> cancelled,
                               std::function<void(Status)> done) {
  bool refused = false;
  {
    std::lock_guard lock(mu_);
    refused = stopping_ || waits_.size() >= options_.max_waits;
  }
  if (refused) {
    // On the caller's thread, without mu_ (done may start another wait): nothing was
    // registered, so nothing can race with it.
    done(Status(Code::kResourceExhausted, "too many lock and election waiters"));
    return;
  }
  auto wait = std::make_shared<Wait>(Wait{std::move(key), std::move(range_end), std::move(ready),
                                          std::move(cancelled), std::move(done)});
  Watch(std::move(wait));
}

void WatchKeyWaiter::Watch(std::shared_ptr<Wait> wait) {
  watch::WatchOptions options;
  options.key = wait->key;
  options.range_end = wait->range_end;  // start_revision 0: changes after the current revision
  {
    std::lock_guard lock(mu_);
    options.watch_id = next_id_++;
    waits_.emplace(options.watch_id, std::move(wait));
  }
  // Outside mu_: the hub may run our wake callback, which takes it.
  hub_->Watch(stream_.get(), options);
  // The condition is looked at only now, after the watcher exists, so a change between the
  // look and the watcher's start cannot be missed.
  std::lock_guard lock(mu_);
  to_check_.push_back(options.watch_id);
  cv_.notify_all();
}

std::shared_ptr<WatchKeyWaiter::Wait> WatchKeyWaiter::Take(int64_t id) {
  std::shared_ptr<Wait> wait;
  {
    std::lock_guard lock(mu_);
    auto it = waits_.find(id);
    if (it == waits_.end()) return nullptr;
    wait = std::move(it->second);
    waits_.erase(it);
  }
  hub_->Cancel(stream_.get(), id);
  return wait;
}

void WatchKeyWaiter::Loop() {
  auto next_cancel_check = std::chrono::steady_clock::now() + options_.cancel_check_interval;
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait_until(lock, next_cancel_check,
                   [this] { return stopping_ || woken_ || !to_check_.empty(); });
    if (stopping_) return;
    woken_ = false;
    std::vector<int64_t> check = std::exchange(to_check_, {});
    const auto now = std::chrono::steady_clock::now();
    const bool check_cancel = now >= next_cancel_check;
    if (check_cancel) next_cancel_check = now + options_.cancel_check_interval;
    std::vector<std::pair<int64_t, std::shared_ptr<Wait>>> candidates;
    lock.unlock();

    // Which waits saw a change. A watcher the hub cancelled (it fell behind and its start was
    // compacted) is registered again; its condition is looked at once more then.
    std::vector<int64_t> rewatch;
    while (std::optional<watch::Response> r = stream_->Pop()) {
      if (r->canceled && r->watch_id != watch::kNoWatchId && r->compact_revision.value() > 0) {
        rewatch.push_back(r->watch_id);
      } else if (!r->events.empty()) {
        check.push_back(r->watch_id);
      }
    }
    for (int64_t id : rewatch) {
      std::shared_ptr<Wait> wait;
      {
        std::lock_guard l(mu_);
        auto it = waits_.find(id);
        if (it == waits_.end()) continue;
        wait = std::move(it->second);
        waits_.erase(it);
      }
      Watch(std::move(wait));
    }
    {
      std::lock_guard l(mu_);
      if (check_cancel) {
        for (auto& [id, w] : waits_) candidates.emplace_back(id, w);
      } else {
        std::sort(check.begin(), check.end());
        check.erase(std::unique(check.begin(), check.end()), check.end());
        for (int64_t id : check) {
          auto it = waits_.find(id);
          if (it != waits_.end()) candidates.emplace_back(id, it->second);
        }
      }
    }
    std::sort(check.begin(), check.end());
    for (auto& [id, wait] : candidates) {
      Status outcome;
      bool finished = true;
      if (wait->cancelled()) {
        outcome = Status(Code::kCancelled, "context canceled");
      } else if (!std::binary_search(check.begin(), check.end(), id)) {
        finished = false;  // a cancel sweep only: nothing changed for it
      } else if (Result<bool> now_ready = wait->ready(); !now_ready.ok()) {
        outcome = now_ready.status();
      } else {
        finished = *now_ready;
      }
      if (!finished) continue;
      // Callbacks run without mu_: they may start the next wait.
      if (std::shared_ptr<Wait> taken = Take(id)) taken->done(outcome);
    }
    lock.lock();
  }
}

grpc::Status RecipeError(const Status& status) {
  return grpc::Status(grpc::StatusCode::UNKNOWN, ToGrpcStatus(status).error_message());
}

std::string PrefixEnd(const std::string& prefix) { return PrefixRangeEnd(prefix); }

std::string LeaseKey(const std::string& prefix, int64_t lease) {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%llx", static_cast<unsigned long long>(lease));
  return prefix + hex;
}

etcdserverpb::RangeRequest FirstCreated(const std::string& prefix) {
  etcdserverpb::RangeRequest r;
  r.set_key(prefix);
  r.set_range_end(PrefixEnd(prefix));
  r.set_sort_target(etcdserverpb::RangeRequest::CREATE);
  r.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
  r.set_limit(1);
  return r;
}

namespace {

// One waitDeletes run: read the youngest older key, wait for it to go, read again.
struct DeletesWait : std::enable_shared_from_this<DeletesWait> {
  server::Server* server;
  KeyWaiter* waiter;
  std::string prefix;
  int64_t max_create_revision;
  std::function<bool()> cancelled;
  std::function<void(Result<etcdserverpb::ResponseHeader>)> done;

  void Next() {
    etcdserverpb::RangeRequest r;
    r.set_key(prefix);
    r.set_range_end(PrefixEnd(prefix));
    r.set_sort_target(etcdserverpb::RangeRequest::CREATE);
    r.set_sort_order(etcdserverpb::RangeRequest::DESCEND);
    r.set_max_create_revision(max_create_revision);
    r.set_limit(1);
    server->Range(r, [self = shared_from_this()](Result<etcdserverpb::RangeResponse> rr) {
      if (!rr.ok()) return self->done(rr.status());
      if (rr->kvs().empty()) return self->done(rr->header());
      const auto& kv = rr->kvs(0);
      self->waiter->WaitGone(self->server->store(), kv.key(), kv.create_revision(), 0,
                             self->cancelled, [self](Status s) {
                               if (!s.ok()) return self->done(s);
                               self->Next();
                             });
    });
  }
};

}  // namespace

void WaitDeletes(server::Server* server, KeyWaiter* waiter, std::string prefix,
                 int64_t max_create_revision, std::function<bool()> cancelled,
                 std::function<void(Result<etcdserverpb::ResponseHeader>)> done) {
  auto wait = std::make_shared<DeletesWait>();
  wait->server = server;
  wait->waiter = waiter;
  wait->prefix = std::move(prefix);
  wait->max_create_revision = max_create_revision;
  wait->cancelled = std::move(cancelled);
  wait->done = std::move(done);
  wait->Next();
}

}  // namespace dolmen::api
