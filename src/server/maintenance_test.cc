// The member's maintenance side on real files and LMDB: alarms and the quota, the backend hash,
// defragmentation and snapshots (docs/maintenance.md).
#include "server/maintenance.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "backend/lmdb/lmdb_backend.h"
#include "io/fault_injection_file_system.h"
#include "io/posix/posix_file_system.h"
#include "server/server.h"
#include "server/test_support.h"

namespace dolmen::server {
namespace {

using fakes::Compact;
using fakes::Delete;
using fakes::Get;
using fakes::Put;
using fakes::TempDir;
using fakes::Wait;

class MaintenanceTest : public ::testing::Test {
 protected:
  std::unique_ptr<Server> Open(const std::string& dir, uint64_t quota_bytes = 0,
                               io::FileSystem* fs = io::PosixFileSystem(),
                               DiskGuardOptions disk_guard = {},
                               const std::function<void(ServerConfig*)>& tweak = nullptr) {
    ServerConfig c;
    c.name = "t";
    c.data_dir = dir;
    c.peer_urls = {"http://localhost:2380"};
    c.fs = fs;
    c.quota_backend_bytes = quota_bytes;
    c.disk_guard = disk_guard;
    c.driver.checkpoint_entries = 1u << 30;
    c.driver.checkpoint_interval = std::chrono::hours(1);
    // The backend's sizes (the quota's dbSize and its peak) follow its commits; these tests
    // count them write by write, so every applied batch is committed at once.
    c.driver.backend_commit_interval = std::chrono::milliseconds(0);
    c.open_backend = [](const std::string& path, const backend::Options& options) {
      return backend::OpenLmdb(path, options);
    };
    if (tweak) tweak(&c);
    return fakes::OpenAndStart(std::move(c));
  }

  static Result<etcdserverpb::AlarmResponse> Alarm(
      Server* s, etcdserverpb::AlarmRequest::AlarmAction action, uint64_t member = 0,
      etcdserverpb::AlarmType type = etcdserverpb::NONE) {
    etcdserverpb::AlarmRequest r;
    r.set_action(action);
    r.set_memberid(member);
    r.set_alarm(type);
    return Wait<etcdserverpb::AlarmResponse>([&](auto cb) { s->Alarm(r, cb); });
  }
  static Result<BackendHash> Hash(Server* s) {
    return Wait<BackendHash>([&](auto cb) { s->Hash(cb); });
  }
  static Status Defragment(Server* s) {
    std::promise<Status> p;
    auto f = p.get_future();
    s->Defragment([&p](Status st) { p.set_value(st); });
    return f.get();
  }

  TempDir dir_;
};

TEST_F(MaintenanceTest, NoSpaceAlarmCapsWritesUntilDisarmedAndSurvivesRestart) {
  auto s = Open(dir_.path());
  ASSERT_TRUE(Put(s.get(), "a", "1").ok());
  const uint64_t me = s->member_id().value();
  auto raised = Alarm(s.get(), etcdserverpb::AlarmRequest::ACTIVATE, me, etcdserverpb::NOSPACE);
  ASSERT_TRUE(raised.ok()) << raised.status().ToString();
  ASSERT_EQ(raised->alarms_size(), 1);
  EXPECT_EQ(raised->alarms(0).memberid(), me);
  EXPECT_EQ(raised->alarms(0).alarm(), etcdserverpb::NOSPACE);
  EXPECT_EQ(raised->header().member_id(), me);

  // Writes that add data are refused; reads, deletes and compaction still work.
  EXPECT_EQ(Put(s.get(), "b", "2").status().code(), Code::kNoSpace);
  etcdserverpb::TxnRequest with_put;
  with_put.add_success()->mutable_request_put()->set_key("c");
  EXPECT_EQ(Wait<etcdserverpb::TxnResponse>([&](auto cb) { s->Txn(with_put, cb); }).status().code(),
            Code::kNoSpace);
  etcdserverpb::LeaseGrantRequest grant;
  grant.set_ttl(60);
  EXPECT_EQ(Wait<etcdserverpb::LeaseGrantResponse>([&](auto cb) { s->LeaseGrant(grant, cb); })
                .status()
                .code(),
            Code::kNoSpace);
  etcdserverpb::TxnRequest with_delete;
  with_delete.add_success()->mutable_request_delete_range()->set_key("zzz");
  EXPECT_TRUE(Wait<etcdserverpb::TxnResponse>([&](auto cb) { s->Txn(with_delete, cb); }).ok());
  auto got = Get(s.get(), "a");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->kvs_size(), 1);
  EXPECT_TRUE(Delete(s.get(), "a").ok());
  EXPECT_TRUE(Compact(s.get(), s->current_revision().value()).ok());
  ASSERT_EQ(s->ActiveAlarms().size(), 1u);

