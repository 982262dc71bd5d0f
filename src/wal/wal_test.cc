#include "wal/wal.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "io/memory_file_system.h"
#include "io/posix/posix_file_system.h"
#include "wal/segment.h"
#include "wal/wal_test_util.h"

namespace dolmen::wal {
namespace {

using namespace dolmen::wal::testing;  // NOLINT

class WalTest : public ::testing::Test {
 protected:
  std::unique_ptr<io::MemoryFileSystem> fs_ = io::NewMemoryFileSystem();
  const std::string dir_ = "data/member/wal";
};

TEST_F(WalTest, CreateThenOpenEmpty) {
  EXPECT_FALSE(Wal::Exists(fs_.get(), dir_));
  MustCreate(fs_.get(), dir_, {}, "cluster=7 member=3").reset();
  EXPECT_TRUE(Wal::Exists(fs_.get(), dir_));
  auto [wal, rec] = MustOpen(fs_.get(), dir_);
  EXPECT_EQ(rec.metadata, "cluster=7 member=3");
  EXPECT_TRUE(rec.hard_state.IsEmpty());
  EXPECT_FALSE(rec.snapshot.has_value());
  EXPECT_TRUE(rec.entries.empty());
  EXPECT_TRUE(rec.repairs.empty());
  EXPECT_EQ(wal->LastIndex(), Index(0));
  EXPECT_EQ(wal->SegmentNames(), (std::vector<std::string>{SegmentName(0, 1)}));
}

TEST_F(WalTest, CreateRefusesAnExistingLog) {
  MustCreate(fs_.get(), dir_).reset();
  EXPECT_EQ(Wal::Create(fs_.get(), dir_, "m", {}).status().code(), Code::kAlreadyExists);
}

TEST_F(WalTest, OpenWithoutALogIsNotFound) {
  ASSERT_TRUE(fs_->CreateDirs(dir_).ok());
  EXPECT_EQ(Wal::Open(fs_.get(), dir_, {}).status().code(), Code::kNotFound);
}

TEST_F(WalTest, RoundTripEntriesAndHardState) {
  auto wal = MustCreate(fs_.get(), dir_);
  auto entries = MakeEntries(1, 3, 1);
  entries[1].type = raft::EntryType::kConfChange;
  entries[2].data = std::string("\0binary\xff", 8);
  ASSERT_TRUE(wal->Append(entries, MakeHardState(1, 2, 1)).ok());
  ASSERT_TRUE(wal->Append(MakeEntries(4, 4, 2), MakeHardState(2, 0, 3)).ok());
  ASSERT_TRUE(wal->Append({}, MakeHardState(2, 1, 4)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  EXPECT_EQ(wal->LastIndex(), Index(4));
  wal.reset();

  auto [reopened, rec] = MustOpen(fs_.get(), dir_);
  entries.push_back(MakeEntry(4, 2));
  EXPECT_EQ(rec.entries, entries);
  EXPECT_EQ(rec.hard_state, MakeHardState(2, 1, 4));
  EXPECT_EQ(reopened->LastIndex(), Index(4));
}

TEST_F(WalTest, EmptyHardStateMeansUnchanged) {
  auto wal = MustCreate(fs_.get(), dir_);
  ASSERT_TRUE(wal->Append(MakeEntries(1, 1, 1), MakeHardState(1, 1, 0)).ok());
  ASSERT_TRUE(wal->Append(MakeEntries(2, 2, 1), raft::HardState{}).ok());
  ASSERT_TRUE(wal->Sync().ok());
  wal.reset();
  auto [reopened, rec] = MustOpen(fs_.get(), dir_);
  EXPECT_EQ(rec.hard_state, MakeHardState(1, 1, 0));
  EXPECT_EQ(Indexes(rec.entries), (std::vector<uint64_t>{1, 2}));
}

TEST_F(WalTest, ReopenAppendReopen) {
  auto wal = MustCreate(fs_.get(), dir_);
  ASSERT_TRUE(wal->Append(MakeEntries(1, 5, 1), MakeHardState(1, 1, 5)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  wal.reset();
  for (uint64_t round = 0; round < 3; ++round) {
    auto [w, rec] = MustOpen(fs_.get(), dir_);
    ASSERT_EQ(rec.entries.size(), 5 + round * 5);
    uint64_t next = rec.entries.back().index.value() + 1;
    ASSERT_TRUE(w->Append(MakeEntries(next, next + 4, 1), MakeHardState(1, 1, next + 4)).ok());
    ASSERT_TRUE(w->Sync().ok());
  }
  auto [w, rec] = MustOpen(fs_.get(), dir_);
  EXPECT_EQ(rec.entries, MakeEntries(1, 20, 1));
  EXPECT_EQ(rec.hard_state.commit, Index(20));
}

TEST_F(WalTest, CutsSegmentsAndReadsAcrossThem) {
  Options options;
  options.segment_bytes = 1024;
  auto wal = MustCreate(fs_.get(), dir_, options);
  for (uint64_t i = 1; i <= 100; ++i) {
    ASSERT_TRUE(wal->Append({MakeEntry(i, 1, std::string(40, 'x'))}, MakeHardState(1, 1, i)).ok());
  }
  ASSERT_TRUE(wal->Sync().ok());
  auto names = wal->SegmentNames();
  ASSERT_GT(names.size(), 3u);
  // Names carry the sequence and the first index the segment was started for.
  for (size_t i = 0; i < names.size(); ++i) {
    auto parsed = ParseSegmentName(names[i]);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->sequence, i);
  }
  EXPECT_EQ(ParseSegmentName(names[0])->first_index, 1u);
  EXPECT_GT(ParseSegmentName(names[1])->first_index, 1u);
  // Segments were preallocated.
  EXPECT_EQ(fs_->PreallocatedBytes(dir_ + "/" + names.back()), 1024u);
  wal.reset();

  auto [reopened, rec] = MustOpen(fs_.get(), dir_, options);
  ASSERT_EQ(rec.entries.size(), 100u);
  EXPECT_EQ(rec.entries.back(), MakeEntry(100, 1, std::string(40, 'x')));
  EXPECT_EQ(rec.hard_state.commit, Index(100));
  EXPECT_EQ(rec.metadata, "meta");
}

TEST_F(WalTest, RaftTruncationReplacesTheTail) {
  auto wal = MustCreate(fs_.get(), dir_);
  ASSERT_TRUE(wal->Append(MakeEntries(1, 4, 1), {}).ok());
  ASSERT_TRUE(wal->Append(MakeEntries(5, 10, 1), {}).ok());
  ASSERT_TRUE(wal->Append({MakeEntry(7, 2)}, MakeHardState(2, 0, 4)).ok());
  EXPECT_EQ(wal->LastIndex(), Index(7));
  ASSERT_TRUE(wal->Sync().ok());
  wal.reset();
  auto [reopened, rec] = MustOpen(fs_.get(), dir_);
  auto want = MakeEntries(1, 6, 1);
  want.push_back(MakeEntry(7, 2));
  EXPECT_EQ(rec.entries, want);
}

TEST_F(WalTest, RaftTruncationAcrossSegments) {
  Options options;
  options.segment_bytes = 512;
  auto wal = MustCreate(fs_.get(), dir_, options);
  for (uint64_t i = 1; i <= 40; ++i) ASSERT_TRUE(wal->Append({MakeEntry(i, 1)}, {}).ok());
  size_t segments_before = wal->SegmentNames().size();
  ASSERT_GT(segments_before, 2u);
  ASSERT_TRUE(wal->Append(MakeEntries(3, 5, 3), {}).ok());
  for (uint64_t i = 6; i <= 30; ++i) ASSERT_TRUE(wal->Append({MakeEntry(i, 3)}, {}).ok());
  ASSERT_TRUE(wal->Sync().ok());
  wal.reset();
  auto [reopened, rec] = MustOpen(fs_.get(), dir_, options);
  auto want = MakeEntries(1, 2, 1);
  for (auto& e : MakeEntries(3, 30, 3)) want.push_back(e);
  EXPECT_EQ(rec.entries, want);
}

TEST_F(WalTest, SnapshotMarkerDropsCoveredEntries) {
  auto wal = MustCreate(fs_.get(), dir_);
  ASSERT_TRUE(wal->Append(MakeEntries(1, 10, 1), MakeHardState(1, 1, 10)).ok());
  raft::SnapshotMetadata snap;
  snap.index = Index(6);
  snap.term = Term(1);
  snap.conf_state.voters = {MemberId(1), MemberId(2)};
  snap.conf_state.learners = {MemberId(9)};
  ASSERT_TRUE(wal->SaveSnapshot(snap).ok());
  wal.reset();
  auto [reopened, rec] = MustOpen(fs_.get(), dir_);
  ASSERT_TRUE(rec.snapshot.has_value());
  EXPECT_EQ(*rec.snapshot, snap);
  EXPECT_EQ(Indexes(rec.entries), (std::vector<uint64_t>{7, 8, 9, 10}));
}

TEST_F(WalTest, SnapshotBeyondTheLogThenNewEntries) {
  // A follower installs a snapshot from the leader (Raft paper section 7).
  auto wal = MustCreate(fs_.get(), dir_);
  ASSERT_TRUE(wal->Append(MakeEntries(1, 5, 1), {}).ok());
  ASSERT_TRUE(wal->SaveSnapshot({Index(100), Term(4), {}}).ok());
  EXPECT_EQ(wal->LastIndex(), Index(100));
  ASSERT_TRUE(wal->Append(MakeEntries(101, 103, 4), MakeHardState(4, 2, 101)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  wal.reset();
  auto [reopened, rec] = MustOpen(fs_.get(), dir_);
  EXPECT_EQ(rec.snapshot->index, Index(100));
  EXPECT_EQ(rec.entries, MakeEntries(101, 103, 4));
  EXPECT_EQ(reopened->LastIndex(), Index(103));
}

TEST_F(WalTest, ReleaseToDeletesOldSegmentsOnly) {
  Options options;
  options.segment_bytes = 512;
  auto wal = MustCreate(fs_.get(), dir_, options, "m");
  for (uint64_t i = 1; i <= 60; ++i) {
    ASSERT_TRUE(wal->Append({MakeEntry(i, 1)}, MakeHardState(1, 1, i)).ok());
  }
  ASSERT_TRUE(wal->Sync().ok());
  auto before = wal->SegmentNames();
  ASSERT_GT(before.size(), 4u);

  ASSERT_TRUE(wal->ReleaseTo(Index(1)).ok());  // nothing is below index 1
  EXPECT_EQ(wal->SegmentNames(), before);

  ASSERT_TRUE(wal->SaveSnapshot({Index(40), Term(1), {}}).ok());
  ASSERT_TRUE(wal->ReleaseTo(Index(40)).ok());
  auto after = wal->SegmentNames();
  EXPECT_LT(after.size(), before.size());
  EXPECT_LE(ParseSegmentName(after.front())->first_index, 40u);
  for (const auto& name : before) {
    bool kept = std::find(after.begin(), after.end(), name) != after.end();
    EXPECT_EQ(fs_->Exists(dir_ + "/" + name), kept) << name;
  }
  ASSERT_TRUE(wal->Append({MakeEntry(61, 2)}, MakeHardState(2, 1, 61)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  wal.reset();

  auto [reopened, rec] = MustOpen(fs_.get(), dir_, options);
  EXPECT_EQ(rec.metadata, "m");
  EXPECT_EQ(rec.snapshot->index, Index(40));
  EXPECT_EQ(rec.hard_state, MakeHardState(2, 1, 61));
  auto want = MakeEntries(41, 60, 1);
  want.push_back(MakeEntry(61, 2));
  EXPECT_EQ(rec.entries, want);
}

// Is `entries` consecutive, from at most `head` up to `last`, and equal to MakeEntry(i, 1)?
void ExpectLogFromAtMost(const std::vector<raft::Entry>& entries, uint64_t head, uint64_t last) {
  ASSERT_FALSE(entries.empty());
  EXPECT_LE(entries.front().index.value(), head);
  EXPECT_EQ(entries, MakeEntries(entries.front().index.value(), last, 1));
}

// The checkpoint's cut: one big segment holding everything, a snapshot at its end, then a cut
// and a release leave a log that starts after the snapshot, so a restart reads nothing old.
TEST_F(WalTest, CutAtCheckpointLetsTheWholeCoveredSegmentGo) {
  Options options;  // 64 MiB segments: all of this fits in the first
  auto wal = MustCreate(fs_.get(), dir_, options, "m");
  for (uint64_t i = 1; i <= 60; ++i) {
    ASSERT_TRUE(wal->Append({MakeEntry(i, 1)}, MakeHardState(1, 1, i)).ok());
  }
  ASSERT_TRUE(wal->SaveSnapshot({Index(60), Term(1), {}}).ok());
  ASSERT_TRUE(wal->CutIfAtLeast(1u << 30).ok());  // too small to cut: nothing happens
  EXPECT_EQ(wal->SegmentNames().size(), 1u);
  ASSERT_TRUE(wal->CutIfAtLeast(64).ok());
  ASSERT_EQ(wal->SegmentNames().size(), 2u);
  ASSERT_TRUE(wal->ReleaseTo(Index(61)).ok());
  ASSERT_EQ(wal->SegmentNames().size(), 1u);
  EXPECT_EQ(ParseSegmentName(wal->SegmentNames().front())->first_index, 61u);
  ASSERT_TRUE(wal->Append({MakeEntry(61, 1)}, MakeHardState(1, 1, 61)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  wal.reset();

  auto [reopened, rec] = MustOpen(fs_.get(), dir_, options);
  EXPECT_EQ(rec.metadata, "m");
  EXPECT_EQ(rec.snapshot->index, Index(60));
  EXPECT_EQ(rec.hard_state, MakeHardState(1, 1, 61));
  EXPECT_EQ(rec.entries, MakeEntries(61, 61, 1));
}

TEST_F(WalTest, ReleaseToAfterABackendSyncWithoutSnapshot) {
  // The single-member server's checkpoint: the backend is synced up to 49, so the log below 50
  // may go; no snapshot marker is involved.
  Options options;
  options.segment_bytes = 512;
  auto wal = MustCreate(fs_.get(), dir_, options);
  for (uint64_t i = 1; i <= 60; ++i) ASSERT_TRUE(wal->Append({MakeEntry(i, 1)}, {}).ok());
  size_t before = wal->SegmentNames().size();
  ASSERT_TRUE(wal->ReleaseTo(Index(50)).ok());
  EXPECT_LT(wal->SegmentNames().size(), before);
  EXPECT_GT(ParseSegmentName(wal->SegmentNames().front())->sequence, 0u);
  ASSERT_TRUE(wal->Sync().ok());
  wal.reset();
  {
    auto [reopened, rec] = MustOpen(fs_.get(), dir_, options);
    ExpectLogFromAtMost(rec.entries, 50, 60);
    EXPECT_GT(rec.entries.front().index.value(), 1u);
    ASSERT_TRUE(reopened->Append({MakeEntry(61, 1)}, {}).ok());
    ASSERT_TRUE(reopened->Sync().ok());
  }
  auto [reopened, rec] = MustOpen(fs_.get(), dir_, options);
  ExpectLogFromAtMost(rec.entries, 50, 61);
}

TEST_F(WalTest, ReleaseToBeyondTheSnapshot) {
  Options options;
  options.segment_bytes = 512;
  auto wal = MustCreate(fs_.get(), dir_, options);
  for (uint64_t i = 1; i <= 60; ++i) ASSERT_TRUE(wal->Append({MakeEntry(i, 1)}, {}).ok());
  ASSERT_TRUE(wal->SaveSnapshot({Index(10), Term(1), {}}).ok());
  ASSERT_TRUE(wal->ReleaseTo(Index(50)).ok());
  wal.reset();
  auto [reopened, rec] = MustOpen(fs_.get(), dir_, options);
  EXPECT_EQ(rec.snapshot->index, Index(10));
  ExpectLogFromAtMost(rec.entries, 50, 60);
  EXPECT_GT(rec.entries.front().index.value(), 10u);
}

TEST_F(WalTest, ReleaseLeavingOnlyHardStates) {
  // Segments cut by hard states alone, then everything released: the log's end must still be
  // known so that the next append is accepted and read back.
  Options options;
  options.segment_bytes = 256;
  auto wal = MustCreate(fs_.get(), dir_, options);
  ASSERT_TRUE(wal->Append(MakeEntries(1, 20, 1), {}).ok());
  for (uint64_t i = 0; i < 40; ++i) ASSERT_TRUE(wal->Append({}, MakeHardState(2, 1, 20)).ok());
  ASSERT_TRUE(wal->ReleaseTo(Index(21)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  wal.reset();
  {
    auto [reopened, rec] = MustOpen(fs_.get(), dir_, options);
    EXPECT_TRUE(rec.entries.empty());
    EXPECT_EQ(rec.hard_state, MakeHardState(2, 1, 20));
    EXPECT_EQ(reopened->LastIndex(), Index(20));
    ASSERT_TRUE(reopened->Append({MakeEntry(21, 2)}, {}).ok());
    ASSERT_TRUE(reopened->Sync().ok());
  }
  auto [reopened, rec] = MustOpen(fs_.get(), dir_, options);
  EXPECT_EQ(rec.entries, std::vector<raft::Entry>{MakeEntry(21, 2)});
}

TEST_F(WalTest, SecondOpenWhileHeldIsRefused) {
  auto wal = MustCreate(fs_.get(), dir_);
  auto second = Wal::Open(fs_.get(), dir_, {});
  EXPECT_EQ(second.status().code(), Code::kUnavailable);
  wal.reset();
  EXPECT_TRUE(Wal::Open(fs_.get(), dir_, {}).ok());
}

TEST_F(WalTest, CloseSyncsAndEndsTheWal) {
  auto wal = MustCreate(fs_.get(), dir_);
  ASSERT_TRUE(wal->Append(MakeEntries(1, 2, 1), {}).ok());
  ASSERT_TRUE(wal->Close().ok());
  EXPECT_FALSE(wal->Sync().ok());
  fs_->Crash();
  auto [reopened, rec] = MustOpen(fs_.get(), dir_);
  EXPECT_EQ(rec.entries, MakeEntries(1, 2, 1));
}

TEST_F(WalTest, InvalidOptions) {
  Options options;
  options.segment_bytes = 0;
  EXPECT_EQ(Wal::Create(fs_.get(), dir_, "", options).status().code(), Code::kInvalidArgument);
}

TEST(WalDeathTest, AppendWithAGapIsABug) {
  auto fs = io::NewMemoryFileSystem();
  auto wal = MustCreate(fs.get(), "w");
  ASSERT_TRUE(wal->Append(MakeEntries(1, 2, 1), {}).ok());
  EXPECT_DEATH({ wal->Append(MakeEntries(4, 4, 1), {}).IgnoreError(); }, "gap");
}

// Where a segment's records end: its length without the preallocated zeros.
uint64_t LogicalEnd(io::FileSystem* fs, const std::string& path) {
  std::string bytes = *fs->ReadFile(path);
  Result<SegmentScan> scan = ScanSegment(bytes, path, /*is_last=*/true);
  CHECK(scan.ok()) << scan.status().ToString();
  return scan->valid_end;
}

TEST(WalPosixTest, SmokeInATempDir) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "dolmen_wal_XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  std::string dir = tmpl + "/member/wal";
  io::FileSystem* fs = io::PosixFileSystem();
  Options options;
  options.segment_bytes = 4096;
  {
    auto wal = MustCreate(fs, dir, options, "posix");
    for (uint64_t i = 1; i <= 200; ++i) {
      ASSERT_TRUE(wal->Append({MakeEntry(i, 1)}, MakeHardState(1, 1, i)).ok());
      if (i % 10 == 0) {
        ASSERT_TRUE(wal->Sync().ok());
      }
    }
    ASSERT_GT(wal->SegmentNames().size(), 1u);
    // Another opener (as another process would) is refused while this one holds the dir.
    EXPECT_EQ(Wal::Open(fs, dir, options).status().code(), Code::kUnavailable);
  }
  {
    auto [wal, rec] = MustOpen(fs, dir, options);
    EXPECT_EQ(rec.metadata, "posix");
    EXPECT_EQ(rec.entries, MakeEntries(1, 200, 1));
    // The last segment is preallocated (extended with zeros, as etcd does); the ones before
    // it were trimmed to their records when they were cut.
    std::vector<std::string> names = wal->SegmentNames();
    std::string last = dir + "/" + names.back();
    EXPECT_EQ(std::filesystem::file_size(last), 4096u);
    for (size_t i = 0; i + 1 < names.size(); ++i) {
      std::string path = dir + "/" + names[i];
      EXPECT_EQ(std::filesystem::file_size(path), LogicalEnd(fs, path)) << names[i];
    }
    // A torn tail on a real file: cut the last segment in the middle of its last record.
    ASSERT_TRUE(wal->Append({MakeEntry(201, 1, std::string(100, 'y'))}, {}).ok());
    ASSERT_TRUE(wal->Sync().ok());
    wal.reset();
    ASSERT_TRUE(fs->Truncate(last, LogicalEnd(fs, last) - 50).ok());
  }
  {
    auto [wal, rec] = MustOpen(fs, dir, options);
    EXPECT_EQ(rec.entries, MakeEntries(1, 200, 1));
    ASSERT_EQ(rec.repairs.size(), 1u);
  }
  std::filesystem::remove_all(tmpl);
}

TEST(WalPosixTest, TornLastRecordAtEveryByteOffset) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "dolmen_wal_XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  io::FileSystem* fs = io::PosixFileSystem();
  std::string path;
  uint64_t synced_size;
  Options options;
  options.segment_bytes = 4096;
  {
    auto wal = MustCreate(fs, tmpl, options);
    ASSERT_TRUE(wal->Append(MakeEntries(1, 3, 1), MakeHardState(1, 1, 3)).ok());
    ASSERT_TRUE(wal->Sync().ok());
    path = tmpl + "/" + wal->SegmentNames().back();
    synced_size = LogicalEnd(fs, path);
    ASSERT_TRUE(wal->Append({MakeEntry(4, 1, std::string(60, 'z'))}, {}).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  const std::string full = fs->ReadFile(path)->substr(0, LogicalEnd(fs, path));
  for (uint64_t cut = synced_size; cut < full.size(); ++cut) {
    ASSERT_TRUE(fs->Remove(path).ok());
    auto file = fs->OpenForAppend(path);
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->Append(full).ok());
    ASSERT_TRUE((*file)->Close().ok());
    ASSERT_TRUE(fs->Truncate(path, cut).ok());
    auto opened = Wal::Open(fs, tmpl, options);
    ASSERT_TRUE(opened.ok()) << "cut " << cut << ": " << opened.status().ToString();
    EXPECT_EQ(opened->second.entries, MakeEntries(1, 3, 1)) << "cut " << cut;
    EXPECT_EQ(opened->second.repairs.size(), cut == synced_size ? 0u : 1u) << "cut " << cut;
    // The torn record is gone: zeros (the new preallocation) follow the synced records.
    EXPECT_EQ(LogicalEnd(fs, path), synced_size);
    EXPECT_EQ(std::filesystem::file_size(path), 4096u);
  }
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace dolmen::wal
