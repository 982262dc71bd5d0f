// Writes the seed inputs of every fuzzer (scripts/fuzz.sh runs it before fuzzing): valid
// examples made with our own encoders, so that mutations start past the magic numbers, length
// prefixes and checksums that random bytes almost never get right.
//   fuzz_seeds DIR   writes DIR/<fuzzer>/<seed> for each fuzzer
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "auth/auth_store.h"
#include "backend/memory_backend.h"
#include "base/clock.h"
#include "dolmen/internal.pb.h"
#include "dolmen/peer.pb.h"
#include "lease/lessor.h"
#include "mvcc/store.h"
#include "raft/message.h"
#include "server/alarm_store.h"
#include "server/applier.h"
#include "server/membership.h"
#include "server/quota.h"
#include "tests/fuzz/apply_input.h"
#include "tests/fuzz/image_input.h"
#include "transport/codec.h"
#include "transport/stream_frame.h"
#include "wal/decode_fuzz.h"

namespace dolmen::fuzz {
namespace {

bool Write(const std::filesystem::path& dir, const std::string& name, const std::string& bytes) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out << bytes;
  out.close();
  if (!out) std::cerr << "fuzz_seeds: cannot write " << (dir / name) << "\n";
  return static_cast<bool>(out);
}

// Frames of envelopes from member 2 to member 1 of cluster 7, as a stream sender writes them
// after its magic.
std::string PeerStream() {
  std::string out;
  for (raft::MessageType type : {raft::MessageType::kApp, raft::MessageType::kHeartbeat,
                                 raft::MessageType::kVote, raft::MessageType::kAppResp}) {
    peer::Envelope envelope;
    envelope.mutable_header()->set_cluster_id(7);
    envelope.mutable_header()->set_from(2);
    envelope.mutable_header()->set_to(1);
    raft::Message m;
    m.type = type;
    m.from = MemberId(2);
    m.to = MemberId(1);
    m.term = Term(3);
    m.log_term = Term(2);
    m.index = Index(10);
    m.commit = Index(9);
    if (type == raft::MessageType::kApp) {
      m.entries.push_back({Term(3), Index(11), raft::EntryType::kNormal, "put k v"});
      m.entries.push_back({Term(3), Index(12), raft::EntryType::kConfChange, "conf"});
    }
    transport::EncodeMessage(m, envelope.add_messages());
    transport::AppendFrame(envelope, &out);
  }
  return out;
}

std::string ApplySequence() {
  std::string out;
  uint64_t id = 1;
  auto add = [&](auto fill) {
    internal::InternalRequest r;
    r.set_id(id++);
    fill(&r);
    AppendRequest(r, &out);
  };
  add([](internal::InternalRequest* r) {
    r->mutable_lease_grant()->set_id(5);
    r->mutable_lease_grant()->set_ttl(10);
  });
  add([](internal::InternalRequest* r) {
    r->mutable_put()->set_key("a");
    r->mutable_put()->set_value("1");
    r->mutable_put()->set_lease(5);
  });
  add([](internal::InternalRequest* r) {
    r->mutable_put()->set_key("b");
    r->mutable_put()->set_value("2");
    r->mutable_put()->set_prev_kv(true);
  });
  add([](internal::InternalRequest* r) {
    auto* txn = r->mutable_txn();
    auto* cmp = txn->add_compare();
    cmp->set_key("a");
    cmp->set_target(etcdserverpb::Compare::VERSION);
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_version(1);
    auto* put = txn->add_success()->mutable_request_put();
    put->set_key("c");
    put->set_value("3");
    auto* range = txn->add_success()->mutable_request_range();
    range->set_key("a");
    range->set_range_end("z");
    auto* del = txn->add_failure()->mutable_request_delete_range();
    del->set_key("a");
    del->set_prev_kv(true);
  });
  add([](internal::InternalRequest* r) {
    r->mutable_delete_range()->set_key("b");
    r->mutable_delete_range()->set_range_end("c");
  });
  add([](internal::InternalRequest* r) { r->mutable_compaction()->set_revision(3); });
  add([](internal::InternalRequest* r) { r->mutable_lease_revoke()->set_id(5); });
  add([](internal::InternalRequest* r) {
    r->mutable_alarm()->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
    r->mutable_alarm()->set_memberid(1);
    r->mutable_alarm()->set_alarm(etcdserverpb::NOSPACE);
  });
  return out;
}

// The records of a backend the apply sequence filled, plus a member, a role and a user: every
// bucket a snapshot image carries, with records our own code wrote. An error names the step that
// failed.
Result<std::string> SnapshotImage() {
  std::unique_ptr<backend::Backend> backend = backend::NewMemoryBackend();
  // The store keeps its own write txn open between applies: the other records go in first.
  {
    ASSIGN_OR_RETURN(auto txn, backend->BeginWrite());
    server::Membership members;
    internal::Member member;
    member.set_id(1);
    member.set_name("m1");
    member.add_peer_urls("http://127.0.0.1:2380");
    RETURN_IF_ERROR(members.Add(member, txn.get()));
    auth::AuthStore auth;
    RETURN_IF_ERROR(auth.RoleAdd("r", txn.get()));
    etcdserverpb::AuthUserAddRequest user;
    user.set_name("u");
    user.mutable_options()->set_no_password(true);
    RETURN_IF_ERROR(auth.UserAdd(user, txn.get()));
    RETURN_IF_ERROR(auth.UserGrantRole("u", "r", txn.get()));
    RETURN_IF_ERROR(txn->Commit());
  }
  ASSIGN_OR_RETURN(auto store, mvcc::Store::Open(backend.get()));
  lease::Lessor lessor{lease::LessorOptions{}};
  ManualClock clock;
  server::AlarmStore alarms;
  RETURN_IF_ERROR(alarms.Load(backend.get()));
  server::Quota quota(0, [&backend] { return backend->SizeBytes(); });
  server::Applier applier(store.get());
  applier.set_leases(&lessor, &clock);
  applier.set_alarms(&alarms, &quota, [] {});
  // A lease that stays, granted first: the sequence revokes its own and ends with NOSPACE.
  internal::InternalRequest grant;
  grant.mutable_lease_grant()->set_id(6);
  grant.mutable_lease_grant()->set_ttl(60);
  applier.Apply(grant);
  ForEachRequest(ApplySequence(), [&](std::string_view bytes) {
    internal::InternalRequest request;
    if (request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      applier.Apply(request);
    }
  });
  if (applier.storage_failed()) return Internal("the apply sequence failed in the store");
  RETURN_IF_ERROR(store->Commit(Index(8)));  // as if applied from a log at index 8
  std::string out;
  ASSIGN_OR_RETURN(auto txn, backend->BeginRead());
  ASSIGN_OR_RETURN(std::vector<std::string> buckets, txn->Buckets());
  for (const std::string& bucket : buckets) {
    RETURN_IF_ERROR(txn->Scan(bucket, "", "", [&](std::string_view key, std::string_view value) {
      AppendRecord(bucket, key, value, &out);
      return true;
    }));
  }
  return out;
}

}  // namespace
}  // namespace dolmen::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_seeds DIR\n";
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  using namespace dolmen;
  bool ok = fuzz::Write(dir / "wal_segment_fuzzer", "example", wal::ExampleSegment()) &&
            fuzz::Write(dir / "peer_stream_fuzzer", "example", fuzz::PeerStream()) &&
            fuzz::Write(dir / "apply_fuzzer", "example", fuzz::ApplySequence());
  const Result<std::string> image = fuzz::SnapshotImage();
  if (!image.ok()) {
    std::cerr << "fuzz_seeds: the snapshot image seed: " << image.status().ToString() << "\n";
  }
  ok = ok && image.ok() && fuzz::Write(dir / "snapshot_image_fuzzer", "example", *image);
  return ok ? 0 : 1;
}
