// Open after damage: torn tails are repaired and lose only unsynced data; anything else is
// corruption that names the file and offset.
#include <gtest/gtest.h>

#include "io/memory_file_system.h"
#include "wal/record.h"
#include "wal/segment.h"
#include "wal/wal.h"
#include "wal/wal_test_util.h"

namespace dolmen::wal {
namespace {

using namespace dolmen::wal::testing;  // NOLINT

const char kDir[] = "wal";

// A WAL holding entries 1..3 synced, and entry 4 plus a hard state appended but not synced.
// Returns the number of unsynced bytes.
uint64_t WriteSyncedThenUnsynced(io::MemoryFileSystem* fs) {
  auto wal = MustCreate(fs, kDir);
  CHECK(wal->Append(MakeEntries(1, 3, 1), MakeHardState(1, 1, 2)).ok());
  CHECK(wal->Sync().ok());
  std::string path = std::string(kDir) + "/" + wal->SegmentNames().back();
  uint64_t synced = fs->DurableContents(path)->size();
  CHECK(wal->Append({MakeEntry(4, 1, std::string(50, 'u'))}, MakeHardState(1, 1, 4)).ok());
  return fs->ReadFile(path)->size() - synced;
}

TEST(WalRecoveryTest, TornTailAtEveryByteOffset) {
  uint64_t unsynced;
  {
    auto fs = io::NewMemoryFileSystem();
    unsynced = WriteSyncedThenUnsynced(fs.get());
  }
  ASSERT_GT(unsynced, 0u);
  for (auto tail : {io::CrashOptions::Tail::kTornPrefix, io::CrashOptions::Tail::kTornZeros}) {
    for (uint64_t keep = 0; keep <= unsynced; ++keep) {
      auto fs = io::NewMemoryFileSystem();
      WriteSyncedThenUnsynced(fs.get());
      io::CrashOptions crash;
      crash.tail = tail;
      crash.keep_bytes = keep;
      fs->Crash(crash);

      auto opened = Wal::Open(fs.get(), kDir, {});
      ASSERT_TRUE(opened.ok()) << "keep " << keep << ": " << opened.status().ToString();
      auto& [wal, rec] = *opened;
      bool everything = tail == io::CrashOptions::Tail::kTornPrefix && keep == unsynced;
      if (everything) {
        EXPECT_EQ(Indexes(rec.entries), (std::vector<uint64_t>{1, 2, 3, 4}));
        EXPECT_EQ(rec.hard_state, MakeHardState(1, 1, 4));
      } else {
        // The entry record may have survived whole while the hard state behind it did not.
        ASSERT_GE(rec.entries.size(), 3u) << "keep " << keep;
        EXPECT_EQ(Indexes(rec.entries).at(2), 3u);
        // Nothing to repair when no byte survived, when the survivors end exactly where the
        // entry record does, or when they are zeros (a zero tail is free space, as in a
        // preallocated segment: cut silently).
        bool nothing_torn = keep == 0 || tail == io::CrashOptions::Tail::kTornZeros ||
                            keep == FramedRecordBytes(17 + 50);
        EXPECT_EQ(rec.repairs.empty(), nothing_torn) << "keep " << keep;
      }
      for (const auto& note : rec.repairs) EXPECT_NE(note.find("wal/"), std::string::npos);

      // The repaired log takes new appends, and they survive the next open.
      uint64_t next = rec.entries.back().index.value() + 1;
      ASSERT_TRUE(wal->Append({MakeEntry(next, 2)}, MakeHardState(2, 1, next)).ok());
      ASSERT_TRUE(wal->Sync().ok());
      wal.reset();
      auto [again, rec2] = MustOpen(fs.get(), kDir);
      EXPECT_EQ(rec2.entries.back(), MakeEntry(next, 2));
      EXPECT_TRUE(rec2.repairs.empty());
    }
  }
}

// The record offsets of a segment, read back with the scanner.
std::vector<uint64_t> RecordOffsets(const std::string& bytes) {
  auto scan = ScanSegment(bytes, "x", true);
  CHECK(scan.ok());
  std::vector<uint64_t> offsets;
  for (const auto& r : scan->records) offsets.push_back(r.offset);
  return offsets;
}

TEST(WalRecoveryTest, FlippedByteInTheMiddleIsCorruptionNamingFileAndOffset) {
  auto fs = io::NewMemoryFileSystem();
  auto wal = MustCreate(fs.get(), kDir);
  for (uint64_t i = 1; i <= 10; ++i) ASSERT_TRUE(wal->Append({MakeEntry(i, 1)}, {}).ok());
  ASSERT_TRUE(wal->Sync().ok());
  std::string name = wal->SegmentNames().back();
  std::string path = std::string(kDir) + "/" + name;
  wal.reset();
  const std::string good = *fs->ReadFile(path);
  auto offsets = RecordOffsets(good);
  ASSERT_EQ(offsets.size(), 11u);  // metadata + 10 entries

  // Every byte of every record but the last: always corruption, at that record's offset.
  for (size_t r = 0; r + 1 < offsets.size(); ++r) {
    for (uint64_t i = offsets[r]; i < offsets[r + 1]; ++i) {
      std::string bad = good;
      bad[i] ^= 0x20;
      ASSERT_TRUE(fs->SetContentsForTest(path, bad).ok());
      auto opened = Wal::Open(fs.get(), kDir, {});
      ASSERT_FALSE(opened.ok()) << "byte " << i;
      EXPECT_EQ(opened.status().code(), Code::kCorruption);
      EXPECT_NE(opened.status().message().find(name), std::string::npos);
      EXPECT_NE(opened.status().message().find("offset " + std::to_string(offsets[r])),
                std::string::npos)
          << opened.status().message();
    }
  }
  // The segment header too.
  for (uint64_t i = 0; i < kSegmentHeaderBytes; ++i) {
    std::string bad = good;
    bad[i] ^= 0x20;
    ASSERT_TRUE(fs->SetContentsForTest(path, bad).ok());
    EXPECT_EQ(Wal::Open(fs.get(), kDir, {}).status().code(), Code::kCorruption) << i;
  }
}

TEST(WalRecoveryTest, DamagedLastRecordOfLastSegmentIsRepairedAsTorn) {
  // Indistinguishable from a torn write, so repaired: documented in docs/wal.md.
  auto fs = io::NewMemoryFileSystem();
  auto wal = MustCreate(fs.get(), kDir);
  ASSERT_TRUE(wal->Append(MakeEntries(1, 3, 1), {}).ok());
  ASSERT_TRUE(wal->Sync().ok());
  std::string path = std::string(kDir) + "/" + wal->SegmentNames().back();
  wal.reset();
  std::string bytes = *fs->ReadFile(path);
  bytes[bytes.size() - 10] ^= 1;
  ASSERT_TRUE(fs->SetContentsForTest(path, bytes).ok());
  auto [reopened, rec] = MustOpen(fs.get(), kDir);
  EXPECT_EQ(Indexes(rec.entries), (std::vector<uint64_t>{1, 2}));
  ASSERT_EQ(rec.repairs.size(), 1u);
  EXPECT_NE(rec.repairs[0].find("torn"), std::string::npos);
}

class WalMultiSegmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.segment_bytes = 512;
    auto wal = MustCreate(fs_.get(), kDir, options_);
    for (uint64_t i = 1; i <= 40; ++i) ASSERT_TRUE(wal->Append({MakeEntry(i, 1)}, {}).ok());
    ASSERT_TRUE(wal->Sync().ok());
    names_ = wal->SegmentNames();
    ASSERT_GE(names_.size(), 3u);
  }
  std::string Path(size_t i) { return std::string(kDir) + "/" + names_.at(i); }

