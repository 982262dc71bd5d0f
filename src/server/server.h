// A Dolmen member: storage (WAL + MVCC store), the driver thread, and the entry points the API
// layer calls. No gRPC types here: requests and responses are the etcd protobuf messages, and
// failures are Status values that src/api maps to etcd's codes and messages.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "auth/auth_store.h"
#include "auth/simple_tokens.h"
#include "backend/backend.h"
#include "base/clock.h"
#include "base/ids.h"
#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"
#include "io/file_system.h"
#include "lease/lessor.h"
#include "mvcc/store.h"
#include "server/alarm_store.h"
#include "server/applier.h"
#include "server/auto_compaction.h"
#include "server/auto_compactor.h"
#include "server/corruption_check.h"
#include "server/dead_member_remover.h"
#include "server/disk_guard.h"
#include "server/driver.h"
#include "server/force_new_cluster.h"
#include "server/forwarder.h"
#include "server/learner_promoter.h"
#include "server/lease_expiry.h"
#include "server/lease_renew_batcher.h"
#include "server/maintenance.h"
#include "server/membership.h"
#include "server/quota.h"
#include "server/read_pool.h"
#include "server/snapshot_images.h"
#include "wal/wal.h"

namespace dolmen::server {

struct InitialMember {
  std::string name;
  std::vector<std::string> peer_urls;
};

// What a running cluster says about itself to a member that joins it.
struct ClusterInfo {
  ClusterId cluster_id;
  std::vector<internal::Member> members;
};

struct ServerConfig {
  std::string name = "default";
  std::string data_dir;
  // etcd's --wal-dir: the write-ahead log's directory; empty means <data_dir>/member/wal.
  std::string wal_dir;
  std::vector<std::string> peer_urls;    // this member's advertised peer URLs
  std::vector<std::string> client_urls;  // this member's advertised client URLs
  // --initial-cluster; empty means this member alone with peer_urls. Used only when the data
  // dir is new.
  std::vector<InitialMember> initial_cluster;
  bool initial_cluster_existing = false;  // --initial-cluster-state existing
  std::string cluster_token = "etcd-cluster";
  int64_t max_txn_ops = 128;
  uint64_t max_request_bytes = 1536 * 1024;
  uint64_t quota_backend_bytes = 0;  // 0 = etcd's default (2 GiB)
  wal::Options wal;
  // The free space the data dir's file system must keep: below its reserve (0: DiskReserveBytes
  // of wal.segment_bytes) requests that add data are refused and the NOSPACE alarm is raised
  // (disk_guard.h). Off where fs->AvailableBytes is unimplemented (the memory fake).
  DiskGuardOptions disk_guard;
  bool strict_reconfig_check = true;
  // etcd's --max-learners: MemberAdd of a learner beyond this many is refused.
  int max_learners = 1;
  // etcd's --pre-vote (Raft §9.6): on by default since etcd 3.5.
  bool pre_vote = true;
  // etcd's --unsafe-no-fsync, for the backend (the WAL's syncs go through `fs`).
  bool backend_no_sync = false;
  // Corruption detection (corruption_check.h, docs/corruption.md): etcd's
  // --experimental-initial-corrupt-check, --experimental-corrupt-check-time (0: off),
  // --experimental-compact-hash-check-enabled and --experimental-compact-hash-check-time.
  bool initial_corrupt_check = false;
  std::chrono::milliseconds corrupt_check_interval{0};
  bool compact_hash_check_enabled = false;
  std::chrono::milliseconds compact_hash_check_interval{60000};
  // --auto-compaction-mode / --auto-compaction-retention (auto_compaction.h): the leader
  // compacts on its own. Off by default, as etcd.
  AutoCompactionOptions auto_compaction;
  // --force-new-cluster (force_new_cluster.h): a member restarted on an existing data dir
  // makes itself the only member of its cluster. No effect on a new data dir, as etcd.
  bool force_new_cluster = false;
  // --auto-promote-learners (learner_promoter.h): the leader promotes learners that stay in sync.
  bool auto_promote_learners = false;
  LearnerPromoterOptions learner_promotion;
  // Dead-member removal on the leader (dead_member_remover.h, docs/membership.md): with
  // find_dead_members (--discovery-aws-asg: members whose instance is gone), or, without it,
  // with remove_unreachable_after > 0 (voters not heard from for that long). Off by default.
  DeadMemberRemoverOptions member_removal;
  std::chrono::milliseconds remove_unreachable_after{0};
  std::function<Result<std::map<MemberId, std::string>>(
      const std::vector<DeadMemberRemover::Member>& members)>
      find_dead_members;
  DriverOptions driver;
  // The member's clock: lease expiry and the driver's ticks, timeouts, checkpoints and backend
  // commits follow it (null: the system clock); and the leader's lease expiry checker (its
  // promote extension is always one election timeout).
  const Clock* clock = nullptr;
  LeaseExpiryOptions lease_expiry;
  // Randomness for Raft's election timeouts and the start of request ids (null: from the
  // time). The clock above drives the driver too.
  Random* random = nullptr;
  // Auth (docs/auth.md): etcd's --bcrypt-cost for the password hashes this member makes, and
  // --auth-token-ttl, how long a simple token it issued lives without use.
  int bcrypt_cost = 10;
  std::chrono::seconds auth_token_ttl{300};
  // The adapters, injected so the same member runs on real files and LMDB (src/embed) or on
  // fakes (tests, the simulator).
  io::FileSystem* fs = nullptr;
  std::function<Result<std::unique_ptr<backend::Backend>>(const std::string& dir,
                                                          const backend::Options& options)>
      open_backend;
  // Opens a snapshot image file (what the backend's CopyTo writes) read-only.
  std::function<Result<std::unique_ptr<backend::Backend>>(const std::string& path)>
      open_backend_image;
  // For --initial-cluster-state existing: asks the given peer URLs about the cluster.
  std::function<Result<ClusterInfo>(const std::vector<std::string>& peer_urls)> fetch_cluster_info;
};

template <typename T>
using Callback = std::function<void(Result<T>)>;

// Who asks, for auth (docs/auth.md): the API layer passes the client's AuthInfo (empty without a
// token); nullopt is the member itself (lease expiry, auto-compaction, health checks), which
// auth never refuses.
using Caller = std::optional<auth::AuthInfo>;

class Server {
 public:
  // Opens (or creates) the member's data under config.data_dir and replays the log past what
  // the backend holds. A corrupt log or backend is an error naming the file.
  static Result<std::unique_ptr<Server>> Open(ServerConfig config);
  ~Server();