  // Persisted: a restarted member is still capped.
  s.reset();
  s = Open(dir_.path());
  ASSERT_TRUE(s);
  auto listed = Alarm(s.get(), etcdserverpb::AlarmRequest::GET);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->alarms_size(), 1);
  EXPECT_EQ(listed->alarms(0).memberid(), me);
  EXPECT_EQ(Put(s.get(), "b", "2").status().code(), Code::kNoSpace);

  auto disarmed = Alarm(s.get(), etcdserverpb::AlarmRequest::DEACTIVATE, me, etcdserverpb::NOSPACE);
  ASSERT_TRUE(disarmed.ok());
  ASSERT_EQ(disarmed->alarms_size(), 1);
  auto again = Alarm(s.get(), etcdserverpb::AlarmRequest::DEACTIVATE, me, etcdserverpb::NOSPACE);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->alarms_size(), 0);  // nothing left to disarm
  EXPECT_TRUE(Put(s.get(), "b", "2").ok());
  EXPECT_TRUE(s->ActiveAlarms().empty());
}

// etcd's corrupt applier (docs/corruption.md): with a CORRUPT alarm active, requests that change
// the store or leases fail with "corrupt cluster" and change nothing; reads and alarms work; the
// alarm survives a restart and disarming lifts it.
TEST_F(MaintenanceTest, CorruptAlarmRefusesWritesUntilDisarmedAndSurvivesRestart) {
  auto s = Open(dir_.path());
  ASSERT_TRUE(Put(s.get(), "a", "1").ok());
  const uint64_t named = 0x1234;  // the alarm names the corrupt member, any member
  auto raised = Alarm(s.get(), etcdserverpb::AlarmRequest::ACTIVATE, named, etcdserverpb::CORRUPT);
  ASSERT_TRUE(raised.ok()) << raised.status().ToString();
  const Revision before = s->current_revision();

  auto expect_corrupt = [](const Status& st, const char* what) {
    EXPECT_EQ(st.code(), Code::kCorruption) << what << ": " << st.ToString();
    EXPECT_EQ(st.message(), "corrupt cluster") << what;
  };
  expect_corrupt(Put(s.get(), "b", "2").status(), "put");
  expect_corrupt(Delete(s.get(), "a").status(), "delete");
  expect_corrupt(Compact(s.get(), before.value()).status(), "compact");
  etcdserverpb::TxnRequest with_delete;
  with_delete.add_success()->mutable_request_delete_range()->set_key("a");
  expect_corrupt(
      Wait<etcdserverpb::TxnResponse>([&](auto cb) { s->Txn(with_delete, cb); }).status(),
      "txn with a delete");
  etcdserverpb::LeaseGrantRequest grant;
  grant.set_ttl(60);
  expect_corrupt(
      Wait<etcdserverpb::LeaseGrantResponse>([&](auto cb) { s->LeaseGrant(grant, cb); }).status(),
      "lease grant");
  EXPECT_EQ(s->current_revision(), before);  // nothing changed

  // Reads (never logged) are served, read-only txns too.
  auto got = Get(s.get(), "a");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->kvs_size(), 1);
  etcdserverpb::TxnRequest read_only;
  read_only.add_success()->mutable_request_range()->set_key("a");
  EXPECT_TRUE(Wait<etcdserverpb::TxnResponse>([&](auto cb) { s->Txn(read_only, cb); }).ok());

  s.reset();
  s = Open(dir_.path());
  ASSERT_TRUE(s);
  auto listed = Alarm(s.get(), etcdserverpb::AlarmRequest::GET);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->alarms_size(), 1);
  EXPECT_EQ(listed->alarms(0).memberid(), named);
  EXPECT_EQ(listed->alarms(0).alarm(), etcdserverpb::CORRUPT);
  expect_corrupt(Put(s.get(), "b", "2").status(), "put after restart");

  ASSERT_TRUE(
      Alarm(s.get(), etcdserverpb::AlarmRequest::DEACTIVATE, named, etcdserverpb::CORRUPT).ok());
  EXPECT_TRUE(Put(s.get(), "b", "2").ok());
  EXPECT_TRUE(s->ActiveAlarms().empty());
}