  std::unique_ptr<io::MemoryFileSystem> fs_ = io::NewMemoryFileSystem();
  Options options_;
  std::vector<std::string> names_;
};

TEST_F(WalMultiSegmentTest, DamagedLastRecordOfAnEarlierSegmentIsCorruption) {
  std::string bytes = *fs_->ReadFile(Path(0));
  bytes[bytes.size() - 10] ^= 1;
  ASSERT_TRUE(fs_->SetContentsForTest(Path(0), bytes).ok());
  auto opened = Wal::Open(fs_.get(), kDir, options_);
  EXPECT_EQ(opened.status().code(), Code::kCorruption);
  EXPECT_NE(opened.status().message().find(names_[0]), std::string::npos);
}

TEST_F(WalMultiSegmentTest, TruncatedEarlierSegmentIsCorruption) {
  std::string bytes = *fs_->ReadFile(Path(1));
  ASSERT_TRUE(fs_->SetContentsForTest(Path(1), bytes.substr(0, bytes.size() - 3)).ok());
  auto opened = Wal::Open(fs_.get(), kDir, options_);
  EXPECT_EQ(opened.status().code(), Code::kCorruption);
  EXPECT_NE(opened.status().message().find("not the last"), std::string::npos);
}

TEST_F(WalMultiSegmentTest, EarlierSegmentWithAWholeRecordMissingIsCorruption) {
  // Drops one whole record from the end of segment 0: every record left is valid, but the log
  // no longer reaches the index segment 1 starts at.
  std::string bytes = *fs_->ReadFile(Path(0));
  auto offsets = RecordOffsets(bytes);
  ASSERT_TRUE(fs_->SetContentsForTest(Path(0), bytes.substr(0, offsets.back())).ok());
  EXPECT_EQ(Wal::Open(fs_.get(), kDir, options_).status().code(), Code::kCorruption);
}