  // Before Start: how to reach peers (the gRPC transport; fakes in tests). Not owned.
  void SetPeerSender(PeerSender* peers) { driver_->SetPeerSender(peers); }
  // Before Start: how a follower reaches the leader with the requests only the leader answers
  // (forwarder.h). Not owned. Without one, a follower answers them "not leader".
  void SetLeaderClient(LeaderClient* client) { leader_client_ = client; }
  // Before Start: how this member asks peers for their hashes (corruption checks). Not owned.
  // Without one, no periodic or compaction hash check runs.
  void SetPeerHasher(PeerHasher* hasher) { peer_hasher_ = hasher; }
  Driver* driver() { return driver_.get(); }
  const Membership& membership() const { return *membership_; }

  // Before Start: receives every applied batch's changes on the driver thread (see Driver).
  void SetApplyObserver(Driver::ApplyObserver observer) {
    driver_->SetApplyObserver(std::move(observer));
  }
  // Before Start: told on the driver thread when a snapshot from the leader replaced the store.
  void SetRestoreObserver(std::function<void(Revision)> observer) {
    driver_->SetRestoreObserver(std::move(observer));
  }
  // Before Start: told on the auto-compactor's thread after each compaction it proposed, with
  // the outcome (tests await it). Unused while auto-compaction is off.
  void SetAutoCompactionObserver(std::function<void(Revision, const Status&)> observer) {
    auto_compaction_observer_ = std::move(observer);
  }
  // From Start, while auto-compaction is on (else null): a test on a ManualClock Wakes it after
  // advancing the clock, as it wakes the driver.
  AutoCompactor* auto_compactor() { return auto_compactor_.get(); }

  // Snapshots between members (docs/membership.md). Leader side, any thread but the driver's:
  // writes a consistent image of the backend for `to` and returns its path (the caller deletes
  // it once sent). Follower side, a transport thread: `path` is a received image for the kSnap
  // `message`; it is checked, kept under the snap dir and the message stepped into Raft, which
  // installs it. A bad image is deleted and refused (kCorruption).
  Result<std::string> WriteSnapshotImage(MemberId to);
  Status ReceiveSnapshot(raft::Message message, const std::string& path);
  const SnapshotImages& snapshot_images() const { return *images_; }