// The hash a peer asks for: the store's, or (with the compaction hash check on) the one
// recorded when the member compacted at that revision, which the store can no longer compute.
TEST_F(MaintenanceTest, ServeHashKvAnswersRecordedCompactionHashes) {
  auto s = Open(dir_.path(), 0, io::PosixFileSystem(), {},
                [](ServerConfig* c) { c->compact_hash_check_enabled = true; });
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Put(s.get(), "k" + std::to_string(i), "v").ok());
  const Revision at = s->current_revision();
  auto before = s->ServeHashKv(at);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  ASSERT_TRUE(Put(s.get(), "later", "v").ok());
  ASSERT_TRUE(Compact(s.get(), at.value()).ok());
  // The store itself refuses a compacted revision...
  EXPECT_EQ(s->HashKv(at).status().code(), Code::kCompacted);
  // ...the recorded hash answers it: the same hash as before the compaction.
  auto recorded = s->ServeHashKv(at);
  ASSERT_TRUE(recorded.ok()) << recorded.status().ToString();
  EXPECT_EQ(recorded->hash, before->hash);
  EXPECT_EQ(recorded->hash_revision, at);
  EXPECT_EQ(recorded->compact_revision, Revision(0));
  EXPECT_EQ(recorded->revision, s->current_revision());
  // A revision neither recorded nor hashable stays an error; a future one too.
  EXPECT_EQ(s->ServeHashKv(Revision(at.value() - 1)).status().code(), Code::kCompacted);
  EXPECT_EQ(s->ServeHashKv(Revision(at.value() + 100)).status().code(), Code::kFutureRevision);
}

// The initial check as the member runs it: a member whose data dir is new is not checked; a
// restarted one asks its peers (here none: a single member passes).
TEST_F(MaintenanceTest, InitialCorruptCheckPassesForAMemberAlone) {
  auto tweak = [](ServerConfig* c) { c->initial_corrupt_check = true; };
  auto s = Open(dir_.path(), 0, io::PosixFileSystem(), {}, tweak);
  EXPECT_TRUE(s->CheckInitialHashKv().ok());  // new data dir
  ASSERT_TRUE(Put(s.get(), "a", "1").ok());
  s.reset();
  s = Open(dir_.path(), 0, io::PosixFileSystem(), {}, tweak);
  ASSERT_TRUE(s);
  // Restarted without a hasher: a wiring error, said so.
  EXPECT_EQ(s->CheckInitialHashKv().code(), Code::kInternal);
  // With one: no peer to ask, so no mismatch (the multi-member case is
  // tests/cluster/corruption_test.py).
  struct NoPeers : PeerHasher {
    Result<KvHash> PeerHashKv(MemberId, Revision, std::chrono::steady_clock::time_point) override {
      ++asked;
      return Status(Code::kUnavailable, "no peers here");
    }
    int asked = 0;
  } hasher;
  s->SetPeerHasher(&hasher);
  EXPECT_TRUE(s->CheckInitialHashKv().ok());
  EXPECT_EQ(hasher.asked, 0);
}

