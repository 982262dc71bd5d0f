#include "api/recipes.h"

#include <cstdio>
#include <memory>
#include <utility>
#include <vector>

#include "api/errors.h"

namespace dolmen::api {

void KeyWaiter::WaitGone(const mvcc::Store* store, std::string key, int64_t create_revision,
                         int64_t mod_revision, std::function<bool()> cancelled,
                         std::function<void(Status)> done) {
  auto ready = [store, key = std::move(key), create_revision, mod_revision]() -> Result<bool> {
    mvcc::RangeOptions opts;
    opts.key = key;
    opts.keys_only = true;
    ASSIGN_OR_RETURN(mvcc::RangeResult rr, store->Range(opts));
    if (rr.kvs.empty() || rr.kvs.front().create_revision.value() != create_revision) return true;
    return mod_revision > 0 && rr.kvs.front().mod_revision.value() != mod_revision;
  };
  WaitUntil(std::move(ready), std::move(cancelled), std::move(done));
}

PollingKeyWaiter::PollingKeyWaiter(PollingOptions options) : options_(options) {
  thread_ = std::thread([this] { Loop(); });
}

PollingKeyWaiter::~PollingKeyWaiter() {
  std::list<Wait> left;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  left.swap(waits_);
  for (auto& w : left) w.done(Status(Code::kCancelled, "server stopped"));
}

void PollingKeyWaiter::WaitUntil(std::function<Result<bool>()> ready,
                                 std::function<bool()> cancelled,
                                 std::function<void(Status)> done) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_ && waits_.size() < options_.max_waits) {
      waits_.push_back(Wait{std::move(ready), std::move(cancelled), std::move(done),
                            std::chrono::steady_clock::now(), options_.first_interval});
      added_ = true;
      cv_.notify_all();
      return;
    }
  }
  done(Status(Code::kResourceExhausted, "too many lock and election waiters"));
}

void PollingKeyWaiter::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    added_ = false;
    auto now = std::chrono::steady_clock::now();
    auto next = now + options_.max_interval;
    std::vector<std::pair<std::function<void(Status)>, Status>> ready;
    for (auto it = waits_.begin(); it != waits_.end();) {
      if (it->next_check > now) {
        next = std::min(next, it->next_check);
        ++it;
        continue;
      }
      Status outcome;
      bool finished = true;
      if (it->cancelled()) {
        outcome = Status(Code::kCancelled, "context canceled");
      } else if (auto gone = it->ready(); !gone.ok()) {
        outcome = gone.status();
      } else if (!*gone) {
        finished = false;
        it->interval = std::min(it->interval * 2, options_.max_interval);
        it->next_check = now + it->interval;
        next = std::min(next, it->next_check);
      }
      if (finished) {
        ready.emplace_back(std::move(it->done), outcome);
        it = waits_.erase(it);
      } else {
        ++it;
      }
    }
    // Callbacks run without the lock: they may start the next wait.
    lock.unlock();
    for (auto& [done, status] : ready) done(status);
    lock.lock();
    cv_.wait_until(lock, next, [this, next] {
      return stopping_ || added_ || std::chrono::steady_clock::now() >= next;
    });
  }
}

grpc::Status RecipeError(const Status& status) {
  return grpc::Status(grpc::StatusCode::UNKNOWN, ToGrpcStatus(status).error_message());
}

std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

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