  // The store, for read-side users (watch catch-up, hashes). Thread-safe reads only.
  const mvcc::Store* store() const { return store_.get(); }
  // The member's clock (ServerConfig::clock, or the system clock): the watch hub's too.
  const Clock* clock() const { return clock_; }
  void Start();
  void Stop();
  // True once this member's name and client URLs are in the replicated membership. Like
  // etcd's ReadyNotify, the member serves clients only from then on.
  bool WaitPublished(std::chrono::milliseconds timeout);
  // Set when the member hit an unrecoverable storage error and must exit.
  bool failed() const { return failed_.load(); }
  void SetFatalHandler(std::function<void(const Status&)> handler) {
    on_fatal_ = std::move(handler);
  }

  // Thread-safe entry points. The callback may run on the calling thread or the driver thread.
  // With auth enabled, reads are checked here against `caller`, writes when they are applied
  // (against the auth revision they were checked at, as etcd).
  void Range(const etcdserverpb::RangeRequest& r, Callback<etcdserverpb::RangeResponse> done,
             const Caller& caller = std::nullopt);
  // Range with the same checks and answer, delivered as the serialized RangeResponse (the
  // bytes a gRPC reply carries), built from the stored records without KeyValue messages in
  // between (range_wire.h): the client API's Range, where lists of large prefixes arrive.
  void RangeSerialized(const etcdserverpb::RangeRequest& r, Callback<std::string> done,
                       const Caller& caller = std::nullopt);
  void Put(const etcdserverpb::PutRequest& r, Callback<etcdserverpb::PutResponse> done,
           const Caller& caller = std::nullopt);
  void DeleteRange(const etcdserverpb::DeleteRangeRequest& r,
                   Callback<etcdserverpb::DeleteRangeResponse> done,
                   const Caller& caller = std::nullopt);
  void Txn(const etcdserverpb::TxnRequest& r, Callback<etcdserverpb::TxnResponse> done,
           const Caller& caller = std::nullopt);
  void Compact(const etcdserverpb::CompactionRequest& r,
               Callback<etcdserverpb::CompactionResponse> done,
               const Caller& caller = std::nullopt);

  // Auth (server_auth.cc, docs/auth.md). Changes go through the log and are checked there
  // (root role needed once auth is enabled); passwords are hashed here first, on the read pool,
  // so the log never carries one. Reads are answered by this member after a read barrier.
  void AuthEnable(Callback<etcdserverpb::AuthEnableResponse> done, const Caller& caller);
  void AuthDisable(Callback<etcdserverpb::AuthDisableResponse> done, const Caller& caller);
  etcdserverpb::AuthStatusResponse AuthStatus();
  // etcd's Authenticate: the password checked here, then a token issued through the log.
  void Authenticate(const etcdserverpb::AuthenticateRequest& r,
                    Callback<etcdserverpb::AuthenticateResponse> done);
  void UserAdd(const etcdserverpb::AuthUserAddRequest& r,
               Callback<etcdserverpb::AuthUserAddResponse> done, const Caller& caller);
  void UserDelete(const etcdserverpb::AuthUserDeleteRequest& r,
                  Callback<etcdserverpb::AuthUserDeleteResponse> done, const Caller& caller);
  void UserChangePassword(const etcdserverpb::AuthUserChangePasswordRequest& r,
                          Callback<etcdserverpb::AuthUserChangePasswordResponse> done,
                          const Caller& caller);
  void UserGrantRole(const etcdserverpb::AuthUserGrantRoleRequest& r,
                     Callback<etcdserverpb::AuthUserGrantRoleResponse> done, const Caller& caller);
  void UserRevokeRole(const etcdserverpb::AuthUserRevokeRoleRequest& r,
                      Callback<etcdserverpb::AuthUserRevokeRoleResponse> done,
                      const Caller& caller);
  void RoleAdd(const etcdserverpb::AuthRoleAddRequest& r,
               Callback<etcdserverpb::AuthRoleAddResponse> done, const Caller& caller);
  void RoleDelete(const etcdserverpb::AuthRoleDeleteRequest& r,
                  Callback<etcdserverpb::AuthRoleDeleteResponse> done, const Caller& caller);
  void RoleGrantPermission(const etcdserverpb::AuthRoleGrantPermissionRequest& r,
                           Callback<etcdserverpb::AuthRoleGrantPermissionResponse> done,
                           const Caller& caller);
  void RoleRevokePermission(const etcdserverpb::AuthRoleRevokePermissionRequest& r,
                            Callback<etcdserverpb::AuthRoleRevokePermissionResponse> done,
                            const Caller& caller);
  void UserGet(const etcdserverpb::AuthUserGetRequest& r,
               Callback<etcdserverpb::AuthUserGetResponse> done, const Caller& caller);
  void UserList(Callback<etcdserverpb::AuthUserListResponse> done, const Caller& caller);
  void RoleGet(const etcdserverpb::AuthRoleGetRequest& r,
               Callback<etcdserverpb::AuthRoleGetResponse> done, const Caller& caller);
  void RoleList(Callback<etcdserverpb::AuthRoleListResponse> done, const Caller& caller);
  // The user of a simple token this member knows (etcd's AuthInfoFromCtx), with the current
  // auth revision; "invalid auth token" otherwise. Any thread.
  Result<auth::AuthInfo> CallerFromToken(const std::string& token);
  // Permission checks for the API layer (Watch, Maintenance).
  const auth::AuthStore& auth_store() const { return *auth_; }