TEST_F(MaintenanceTest, ExceedingTheQuotaRaisesTheAlarmBeforeAndAtApply) {
  // A quota the fresh backend already nearly fills.
  auto s = Open(dir_.path(), /*quota_bytes=*/1);
  const uint64_t me = s->member_id().value();
  // Before proposing (the API's check): refused, and the alarm is proposed first, so a GET
  // proposed afterwards sees it.
  EXPECT_EQ(s->CheckQuota(10).code(), Code::kNoSpace);
  EXPECT_TRUE(s->CheckQuota(0).ok());  // costs nothing: always fits
  auto listed = Alarm(s.get(), etcdserverpb::AlarmRequest::GET);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->alarms_size(), 1);
  EXPECT_EQ(listed->alarms(0).memberid(), me);
  ASSERT_TRUE(
      Alarm(s.get(), etcdserverpb::AlarmRequest::DEACTIVATE, me, etcdserverpb::NOSPACE).ok());

  // At apply (a proposal that skipped the API check): applied, answered "space exceeded",
  // and the alarm raised.
  Revision before = s->current_revision();
  EXPECT_EQ(Put(s.get(), "k", "v").status().code(), Code::kNoSpace);
  EXPECT_EQ(s->current_revision().value(), before.value() + 1);
  auto got = Get(s.get(), "k");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->kvs_size(), 1);
  listed = Alarm(s.get(), etcdserverpb::AlarmRequest::GET, 0, etcdserverpb::NOSPACE);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->alarms_size(), 1);
}

// A put as the KV service makes it: the quota checked before proposing (which raises the
// alarm if it does not fit), then applied.
Status ApiPut(Server* s, const std::string& key, const std::string& value) {
  etcdserverpb::PutRequest r;
  r.set_key(key);
  r.set_value(value);
  RETURN_IF_ERROR(s->CheckQuota(QuotaCost(r)));
  return Wait<etcdserverpb::PutResponse>([&](auto cb) { s->Put(r, cb); }).status();
}

// A disk that fills up (issue 13): below the reserve of free space, requests that add data are
// refused with etcd's "database space exceeded" and the NOSPACE alarm is raised, once; reads,
// deletes and compaction go on; nothing acknowledged is lost; writes resume once space is freed
// and the alarm disarmed. The free space comes from the fault-injecting file system.
TEST_F(MaintenanceTest, LowDiskSpaceRefusesWritesUntilFreedAndDisarmed) {
  io::FaultInjectionFileSystem disk(io::PosixFileSystem());
  DiskGuardOptions guard;
  guard.reserve_bytes = 1 << 20;
  guard.resample_interval = std::chrono::milliseconds(0);  // every request samples
  auto s = Open(dir_.path(), /*quota_bytes=*/0, &disk, guard);
  const uint64_t me = s->member_id().value();
  disk.SetAvailableBytes(uint64_t{2} << 20);
  ASSERT_TRUE(ApiPut(s.get(), "a", "1").ok());
  ASSERT_TRUE(ApiPut(s.get(), "b", "2").ok());

  disk.SetAvailableBytes((uint64_t{1} << 20) - 1);
  Status refused = ApiPut(s.get(), "c", "3");
  EXPECT_EQ(refused.code(), Code::kNoSpace);
  EXPECT_EQ(refused.message(), "mvcc: database space exceeded");
  auto listed = Alarm(s.get(), etcdserverpb::AlarmRequest::GET);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->alarms_size(), 1);
  EXPECT_EQ(listed->alarms(0).memberid(), me);
  EXPECT_EQ(listed->alarms(0).alarm(), etcdserverpb::NOSPACE);
  // Past the API's check (a request another member admitted): capped at apply.
  EXPECT_EQ(Put(s.get(), "c", "3").status().code(), Code::kNoSpace);
  EXPECT_FALSE(s->failed());

  // Reads, deletes and compaction work; what was acknowledged is there.
  auto got = Get(s.get(), "a");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->kvs_size(), 1);
  EXPECT_EQ(got->kvs(0).value(), "1");
  EXPECT_EQ(Get(s.get(), "c")->kvs_size(), 0);
  ASSERT_TRUE(Delete(s.get(), "b").ok());
  ASSERT_TRUE(Compact(s.get(), s->current_revision().value()).ok());

  // Space is freed, but the alarm holds writes until it is disarmed (as etcd's).
  disk.SetAvailableBytes(uint64_t{4} << 20);
  EXPECT_EQ(ApiPut(s.get(), "c", "3").code(), Code::kNoSpace);
  ASSERT_TRUE(
      Alarm(s.get(), etcdserverpb::AlarmRequest::DEACTIVATE, me, etcdserverpb::NOSPACE).ok());
  ASSERT_TRUE(ApiPut(s.get(), "c", "3").ok());
  EXPECT_TRUE(s->ActiveAlarms().empty());

  // Disarmed while still short of space: the next write raises the alarm again.
  disk.SetAvailableBytes(uint64_t{0});
  EXPECT_EQ(ApiPut(s.get(), "d", "4").code(), Code::kNoSpace);
  listed = Alarm(s.get(), etcdserverpb::AlarmRequest::GET);  // after the alarm's proposal
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->alarms_size(), 1);
}

