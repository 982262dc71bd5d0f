#include "wal/segment.h"

#include <gtest/gtest.h>

namespace dolmen::wal {
namespace {

// A segment with `n` records of 30-byte payloads; offsets[i] is where record i starts.
std::string MakeSegment(int n, std::vector<uint64_t>* offsets = nullptr) {
  std::string bytes;
  EncodeSegmentHeader({0, 1}, &bytes);
  for (int i = 0; i < n; ++i) {
    if (offsets) offsets->push_back(bytes.size());
    EncodeRecord(RecordType::kMetadata, std::string(30, static_cast<char>('a' + i)), &bytes);
  }
  return bytes;
}

TEST(WalScanSegmentTest, CleanSegment) {
  std::string bytes = MakeSegment(3);
  auto scan = ScanSegment(bytes, "seg", false);
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->records.size(), 3u);
  EXPECT_EQ(scan->tail, SegmentScan::Tail::kClean);
  EXPECT_EQ(scan->valid_end, bytes.size());
}

TEST(WalScanSegmentTest, ZerosAfterTheLastRecordAreTheEnd) {
  std::string bytes = MakeSegment(3);
  uint64_t end = bytes.size();
  bytes.append(1000, '\0');
  auto scan = ScanSegment(bytes, "seg", true);
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->tail, SegmentScan::Tail::kZeros);
  EXPECT_EQ(scan->valid_end, end);
  EXPECT_EQ(scan->records.size(), 3u);
  // In a segment that is not the last, nothing may follow the records.
  EXPECT_EQ(ScanSegment(bytes, "seg", false).status().code(), Code::kCorruption);
}

TEST(WalScanSegmentTest, PartialLastRecordIsTorn) {
  std::vector<uint64_t> offsets;
  std::string bytes = MakeSegment(3, &offsets);
  for (uint64_t cut = offsets[2] + 1; cut < bytes.size(); ++cut) {
    auto scan = ScanSegment(bytes.substr(0, cut), "seg", true);
    ASSERT_TRUE(scan.ok()) << cut << " " << scan.status().ToString();
    EXPECT_EQ(scan->tail, SegmentScan::Tail::kTorn);
    EXPECT_EQ(scan->valid_end, offsets[2]);
    EXPECT_EQ(scan->records.size(), 2u);
    EXPECT_EQ(ScanSegment(bytes.substr(0, cut), "seg", false).status().code(), Code::kCorruption);
  }
}

TEST(WalScanSegmentTest, DamageFollowedByValidDataIsCorruption) {
  std::vector<uint64_t> offsets;
  std::string bytes = MakeSegment(4, &offsets);
  for (uint64_t i = offsets[1]; i < offsets[2]; ++i) {
    std::string bad = bytes;
    bad[i] ^= 0x10;
    auto scan = ScanSegment(bad, "dir/seg.wal", true);
    ASSERT_FALSE(scan.ok()) << "byte " << i;
    EXPECT_EQ(scan.status().code(), Code::kCorruption);
    EXPECT_NE(scan.status().message().find("dir/seg.wal offset " + std::to_string(offsets[1])),
              std::string::npos)
        << scan.status().message();
  }
}

TEST(WalScanSegmentTest, DamagedLastRecordIsTorn) {
  // A complete last record with a bad checksum and nothing valid after it is what a torn
  // sector write looks like.
  std::vector<uint64_t> offsets;
  std::string bytes = MakeSegment(3, &offsets);
  bytes[offsets[2] + 20] ^= 0x01;
  auto scan = ScanSegment(bytes, "seg", true);
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->tail, SegmentScan::Tail::kTorn);
  EXPECT_EQ(scan->valid_end, offsets[2]);
}

// A power cut that kept a later unsynced sector and lost an earlier one (still the
// preallocated zeros) leaves a damaged record followed by valid ones.
TEST(WalScanSegmentTest, DamagedRecordHoldingAZeroSectorIsATornWriteInTheLastSegment) {
  std::string bytes;
  EncodeSegmentHeader({0, 1}, &bytes);
  std::vector<uint64_t> offsets;
  for (int i = 0; i < 4; ++i) {
    offsets.push_back(bytes.size());
    EncodeRecord(RecordType::kMetadata, std::string(1500, static_cast<char>('a' + i)), &bytes);
  }
  // Record 1 spans at least one whole aligned sector; the first one loses its bytes.
  const uint64_t sector = (offsets[1] + 511) / 512 * 512;
  ASSERT_LE(sector + 512, offsets[2]);
  std::string torn = bytes;
  torn.replace(sector, 512, 512, '\0');
  auto scan = ScanSegment(torn, "seg", true);
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  EXPECT_EQ(scan->tail, SegmentScan::Tail::kTorn);
  EXPECT_EQ(scan->valid_end, offsets[1]);
  EXPECT_EQ(scan->records.size(), 1u);
  EXPECT_NE(scan->tail_note.find("sector's write was lost"), std::string::npos) << scan->tail_note;
  // The sector where record 1 starts also holds record 0's end, synced before: a lost write
  // of record 1's head leaves zeros from its start to that sector's end (the tester's seed 41,
  // cut 989).
  ASSERT_NE(offsets[1] % 512, 0u);
  const uint64_t head_sector_end = (offsets[1] / 512 + 1) * 512;
  ASSERT_GE(head_sector_end - offsets[1], kRecordHeaderBytes);
  std::string head_lost = bytes;
  head_lost.replace(offsets[1], head_sector_end - offsets[1], head_sector_end - offsets[1], '\0');
  auto head_scan = ScanSegment(head_lost, "seg", true);
  ASSERT_TRUE(head_scan.ok()) << head_scan.status().ToString();
  EXPECT_EQ(head_scan->tail, SegmentScan::Tail::kTorn);
  EXPECT_EQ(head_scan->valid_end, offsets[1]);
  // The header's sector lost: the same.
  std::string headless = bytes;
  headless.replace(offsets[1] / 512 * 512, 512, 512, '\0');
  auto headless_scan = ScanSegment(headless, "seg", true);
  ASSERT_TRUE(headless_scan.ok()) << headless_scan.status().ToString();
  EXPECT_EQ(headless_scan->tail, SegmentScan::Tail::kTorn);
  EXPECT_LE(headless_scan->valid_end, offsets[1]);
  // Not in an earlier segment, and not without a lost sector (a flipped byte, a sector zeroed
  // only in part).
  EXPECT_EQ(ScanSegment(torn, "seg", false).status().code(), Code::kCorruption);
  std::string partly = bytes;
  partly.replace(sector, 511, 511, '\0');
  EXPECT_EQ(ScanSegment(partly, "seg", true).status().code(), Code::kCorruption);
}

TEST(WalScanSegmentTest, BadHeaderIsCorruptionEvenInTheLastSegment) {
  std::string bytes = MakeSegment(1);
  bytes[0] = 'X';
  auto scan = ScanSegment(bytes, "seg", true);
  EXPECT_EQ(scan.status().code(), Code::kCorruption);
  EXPECT_NE(scan.status().message().find("offset 0"), std::string::npos);
  EXPECT_EQ(ScanSegment("short", "seg", true).status().code(), Code::kCorruption);
}

}  // namespace
}  // namespace dolmen::wal