  // Leases (docs/lease.md; server_lease.cc). Grant and Revoke go through the log; renew and
  // time-to-live are answered by the leader's lessor without a log entry, and a follower
  // forwards them to the leader (kNoLeader / kTimeout when that fails, as etcd).
  void LeaseGrant(const etcdserverpb::LeaseGrantRequest& r,
                  Callback<etcdserverpb::LeaseGrantResponse> done);
  void LeaseRevoke(const etcdserverpb::LeaseRevokeRequest& r,
                   Callback<etcdserverpb::LeaseRevokeResponse> done,
                   const Caller& caller = std::nullopt);
  // A keep-alive: the lease's TTL; kLeaseNotFound if it is gone or expired. `done` runs on the
  // calling thread (leader) or a forwarding thread (follower).
  void LeaseRenew(LeaseId id, Callback<int64_t> done);
  // kLeaseNotFound if the lease does not exist. `done` as for LeaseRenew.
  void LeaseTimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& r,
                       Callback<etcdserverpb::LeaseTimeToLiveResponse> done);
  // The same, answered by this member only: kNotLeader / kNoLeader unless it leads. Renews at
  // once, without confirming the leadership (tests; LeaseRenewAsLeader confirms it first).
  Result<int64_t> LeaseRenewHere(LeaseId id);
  // A keep-alive on this member as the leader, after a ReadIndex round has confirmed that a
  // quorum still follows it (as etcd 3.5's ensureLeadership): a leader cut off from the others
  // (a partition, a stalled disk) would otherwise renew leases its successor, whose lessor only
  // extends them by an election timeout, revokes before the TTL the client was told has run
  // out. `done` runs on a read-pool thread, or at once with kNotLeader/kNoLeader.
  void LeaseRenewAsLeader(LeaseId id, Callback<int64_t> done);
  // The same, waited for until `deadline` (kTimeout after it): what the leader runs for a
  // keep-alive a follower forwarded.
  Result<int64_t> LeaseRenewAsLeaderBy(LeaseId id, Deadline deadline);
  // A batch of keep-alives a follower forwarded (LeaseRenewBatcher), waited for until
  // `deadline`: one ReadIndex round confirms the leadership for all, then each lease is renewed
  // (its TTL or kLeaseNotFound, in order). Fails as a whole when the round does.
  Result<std::vector<Result<int64_t>>> LeaseRenewBatchAsLeaderBy(const std::vector<LeaseId>& ids,
                                                                 Deadline deadline);
  Result<etcdserverpb::LeaseTimeToLiveResponse> LeaseTimeToLiveHere(
      const etcdserverpb::LeaseTimeToLiveRequest& r);
  // Every member's lessor knows every lease: answered locally, as etcd does.
  etcdserverpb::LeaseLeasesResponse LeaseLeases();
  // Whether this member leads: the "am I leader" the lease expiry checker follows.
  bool IsLeader() const;

