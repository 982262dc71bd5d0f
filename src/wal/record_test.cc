#include "wal/record.h"

#include <gtest/gtest.h>

#include "wal/payload.h"
#include "wal/segment.h"

namespace dolmen::wal {
namespace {

TEST(WalSegmentHeaderTest, RoundTrip) {
  std::string bytes;
  EncodeSegmentHeader({7, 1234}, &bytes);
  ASSERT_EQ(bytes.size(), kSegmentHeaderBytes);
  auto header = DecodeSegmentHeader(bytes);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->sequence, 7u);
  EXPECT_EQ(header->first_index, 1234u);
}

TEST(WalSegmentHeaderTest, RejectsDamage) {
  std::string good;
  EncodeSegmentHeader({1, 2}, &good);
  EXPECT_FALSE(DecodeSegmentHeader(good.substr(0, 39)).ok());
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x01;
    auto header = DecodeSegmentHeader(bad);
    EXPECT_EQ(header.status().code(), Code::kCorruption) << "byte " << i;
  }
  std::string newer = good;
  newer[8] = 2;  // version 2
  EXPECT_NE(DecodeSegmentHeader(newer).status().message().find("version 2"), std::string::npos);
}

TEST(WalRecordTest, RoundTripAndAlignment) {
  for (size_t n : {0, 1, 7, 8, 9, 100, 4096}) {
    std::string bytes = "prefix!!";  // 8 bytes: records start aligned
    std::string payload(n, 'p');
    EncodeRecord(RecordType::kEntry, payload, &bytes);
    EXPECT_EQ((bytes.size() - 8) % kRecordAlignment, 0u);
    EXPECT_EQ(bytes.size() - 8, FramedRecordBytes(n));
    RecordParse parse = ParseRecordAt(bytes, 8);
    ASSERT_EQ(parse.problem, RecordProblem::kNone) << n;
    EXPECT_EQ(parse.record.type, RecordType::kEntry);
    EXPECT_EQ(parse.record.payload, payload);
    EXPECT_EQ(parse.end, bytes.size());
  }
}

TEST(WalRecordTest, ClassifiesProblems) {
  std::string bytes;
  EncodeRecord(RecordType::kHardState, std::string(20, 'h'), &bytes);
  EXPECT_EQ(ParseRecordAt(bytes.substr(0, 15), 0).problem, RecordProblem::kHeaderIncomplete);
  EXPECT_EQ(ParseRecordAt(bytes.substr(0, 30), 0).problem, RecordProblem::kIncomplete);
  for (size_t i = 0; i < kRecordHeaderBytes; ++i) {
    std::string bad = bytes;
    bad[i] ^= 0x40;
    // Bytes 0-3 are the payload checksum: covered by the header checksum too.
    EXPECT_EQ(ParseRecordAt(bad, 0).problem, RecordProblem::kBadHeader) << "byte " << i;
  }
  for (size_t i = kRecordHeaderBytes; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] ^= 0x40;  // payload or padding
    EXPECT_EQ(ParseRecordAt(bad, 0).problem, RecordProblem::kBadPayload) << "byte " << i;
  }
  EXPECT_EQ(ParseRecordAt(std::string(32, '\0'), 0).problem, RecordProblem::kBadHeader);
  EXPECT_EQ(ParseRecordAt(bytes, bytes.size() + 100).problem, RecordProblem::kHeaderIncomplete);
}

TEST(WalPayloadTest, EntryRoundTrip) {
  raft::Entry entry{Term(3), Index(99), raft::EntryType::kConfChange, std::string("a\0b", 3)};
  std::string bytes;
  EncodeEntry(entry, &bytes);
  raft::Entry got;
  ASSERT_TRUE(DecodeEntry(bytes, &got));
  EXPECT_EQ(got, entry);
  EXPECT_FALSE(DecodeEntry(bytes.substr(0, 16), &got));
  bytes[16] = 9;  // unknown entry type
  EXPECT_FALSE(DecodeEntry(bytes, &got));
}

TEST(WalPayloadTest, HardStateRoundTrip) {
  raft::HardState hs{Term(5), MemberId(0xabcdef), Index(42)};
  std::string bytes;
  EncodeHardState(hs, &bytes);
  raft::HardState got;
  ASSERT_TRUE(DecodeHardState(bytes, &got));
  EXPECT_EQ(got, hs);
  EXPECT_FALSE(DecodeHardState(bytes + "x", &got));
}

TEST(WalPayloadTest, SnapshotRoundTrip) {
  raft::SnapshotMetadata meta;
  meta.index = Index(10);
  meta.term = Term(2);
  meta.conf_state.voters = {MemberId(1), MemberId(2)};
  meta.conf_state.learners = {MemberId(3)};
  std::string bytes;
  EncodeSnapshot(meta, &bytes);
  raft::SnapshotMetadata got;
  ASSERT_TRUE(DecodeSnapshot(bytes, &got));
  EXPECT_EQ(got, meta);
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(DecodeSnapshot(bytes.substr(0, n), &got));
  EXPECT_FALSE(DecodeSnapshot(bytes + "x", &got));
  // A huge count with few bytes behind it is refused before anything is reserved.
  std::string huge = bytes.substr(0, 16) + std::string("\xff\xff\xff\xff\x0f", 5);
  EXPECT_FALSE(DecodeSnapshot(huge, &got));
}

TEST(WalSegmentNameTest, RoundTripAndRejects) {
  EXPECT_EQ(SegmentName(1, 0x1f), "0000000000000001-000000000000001f.wal");
  auto parsed = ParseSegmentName(SegmentName(0xdeadbeef, 42));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->sequence, 0xdeadbeefu);
  EXPECT_EQ(parsed->first_index, 42u);
  for (const char* bad :
       {"", "wal.lock", "0000000000000001-000000000000001f.wal.tmp",
        "000000000000000G-000000000000001f.wal", "0000000000000001_000000000000001f.wal",
        "0000000000000001-000000000000001F.wal"}) {
    EXPECT_FALSE(ParseSegmentName(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace dolmen::wal