// A small quota, as etcd 3.4 behaves under it (measured with etcdctl: under 53248 bytes etcd
// takes 64 to 124 puts of 100 bytes, raises NOSPACE, is still full after deleting, compacting
// and disarming, and takes as many puts again after compacting, defragmenting and disarming).
// The quota counts the pages the data uses, not those LMDB's copy-on-write leaves free, which
// alone filled this quota on a fresh member.
TEST_F(MaintenanceTest, SmallQuotaFillsAndRecoversAsInEtcd) {
  constexpr uint64_t kQuota = 53248;
  constexpr int kMaxPuts = 1000;
  auto s = Open(dir_.path(), kQuota);
  const uint64_t me = s->member_id().value();
  EXPECT_LT(s->backend_size_bytes(), kQuota / 2);
  const std::string value(100, 'v');
  auto fill = [&](const std::string& prefix) {
    for (int i = 0; i < kMaxPuts; ++i) {
      Status put = ApiPut(s.get(), prefix + std::to_string(i), value);
      if (!put.ok()) {
        EXPECT_EQ(put.code(), Code::kNoSpace) << put.ToString();
        return i;
      }
    }
    return kMaxPuts;
  };
  auto no_space_alarms = [&] {
    auto listed = Alarm(s.get(), etcdserverpb::AlarmRequest::GET, 0, etcdserverpb::NOSPACE);
    EXPECT_TRUE(listed.ok()) << listed.status().ToString();
    return listed.ok() ? listed->alarms_size() : -1;
  };
  auto disarm = [&] {
    auto disarmed =
        Alarm(s.get(), etcdserverpb::AlarmRequest::DEACTIVATE, me, etcdserverpb::NOSPACE);
    ASSERT_TRUE(disarmed.ok()) << disarmed.status().ToString();
    EXPECT_EQ(disarmed->alarms_size(), 1);
  };

  const int first = fill("a/");
  EXPECT_GE(first, 50);
  EXPECT_LT(first, kMaxPuts);
  EXPECT_EQ(no_space_alarms(), 1);

  // Deleting and compacting frees pages in use but not the quota's size (etcd's dbSize keeps
  // its file's free pages until a defragmentation): once disarmed, the next put is refused.
  ASSERT_TRUE(Delete(s.get(), "a/", "a0").ok());
  ASSERT_TRUE(Compact(s.get(), s->current_revision().value()).ok());
  EXPECT_LT(s->backend_size_in_use_bytes(), s->backend_size_bytes());
  disarm();
  EXPECT_EQ(ApiPut(s.get(), "a/again", value).code(), Code::kNoSpace);
  EXPECT_EQ(no_space_alarms(), 1);

  // Defragmenting gives the room back; writes stay capped until the alarm is disarmed.
  ASSERT_TRUE(Defragment(s.get()).ok());
  EXPECT_EQ(s->backend_size_bytes(), s->backend_size_in_use_bytes());
  EXPECT_LT(s->backend_size_bytes(), kQuota / 2);
  EXPECT_EQ(ApiPut(s.get(), "a/again", value).code(), Code::kNoSpace);
  disarm();
  const int second = fill("b/");
  EXPECT_GE(second, first / 2);
  EXPECT_LT(second, kMaxPuts);
  EXPECT_EQ(no_space_alarms(), 1);
}

