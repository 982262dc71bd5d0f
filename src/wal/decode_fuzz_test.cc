#include "wal/decode_fuzz.h"

#include <gtest/gtest.h>

#include <random>

#include "wal/payload.h"
#include "wal/record.h"

namespace dolmen::wal {
namespace {

// A valid segment to mutate: random inputs alone almost never get past the magic.
std::string ValidSegment() {
  std::string bytes;
  EncodeSegmentHeader({0, 1}, &bytes);
  EncodeRecord(RecordType::kMetadata, "meta", &bytes);
  std::string payload;
  for (uint64_t i = 1; i <= 5; ++i) {
    payload.clear();
    EncodeEntry({Term(1), Index(i), raft::EntryType::kNormal, "data"}, &payload);
    EncodeRecord(RecordType::kEntry, payload, &bytes);
  }
  payload.clear();
  raft::SnapshotMetadata meta;
  meta.index = Index(3);
  meta.term = Term(1);
  meta.conf_state.voters = {MemberId(1)};
  EncodeSnapshot(meta, &payload);
  EncodeRecord(RecordType::kSnapshot, payload, &bytes);
  payload.clear();
  EncodeHardState({Term(1), MemberId(1), Index(5)}, &payload);
  EncodeRecord(RecordType::kHardState, payload, &bytes);
  return bytes;
}

TEST(WalDecodeFuzzTest, ValidSegmentDecodes) {
  EXPECT_TRUE(FuzzDecodeSegment(ValidSegment()).ok());
}

TEST(WalDecodeFuzzTest, RandomBytesOnlyReturnStatus) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 2000; ++i) {
    std::string bytes(rng() % 300, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    FuzzDecodeSegment(bytes).IgnoreError();
  }
}

TEST(WalDecodeFuzzTest, MutatedSegmentsOnlyReturnStatus) {
  const std::string base = ValidSegment();
  std::mt19937_64 rng(2);
  int failures = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = base;
    int mutations = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < mutations; ++m) {
      switch (rng() % 4) {
        case 0:
          bytes[rng() % bytes.size()] ^= static_cast<char>(1 << (rng() % 8));
          break;
        case 1:
          bytes[rng() % bytes.size()] = static_cast<char>(rng());
          break;
        case 2:
          bytes.resize(rng() % (bytes.size() + 1));
          if (bytes.empty()) bytes.push_back(0x01);
          break;
        case 3: {
          size_t pos = rng() % bytes.size();
          std::string junk(rng() % 16, static_cast<char>(rng()));
          bytes = bytes.substr(0, pos) + junk + bytes.substr(pos);
          break;
        }
      }
    }
    Status s = FuzzDecodeSegment(bytes);
    if (!s.ok()) {
      ++failures;
      EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
    }
  }
  EXPECT_GT(failures, 0);
}

}  // namespace
}  // namespace dolmen::wal
