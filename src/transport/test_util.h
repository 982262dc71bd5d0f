// Helpers for the transport tests: loopback ports, a scratch directory, a Handler that records
// what it receives, and a member-sized bundle of transport + handler + callback records. Every
// wait is a condition-variable wait with a deadline; nothing sleeps to synchronise.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "transport/transport.h"

namespace dolmen::transport::testing {

using namespace std::chrono_literals;

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
int PickPort();
std::string LoopbackUrl(int port);

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// State guarded by one mutex, with waits that end when a predicate holds or a deadline passes.
class Monitor {
 public:
  // Runs f under the lock and wakes waiters.
  template <typename F>
  auto Update(F f) {
    std::lock_guard<std::mutex> lock(mu_);
    struct Notify {
      std::condition_variable& cv;
      ~Notify() { cv.notify_all(); }
    } notify{cv_};
    return f();
  }
  template <typename F>
  auto Read(F f) {
    std::lock_guard<std::mutex> lock(mu_);
    return f();
  }
  // True if `pred` (run under the lock) held before `timeout`.
  template <typename P>
  bool Await(P pred, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, pred);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

class RecordingHandler : public Handler {
 public:
  struct ReceivedSnapshot {
    raft::Message message;
    std::string db_path;
  };

  void OnMessages(std::vector<raft::Message> messages) override;
  void OnSnapshot(raft::Message message, std::string db_path) override;
  std::vector<MemberInfo> Members() override;
  bool IsRemoved(MemberId from) override;
  // Forwarded requests go to these when set (set them before the first request arrives);
  // otherwise the Handler defaults answer.
  std::function<Result<int64_t>(int64_t lease_id)> on_lease_renew;
  std::function<Result<std::vector<Result<int64_t>>>(const std::vector<int64_t>& lease_ids)>
      on_lease_renew_batch;
  std::function<Result<LeaseTtl>(int64_t lease_id, bool keys)> on_lease_ttl;
  std::function<Result<std::vector<MemberInfo>>(MemberId learner)> on_promote;
  std::function<Result<HashKv>(int64_t revision)> on_hash_kv;
  Result<int64_t> ServeLeaseRenew(int64_t lease_id, Deadline deadline) override {
    return on_lease_renew ? on_lease_renew(lease_id) : Handler::ServeLeaseRenew(lease_id, deadline);
  }
  Result<std::vector<Result<int64_t>>> ServeLeaseRenewBatch(const std::vector<int64_t>& lease_ids,
                                                            Deadline deadline) override {
    return on_lease_renew_batch ? on_lease_renew_batch(lease_ids)
                                : Handler::ServeLeaseRenewBatch(lease_ids, deadline);
  }
  Result<LeaseTtl> ServeLeaseTimeToLive(int64_t lease_id, bool keys, Deadline deadline) override {
    return on_lease_ttl ? on_lease_ttl(lease_id, keys)
                        : Handler::ServeLeaseTimeToLive(lease_id, keys, deadline);
  }
  Result<std::vector<MemberInfo>> ServePromoteMember(MemberId learner, Deadline deadline) override {
    return on_promote ? on_promote(learner) : Handler::ServePromoteMember(learner, deadline);
  }
  Result<HashKv> ServeHashKv(int64_t revision) override {
    return on_hash_kv ? on_hash_kv(revision) : Handler::ServeHashKv(revision);
  }

  // While blocked, OnMessages waits (bounded by 30 s) before recording: a stuck server.
  void SetBlocked(bool blocked);
  void SetRemoved(MemberId id);
  void SetMembers(std::vector<MemberInfo> members);

  Monitor monitor;
  // Guarded by monitor.
  std::vector<raft::Message> messages;
  std::vector<ReceivedSnapshot> snapshots;
  size_t on_messages_calls = 0;

 private:
  bool blocked_ = false;  // guarded by monitor
  std::set<MemberId> removed_;
  std::vector<MemberInfo> members_;
};

// Callback records of one transport.
struct Events {
  Monitor monitor;
  std::map<MemberId, int> unreachable;
  std::vector<std::pair<MemberId, Status>> refused;
  std::vector<std::pair<MemberId, bool>> snapshot_status;
};

struct NodeConfig {
  ClusterId cluster_id{1};
  MemberId id;
  int port = 0;
  std::string url;  // if set, listens here instead of on `port` (e.g. "unix://a:1")
  std::function<void(Options*)> tweak;
};

// One member's transport, started, with its handler and callback records.
class Node {
 public:
  Node(const NodeConfig& config, const TempDir& dir);
  ~Node();

  Status Start();
  void Stop();
  Transport& transport() { return *transport_; }
  Peer AsPeer() const { return Peer{options_.self, {url_}}; }
  MemberId id() const { return options_.self; }
  const std::string& url() const { return url_; }

  RecordingHandler handler;
  Events events;

 private:
  Options options_;
  std::string url_;
  std::unique_ptr<Transport> transport_;
};

raft::Message Msg(raft::MessageType type, MemberId from, MemberId to, uint64_t index);

}  // namespace dolmen::transport::testing