TEST(QuotaTest, CostsFollowEtcd) {
  etcdserverpb::PutRequest put;
  put.set_key("key");
  put.set_value("value");
  EXPECT_EQ(QuotaCost(put), 256u + 3 + 5);
  etcdserverpb::TxnRequest txn;
  *txn.add_success()->mutable_request_put() = put;
  *txn.add_success()->mutable_request_put() = put;
  *txn.add_failure()->mutable_request_put() = put;
  txn.add_failure()->mutable_request_range()->set_key("x");
  EXPECT_EQ(QuotaCost(txn), 2 * (256u + 8));
  etcdserverpb::TxnRequest reads;
  reads.add_success()->mutable_request_range()->set_key("x");
  EXPECT_EQ(QuotaCost(reads), 0u);
  EXPECT_EQ(QuotaCost(etcdserverpb::LeaseGrantRequest()), 64u);
  uint64_t size = 1000;
  Quota quota(2000, [&] { return size; });
  EXPECT_TRUE(quota.Available(999));
  EXPECT_FALSE(quota.Available(1000));  // strictly below, as etcd
  EXPECT_TRUE(quota.Available(0));
  EXPECT_EQ(Quota(0, [] { return 0; }).quota_bytes(), 2ull << 30);
}

TEST_F(MaintenanceTest, HashIsEqualForEqualDataWhateverTheAppliedIndex) {
  TempDir other_dir;
  auto a = Open(dir_.path());
  auto b = Open(other_dir.path());
  for (Server* s : {a.get(), b.get()}) {
    ASSERT_TRUE(Put(s, "x", "1").ok());
    ASSERT_TRUE(Put(s, "y", "2").ok());
  }
  // Entries that change nothing but the applied index, on one member only.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Compact(b.get(), 100).status().code(), Code::kFutureRevision);
  }
  auto ha = Hash(a.get());
  auto hb = Hash(b.get());
  ASSERT_TRUE(ha.ok() && hb.ok());
  EXPECT_EQ(ha->hash, hb->hash);
  EXPECT_EQ(ha->revision.value(), 3);
  ASSERT_TRUE(Put(b.get(), "y", "3").ok());
  auto changed = Hash(b.get());
  ASSERT_TRUE(changed.ok());
  EXPECT_NE(changed->hash, ha->hash);
  EXPECT_EQ(changed->revision.value(), 4);
}

TEST_F(MaintenanceTest, DefragmentShrinksTheBackendAndKeepsEveryKeyWhileReadersRead) {
  auto s = Open(dir_.path());
  const std::string big(8000, 'v');
  for (int i = 0; i < 600; ++i) ASSERT_TRUE(Put(s.get(), "del/" + std::to_string(i), big).ok());
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(Put(s.get(), "keep/" + std::to_string(i), "k" + std::to_string(i)).ok());
  ASSERT_TRUE(Delete(s.get(), "del/", "del0").ok());
  ASSERT_TRUE(Compact(s.get(), s->current_revision().value()).ok());
  auto kv_before = s->HashKv(Revision(0));
  auto hash_before = Hash(s.get());
  ASSERT_TRUE(kv_before.ok() && hash_before.ok());
  uint64_t size_before = s->backend_size_bytes();
  ASSERT_GT(size_before, 4u << 20);

  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0}, reads{0};
  std::thread reader([&] {
    for (int round = 0; round < 100000 && !stop.load(); ++round) {
      int i = round % 50;
      auto got = Get(s.get(), "keep/" + std::to_string(i));
      if (!got.ok() || got->kvs_size() != 1 || got->kvs(0).value() != "k" + std::to_string(i)) {
        ++wrong;
      }
      ++reads;
    }
  });
  Status st = Defragment(s.get());
  ASSERT_TRUE(st.ok()) << st.ToString();
  st = Defragment(s.get());
  ASSERT_TRUE(st.ok()) << st.ToString();
  stop = true;
  reader.join();
  EXPECT_EQ(wrong.load(), 0) << "of " << reads.load();

  uint64_t size_after = s->backend_size_bytes();
  EXPECT_LT(size_after * 4, size_before) << size_after << " vs " << size_before;
  EXPECT_LE(size_after, s->backend_size_in_use_bytes() + 4 * 4096);
  auto kv_after = s->HashKv(Revision(0));
  auto hash_after = Hash(s.get());
  ASSERT_TRUE(kv_after.ok() && hash_after.ok());
  EXPECT_EQ(kv_after->hash, kv_before->hash);
  EXPECT_EQ(hash_after->hash, hash_before->hash);
  auto all = Get(s.get(), "keep/", "keep0");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->kvs_size(), 50);
  ASSERT_TRUE(Put(s.get(), "after", "defrag").ok());

  // And everything survives a restart.
  s.reset();
  s = Open(dir_.path());
  ASSERT_TRUE(s);
  auto after = Get(s.get(), "after");
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->kvs_size(), 1);
  EXPECT_EQ(Get(s.get(), "keep/", "keep0")->kvs_size(), 50);
}

