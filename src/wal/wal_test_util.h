// Helpers shared by the WAL tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "raft/types.h"
#include "wal/wal.h"

namespace dolmen::wal::testing {

inline raft::Entry MakeEntry(uint64_t index, uint64_t term, std::string data = "") {
  if (data.empty()) data = "entry-" + std::to_string(index) + "-term-" + std::to_string(term);
  return raft::Entry{Term(term), Index(index), raft::EntryType::kNormal, std::move(data)};
}

// Entries [first, last] of one term.
inline std::vector<raft::Entry> MakeEntries(uint64_t first, uint64_t last, uint64_t term) {
  std::vector<raft::Entry> out;
  for (uint64_t i = first; i <= last; ++i) out.push_back(MakeEntry(i, term));
  return out;
}

inline raft::HardState MakeHardState(uint64_t term, uint64_t vote, uint64_t commit) {
  return raft::HardState{Term(term), MemberId(vote), Index(commit)};
}

inline std::vector<uint64_t> Indexes(const std::vector<raft::Entry>& entries) {
  std::vector<uint64_t> out;
  for (const auto& e : entries) out.push_back(e.index.value());
  return out;
}

inline std::unique_ptr<Wal> MustCreate(io::FileSystem* fs, const std::string& dir,
                                       const Options& options = {}, std::string metadata = "meta") {
  auto wal = Wal::Create(fs, dir, std::move(metadata), options);
  CHECK(wal.ok()) << wal.status().ToString();
  return std::move(wal).value();
}

// Opens and returns both halves; fails the test (and CHECKs) if Open fails.
inline std::pair<std::unique_ptr<Wal>, Recovered> MustOpen(io::FileSystem* fs,
                                                           const std::string& dir,
                                                           const Options& options = {}) {
  auto opened = Wal::Open(fs, dir, options);
  CHECK(opened.ok()) << opened.status().ToString();
  return std::move(opened).value();
}

}  // namespace dolmen::wal::testing