TEST_F(WalMultiSegmentTest, MissingMiddleSegmentIsCorruption) {
  ASSERT_TRUE(fs_->Remove(Path(1)).ok());
  auto opened = Wal::Open(fs_.get(), kDir, options_);
  EXPECT_EQ(opened.status().code(), Code::kCorruption);
  EXPECT_NE(opened.status().message().find("missing"), std::string::npos);
}

TEST_F(WalMultiSegmentTest, ZeroTailIsTheNormalEndAndIsTrimmed) {
  size_t last = names_.size() - 1;
  uint64_t size = fs_->ReadFile(Path(last))->size();
  ASSERT_TRUE(fs_->Truncate(Path(last), size + 4096).ok());
  {
    auto [wal, rec] = MustOpen(fs_.get(), kDir, options_);
    EXPECT_EQ(rec.entries, MakeEntries(1, 40, 1));
    EXPECT_TRUE(rec.repairs.empty());  // free space, not damage
    EXPECT_EQ(fs_->ReadFile(Path(last))->size(), size);
    ASSERT_TRUE(wal->Append({MakeEntry(41, 1)}, {}).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  auto [wal, rec] = MustOpen(fs_.get(), kDir, options_);
  EXPECT_EQ(rec.entries, MakeEntries(1, 41, 1));
}

TEST_F(WalMultiSegmentTest, LeftoverTemporarySegmentIsIgnoredAndRemoved) {
  std::string temp = std::string(kDir) + "/" + SegmentName(names_.size(), 999) + ".tmp";
  ASSERT_TRUE(fs_->OpenForAppend(temp).value()->Append("half a segment").ok());
  auto [wal, rec] = MustOpen(fs_.get(), kDir, options_);
  EXPECT_EQ(rec.entries, MakeEntries(1, 40, 1));
  EXPECT_FALSE(fs_->Exists(temp));
}

TEST_F(WalMultiSegmentTest, SegmentRenamedOutOfPlaceIsCorruption) {
  // A segment whose header disagrees with its name (e.g. copied by hand) is refused.
  std::string bytes = *fs_->ReadFile(Path(2));
  std::string good_header = (*fs_->ReadFile(Path(1))).substr(0, kSegmentHeaderBytes);
  ASSERT_TRUE(
      fs_->SetContentsForTest(Path(2), good_header + bytes.substr(kSegmentHeaderBytes)).ok());
  auto opened = Wal::Open(fs_.get(), kDir, options_);
  EXPECT_EQ(opened.status().code(), Code::kCorruption);
  EXPECT_NE(opened.status().message().find("does not match"), std::string::npos);
}

}  // namespace
}  // namespace dolmen::wal