std::string Sha256Of(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  CHECK(EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) == 1);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

bool HasSnapshotFiles(const std::string& member_dir) {
  for (const auto& e : std::filesystem::directory_iterator(member_dir)) {
    if (e.path().filename().string().starts_with(kSnapshotTempPrefix)) return true;
  }
  return false;
}

TEST_F(MaintenanceTest, SnapshotIsAnLmdbImageFollowedByItsSha256) {
  auto s = Open(dir_.path());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(Put(s.get(), "k" + std::to_string(i), "v").ok());
  std::string stream;
  {
    auto snapshot = s->OpenSnapshot();
    ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
    EXPECT_TRUE(HasSnapshotFiles(dir_.path() + "/member"));
    uint64_t total = (*snapshot)->size_bytes();
    ASSERT_GT(total, 0u);
    for (int chunks = 0; chunks < 100000; ++chunks) {
      auto chunk = (*snapshot)->Next(1000);
      ASSERT_TRUE(chunk.ok());
      if (chunk->empty()) break;
      EXPECT_LE(chunk->size(), 1000u);
      stream += *chunk;
    }
    ASSERT_EQ(stream.size(), total);
    std::string sha = (*snapshot)->Sha256();
    EXPECT_EQ(sha, Sha256Of(stream));
    stream += sha;
  }
  // The temporary file is gone with the snapshot.
  EXPECT_FALSE(HasSnapshotFiles(dir_.path() + "/member"));
  // What etcdctl checks before saving: the image is whole 512-byte blocks plus the checksum.
  EXPECT_EQ(stream.size() % 512, 32u);

  // The image without its trailer opens as an LMDB file holding the keys.
  std::string image = dir_.path() + "/saved.db";
  std::ofstream(image, std::ios::binary) << stream.substr(0, stream.size() - 32);
  auto opened = backend::OpenLmdbImage(image);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto txn = (*opened)->BeginRead();
  ASSERT_TRUE(txn.ok());
  int versions = 0;
  ASSERT_TRUE((*txn)->Scan("key", "", "", [&](auto, auto) { return ++versions, true; }).ok());
  EXPECT_EQ(versions, 100);
  EXPECT_TRUE((*(*txn)->Get("meta", "consistent_index")).has_value());
}

TEST_F(MaintenanceTest, LeftoverSnapshotFilesAreRemovedAtStart) {
  auto s = Open(dir_.path());
  s.reset();
  std::string leftover = dir_.path() + "/member/" + kSnapshotTempPrefix + "7.tmp";
  std::ofstream(leftover) << "partial";
  s = Open(dir_.path());
  ASSERT_TRUE(s);
  EXPECT_FALSE(std::filesystem::exists(leftover));
}

}  // namespace
}  // namespace dolmen::server
