#include "server/server.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <utility>

#include "base/coding.h"
#include "log/log.h"
#include "raft/conf_change.h"
#include "server/auth_checks.h"
#include "server/member_id.h"
#include "server/raft_log_start.h"
#include "server/range_wire.h"
#include "server/request_checks.h"

namespace dolmen::server {
namespace {

// Linearizable reads waiting for a read thread; beyond this they are refused with etcd's "too
// many requests" (each waiting read holds only its request, not its answer).
constexpr size_t kMaxQueuedReads = 10000;
// Hash and Defragment requests waiting for the maintenance thread; etcdctl asks one at a time.
constexpr size_t kMaxQueuedMaintenance = 64;
// The read pool's nice value. Under CPU contention a linearizable read (a Kubernetes list of a
// large prefix serializes megabytes) yields to the write path: gRPC's request threads, the
// driver's Raft turns and heartbeats, the WAL. Measured (docs/benchmarks.md, "Reads below the
// write path"): with two readers listing 20,000 keys of 1 KB, one putter's rate went from
// 1.84-2.02x etcd 3.4's to 2.34-2.39x, with list and small-read throughput unchanged. Not
// starved: at nice 5 a read thread still weighs a third of a request thread.
constexpr int kReadPoolNice = 5;
// A follower's forwarded keep-alives (lease_renew_batcher.h): two batches out at once, so the
// next one forms while one is answered; each of at most 1024 leases (the peer call takes 4096).
constexpr size_t kRenewBatchesInFlight = 2;
constexpr size_t kMaxRenewalsPerBatch = 1024;
// The maintenance thread's nice value: a defragmentation's copy or a hash scan yields the CPU
// to puts and reads (issue 18: puts during a defragmentation within 10% of without).
constexpr int kMaintenanceNice = 10;

}  // namespace

Server::Server(ServerConfig config) : config_(std::move(config)) {
  CHECK(config_.fs != nullptr && config_.open_backend) << "ServerConfig needs its adapters";
  renew_batcher_ = std::make_unique<LeaseRenewBatcher>(
      kRenewBatchesInFlight, kMaxRenewalsPerBatch,
      [this](Forwarder::Attempt attempt, Forwarder::IsFinal is_final,
             std::function<void(Status)> finish) {
        ForwardToLeader(std::move(attempt), std::move(is_final), std::move(finish));
      },
      RenewBatchAtLeader());
  if (config_.initial_cluster.empty()) {
    std::vector<std::string> peers = config_.peer_urls;
    if (peers.empty()) peers.push_back("http://localhost:2380");
    config_.initial_cluster.push_back(InitialMember{config_.name, peers});
  }
}

Server::~Server() { Stop(); }

Result<std::unique_ptr<Server>> Server::Open(ServerConfig config) {
  std::unique_ptr<Server> server(new Server(std::move(config)));
  RETURN_IF_ERROR(server->OpenStorage());
  return server;
}

Status Server::StartRaft(const wal::Recovered* recovered, std::vector<raft::Entry> bootstrap,
                         raft::HardState bootstrap_hs) {
  // Elections' randomized timeouts and the request ids' start: from config_.random when a
  // test or the simulator gives one (a seeded run then repeats itself), else from the time.
  const uint64_t entropy =
      config_.random != nullptr
          ? config_.random->Next()
          : static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  raft_storage_ = std::make_unique<raft::MemoryStorage>();
  ASSIGN_OR_RETURN(auto node, StartRaftNode(recovered, bootstrap, bootstrap_hs,
                                            {member_id_, config_.driver.election_ticks,
                                             config_.pre_vote, member_id_.value() ^ entropy},
                                            raft_storage_.get()));

  uint64_t prefix = (member_id_.value() & 0xFFFF) << 48;
  // As etcd's idutil: the member id's low bits, then the start time in ms, so ids stay unique
  // across restarts.
  uint64_t millis =
      config_.random != nullptr
          ? config_.random->Next()
          : static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
  next_request_id_.store(prefix | ((millis << 8) & ((1ull << 48) - 1)));

  applier_ = std::make_unique<Applier>(store_.get());
  applier_->set_leases(lessor_.get(), clock_);
  applier_->set_auth(auth_.get(), tokens_.get());
  RETURN_IF_ERROR(OpenMaintenance());
  Driver::Deps deps;
  deps.clock = clock_;
  deps.wal = wal_.get();
  deps.store = store_.get();
  deps.applier = applier_.get();
  deps.membership = membership_.get();
  deps.storage = raft_storage_.get();
  deps.read_context_start = next_request_id_.load();
  deps.install_snapshot = [this](const raft::SnapshotMetadata& meta) {
    return InstallSnapshot(meta);
  };
  DriverOptions driver_options = config_.driver;
  driver_options.max_learners = static_cast<size_t>(std::max(config_.max_learners, 1));
  driver_ = std::make_unique<Driver>(deps, std::move(node), member_id_, driver_options,
                                     [this](const Status& s) {
                                       failed_.store(true);
                                       if (on_fatal_) on_fatal_(s);
                                     });
  read_pool_ = std::make_unique<ReadPool>(
      static_cast<int>(std::max(2u, std::thread::hardware_concurrency())), kMaxQueuedReads,
      kReadPoolNice);
  maintenance_ = std::make_unique<ReadPool>(1, kMaxQueuedMaintenance, kMaintenanceNice);
  return OkStatus();
}

bool Server::WaitPublished(std::chrono::milliseconds timeout) {
  std::unique_lock lock(published_mu_);
  return published_cv_.wait_for(lock, timeout, [this] { return published_; });
}

void Server::Start() {
  ForwarderOptions forwarding;
  forwarding.timeout = config_.driver.request_timeout;
  forwarder_ = std::make_unique<Forwarder>(forwarding, [this] { return driver_->leader(); });
  driver_->SetLeaderObserver([this](MemberId) {
    if (lease_expiry_) lease_expiry_->FollowLeadership();
    forwarder_->LeaderChanged();
  });
  forwarder_->Start();
  driver_->Start();
  StartLeases();
  PublishAttributes();
  StartCorruptionMonitor();
  StartAutoCompaction();
  StartLearnerPromotion();
  StartMemberRemoval();
}

void Server::StartAutoCompaction() {
  if (!config_.auto_compaction.enabled()) return;
  AutoCompactor::Deps deps;
  deps.clock = clock_;
  deps.is_leader = [this] { return IsLeader(); };
  deps.current_revision = [this] { return store_->CurrentRevision(); };
  // An ordinary Compaction request through the log, as a client's (etcd's compactor calls
  // the server's Compact too), so every member compacts at the same index.
  deps.compact = [this](Revision revision, std::function<void(Status)> done) {
    etcdserverpb::CompactionRequest request;
    request.set_revision(revision.value());
    Compact(request, [done = std::move(done)](Result<etcdserverpb::CompactionResponse> r) {
      done(r.status());
    });
  };
  deps.log = [](const std::string& line) { log::Info(line); };
  deps.on_finished = auto_compaction_observer_;
  auto_compactor_ = std::make_unique<AutoCompactor>(
      NewCompactionPolicy(config_.auto_compaction, clock_->Now()), std::move(deps));
  auto_compactor_->Start();
}

// etcd's "publish": the member records its name and client URLs in the replicated
// membership once it runs, retried until it lands (each try is bounded by the request
// timeout) or the member stops.
void Server::PublishAttributes() {
  internal::InternalRequest request;
  auto* attrs = request.mutable_member_attributes();
  attrs->set_id(member_id_.value());
  attrs->set_name(config_.name);
  for (const auto& u : config_.client_urls) attrs->add_client_urls(u);
  // A forwarded proposal lost while peer connections come up is only noticed at its
  // deadline, so publish retries on a short one: two election timeouts.
  auto retry_after = 2 * config_.driver.election_ticks * config_.driver.tick_interval;
  Propose(
      std::move(request),
      [this](ApplyResult result) {
        if (result.status.ok()) {
          {
            std::lock_guard lock(published_mu_);
            published_ = true;
          }
          published_cv_.notify_all();
          return;
        }
        if (stopped_.load() || failed_.load()) return;
        if (result.status.code() == Code::kStopped) return;
        PublishAttributes();
      },
      std::chrono::duration_cast<std::chrono::milliseconds>(retry_after));
}

void Server::Stop() {
  if (stopped_.exchange(true)) return;
  // First: it proposes through the driver.
  if (auto_compactor_) auto_compactor_->Stop();
  if (learner_promoter_) learner_promoter_->Stop();
  if (dead_member_remover_) dead_member_remover_->Stop();
  // Before the driver: forwarded requests and the lease checker call into it.
  if (forwarder_) forwarder_->Stop();
  StopLeases();
  if (driver_) driver_->Stop();
  if (read_pool_) read_pool_->Stop();  // answers the reads already past their barrier
  // After the driver: what it runs there fails at once with kStopped.
  if (maintenance_) maintenance_->Stop();
  // After the driver: a read barrier the monitor waits for then fails at once.
  if (corruption_monitor_) corruption_monitor_->Stop();
  if (store_ && !failed_.load()) {
    // A clean stop leaves the backend durable so the next start replays nothing.
    Status s = store_->Sync();
    if (!s.ok()) log::Error("backend sync at stop failed", {{"error", s.ToString()}});
  }
}

Term Server::term() const { return driver_->term(); }
Index Server::applied_index() const { return driver_->applied_index(); }

void Server::FillHeader(etcdserverpb::ResponseHeader* h) const {
  h->set_cluster_id(cluster_id_.value());
  h->set_member_id(member_id_.value());
  h->set_raft_term(driver_->term().value());
}

Status Server::RefuseIfLearner() const {
  auto self = membership_->Get(member_id_);
  if (self && self->is_learner()) return Unavailable("rpc not supported for learner");
  return OkStatus();
}

void Server::Propose(internal::InternalRequest request, Driver::Done on_applied,
                     std::optional<std::chrono::milliseconds> timeout) {
  uint64_t id = next_request_id_.fetch_add(1);
  request.set_id(id);
  std::string data = request.SerializeAsString();
  if (data.size() > config_.max_request_bytes) {
    on_applied(ApplyResult{Status(Code::kRequestTooLarge, "request is too large"), {}});
    return;
  }
  if (timeout) {
    driver_->Propose(id, std::move(data), std::move(on_applied), *timeout);
  } else {
    driver_->Propose(id, std::move(data), std::move(on_applied));
  }
}

template <typename Response>
void Server::ProposeAndReply(internal::InternalRequest request, Callback<Response> done) {
  Propose(std::move(request), [this, done = std::move(done)](ApplyResult result) {
    if (!result.status.ok()) {
      done(result.status);
      return;
    }
    Response* response = std::get_if<Response>(&result.response);
    CHECK(response != nullptr) << "apply returned another response type";
    FillHeader(response->mutable_header());
    done(std::move(*response));
  });
}

void Server::ReadBarrier(bool serializable, std::function<void(Status)> read) {
  if (serializable) {
    read(OkStatus());
    return;
  }
  driver_->ReadIndex([this, read = std::move(read)](Status barrier) mutable {
    if (!barrier.ok()) return read(barrier);
    // On the driver thread: hand the read over, so a long range never delays Raft's next turn.
    auto shared = std::make_shared<std::function<void(Status)>>(std::move(read));
    Status posted = read_pool_->Post([shared] { (*shared)(OkStatus()); });
    if (!posted.ok()) (*shared)(posted);
  });
}

template <typename Response>
void Server::ServeRange(const etcdserverpb::RangeRequest& r, const Caller& caller,
                        std::function<Result<Response>(const etcdserverpb::RangeRequest&)> read,
                        Callback<Response> done) {
  if (Status s = CheckRange(r); !s.ok()) return done(s);
  if (!r.serializable()) {
    if (Status s = RefuseIfLearner(); !s.ok()) return done(s);
  }
  // A linearizable read waits until this member has applied everything the leader had
  // committed when the read arrived (ReadIndex); a serializable one reads what is here.
  ReadBarrier(r.serializable(),
              [this, r, caller, read = std::move(read), done = std::move(done)](Status barrier) {
                if (!barrier.ok()) return done(barrier);
                if (caller) {
                  if (Status s = auth_->CheckRange(*caller, r.key(), r.range_end()); !s.ok())
                    return done(s);
                }
                Result<Response> response = read(r);
                if (!response.ok()) return done(response.status());
                if (Status s = AuthStillCurrent(caller); !s.ok()) return done(s);
                done(std::move(response));
              });
}

void Server::Range(const etcdserverpb::RangeRequest& r, Callback<etcdserverpb::RangeResponse> done,
                   const Caller& caller) {
  ServeRange<etcdserverpb::RangeResponse>(
      r, caller,
      [this](const etcdserverpb::RangeRequest& r) -> Result<etcdserverpb::RangeResponse> {
        ASSIGN_OR_RETURN(mvcc::RangeResult rr, store_->Range(ToRangeOptions(r)));
        etcdserverpb::RangeResponse response;
        ToRangeResponse(rr, r.keys_only(), &response);
        FillHeader(response.mutable_header());
        return response;
      },
      std::move(done));
}

void Server::RangeSerialized(const etcdserverpb::RangeRequest& r, Callback<std::string> done,
                             const Caller& caller) {
  ServeRange<std::string>(
      r, caller,
      [this](const etcdserverpb::RangeRequest& r) -> Result<std::string> {
        ASSIGN_OR_RETURN(mvcc::EncodedRange range, store_->RangeEncoded(ToRangeOptions(r)));
        etcdserverpb::ResponseHeader header;
        header.set_revision(range.revision.value());
        FillHeader(&header);
        return EncodeRangeResponse(header, range);
      },
      std::move(done));
}

void Server::Put(const etcdserverpb::PutRequest& r, Callback<etcdserverpb::PutResponse> done,
                 const Caller& caller) {
  if (Status s = CheckPut(r); !s.ok()) return done(s);
  if (Status s = RefuseIfLearner(); !s.ok()) return done(s);
  internal::InternalRequest request;
  *request.mutable_put() = r;
  StampCaller(&request, caller);
  ProposeAndReply(std::move(request), std::move(done));
}

void Server::DeleteRange(const etcdserverpb::DeleteRangeRequest& r,
                         Callback<etcdserverpb::DeleteRangeResponse> done, const Caller& caller) {
  if (Status s = CheckDeleteRange(r); !s.ok()) return done(s);
  if (Status s = RefuseIfLearner(); !s.ok()) return done(s);
  internal::InternalRequest request;
  *request.mutable_delete_range() = r;
  StampCaller(&request, caller);
  ProposeAndReply(std::move(request), std::move(done));
}

void Server::Txn(const etcdserverpb::TxnRequest& r, Callback<etcdserverpb::TxnResponse> done,
                 const Caller& caller) {
  if (Status s = CheckTxn(r, config_.max_txn_ops); !s.ok()) return done(s);
  if (!(IsReadOnly(r) && IsSerializable(r))) {
    if (Status s = RefuseIfLearner(); !s.ok()) return done(s);
  }
  if (IsReadOnly(r)) {
    // Reads need no log entry. Like a Range: after the read barrier, on the read pool (or the
    // caller's thread when serializable), beside the driver; one read view of the store gives
    // all its compares and ranges one revision.
    ReadBarrier(IsSerializable(r), [this, r, caller, done = std::move(done)](Status barrier) {
      if (!barrier.ok()) return done(barrier);
      if (caller) {
        if (Status s = CheckTxnPermitted(*auth_, *caller, r); !s.ok()) return done(s);
      }
      auto result = Applier::ReadOnlyTxn(store_.get(), r);
      if (Status s = AuthStillCurrent(caller); !s.ok()) return done(s);
      if (result.ok()) FillHeader(result->mutable_header());
      done(std::move(result));
    });
    return;
  }
  internal::InternalRequest request;
  *request.mutable_txn() = r;
  StampCaller(&request, caller);
  ProposeAndReply(std::move(request), std::move(done));
}

void Server::Compact(const etcdserverpb::CompactionRequest& r,
                     Callback<etcdserverpb::CompactionResponse> done, const Caller& caller) {
  if (Status s = RefuseIfLearner(); !s.ok()) return done(s);
  internal::InternalRequest request;
  *request.mutable_compaction() = r;
  StampCaller(&request, caller);
  ProposeAndReply(std::move(request), std::move(done));
}

}  // namespace dolmen::server