  // Runtime reconfiguration (cluster_ops.cc).
  void MemberAdd(const etcdserverpb::MemberAddRequest& r,
                 Callback<etcdserverpb::MemberAddResponse> done);
  void MemberRemove(const etcdserverpb::MemberRemoveRequest& r,
                    Callback<etcdserverpb::MemberRemoveResponse> done);
  void MemberUpdate(const etcdserverpb::MemberUpdateRequest& r,
                    Callback<etcdserverpb::MemberUpdateResponse> done);
  // On a follower, forwarded to the leader (only it knows whether the learner caught up).
  void MemberPromote(const etcdserverpb::MemberPromoteRequest& r,
                     Callback<etcdserverpb::MemberPromoteResponse> done);
  // The promotion decided here: kNotLeader unless this member leads.
  void MemberPromoteHere(const etcdserverpb::MemberPromoteRequest& r,
                         Callback<etcdserverpb::MemberPromoteResponse> done);

  // Fills cluster_id, member_id and raft_term; revision is the caller's.
  void FillHeader(etcdserverpb::ResponseHeader* h) const;

  const ServerConfig& config() const { return config_; }
  MemberId member_id() const { return member_id_; }
  ClusterId cluster_id() const { return cluster_id_; }
  Term term() const;
  Index applied_index() const;
  Index commit_index() const { return driver_->commit_index(); }
  MemberId leader() const { return driver_->leader(); }
  Revision current_revision() const { return store_->CurrentRevision(); }
  uint64_t backend_size_bytes() const { return backend_->SizeBytes(); }
  uint64_t backend_size_in_use_bytes() const { return backend_->SizeInUseBytes(); }
  const DiskGuard& disk_guard() const { return *disk_guard_; }
  Result<mvcc::Store::HashKvResult> HashKv(Revision revision) const {
    return store_->HashKv(revision);
  }

  // Corruption detection (corruption.cc, docs/corruption.md).
  // etcd's CheckInitialHashKV, after Open and before Start, with the peer hasher set: OK when
  // the check is off, the data dir was new, or no peer with the same compact revision has
  // another hash; kCorruption "<id> found data inconsistency with peers" otherwise.
  Status CheckInitialHashKv();
  // A peer's request for this member's hash at `revision` (0: current): a hash recorded at
  // that compaction if there is one, else the store's HashKv. Any thread.
  Result<KvHash> ServeHashKv(Revision revision) const;

  // Maintenance (maintenance.cc, docs/maintenance.md).
  // etcd's Alarm: GET, ACTIVATE and DEACTIVATE all go through the log.
  void Alarm(const etcdserverpb::AlarmRequest& r, Callback<etcdserverpb::AlarmResponse> done);
  // The active alarms (for Status), ordered by type and member.
  std::vector<etcdserverpb::AlarmMember> ActiveAlarms() const;
  // etcd's quota check before proposing a request that costs `cost` bytes (QuotaCost): kNoSpace
  // if the backend would exceed --quota-backend-bytes, after asking the cluster to raise this
  // member's NOSPACE alarm.
  Status CheckQuota(uint64_t cost);
  // etcd's Hash: CRC-32C of the whole backend (backend::HashContents) without member-local
  // state. The backend snapshot is taken on the driver thread between applied batches, so that
  // it matches a revision; the hashing runs on the maintenance thread, beside the Raft loop.
  void Hash(Callback<BackendHash> done);
  // etcd's Defragment. The compacting copy, the replay of the writes committed meanwhile and the
  // swap run on the maintenance thread while the driver applies and replies; the driver only
  // replays the last writes onto the copy as its next batch begins
  // (backend::PreparedDefragment::Finish).
  void Defragment(std::function<void(Status)> done);
  // Tests: called on the maintenance thread as a Hash starts its scan ("hash") and between a
  // Defragment's copy and its swap ("defragment"), and on the caller's thread as OpenSnapshot
  // starts its copy ("snapshot"), so a test can hold the operation there and show the loop
  // going on meanwhile.
  // Before the first of those is asked for.
  void SetMaintenanceHookForTest(std::function<void(const char* operation)> hook) {
    maintenance_hook_ = std::move(hook);
  }
  // Runs `done` on the driver thread once every entry applied so far is committed to the
  // backend (with the driver's stop status if it stopped first), e.g. to report the backend's
  // sizes as of the last applied write.
  void AfterBackendCommit(std::function<void(Status)> done);
  // A consistent copy of the backend for the Snapshot stream, in a temporary file under the
  // data dir, holding every entry applied when it was called (it waits for the driver to commit
  // its batch). Copies on the calling thread, concurrently with writes.
  Result<std::unique_ptr<BackendSnapshot>> OpenSnapshot();

