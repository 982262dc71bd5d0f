#include "server/server.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "base/coding.h"
#include "server/member_id.h"
#include "server/request_checks.h"

namespace dolmen::server {
namespace {

// WAL metadata: which member and cluster this log belongs to. Format version 1:
// [u8 version=1][fixed64 member_id][fixed64 cluster_id].
constexpr char kMetadataVersion = 1;

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

// Replay commits the backend in batches of this many entries.
constexpr size_t kReplayBatch = 1024;

}  // namespace

Server::Server(ServerConfig config) : config_(std::move(config)) {
  CHECK(config_.fs != nullptr && config_.open_backend) << "ServerConfig needs its adapters";
}

Server::~Server() { Stop(); }

Result<std::unique_ptr<Server>> Server::Open(ServerConfig config) {
  std::unique_ptr<Server> server(new Server(std::move(config)));
  RETURN_IF_ERROR(server->OpenStorage());
  return server;
}

Status Server::OpenStorage() {
  io::FileSystem* fs = config_.fs;
  const std::string member_dir = config_.data_dir + "/member";
  const std::string wal_dir = member_dir + "/wal";
  RETURN_IF_ERROR(fs->CreateDirs(member_dir));
  ASSIGN_OR_RETURN(lock_, fs->LockFile(member_dir + "/LOCK"));

  backend::Options backend_options;
  if (config_.quota_backend_bytes > 0) {
    // The map is address space, not disk: leave room above the quota for LMDB's own pages.
    backend_options.map_size_bytes =
        std::max<uint64_t>(backend_options.map_size_bytes, config_.quota_backend_bytes * 2);
  }
  ASSIGN_OR_RETURN(backend_, config_.open_backend(member_dir + "/db", backend_options));
  ASSIGN_OR_RETURN(store_, mvcc::Store::Open(backend_.get()));
  const Index applied = store_->ConsistentIndex();

  std::vector<raft::Entry> entries;
  raft::HardState hard_state;
  if (wal::Wal::Exists(fs, wal_dir)) {
    ASSIGN_OR_RETURN(auto opened, wal::Wal::Open(fs, wal_dir, wal::Options{}));
    wal_ = std::move(opened.first);
    wal::Recovered& recovered = opened.second;
    for (const auto& note : recovered.repairs) {
      std::fprintf(stderr, "dolmen: repaired write-ahead log: %s\n", note.c_str());
    }
    RETURN_IF_ERROR(DecodeMetadata(recovered.metadata, wal_dir, &member_id_, &cluster_id_));
    hard_state = recovered.hard_state;
    entries = std::move(recovered.entries);
  } else {
    if (applied.value() > 0) {
      return Corruption("data dir " + config_.data_dir + " has a backend applied to index " +
                        std::to_string(applied.value()) + " but no write-ahead log in " + wal_dir);
    }
    std::vector<std::string> peers = config_.peer_urls;
    if (peers.empty()) peers.push_back("http://localhost:2380");
    member_id_ = ComputeMemberId(peers, config_.cluster_token);
    cluster_id_ = ComputeClusterId({member_id_});
    ASSIGN_OR_RETURN(wal_, wal::Wal::Create(fs, wal_dir, EncodeMetadata(member_id_, cluster_id_),
                                            wal::Options{}));
  }

  Term last_term = hard_state.term;
  if (!entries.empty()) last_term = std::max(last_term, entries.back().term);
  last_index_ = applied;
  if (!entries.empty()) last_index_ = std::max(last_index_, entries.back().index);
  RETURN_IF_ERROR(Replay(std::move(entries)));

  // A single member elects itself in a new term at every start, as etcd's does (a fresh
  // member's first term is 2: term 1 belongs to its bootstrap).
  term_ = Term(std::max<uint64_t>(last_term.value(), 1) + 1);
  raft::HardState hs;
  hs.term = term_;
  hs.vote = member_id_;
  hs.commit = last_index_;
  RETURN_IF_ERROR(wal_->Append({}, hs));
  RETURN_IF_ERROR(wal_->Sync());

  applier_ = std::make_unique<Applier>(store_.get());
  driver_ = std::make_unique<Driver>(wal_.get(), store_.get(), applier_.get(), term_, last_index_,
                                     config_.driver, [this](const Status& s) {
                                       failed_.store(true);
                                       if (on_fatal_) on_fatal_(s);
                                     });
  return OkStatus();
}

Status Server::Replay(std::vector<raft::Entry> entries) {
  Applier applier(store_.get());
  Index applied = store_->ConsistentIndex();
  size_t in_batch = 0;
  for (const raft::Entry& e : entries) {
    if (e.index <= applied) continue;
    if (e.index.value() != applied.value() + 1) {
      return Corruption("write-ahead log skips from index " + std::to_string(applied.value()) +
                        " to " + std::to_string(e.index.value()));
    }
    if (e.type == raft::EntryType::kNormal && !e.data.empty()) {
      internal::InternalRequest request;
      if (!request.ParseFromString(e.data)) {
        return Corruption("log entry " + std::to_string(e.index.value()) + " does not decode");
      }
      // Errors decided at apply (a missing lease, say) were answered to the client the first
      // time; replay reaches the same decision and has nobody to tell.
      (void)applier.Apply(request);
    }
    applied = e.index;
    if (++in_batch == kReplayBatch) {
      RETURN_IF_ERROR(store_->Commit(applied));
      in_batch = 0;
    }
  }
  if (in_batch > 0) RETURN_IF_ERROR(store_->Commit(applied));
  return OkStatus();
}

void Server::Start() { driver_->Start(); }

void Server::Stop() {
  if (driver_) driver_->Stop();
  if (store_ && !failed_.load()) {
    // A clean stop leaves the backend durable so the next start replays nothing.
    Status s = store_->Sync();
    if (!s.ok()) std::fprintf(stderr, "dolmen: backend sync at stop: %s\n", s.ToString().c_str());
  }
}

Term Server::term() const { return term_; }
Index Server::applied_index() const { return driver_->applied_index(); }

void Server::FillHeader(etcdserverpb::ResponseHeader* h) const {
  h->set_cluster_id(cluster_id_.value());
  h->set_member_id(member_id_.value());
  h->set_raft_term(term_.value());
}

void Server::Propose(internal::InternalRequest request, Driver::Done on_applied) {
  request.set_id(next_request_id_.fetch_add(1));
  std::string data = request.SerializeAsString();
  if (data.size() > config_.max_request_bytes) {
    on_applied(ApplyResult{Status(Code::kRequestTooLarge, "request is too large"), {}});
    return;
  }
  driver_->Propose(std::move(data), std::move(on_applied));
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

void Server::Range(const etcdserverpb::RangeRequest& r,
                   Callback<etcdserverpb::RangeResponse> done) {
  if (Status s = CheckRange(r); !s.ok()) return done(s);
  // One member: everything acknowledged is applied, so a read of the store is linearizable
  // as it stands; serializable reads are the same read.
  auto rr = store_->Range(ToRangeOptions(r));
  if (!rr.ok()) return done(rr.status());
  etcdserverpb::RangeResponse response;
  ToRangeResponse(*rr, r.keys_only(), &response);
  FillHeader(response.mutable_header());
  done(std::move(response));
}

void Server::Put(const etcdserverpb::PutRequest& r, Callback<etcdserverpb::PutResponse> done) {
  if (Status s = CheckPut(r); !s.ok()) return done(s);
  internal::InternalRequest request;
  *request.mutable_put() = r;
  ProposeAndReply(std::move(request), std::move(done));
}

void Server::DeleteRange(const etcdserverpb::DeleteRangeRequest& r,
                         Callback<etcdserverpb::DeleteRangeResponse> done) {
  if (Status s = CheckDeleteRange(r); !s.ok()) return done(s);
  internal::InternalRequest request;
  *request.mutable_delete_range() = r;
  ProposeAndReply(std::move(request), std::move(done));
}

void Server::Txn(const etcdserverpb::TxnRequest& r, Callback<etcdserverpb::TxnResponse> done) {
  if (Status s = CheckTxn(r, config_.max_txn_ops); !s.ok()) return done(s);
  if (IsReadOnly(r)) {
    // Reads need no log entry; running on the driver thread orders them after every write
    // acknowledged before they arrived and gives all their ranges one consistent view.
    auto shared = std::make_shared<Callback<etcdserverpb::TxnResponse>>(std::move(done));
    bool queued = driver_->RunInOrder([this, r, shared] {
      auto result = applier_->Txn(r);
      if (result.ok()) FillHeader(result->mutable_header());
      (*shared)(std::move(result));
    });
    if (!queued) (*shared)(Status(Code::kStopped, "server stopped"));
    return;
  }
  internal::InternalRequest request;
  *request.mutable_txn() = r;
  ProposeAndReply(std::move(request), std::move(done));
}

void Server::Compact(const etcdserverpb::CompactionRequest& r,
                     Callback<etcdserverpb::CompactionResponse> done) {
  internal::InternalRequest request;
  *request.mutable_compaction() = r;
  ProposeAndReply(std::move(request), std::move(done));
}

}  // namespace dolmen::server
