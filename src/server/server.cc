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
#include "server/range_wire.h"
#include "server/request_checks.h"

namespace dolmen::server {
namespace {

// WAL metadata: which member and cluster this log belongs to. Format version 1:
// [u8 version=1][fixed64 member_id][fixed64 cluster_id].
constexpr char kMetadataVersion = 1;
// Linearizable reads waiting for a read thread; beyond this they are refused with etcd's "too
// many requests" (each waiting read holds only its request, not its answer).
constexpr size_t kMaxQueuedReads = 10000;
// Hash and Defragment requests waiting for the maintenance thread; etcdctl asks one at a time.
constexpr size_t kMaxQueuedMaintenance = 64;
// The maintenance thread's nice value: a defragmentation's copy or a hash scan yields the CPU
// to puts and reads (issue 18: puts during a defragmentation within 10% of without).
constexpr int kMaintenanceNice = 10;

std::string EncodeMetadata(MemberId member, ClusterId cluster) {
  std::string out(1, kMetadataVersion);
  coding::PutFixed64(&out, member.value());
  coding::PutFixed64(&out, cluster.value());
  return out;
}

Status DecodeMetadata(const std::string& in, const std::string& wal_dir, MemberId* member,
                      ClusterId* cluster) {
  if (in.size() != 17 || in[0] != kMetadataVersion) {
    return Corruption("WAL metadata in " + wal_dir + " is not a Dolmen member record (" +
                      std::to_string(in.size()) + " bytes)");
  }
  *member = MemberId(coding::DecodeFixed64(in.data() + 1));
  *cluster = ClusterId(coding::DecodeFixed64(in.data() + 9));
  return OkStatus();
}

std::string JoinUrls(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

// Go's %q of a string list, as etcd prints one: ["a" "b"].
std::string QuotedList(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? " \"" : "\"") + v[i] + "\"";
  return out + "]";
}

// What etcd's netutil.URLStringsEqual reports for two sorted lists that differ (no names are
// resolved here: both sides are compared as written).
std::string UrlListDifference(const std::vector<std::string>& advertised,
                              const std::vector<std::string>& initial) {
  if (advertised.size() != initial.size()) {
    return "len(" + QuotedList(advertised) + ") != len(" + QuotedList(initial) + ")";
  }
  for (size_t i = 0; i < advertised.size(); ++i) {
    if (advertised[i] != initial[i]) {
      return "resolved urls: \"" + advertised[i] + "\" != \"" + initial[i] + "\"";
    }
  }
  return "";
}

// One line on which flag to change. The common case (the lab's command) differs only in the
// scheme: the member would listen for one and be dialled with the other.
std::string AdvertiseMismatchHint(const std::string& name,
                                  const std::vector<std::string>& advertised,
                                  const std::vector<std::string>& initial) {
  auto without_scheme = [](const std::string& url) {
    size_t sep = url.find("://");
    return sep == std::string::npos ? url : url.substr(sep);
  };
  bool only_scheme = advertised.size() == initial.size();
  for (size_t i = 0; only_scheme && i < advertised.size(); ++i) {
    only_scheme = without_scheme(advertised[i]) == without_scheme(initial[i]);
  }
  if (only_scheme) {
    return "the two differ only in the scheme: make --initial-advertise-peer-urls (and "
           "--listen-peer-urls) say " +
           JoinUrls(initial) + ", or --initial-cluster say " + name + "=" + JoinUrls(advertised) +
           "; both must name the same URLs";
  }
  return "make --initial-advertise-peer-urls list exactly the URLs --initial-cluster gives " +
         name + " (" + JoinUrls(initial) + "), or change --initial-cluster";
}

}  // namespace

Server::Server(ServerConfig config) : config_(std::move(config)) {
  CHECK(config_.fs != nullptr && config_.open_backend) << "ServerConfig needs its adapters";
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

Status Server::Join() {
  if (!config_.fetch_cluster_info) {
    return Unimplemented("joining a running cluster needs the peer transport");
  }
  std::vector<std::string> mine = config_.peer_urls;
  std::sort(mine.begin(), mine.end());
  std::vector<std::string> others;
  for (const auto& m : config_.initial_cluster) {
    std::vector<std::string> urls = m.peer_urls;
    std::sort(urls.begin(), urls.end());
    if (m.name == config_.name || urls == mine) continue;
    others.insert(others.end(), m.peer_urls.begin(), m.peer_urls.end());
  }
  if (others.empty()) {
    return InvalidArgument(
        "--initial-cluster-state existing needs the other members in --initial-cluster");
  }
  auto info = config_.fetch_cluster_info(others);
  if (!info.ok()) {
    return Unavailable("cannot fetch the cluster's members from " + JoinUrls(others) + ": " +
                       info.status().message());
  }
  const internal::Member* self = nullptr;
  for (const auto& m : info->members) {
    std::vector<std::string> urls(m.peer_urls().begin(), m.peer_urls().end());
    std::sort(urls.begin(), urls.end());
    if (urls == mine) self = &m;
  }
  if (self == nullptr) {
    return Status(Code::kFailedPrecondition,
                  "no member of the cluster has the peer URLs " + JoinUrls(config_.peer_urls) +
                      "; add this member first with 'etcdctl member add'");
  }
  member_id_ = MemberId(self->id());
  cluster_id_ = info->cluster_id;
  // The log (or a snapshot) from the leader brings the membership; knowing the members now
  // lets the transport answer the leader before that arrives.
  ASSIGN_OR_RETURN(backend::WriteTxn * txn, store_->BatchTxn());
  for (const auto& m : info->members) RETURN_IF_ERROR(membership_->Add(m, txn));
  return store_->Commit(Index(0));
}

Status Server::Bootstrap(std::vector<raft::Entry>* entries, raft::HardState* hs) {
  if (config_.initial_cluster_existing) return Join();
  // Ids as etcd derives them, so the same flags name the same members.
  std::vector<internal::Member> members;
  std::vector<MemberId> ids;
  const InitialMember* self = nullptr;
  for (const auto& m : config_.initial_cluster) {
    internal::Member rec;
    rec.set_id(ComputeMemberId(m.peer_urls, config_.cluster_token).value());
    rec.set_name(m.name);
    for (const auto& u : m.peer_urls) rec.add_peer_urls(u);
    if (m.name == config_.name) self = &m;
    ids.push_back(MemberId(rec.id()));
    members.push_back(std::move(rec));
  }
  if (self == nullptr) {
    return InvalidArgument("couldn't find local name \"" + config_.name +
                           "\" in the initial cluster configuration");
  }
  std::vector<std::string> mine = self->peer_urls, advertised = config_.peer_urls;
  std::sort(mine.begin(), mine.end());
  std::sort(advertised.begin(), advertised.end());
  if (!advertised.empty() && mine != advertised) {
    return InvalidArgument("--initial-cluster has " + config_.name + "=" +
                           JoinUrls(self->peer_urls) + " but missing from " +
                           "--initial-advertise-peer-urls=" + JoinUrls(advertised) + " (" +
                           UrlListDifference(advertised, mine) + ")\n" +
                           AdvertiseMismatchHint(config_.name, advertised, mine));
  }
  member_id_ = ComputeMemberId(self->peer_urls, config_.cluster_token);
  cluster_id_ = ComputeClusterId(ids);
  // etcd's bootstrap: every initial member is added by a committed conf-change entry at
  // term 1, so the first elected leader is in term 2.
  std::sort(members.begin(), members.end(),
            [](const auto& a, const auto& b) { return a.id() < b.id(); });
  uint64_t index = 0;
  for (const auto& m : members) {
    raft::ConfChange cc;
    cc.type = raft::ConfChangeType::kAddNode;
    cc.node_id = MemberId(m.id());
    internal::Member ctx = m;
    ctx.clear_name();  // the name arrives with the member's own published attributes
    cc.context = ctx.SerializeAsString();
    raft::Entry e;
    e.term = Term(1);
    e.index = Index(++index);
    e.type = raft::EntryType::kConfChange;
    e.data = raft::EncodeConfChange(cc);
    entries->push_back(std::move(e));
  }
  hs->term = Term(1);
  hs->commit = Index(index);
  return OkStatus();
}

Status Server::OpenStorage() {
  io::FileSystem* fs = config_.fs;
  const std::string member_dir = config_.data_dir + "/member";
  const std::string wal_dir = config_.wal_dir.empty() ? member_dir + "/wal" : config_.wal_dir;
  RETURN_IF_ERROR(fs->CreateDirs(member_dir));
  ASSIGN_OR_RETURN(lock_, fs->LockFile(member_dir + "/LOCK"));

  backend::Options backend_options;
  backend_options.no_sync = config_.backend_no_sync;
  if (config_.quota_backend_bytes > 0) {
    // The map is address space, not disk: leave room above the quota for LMDB's own pages.
    backend_options.map_size_bytes =
        std::max<uint64_t>(backend_options.map_size_bytes, config_.quota_backend_bytes * 2);
  }
  ASSIGN_OR_RETURN(backend_, OpenBackend(member_dir + "/db", wal_dir, backend_options));
  ASSIGN_OR_RETURN(store_, mvcc::Store::Open(backend_.get()));
  RETURN_IF_ERROR(OpenLeases());
  RETURN_IF_ERROR(OpenAuth());
  membership_ = std::make_unique<Membership>();
  RETURN_IF_ERROR(membership_->Load(backend_.get()));
  images_ = std::make_unique<SnapshotImages>(fs, member_dir + "/snap");
  Index applied = store_->ConsistentIndex();

  if (wal::Wal::Exists(fs, wal_dir)) {
    restarted_ = true;
    ASSIGN_OR_RETURN(auto opened, wal::Wal::Open(fs, wal_dir, config_.wal));
    wal_ = std::move(opened.first);
    wal::Recovered& recovered = opened.second;
    for (const auto& note : recovered.repairs) {
      log::Warn("repaired the write-ahead log", {{"wal-dir", wal_dir}, {"repair", note}});
    }
    RETURN_IF_ERROR(DecodeMetadata(recovered.metadata, wal_dir, &member_id_, &cluster_id_));
    if (BootstrapNeverReachedTheLog(recovered, applied)) return FinishBootstrap(wal_dir);
    if (recovered.snapshot && recovered.snapshot->index > applied) {
      // The log recorded a snapshot from the leader that the backend does not hold: the
      // member stopped between the two. The image waits in the snap dir.
      log::Info("installing the snapshot image that the last run received",
                {{"snapshot-index", recovered.snapshot->index.value()}});
      RETURN_IF_ERROR(RestoreFromImage(recovered.snapshot->index));
      RETURN_IF_ERROR(ReloadLeases());
      RETURN_IF_ERROR(auth_->Load(backend_.get()));
      RETURN_IF_ERROR(membership_->Load(backend_.get()));
      applied = store_->ConsistentIndex();
    }
    images_->RemoveUpTo(applied, /*include_outgoing=*/true);
    uint64_t first = recovered.snapshot          ? recovered.snapshot->index.value() + 1
                     : recovered.entries.empty() ? 1
                                                 : recovered.entries.front().index.value();
    if (first > applied.value() + 1) {
      return Corruption("write-ahead log in " + wal_dir + " starts at index " +
                        std::to_string(first) + " but the backend has applied only up to " +
                        std::to_string(applied.value()));
    }
    if (config_.force_new_cluster) RETURN_IF_ERROR(ForceStandalone(&recovered, applied));
    return StartRaft(&recovered, {}, {});
  }
  if (config_.force_new_cluster) {
    log::Info("--force-new-cluster has no effect on a new data dir: starting a new cluster");
  }
  if (applied.value() > 0) {
    return Corruption("data dir " + config_.data_dir + " has a backend applied to index " +
                      std::to_string(applied.value()) + " but no write-ahead log in " + wal_dir);
  }
  std::vector<raft::Entry> entries;
  raft::HardState hs;
  RETURN_IF_ERROR(Bootstrap(&entries, &hs));
  // The backend's first state (its meta pages, a joiner's membership) is durable before the log
  // exists: a data dir with a log always has a backend LMDB can open (OpenBackend relies on it).
  RETURN_IF_ERROR(backend_->Sync());
  if (entries.empty()) {
    // Joining: nothing to log yet; the WAL starts empty.
    ASSIGN_OR_RETURN(
        wal_, wal::Wal::Create(fs, wal_dir, EncodeMetadata(member_id_, cluster_id_), config_.wal));
    return StartRaft(nullptr, {}, {});
  }
  ASSIGN_OR_RETURN(
      wal_, wal::Wal::Create(fs, wal_dir, EncodeMetadata(member_id_, cluster_id_), config_.wal));
  RETURN_IF_ERROR(wal_->Append(entries, hs));
  RETURN_IF_ERROR(wal_->Sync());
  return StartRaft(nullptr, std::move(entries), hs);
}

Status Server::ForceStandalone(wal::Recovered* recovered, Index applied) {
  internal::Member self;
  if (auto known = membership_->Get(member_id_)) self = *known;
  if (self.peer_urls().empty()) {
    for (const auto& u : config_.peer_urls) self.add_peer_urls(u);
  }
  ASSIGN_OR_RETURN(StandaloneRestart plan,
                   PlanStandaloneRestart(recovered, applied, member_id_, self));
  // The conf changes overwrite the discarded tail and are durable, with the commit index that
  // covers them, before Raft starts: a crash now restarts as the one-member cluster too.
  RETURN_IF_ERROR(wal_->Append(plan.appended, recovered->hard_state));
  RETURN_IF_ERROR(wal_->Sync());
  std::string removed;
  for (MemberId id : plan.removed) removed += (removed.empty() ? "" : ", ") + log::Hex(id.value());
  log::Warn(
      "WARNING: --force-new-cluster: forcing this member into a one-member cluster. "
      "Acknowledged writes the other members held past this member's log are lost. Never "
      "restart the removed members on their old data dirs: add them back with 'etcdctl member "
      "add' and empty data dirs. Start this member without --force-new-cluster from now on",
      {{"local-member-id", log::Hex(member_id_.value())},
       {"cluster-id", log::Hex(cluster_id_.value())},
       {"commit-index", plan.commit.value()},
       {"discarded-uncommitted-entries", plan.discarded_entries},
       {"removed-members", removed.empty() ? std::string("none") : removed},
       {"added-itself", plan.added_self}});
  return OkStatus();
}

Result<std::unique_ptr<backend::Backend>> Server::OpenBackend(const std::string& dir,
                                                              const std::string& wal_dir,
                                                              const backend::Options& options) {
  auto opened = config_.open_backend(dir, options);
  if (opened.ok() || opened.status().code() != Code::kCorruption ||
      wal::Wal::Exists(config_.fs, wal_dir)) {
    return opened;
  }
  // No log yet: the member's first start stopped before it (the backend is synced before the
  // log is created), so nothing was ever applied or acknowledged, and a power cut can leave a
  // data file whose first pages never reached the disk. It is kept aside, not deleted, in case
  // an operator put it there, and the start goes on with a new one.
  std::string aside = dir + ".unreadable";
  for (int n = 1; config_.fs->Exists(aside); ++n) aside = dir + ".unreadable." + std::to_string(n);
  RETURN_IF_ERROR(config_.fs->CreateDirs(aside));
  ASSIGN_OR_RETURN(std::vector<std::string> files, config_.fs->ListDir(dir));
  for (const std::string& name : files) {
    RETURN_IF_ERROR(config_.fs->Rename(dir + "/" + name, aside + "/" + name));
  }
  RETURN_IF_ERROR(config_.fs->SyncDir(dir));
  log::Warn(
      "the storage backend cannot be read and there is no write-ahead log yet, so the first "
      "start was cut short before anything was applied: moved it aside, creating a new one",
      {{"path", dir}, {"moved-to", aside}, {"error", opened.status().message()}});
  return config_.open_backend(dir, options);
}

bool Server::BootstrapNeverReachedTheLog(const wal::Recovered& recovered, Index applied) const {
  // A member that starts a new cluster creates its log, then appends the bootstrap entries and
  // syncs them. A power cut (or kill -9) between the two leaves a log with nothing in it: no
  // entry, no vote, nothing applied. Such a member never said or acknowledged anything, and
  // started as is it would wait forever for a configuration. A joining member's log is empty
  // until the leader reaches it, which is normal.
  return !config_.initial_cluster_existing && recovered.entries.empty() &&
         !recovered.snapshot.has_value() && recovered.hard_state.IsEmpty() && applied.value() == 0;
}

Status Server::FinishBootstrap(const std::string& wal_dir) {
  const MemberId logged_member = member_id_;
  const ClusterId logged_cluster = cluster_id_;
  std::vector<raft::Entry> entries;
  raft::HardState hs;
  RETURN_IF_ERROR(Bootstrap(&entries, &hs));
  if (member_id_ != logged_member || cluster_id_ != logged_cluster) {
    return Status(
        Code::kFailedPrecondition,
        "the write-ahead log in " + wal_dir + " was created for member " +
            log::Hex(logged_member.value()) + " of cluster " + log::Hex(logged_cluster.value()) +
            " and holds no entries; these flags describe member " + log::Hex(member_id_.value()) +
            " of cluster " + log::Hex(cluster_id_.value()) + ": remove the data dir to start over");
  }
  log::Warn(
      "the write-ahead log holds no entries: the first start stopped before its bootstrap "
      "reached the disk; bootstrapping again",
      {{"wal-dir", wal_dir}});
  RETURN_IF_ERROR(wal_->Append(entries, hs));
  RETURN_IF_ERROR(wal_->Sync());
  return StartRaft(nullptr, std::move(entries), hs);
}

Status Server::StartRaft(const wal::Recovered* recovered, std::vector<raft::Entry> bootstrap,
                         raft::HardState bootstrap_hs) {
  raft_storage_ = std::make_unique<raft::MemoryStorage>();
  Index snapshot_index;
  if (recovered != nullptr) {
    if (recovered->snapshot) {
      raft::Snapshot snap;
      snap.metadata = *recovered->snapshot;
      RETURN_IF_ERROR(raft_storage_->ApplySnapshot(std::move(snap)));
      snapshot_index = recovered->snapshot->index;
    }
    std::vector<raft::Entry> tail;
    for (const auto& e : recovered->entries) {
      if (e.index > snapshot_index) tail.push_back(e);
    }
    if (!tail.empty()) RETURN_IF_ERROR(raft_storage_->Append(tail));
    raft_storage_->SetHardState(recovered->hard_state);
  } else if (!bootstrap.empty()) {
    RETURN_IF_ERROR(raft_storage_->Append(bootstrap));
    raft_storage_->SetHardState(bootstrap_hs);
  }

  raft::Config rc;
  rc.id = member_id_;
  rc.election_ticks = config_.driver.election_ticks;
  rc.heartbeat_ticks = 1;
  rc.pre_vote = config_.pre_vote;
  rc.storage = raft_storage_.get();
  // Raft re-emits committed entries after the snapshot; the apply path skips those the backend
  // already holds but replays conf changes, which rebuilds Raft's configuration.
  rc.applied = snapshot_index;
  // Elections' randomized timeouts and the request ids' start: from config_.random when a
  // test or the simulator gives one (a seeded run then repeats itself), else from the time.
  const uint64_t entropy =
      config_.random != nullptr
          ? config_.random->Next()
          : static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  rc.random_seed = member_id_.value() ^ entropy;
  ASSIGN_OR_RETURN(auto node, raft::RawNode::Create(rc));

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
  deps.install_snapshot = [this](const raft::SnapshotMetadata& meta) {
    return InstallSnapshot(meta);
  };
  driver_ = std::make_unique<Driver>(deps, std::move(node), member_id_, config_.driver,
                                     [this](const Status& s) {
                                       failed_.store(true);
                                       if (on_fatal_) on_fatal_(s);
                                     });
  read_pool_ = std::make_unique<ReadPool>(
      static_cast<int>(std::max(2u, std::thread::hardware_concurrency())), kMaxQueuedReads);
  maintenance_ = std::make_unique<ReadPool>(1, kMaxQueuedMaintenance, kMaintenanceNice);
  return OkStatus();
}

Status Server::RestoreFromImage(Index index) {
  const std::string path = images_->PathFor(index);
  if (!config_.open_backend_image) {
    return Unimplemented("this member cannot open snapshot images");
  }
  if (!images_->Has(index)) {
    return Corruption("the write-ahead log records a snapshot at index " +
                      std::to_string(index.value()) + " but its image " + path +
                      " is missing; remove this member and add it back with an empty data dir");
  }
  auto image = config_.open_backend_image(path);
  if (!image.ok()) {
    return Status(image.status().code(),
                  "snapshot image " + path + ": " + image.status().message());
  }
  {
    ASSIGN_OR_RETURN(auto txn, (*image)->BeginRead());
    ASSIGN_OR_RETURN(Index at, mvcc::Store::ImageConsistentIndex(*txn));
    if (at < index) {
      return Corruption("snapshot image " + path + " holds index " + std::to_string(at.value()) +
                        ", older than its snapshot at " + std::to_string(index.value()));
    }
    Status restored = store_->Restore(*txn);
    if (!restored.ok()) {
      return Status(restored.code(), "snapshot image " + path + ": " + restored.message());
    }
  }
  return store_->Sync();
}

Status Server::InstallSnapshot(const raft::SnapshotMetadata& meta) {
  RETURN_IF_ERROR(RestoreFromImage(meta.index));
  RETURN_IF_ERROR(ReloadLeases());
  RETURN_IF_ERROR(auth_->Load(backend_.get()));  // the leader's users, roles and auth flag
  RETURN_IF_ERROR(membership_->Load(backend_.get()));
  if (alarms_) RETURN_IF_ERROR(alarms_->Load(backend_.get()));  // the leader's alarms now
  images_->RemoveUpTo(meta.index, /*include_outgoing=*/false);
  // etcd: "applied snapshot" / "restored mvcc store".
  log::Info("installed the leader's snapshot", {{"snapshot-index", meta.index.value()},
                                                {"revision", store_->CurrentRevision().value()}});
  return OkStatus();
}

Result<std::string> Server::WriteSnapshotImage(MemberId to) {
  std::string path = images_->OutgoingPath(to);
  RETURN_IF_ERROR(config_.fs->CreateDirs(images_->dir()));
  if (config_.fs->Exists(path)) RETURN_IF_ERROR(config_.fs->Remove(path));
  RETURN_IF_ERROR(backend_->CopyTo(path));
  return path;
}

Status Server::ReceiveSnapshot(raft::Message message, const std::string& path) {
  auto refuse = [&](Status why) {
    (void)config_.fs->Remove(path);
    return why;
  };
  if (!message.snapshot || message.snapshot->IsEmpty()) {
    return refuse(InvalidArgument("a snapshot stream without a snapshot"));
  }
  const Index index = message.snapshot->metadata.index;
  if (!config_.open_backend_image) {
    return refuse(Unimplemented("this member cannot open snapshot images"));
  }
  {
    // Check the image before Raft commits to it: it must open and cover the snapshot.
    auto image = config_.open_backend_image(path);
    if (!image.ok()) return refuse(image.status());
    auto txn = (*image)->BeginRead();
    if (!txn.ok()) return refuse(txn.status());
    auto at = mvcc::Store::ImageConsistentIndex(**txn);
    if (!at.ok()) return refuse(at.status());
    if (*at < index) {
      return refuse(Corruption("snapshot image holds index " + std::to_string(at->value()) +
                               ", older than its snapshot at " + std::to_string(index.value())));
    }
  }
  RETURN_IF_ERROR(images_->Keep(path, index));
  driver_->Step({std::move(message)});
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