 private:
  explicit Server(ServerConfig config);
  Status OpenStorage();
  // A new cluster's member whose first start was cut between creating its log and syncing the
  // bootstrap entries into it: finish the bootstrap (same flags, same ids) instead of waiting
  // forever for a configuration.
  // Opens the storage backend; one that cannot be read before any log exists (a first start
  // cut short) is moved aside and created again.
  Result<std::unique_ptr<backend::Backend>> OpenBackend(const std::string& dir,
                                                        const std::string& wal_dir,
                                                        const backend::Options& options);
  bool BootstrapNeverReachedTheLog(const wal::Recovered& recovered, Index applied) const;
  Status FinishBootstrap(const std::string& wal_dir);
  // --force-new-cluster on a restart: rewrites `recovered` (and its log) into a one-member
  // cluster of this member (force_new_cluster.h).
  Status ForceStandalone(wal::Recovered* recovered, Index applied);
  // A new data dir: the members of --initial-cluster, as conf-change entries at term 1.
  Status Bootstrap(std::vector<raft::Entry>* entries, raft::HardState* hs);
  // --initial-cluster-state existing: learn the cluster from its members; start empty.
  Status Join();
  Status StartRaft(const wal::Recovered* recovered, std::vector<raft::Entry> bootstrap,
                   raft::HardState bootstrap_hs);
  void PublishAttributes();
  // With --strict-reconfig-check: refuses a change after which the started members would not
  // form a quorum (voter_delta +1 adds a voter; `excluded` is a voter being removed).
  Status CheckQuorumAfter(int voter_delta, MemberId excluded) const;
  // Encodes, size-checks and proposes; `on_applied` receives the apply result.
  void Propose(internal::InternalRequest request, Driver::Done on_applied,
               std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // etcd's rule: a learner serves serializable reads only.
  Status RefuseIfLearner() const;
  // Runs `read` once a linearizable read may be served (after ReadIndex; then on read_pool_,
  // never on the driver thread), or at once for a serializable one; `read` gets a non-ok Status
  // when the barrier failed or too many reads are waiting.
  void ReadBarrier(bool serializable, std::function<void(Status)> read);
  // A Range's checks, read barrier and auth around `read`, which makes the answer.
  template <typename Response>
  void ServeRange(const etcdserverpb::RangeRequest& r, const Caller& caller,
                  std::function<Result<Response>(const etcdserverpb::RangeRequest&)> read,
                  Callback<Response> done);
  template <typename Response>
  void ProposeAndReply(internal::InternalRequest request, Callback<Response> done);
  // Auth (server_auth.cc): the auth store loaded at open and after a snapshot.
  Status OpenAuth();
  // Sets the auth header of a request proposed for `caller` (none for the member itself).
  static void StampCaller(internal::InternalRequest* request, const Caller& caller);
  // etcd's doSerialize: a read checked at an auth revision that changed while it ran fails
  // "revision of auth store is old".
  Status AuthStillCurrent(const Caller& caller) const;
  // Proposes one auth change for `caller` and answers with its Response.
  template <typename Response>
  void ProposeAuth(internal::AuthRequest change, const Caller& caller, Callback<Response> done);
  // Runs `read` after a read barrier, on the read pool; `failed` gets a failed barrier or what
  // `read` returned when not OK (`read` answers its caller itself when it succeeds).
  void AfterReadBarrier(std::function<Status()> read, std::function<void(Status)> failed);
  void AuthenticateOnce(const etcdserverpb::AuthenticateRequest& r, int attempts_left,
                        Callback<etcdserverpb::AuthenticateResponse> done);
  // Replaces the backend with the image of the snapshot at `index` (synced).
  Status RestoreFromImage(Index index);
  // Driver thread: a snapshot from the leader, installed with everything kept beside the keys.
  Status InstallSnapshot(const raft::SnapshotMetadata& meta);
  // Leases (server_lease.cc): load at open, expiry checker from Start to Stop.
  Status OpenLeases();
  // Leases and their key attachments, from the backend and the store.
  Status ReloadLeases();
  void StartLeases();
  void StopLeases();
  Status LeaderOnly();
  // How renew_batcher_ sends a batch: to the leader through leader_client_, or to this member
  // when it has become the leader.
  LeaseRenewBatcher::Send RenewBatchAtLeader();
  // Runs `attempt` against the leader through forwarder_ (see Forwarder::Run).
  void ForwardToLeader(Forwarder::Attempt attempt, Forwarder::IsFinal is_final,
                       std::function<void(Status)> finish);
  // Maintenance (maintenance.cc): alarms loaded, quota wired into the applier, leftover
  // snapshot files removed. In StartRaft, once the applier exists.
  Status OpenMaintenance();
  // Proposes this member's NOSPACE alarm unless it is active or already being proposed.
  void RaiseNoSpaceAlarm();
  // Proposes a CORRUPT alarm naming `member` unless that one is active (corruption.cc).
  void RaiseCorruptAlarm(MemberId member);
  // From Start to Stop when a periodic or compaction hash check is on and a hasher is set.
  void StartCorruptionMonitor();
  // From Start to Stop when config_.auto_compaction is on.
  void StartAutoCompaction();
  // From Start to Stop with config_.auto_promote_learners (learner_promotion.cc).
  void StartLearnerPromotion();
  void StartMemberRemoval();  // member_removal.cc

  ServerConfig config_;
  MemberId member_id_;
  ClusterId cluster_id_;
  std::unique_ptr<io::FileLock> lock_;
  std::unique_ptr<SnapshotImages> images_;
  std::unique_ptr<backend::Backend> backend_;
  std::unique_ptr<mvcc::Store> store_;
  std::unique_ptr<wal::Wal> wal_;
  std::unique_ptr<Applier> applier_;
  std::unique_ptr<Membership> membership_;
  std::unique_ptr<raft::MemoryStorage> raft_storage_;
  std::unique_ptr<Driver> driver_;
  // Linearizable reads past their barrier; stopped after driver_, so no barrier completes into a
  // stopped pool, and before the store goes.
  std::unique_ptr<ReadPool> read_pool_;
  // One thread for Hash and Defragment, in the order they were asked, beside the driver.
  // Stopped after driver_.
  std::unique_ptr<ReadPool> maintenance_;
  std::function<void(const char*)> maintenance_hook_;
  SystemClock system_clock_;
  const Clock* clock_ = nullptr;  // config_.clock or system_clock_
  std::unique_ptr<lease::Lessor> lessor_;
  std::unique_ptr<LeaseExpiryChecker> lease_expiry_;  // after driver_: destroyed first
  LeaderClient* leader_client_ = nullptr;
  // A follower's keep-alives, forwarded in batches through forwarder_ (declared before it, so
  // destroyed after the forwarder has answered every batch it held).
  std::unique_ptr<LeaseRenewBatcher> renew_batcher_;
  std::unique_ptr<Forwarder> forwarder_;  // after driver_: destroyed first
  std::unique_ptr<AlarmStore> alarms_;
  std::unique_ptr<auth::AuthStore> auth_;       // replicated users, roles, enabled flag
  std::unique_ptr<auth::SimpleTokens> tokens_;  // this member's tokens
  std::unique_ptr<DiskGuard> disk_guard_;       // before quota_, which points at it
  std::unique_ptr<Quota> quota_;
  std::atomic<bool> raising_no_space_{false};
  PeerHasher* peer_hasher_ = nullptr;
  bool restarted_ = false;  // the data dir held a log: the initial corruption check applies
  std::unique_ptr<CompactionHashes> compaction_hashes_;    // recorded by the applier
  std::unique_ptr<CorruptionMonitor> corruption_monitor_;  // leader checks; stopped first
  std::unique_ptr<AutoCompactor> auto_compactor_;          // proposes; stopped first
  std::function<void(Revision, const Status&)> auto_compaction_observer_;
  std::unique_ptr<LearnerPromoter> learner_promoter_;       // proposes; stopped first
  std::unique_ptr<DeadMemberRemover> dead_member_remover_;  // proposes; stopped first
  std::atomic<uint64_t> next_snapshot_file_{1};
  std::atomic<bool> failed_{false};
  std::atomic<bool> stopped_{false};
  std::mutex published_mu_;
  std::condition_variable published_cv_;
  bool published_ = false;  // guarded by published_mu_
  // Request ids are unique across members: the member id's low 16 bits, then a counter
  // started from the clock (etcd's scheme), so two members never propose the same id.
  std::atomic<uint64_t> next_request_id_{1};
  std::function<void(const Status&)> on_fatal_;
};

}  // namespace dolmen::server
