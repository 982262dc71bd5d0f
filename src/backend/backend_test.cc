#include "backend/backend.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "backend/lmdb/lmdb_backend.h"
#include "backend/memory_backend.h"
#include "base/crc32c.h"
#include "io/posix/temp_dir.h"

namespace dolmen::backend {
namespace {

using io::testing::TempDir;

enum class Kind { kMemory, kLmdb };

class BackendTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen(Options options = Options()) {
    backend_.reset();
    if (GetParam() == Kind::kMemory) {
      backend_ = NewMemoryBackend();
      return;
    }
    auto opened = OpenLmdb(dir_.path() + "/db", options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    backend_ = std::move(opened).value();
  }

  void PutAndCommit(std::string_view bucket, std::string_view key, std::string_view value) {
    auto txn = backend_->BeginWrite();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE((*txn)->Put(bucket, key, value).ok());
    ASSERT_TRUE((*txn)->Commit().ok());
  }

  std::optional<std::string> Read(std::string_view bucket, std::string_view key) {
    auto txn = backend_->BeginRead();
    CHECK(txn.ok());
    auto got = (*txn)->Get(bucket, key);
    CHECK(got.ok());
    return *got;
  }

  std::vector<std::pair<std::string, std::string>> ScanAll(ReadTxn& txn, std::string_view bucket,
                                                           std::string_view start,
                                                           std::string_view end) {
    std::vector<std::pair<std::string, std::string>> out;
    Status s = txn.Scan(bucket, start, end, [&](std::string_view k, std::string_view v) {
      out.emplace_back(k, v);
      return true;
    });
    CHECK(s.ok());
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Backend> backend_;
};

TEST_P(BackendTest, MissingBucketAndKeyReadAsAbsent) {
  EXPECT_EQ(Read("nope", "k"), std::nullopt);
  PutAndCommit("b", "k", "v");
  EXPECT_EQ(Read("b", "other"), std::nullopt);
  EXPECT_EQ(Read("b", "k"), "v");
}

TEST_P(BackendTest, WriteTxnSeesOwnWritesReadersDoNotUntilCommit) {
  auto w = backend_->BeginWrite();
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Put("b", "k", "v1").ok());
  EXPECT_EQ(*(*w)->Get("b", "k"), "v1");
  EXPECT_EQ(Read("b", "k"), std::nullopt);
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_EQ(Read("b", "k"), "v1");
}

TEST_P(BackendTest, ReadTxnIsASnapshot) {
  PutAndCommit("b", "k", "old");
  auto r = backend_->BeginRead();
  ASSERT_TRUE(r.ok());
  PutAndCommit("b", "k", "new");
  PutAndCommit("c", "k", "fresh bucket");
  EXPECT_EQ(*(*r)->Get("b", "k"), "old");
  EXPECT_EQ(*(*r)->Get("c", "k"), std::nullopt);
  r->reset();
  EXPECT_EQ(Read("b", "k"), "new");
  EXPECT_EQ(Read("c", "k"), "fresh bucket");
}

TEST_P(BackendTest, GetViewPointsIntoTheSnapshotUntilItEnds) {
  PutAndCommit("b", "k", "old");
  auto r = backend_->BeginRead();
  ASSERT_TRUE(r.ok());
  auto view = (*r)->GetView("b", "k");
  ASSERT_TRUE(view.ok());
  ASSERT_TRUE(view->has_value());
  // Later commits neither change nor move what the open snapshot's view shows.
  for (int i = 0; i < 5; ++i) PutAndCommit("b", "k", std::string(300, 'n'));
  EXPECT_EQ(**view, "old");
  EXPECT_EQ(*(*r)->GetView("b", "missing"), std::nullopt);
  EXPECT_EQ(*(*r)->GetView("nope", "k"), std::nullopt);
  auto w = backend_->BeginWrite();
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Put("b", "own", "uncommitted").ok());
  EXPECT_EQ(**(*w)->GetView("b", "own"), "uncommitted");
}

TEST_P(BackendTest, AbortedTxnLeavesNoTrace) {
  {
    auto w = backend_->BeginWrite();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Put("new_bucket", "k", "v").ok());
  }
  EXPECT_EQ(Read("new_bucket", "k"), std::nullopt);
  PutAndCommit("new_bucket", "k", "v2");
  EXPECT_EQ(Read("new_bucket", "k"), "v2");
}

TEST_P(BackendTest, OnlyOneWriter) {
  auto w = backend_->BeginWrite();
  ASSERT_TRUE(w.ok());
  auto second = backend_->BeginWrite();
  EXPECT_EQ(second.status().code(), Code::kFailedPrecondition);
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_EQ((*w)->Put("b", "k", "v").code(), Code::kFailedPrecondition);
  auto third = backend_->BeginWrite();
  EXPECT_TRUE(third.ok());
}

TEST_P(BackendTest, DeleteAndScanRanges) {
  auto w = backend_->BeginWrite();
  ASSERT_TRUE(w.ok());
  for (std::string k : {"a", "b", "ba", "c", "d"}) ASSERT_TRUE((*w)->Put("b", k, "v" + k).ok());
  ASSERT_TRUE((*w)->Put("other", "bb", "x").ok());
  ASSERT_TRUE((*w)->Delete("b", "c").ok());
  ASSERT_TRUE((*w)->Delete("b", "missing").ok());
  ASSERT_TRUE((*w)->Delete("no_bucket", "k").ok());
  using KVs = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(ScanAll(**w, "b", "b", "c"), (KVs{{"b", "vb"}, {"ba", "vba"}}));
  ASSERT_TRUE((*w)->Commit().ok());

  auto r = backend_->BeginRead();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ScanAll(**r, "b", "", ""), (KVs{{"a", "va"}, {"b", "vb"}, {"ba", "vba"}, {"d", "vd"}}));
  EXPECT_EQ(ScanAll(**r, "b", "bb", ""), (KVs{{"d", "vd"}}));
  EXPECT_EQ(ScanAll(**r, "b", "", "b"), (KVs{{"a", "va"}}));
  EXPECT_EQ(ScanAll(**r, "none", "", ""), KVs{});
  int calls = 0;
  ASSERT_TRUE(
      (*r)->Scan("b", "", "", [&](std::string_view, std::string_view) { return ++calls < 2; })
          .ok());
  EXPECT_EQ(calls, 2);
}

TEST_P(BackendTest, BinaryKeysAndValuesSortBytewise) {
  std::string zero("\0\x01", 2), high("\xff", 1), empty_value;
  PutAndCommit("b", high, std::string("\0v", 2));
  PutAndCommit("b", zero, empty_value);
  auto r = backend_->BeginRead();
  ASSERT_TRUE(r.ok());
  auto all = ScanAll(**r, "b", "", "");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].first, zero);
  EXPECT_EQ(all[0].second, "");
  EXPECT_EQ(all[1].first, high);
  EXPECT_EQ(all[1].second, std::string("\0v", 2));
}

TEST_P(BackendTest, RejectsBadKeySizes) {
  auto w = backend_->BeginWrite();
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->Put("b", "", "v").code(), Code::kInvalidArgument);
  EXPECT_EQ((*w)->Put("b", std::string(kMaxKeyBytes + 1, 'k'), "v").code(), Code::kInvalidArgument);
  EXPECT_TRUE((*w)->Put("b", std::string(kMaxKeyBytes, 'k'), "v").ok());
}

TEST_P(BackendTest, ConcurrentReadersSeeWholeCommits) {
  // The writer keeps two keys equal in every commit; readers must never see them differ.
  PutAndCommit("b", "x", "0");
  PutAndCommit("b", "y", "0");
  std::atomic<bool> stop = false;
  std::vector<std::thread> readers;
  std::atomic<int> bad = 0;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      while (!stop) {
        auto r = backend_->BeginRead();
        CHECK(r.ok());
        auto x = (*r)->Get("b", "x");
        auto y = (*r)->Get("b", "y");
        if (!x.ok() || !y.ok() || *x != *y) ++bad;
      }
    });
  }
  for (int i = 1; i <= 300; ++i) {
    auto w = backend_->BeginWrite();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Put("b", "x", std::to_string(i)).ok());
    ASSERT_TRUE((*w)->Put("b", "y", std::to_string(i)).ok());
    ASSERT_TRUE((*w)->Commit().ok());
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad, 0);
}

TEST_P(BackendTest, SizesGrowWithData) {
  uint64_t before = backend_->SizeInUseBytes();
  auto w = backend_->BeginWrite();
  ASSERT_TRUE(w.ok());
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE((*w)->Put("b", "key" + std::to_string(i), std::string(100, 'v')).ok());
  }
  ASSERT_TRUE((*w)->Commit().ok());
  ASSERT_TRUE(backend_->Sync().ok());
  EXPECT_GT(backend_->SizeInUseBytes(), before);
  EXPECT_GE(backend_->SizeBytes(), backend_->SizeInUseBytes());
}

TEST_P(BackendTest, BucketsAndClearBucket) {
  PutAndCommit("b", "k1", "v1");
  PutAndCommit("a", "k2", "v2");
  auto txn = backend_->BeginWrite();
  ASSERT_TRUE(txn.ok());
  ASSERT_TRUE((*txn)->Put("c", "k3", "v3").ok());  // created by this txn
  auto names = (*txn)->Buckets();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_TRUE((*txn)->ClearBucket("b").ok());
  ASSERT_TRUE((*txn)->ClearBucket("missing").ok());
  EXPECT_EQ((*(*txn)->Get("b", "k1")), std::nullopt);
  ASSERT_TRUE((*txn)->Commit().ok());
  EXPECT_EQ(Read("b", "k1"), std::nullopt);
  EXPECT_EQ(Read("a", "k2"), "v2");
  auto reader = backend_->BeginRead();
  ASSERT_TRUE(reader.ok());
  auto after = (*reader)->Buckets();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, (std::vector<std::string>{"a", "b", "c"}));  // b stays, empty
}

// The snapshot path: an image written by CopyTo, opened by the matching opener, replaces the
// contents of another backend in one txn.
TEST_P(BackendTest, CopyToImageReplacesAnotherBackend) {
  PutAndCommit("key", "r1", "one");
  PutAndCommit("key", "r2", "two");
  PutAndCommit("meta", "ci", "7");
  const std::string image_path = dir_.path() + "/image.db";
  ASSERT_TRUE(backend_->CopyTo(image_path).ok());
  EXPECT_EQ(backend_->CopyTo(image_path).code(), Code::kAlreadyExists);
  PutAndCommit("key", "r3", "after the copy");  // not in the image

  auto image =
      GetParam() == Kind::kMemory ? OpenMemoryImage(image_path) : OpenLmdbImage(image_path);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  auto image_read = (*image)->BeginRead();
  ASSERT_TRUE(image_read.ok());
  EXPECT_EQ(ScanAll(**image_read, "key", "", "").size(), 2u);

  TempDir other_dir;
  std::unique_ptr<Backend> other;
  if (GetParam() == Kind::kMemory) {
    other = NewMemoryBackend();
  } else {
    auto opened = OpenLmdb(other_dir.path() + "/db", Options());
    ASSERT_TRUE(opened.ok());
    other = std::move(opened).value();
  }
  {
    auto w = other->BeginWrite();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Put("key", "old", "gone after replace").ok());
    ASSERT_TRUE((*w)->Put("lease", "l", "gone too").ok());
    ASSERT_TRUE((*w)->Commit().ok());
  }
  auto before = other->BeginRead();  // a reader from before keeps its snapshot
  ASSERT_TRUE(before.ok());
  {
    auto w = other->BeginWrite();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(ReplaceContents(**image_read, **w).ok());
    ASSERT_TRUE((*w)->Commit().ok());
  }
  auto after = other->BeginRead();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(ScanAll(**after, "key", "", ""),
            (std::vector<std::pair<std::string, std::string>>{{"r1", "one"}, {"r2", "two"}}));
  EXPECT_TRUE(ScanAll(**after, "lease", "", "").empty());
  EXPECT_EQ(*(*after)->Get("meta", "ci"), "7");
  EXPECT_EQ(*(*before)->Get("key", "old"), "gone after replace");
}

TEST(BackendImageTest, GarbageImageIsRefused) {
  TempDir dir;
  const std::string path = dir.path() + "/garbage.db";
  std::ofstream(path) << std::string(8192, 'x');
  EXPECT_FALSE(OpenLmdbImage(path).ok());
  EXPECT_EQ(OpenMemoryImage(path).status().code(), Code::kCorruption);
  EXPECT_FALSE(OpenLmdbImage(dir.path() + "/missing.db").ok());
}

// Every bucket, key and value of a backend, for comparing contents before and after.
using Contents = std::map<std::string, std::vector<std::pair<std::string, std::string>>>;
Contents AllContents(Backend& backend) {
  auto txn = backend.BeginRead();
  CHECK(txn.ok());
  Contents out;
  auto buckets = (*txn)->Buckets();
  CHECK(buckets.ok());
  for (const std::string& bucket : *buckets) {
    auto& rows = out[bucket];
    CHECK((*txn)
              ->Scan(bucket, "", "",
                     [&](std::string_view k, std::string_view v) {
                       rows.emplace_back(k, v);
                       return true;
                     })
              .ok());
  }
  return out;
}

uint32_t HashOf(Backend& backend, const HashSkip& skip = nullptr) {
  auto txn = backend.BeginRead();
  CHECK(txn.ok());
  auto hash = HashContents(**txn, skip);
  CHECK(hash.ok());
  return *hash;
}

TEST_P(BackendTest, DefragmentKeepsContentsAndWritesContinue) {
  for (int i = 0; i < 200; ++i) PutAndCommit("b", "k" + std::to_string(i), std::string(100, 'x'));
  PutAndCommit("meta", "m", "1");
  {
    auto txn = backend_->BeginWrite();
    ASSERT_TRUE(txn.ok());
    for (int i = 0; i < 200; i += 2) ASSERT_TRUE((*txn)->Delete("b", "k" + std::to_string(i)).ok());
    ASSERT_TRUE((*txn)->Commit().ok());
  }
  Contents before = AllContents(*backend_);
  uint32_t hash_before = HashOf(*backend_);
  ASSERT_EQ(before["b"].size(), 100u);
  Status s = backend_->Defragment();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(AllContents(*backend_), before);
  EXPECT_EQ(HashOf(*backend_), hash_before);
  PutAndCommit("new", "k", "v");  // a new bucket after reopening the handles
  PutAndCommit("b", "k0", "again");
  EXPECT_EQ(Read("new", "k"), "v");
  EXPECT_EQ(Read("b", "k0"), "again");
  EXPECT_EQ(Read("b", "k1"), std::string(100, 'x'));
}

TEST_P(BackendTest, DefragmentRefusedWhileAWriteTxnIsOpen) {
  auto txn = backend_->BeginWrite();
  ASSERT_TRUE(txn.ok());
  EXPECT_EQ(backend_->Defragment().code(), Code::kFailedPrecondition);
  ASSERT_TRUE((*txn)->Put("b", "k", "v").ok());
  ASSERT_TRUE((*txn)->Commit().ok());
  EXPECT_EQ(Read("b", "k"), "v");
}

// A defragmentation in two steps: writes committed while it copies, and between the copy and the
// swap, are all in the swapped-in file (the journal replay). Seeded random puts, deletes and
// bucket clears, checked against a model of the contents.
TEST_P(BackendTest, PreparedDefragmentKeepsEveryWriteCommittedMeanwhile) {
  const char* env = std::getenv("DOLMEN_TEST_SEED");
  const unsigned seed = env != nullptr ? static_cast<unsigned>(std::strtoul(env, nullptr, 10))
                                       : static_cast<unsigned>(std::random_device{}());
  SCOPED_TRACE("replay: DOLMEN_TEST_SEED=" + std::to_string(seed) +
               " build/src/backend/dolmen_backend_test"
               " --gtest_filter='*PreparedDefragmentKeepsEveryWriteCommittedMeanwhile*'");
  std::printf("seed %u\n", seed);
  using Model = std::map<std::string, std::map<std::string, std::string>>;
  Model model;
  {
    auto txn = backend_->BeginWrite();
    ASSERT_TRUE(txn.ok());
    for (int i = 0; i < 2000; ++i) {
      const std::string key = "k" + std::to_string(i);
      const std::string value(400, static_cast<char>('a' + i % 26));
      ASSERT_TRUE((*txn)->Put("a", key, value).ok());
      if (i % 2 == 1) model["a"][key] = value;
    }
    ASSERT_TRUE((*txn)->Commit().ok());
    txn = backend_->BeginWrite();
    ASSERT_TRUE(txn.ok());
    for (int i = 0; i < 2000; i += 2)
      ASSERT_TRUE((*txn)->Delete("a", "k" + std::to_string(i)).ok());
    ASSERT_TRUE((*txn)->Commit().ok());
  }
  std::mt19937 rng(seed);
  // One random txn, applied to the backend and (once committed) to the model.
  auto random_txn = [&](std::mt19937& r, Model& m) {
    auto txn = backend_->BeginWrite();
    CHECK(txn.ok()) << txn.status().ToString();
    Model next = m;
    const int ops = 1 + static_cast<int>(r() % 5);
    for (int i = 0; i < ops; ++i) {
      const std::string bucket = r() % 3 == 0 ? "b" : "a";
      const std::string key = "k" + std::to_string(r() % 2500);
      switch (r() % 10) {
        case 0:
          if (bucket == "b") {
            CHECK((*txn)->ClearBucket(bucket).ok());
            if (auto it = next.find(bucket); it != next.end()) it->second.clear();
            break;
          }
          [[fallthrough]];
        case 1:
        case 2:
          CHECK((*txn)->Delete(bucket, key).ok());
          if (auto it = next.find(bucket); it != next.end()) it->second.erase(key);
          break;
        default: {
          const std::string value = "v" + std::to_string(r());
          CHECK((*txn)->Put(bucket, key, value).ok());
          next[bucket][key] = value;
        }
      }
    }
    CHECK((*txn)->Commit().ok());
    m = std::move(next);
  };
  // The writer runs while the copy is made; its rng is its own, seeded from the test's.
  std::mt19937 writer_rng(rng());
  Model writer_model = model;
  std::atomic<bool> preparing{true};
  std::thread writer([&] {
    for (int i = 0; i < 2000 && (i < 50 || preparing.load()); ++i) {
      random_txn(writer_rng, writer_model);
    }
  });
  auto prepared = backend_->PrepareDefragment();
  preparing = false;
  writer.join();
  ASSERT_TRUE(prepared.ok()) << prepared.status().ToString();
  model = std::move(writer_model);
  for (int i = 0; i < 50; ++i) random_txn(rng, model);  // between the copy and the swap
  // And while Finish runs on another thread: the switch to the copy falls between two of these
  // txns (made by the next one as it begins, or by Finish while none is open).
  std::atomic<bool> finishing{true};
  Status s;
  std::thread finisher([&] {
    s = (*prepared)->Finish();
    finishing = false;
  });
  for (int i = 0; i < 2000 && (i < 20 || finishing.load()); ++i) random_txn(rng, model);
  finisher.join();
  ASSERT_TRUE(s.ok()) << s.ToString();
  Contents got = AllContents(*backend_);
  EXPECT_EQ(got.size(), model.size());
  for (const auto& [bucket, rows] : model) {
    std::vector<std::pair<std::string, std::string>> want(rows.begin(), rows.end());
    EXPECT_EQ(got[bucket], want) << "bucket " << bucket;
  }
  // Writes go on in the new file, and only one defragmentation runs at a time.
  random_txn(rng, model);
  auto first = backend_->PrepareDefragment();
  ASSERT_TRUE(first.ok());
  if (GetParam() == Kind::kLmdb) {
    EXPECT_EQ(backend_->PrepareDefragment().status().code(), Code::kFailedPrecondition);
  }
  first->reset();  // abandoned: the backend is as it was
  EXPECT_TRUE(backend_->Defragment().ok());
  got = AllContents(*backend_);
  const std::vector<std::pair<std::string, std::string>> want_a(model["a"].begin(),
                                                                model["a"].end());
  EXPECT_EQ(got["a"], want_a);
}

TEST_P(BackendTest, HashCoversBucketsKeysValuesAndHonoursSkip) {
  PutAndCommit("a", "k", "v");
  PutAndCommit("meta", "local", "1");
  uint32_t full = HashOf(*backend_);
  auto skip_local = [](std::string_view b, std::string_view k) {
    return b == "meta" && k == "local";
  };
  uint32_t skipped = HashOf(*backend_, skip_local);
  EXPECT_NE(full, skipped);
  PutAndCommit("meta", "local", "2");  // a skipped pair does not change the hash
  EXPECT_EQ(HashOf(*backend_, skip_local), skipped);
  EXPECT_NE(HashOf(*backend_), full);
  PutAndCommit("a", "k", "w");
  EXPECT_NE(HashOf(*backend_, skip_local), skipped);
  // The definition, spelled out: CRC-32C over "a" "k" "w" "meta" (the skipped pair left out).
  EXPECT_EQ(HashOf(*backend_, skip_local), crc32c::Value(std::string_view("akwmeta")));
}

TEST(BackendHashTest, SameContentsSameHashOnEveryImplementation) {
  TempDir dir;
  auto lmdb = OpenLmdb(dir.path() + "/db", Options());
  ASSERT_TRUE(lmdb.ok());
  auto memory = NewMemoryBackend();
  for (Backend* b : {lmdb->get(), memory.get()}) {
    auto txn = b->BeginWrite();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE((*txn)->Put("key", "r1", "v1").ok());
    ASSERT_TRUE((*txn)->Put("lease", "l", "").ok());
    ASSERT_TRUE((*txn)->Commit().ok());
  }
  EXPECT_EQ(HashOf(**lmdb), HashOf(*memory));
  EXPECT_EQ(crc32c::Value(std::string_view("123456789")), 0xE3069283u);  // the CRC-32C check
}

INSTANTIATE_TEST_SUITE_P(All, BackendTest, ::testing::Values(Kind::kMemory, Kind::kLmdb),
                         [](const auto& info) {
                           return info.param == Kind::kMemory ? "Memory" : "Lmdb";
                         });

// `batches` commits of 256 keys ("k<batch*1000+i>" in bucket "key") with 4000-byte values: about
// 1 MiB each, enough for a defragmentation to copy in several steps.
void FillBatchesOf4000ByteValues(Backend& backend, int batches) {
  for (int batch = 0; batch < batches; ++batch) {
    auto w = backend.BeginWrite();
    ASSERT_TRUE(w.ok());
    for (int i = 0; i < 256; ++i) {
      std::string key = "k" + std::to_string(batch * 1000 + i);
      ASSERT_TRUE((*w)->Put("key", key, std::string(4000, static_cast<char>('a' + i % 26))).ok());
    }
    ASSERT_TRUE((*w)->Commit().ok());
  }
}

class BackendLmdbTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

TEST_F(BackendLmdbTest, DataSurvivesReopen) {
  std::string path = dir_.path() + "/db";
  {
    auto b = OpenLmdb(path, Options());
    ASSERT_TRUE(b.ok());
    auto w = (*b)->BeginWrite();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Put("meta", "k", "v").ok());
    ASSERT_TRUE((*w)->Put("key", "k2", "v2").ok());
    ASSERT_TRUE((*w)->Commit().ok());
    ASSERT_TRUE((*b)->Sync().ok());
  }
  auto b = OpenLmdb(path, Options());
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  auto r = (*b)->BeginRead();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*(*r)->Get("meta", "k"), "v");
  EXPECT_EQ(*(*r)->Get("key", "k2"), "v2");
}

constexpr uint64_t kPage = 4096;

Status PutAll(Backend& backend, const std::vector<std::pair<std::string, std::string>>& puts) {
  ASSIGN_OR_RETURN(auto w, backend.BeginWrite());
  for (const auto& [key, value] : puts) {
    size_t slash = key.find('/');
    RETURN_IF_ERROR(w->Put(key.substr(0, slash), key.substr(slash + 1), value));
  }
  return w->Commit();
}

// The sizes count the pages of the latest state, as etcd counts its file's pages in use:
// LMDB's copy-on-write leaves the pages of the last transactions on its free list, which
// grows the file by several pages a bucket over a few commits, and a small quota must not
// count them (etcd 3.4 takes 64 to 124 puts of 100 bytes under a 53248-byte quota).
TEST_F(BackendLmdbTest, ManySmallCommitsCountTheirPagesNotTheFreeOnes) {
  const std::string path = dir_.path() + "/db";
  auto b = OpenLmdb(path, Options());
  ASSERT_TRUE(b.ok());
  Backend& backend = **b;
  // What the member writes for each put: the key's revision, the applied index, and a record
  // in a third bucket now and then; a few hundred bytes in all, one leaf page each bucket.
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(PutAll(backend, {{"key/" + std::to_string(i), "v"},
                                 {"meta/consistent_index", std::to_string(i)},
                                 {"members/m" + std::to_string(i % 3), "x"}})
                    .ok());
    // 2 meta pages, the free-page DB's and the main DB's leaves, a leaf for each bucket.
    ASSERT_LE(backend.SizeBytes(), 7 * kPage) << "commit " << i;
    ASSERT_LE(backend.SizeInUseBytes(), backend.SizeBytes());
  }
  EXPECT_GE(backend.SizeInUseBytes(), 6 * kPage);  // no page left out
  EXPECT_GT(std::filesystem::file_size(path + "/data.mdb"), backend.SizeBytes());
}

// SizeBytes is etcd's dbSize: deleting and compacting do not lower it (etcd's file keeps its
// free pages until defragmented), defragmenting lowers it to the size in use. A reopen starts
// it again from the size in use. SizeInUseBytes follows the data down.
TEST_F(BackendLmdbTest, SizeBytesIsThePeakInUseUntilDefragmentedOrReopened) {
  const std::string path = dir_.path() + "/db";
  const std::string file = path + "/data.mdb";
  auto b = OpenLmdb(path, Options());
  ASSERT_TRUE(b.ok());
  uint64_t fresh = (*b)->SizeBytes();
  EXPECT_EQ((*b)->SizeInUseBytes(), fresh);
  EXPECT_LE(fresh, 3 * kPage);  // meta pages and the empty main DB's leaf
  for (int batch = 0; batch < 4; ++batch) {
    std::vector<std::pair<std::string, std::string>> puts;
    for (int i = 0; i < 200; ++i) {
      puts.emplace_back("key/" + std::to_string(batch * 1000 + i), std::string(1000, 'v'));
    }
    ASSERT_TRUE(PutAll(**b, puts).ok());
  }
  const uint64_t peak = (*b)->SizeBytes();
  EXPECT_GT(peak, 800u * 1000);
  EXPECT_EQ((*b)->SizeInUseBytes(), peak);  // nothing freed yet
  EXPECT_LE(peak, std::filesystem::file_size(file));

  {
    auto w = (*b)->BeginWrite();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->ClearBucket("key").ok());
    ASSERT_TRUE((*w)->Put("key", "small", "v").ok());
    ASSERT_TRUE((*w)->Commit().ok());
  }
  EXPECT_LT((*b)->SizeInUseBytes(), 8 * kPage);
  EXPECT_EQ((*b)->SizeBytes(), peak);
  ASSERT_TRUE(PutAll(**b, {{"key/more", std::string(1000, 'w')}}).ok());  // reuses free pages
  EXPECT_EQ((*b)->SizeBytes(), peak);

  ASSERT_TRUE((*b)->Defragment().ok());
  // The compact copy has no free pages: the file is exactly the pages in use.
  EXPECT_EQ((*b)->SizeBytes(), (*b)->SizeInUseBytes());
  EXPECT_EQ((*b)->SizeBytes(), std::filesystem::file_size(file));
  EXPECT_LT((*b)->SizeBytes(), 8 * kPage);

  // Again, then reopen after the space was freed.
  ASSERT_TRUE(PutAll(**b, {{"key/big", std::string(100000, 'b')}}).ok());
  ASSERT_TRUE(PutAll(**b, {{"key/big", "b"}}).ok());
  EXPECT_GT((*b)->SizeBytes(), 100000u);
  EXPECT_LT((*b)->SizeInUseBytes(), 8 * kPage);
  ASSERT_TRUE((*b)->Sync().ok());
  b->reset();
  b = OpenLmdb(path, Options());
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ((*b)->SizeBytes(), (*b)->SizeInUseBytes());
  EXPECT_LT((*b)->SizeBytes(), 8 * kPage);
}

// Resident pages of the data file's mapping, from /proc/self/smaps (0 if not mapped).
uint64_t MappedRssKb(const std::string& file) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool in_file = false;
  uint64_t kb = 0;
  while (std::getline(smaps, line)) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
        line.find('-') < line.find(' ')) {
      in_file = line.size() >= file.size() &&
                line.compare(line.size() - file.size(), file.size(), file) == 0;
    } else if (in_file && line.rfind("Rss:", 0) == 0) {
      kb += std::stoull(line.substr(4));
    }
  }
  return kb;
}

TEST_F(BackendLmdbTest, SyncDropsTheFileMappingFromRss) {
  auto opened = OpenLmdb(dir_.path() + "/db", Options());
  ASSERT_TRUE(opened.ok());
  std::unique_ptr<Backend> backend_ = std::move(opened).value();
  const std::string value(2000, 'v');
  {
    auto txn = backend_->BeginWrite();
    ASSERT_TRUE(txn.ok());
    for (int i = 0; i < 2000; ++i)
      ASSERT_TRUE((*txn)->Put("b", "k" + std::to_string(i), value).ok());
    ASSERT_TRUE((*txn)->Commit().ok());
  }
  {
    auto txn = backend_->BeginRead();  // touch every page through the map
    ASSERT_TRUE(txn.ok());
    size_t n = 0;
    ASSERT_TRUE((*txn)->Scan("b", "", "", [&](auto, auto v) { return n += v.size(), true; }).ok());
    EXPECT_EQ(n, 2000u * value.size());
  }
  const std::string file = std::filesystem::canonical(dir_.path() + "/db/data.mdb").string();
  const uint64_t before = MappedRssKb(file);
  EXPECT_GT(before, 2000u) << "reading 4 MB through the map should leave it resident";
  ASSERT_TRUE(backend_->Sync().ok());
  EXPECT_LT(MappedRssKb(file), before / 4);
  // Nothing was lost: the pages come back from the page cache.
  auto txn = backend_->BeginRead();
  ASSERT_TRUE(txn.ok());
  EXPECT_EQ(*(*txn)->Get("b", "k1999"), value);
}

TEST_F(BackendLmdbTest, MapFullIsNoSpace) {
  Options options;
  options.map_size_bytes = 1 << 20;
  auto b = OpenLmdb(dir_.path() + "/db", options);
  ASSERT_TRUE(b.ok());
  auto w = (*b)->BeginWrite();
  ASSERT_TRUE(w.ok());
  Status status;
  for (int i = 0; i < 10000 && status.ok(); ++i) {
    status = (*w)->Put("b", "key" + std::to_string(i), std::string(1000, 'v'));
  }
  if (status.ok()) status = (*w)->Commit();
  EXPECT_EQ(status.code(), Code::kNoSpace) << status.ToString();
}

TEST_F(BackendLmdbTest, GarbageFileIsCorruptionNamingTheFile) {
  std::string path = dir_.path() + "/db";
  std::filesystem::create_directories(path);
  {
    std::ofstream out(path + "/data.mdb", std::ios::binary);
    std::string junk(16384, '\0');
    for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>(i * 131 + 7);
    out << junk;
  }
  auto b = OpenLmdb(path, Options());
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Code::kCorruption) << b.status().ToString();
  EXPECT_NE(b.status().message().find(path + "/data.mdb"), std::string::npos);
}

// A power cut before the first commit reached the disk can leave the data file's size with
// none of its bytes. It holds nothing: it is created again rather than refused; a file with a
// single non-zero byte is still LMDB's to judge.
TEST_F(BackendLmdbTest, AllZeroFileNeverCommittedIsCreatedAgain) {
  std::string path = dir_.path() + "/db";
  std::filesystem::create_directories(path);
  { std::ofstream(path + "/data.mdb", std::ios::binary) << std::string(8192, '\0'); }
  auto b = OpenLmdb(path, Options());
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  {
    auto w = (*b)->BeginWrite();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Put("bucket", "k", "v").ok());
    ASSERT_TRUE((*w)->Commit().ok());
  }
  b->reset();

  std::string almost(8192, '\0');
  almost[5000] = 1;
  { std::ofstream(path + "/data.mdb", std::ios::binary | std::ios::trunc) << almost; }
  auto refused = OpenLmdb(path, Options());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kCorruption) << refused.status().ToString();
}

TEST_F(BackendLmdbTest, DefragmentShrinksTheFileToWhatIsInUse) {
  std::string path = dir_.path() + "/db";
  auto b = OpenLmdb(path, Options());
  ASSERT_TRUE(b.ok());
  Backend& backend = **b;
  // ~8 MiB of values, then all but every 50th deleted: the file keeps its size as free pages.
  ASSERT_NO_FATAL_FAILURE(FillBatchesOf4000ByteValues(backend, 8));
  {
    auto w = backend.BeginWrite();
    ASSERT_TRUE(w.ok());
    for (int batch = 0; batch < 8; ++batch) {
      for (int i = 0; i < 256; ++i) {
        if (i % 50 == 0) continue;
        ASSERT_TRUE((*w)->Delete("key", "k" + std::to_string(batch * 1000 + i)).ok());
      }
    }
    ASSERT_TRUE((*w)->Commit().ok());
  }
  Contents before = AllContents(backend);
  uint64_t size_before = backend.SizeBytes();
  uint64_t in_use_before = backend.SizeInUseBytes();
  ASSERT_GT(size_before, 8u << 20);
  ASSERT_LT(in_use_before * 4, size_before);
  Status s = backend.Defragment();
  ASSERT_TRUE(s.ok()) << s.ToString();
  uint64_t size_after = backend.SizeBytes();
  EXPECT_LE(size_after, in_use_before + 4 * 4096) << "before " << size_before;
  EXPECT_LT(size_after * 4, size_before);
  EXPECT_EQ(AllContents(backend), before);
  for (const auto& entry : std::filesystem::directory_iterator(path)) {
    EXPECT_EQ(entry.path().filename().string().find("data.mdb.defrag"), std::string::npos)
        << entry.path();
  }
  // Durable and reopenable as it is.
  ASSERT_TRUE(backend.Sync().ok());
  b->reset();
  auto again = OpenLmdb(path, Options());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(AllContents(**again), before);
}

// The copy is written at a pace through a pipe (docs/maintenance.md, "The paced copy"). A disk
// error midway (here the file size limit: writes past 1 MiB fail with EFBIG) fails the
// defragmentation with that error, leaves the data file byte for byte as it was and no copy
// behind, and a later defragmentation succeeds.
TEST_F(BackendLmdbTest, ACopyFailingMidwayLeavesTheDataFileAsItWasAndReportsTheError) {
  std::string path = dir_.path() + "/db";
  auto b = OpenLmdb(path, Options());
  ASSERT_TRUE(b.ok());
  Backend& backend = **b;
  // ~4 MiB: a copy of several paced steps.
  ASSERT_NO_FATAL_FAILURE(FillBatchesOf4000ByteValues(backend, 4));
  ASSERT_TRUE(backend.Sync().ok());
  const Contents before = AllContents(backend);
  auto file_bytes = [&] {
    std::ifstream in(path + "/data.mdb", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string bytes_before = file_bytes();
  ASSERT_GT(bytes_before.size(), 2u << 20);

  struct rlimit saved;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);  // EFBIG, not the signal
  struct rlimit limited = saved;
  limited.rlim_cur = 1u << 20;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);
  Status s = backend.Defragment();
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  ::signal(SIGXFSZ, old_handler);

  EXPECT_EQ(s.code(), Code::kIoError) << s.ToString();
  EXPECT_NE(s.message().find("data.mdb.defrag"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("File too large"), std::string::npos) << s.message();
  EXPECT_EQ(file_bytes(), bytes_before);
  EXPECT_EQ(AllContents(backend), before);
  for (const auto& entry : std::filesystem::directory_iterator(path)) {
    EXPECT_EQ(entry.path().filename().string().find("data.mdb.defrag"), std::string::npos)
        << entry.path();
  }
  Status again = backend.Defragment();
  ASSERT_TRUE(again.ok()) << again.ToString();
  EXPECT_EQ(AllContents(backend), before);
}

TEST_F(BackendLmdbTest, StrayDefragmentCopyIsIgnoredAtOpen) {
  std::string path = dir_.path() + "/db";
  {
    auto b = OpenLmdb(path, Options());
    ASSERT_TRUE(b.ok());
    auto w = (*b)->BeginWrite();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Put("b", "k", "v").ok());
    ASSERT_TRUE((*w)->Commit().ok());
    ASSERT_TRUE((*b)->Sync().ok());
  }
  // What a crash between writing a copy and renaming it leaves: a partial copy and its lock
  // file (older versions named the copy without a number).
  for (const char* name : {"/data.mdb.defrag", "/data.mdb.defrag-3", "/data.mdb.defrag-3-lock"}) {
    std::ofstream(path + name, std::ios::binary) << std::string(5000, 'z');
  }
  auto b = OpenLmdb(path, Options());
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(path + "/data.mdb.defrag"));
  EXPECT_FALSE(std::filesystem::exists(path + "/data.mdb.defrag-3"));
  EXPECT_FALSE(std::filesystem::exists(path + "/data.mdb.defrag-3-lock"));
  auto r = (*b)->BeginRead();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*(*r)->Get("b", "k"), "v");
}

TEST_F(BackendLmdbTest, DefragmentDoesNotWaitForReadersAndConcurrentReadersSeeTheData) {
  auto b = OpenLmdb(dir_.path() + "/db", Options());
  ASSERT_TRUE(b.ok());
  Backend& backend = **b;
  {
    auto w = backend.BeginWrite();
    ASSERT_TRUE(w.ok());
    for (int i = 0; i < 500; ++i) {
      ASSERT_TRUE((*w)->Put("key", "k" + std::to_string(i), "v" + std::to_string(i)).ok());
    }
    ASSERT_TRUE((*w)->Commit().ok());
  }
  // A reader open across a whole defragmentation keeps reading its snapshot (of the old file,
  // kept open for it) and does not hold the defragmentation back.
  auto held = backend.BeginRead();
  ASSERT_TRUE(held.ok());
  Status first = backend.Defragment();
  EXPECT_TRUE(first.ok()) << first.ToString();
  {
    auto w = backend.BeginWrite();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Put("other", "after", "defrag").ok());
    ASSERT_TRUE((*w)->Commit().ok());
  }
  EXPECT_FALSE(*(*held)->Get("other", "after"));
  for (int i = 0; i < 500; ++i) {
    EXPECT_EQ(*(*held)->Get("key", "k" + std::to_string(i)), "v" + std::to_string(i));
  }
  held->reset();
  {
    auto r = backend.BeginRead();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*(*r)->Get("other", "after"), "defrag");
  }

  // Readers on other threads keep reading (and CopyTo keeps copying) while the backend is
  // defragmented again and again; every read is right.
  std::atomic<int> wrong{0}, reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      for (int round = 0; round < 300; ++round) {
        auto txn = backend.BeginRead();
        if (!txn.ok()) {
          ++wrong;
          continue;
        }
        int i = (round * 7 + t * 13) % 500;
        auto got = (*txn)->Get("key", "k" + std::to_string(i));
        if (!got.ok() || *got != "v" + std::to_string(i)) ++wrong;
        ++reads;
      }
    });
  }
  for (int round = 0; round < 10; ++round) {
    Status s = backend.Defragment();
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(reads.load(), 900);
  std::string image = dir_.path() + "/image.db";
  ASSERT_TRUE(backend.CopyTo(image).ok());
  auto copy = OpenLmdbImage(image);
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(AllContents(**copy), AllContents(backend));
}

// The swap holds the writer back only while it replays the last writes: between the switch to
// the copy and its rename over the data file, write txns commit (into the copy) and Sync waits
// for the rename. A crash at that point finds the old data file, whole, without those writes
// (the write-ahead log holds them: no Sync covered them); after Finish the new file has them.
TEST_F(BackendLmdbTest, WritesCommitWhileTheCopyIsPutInPlaceAndACrashBeforeFindsTheOldFile) {
  const std::string path = dir_.path() + "/db";
  const std::string crash = dir_.path() + "/crash";
  std::atomic<bool> sync_returned{false};
  std::thread syncer;
  Backend* live = nullptr;
  Options options;
  options.after_defragment_switch_for_test = [&] {
    // A write txn on this thread: the writer is not held any more.
    auto w = live->BeginWrite();
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE((*w)->Put("key", "during", "switch").ok());
    ASSERT_TRUE((*w)->Commit().ok());
    auto r = live->BeginRead();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*(*r)->Get("key", "during"), "switch");
    // What a crash here leaves: the data file not yet replaced (copied as it is on disk).
    std::filesystem::create_directories(crash);
    std::filesystem::copy_file(path + "/data.mdb", crash + "/data.mdb");
    syncer = std::thread([&] {
      EXPECT_TRUE(live->Sync().ok());
      sync_returned = true;
    });
    EXPECT_FALSE(sync_returned.load());
  };
  auto b = OpenLmdb(path, options);
  ASSERT_TRUE(b.ok());
  live = b->get();
  {
    auto w = (*b)->BeginWrite();
    ASSERT_TRUE(w.ok());
    for (int i = 0; i < 300; ++i) {
      ASSERT_TRUE((*w)->Put("key", "k" + std::to_string(i), std::string(1000, 'x')).ok());
    }
    ASSERT_TRUE((*w)->Commit().ok());
  }
  ASSERT_TRUE((*b)->Sync().ok());
  Status s = (*b)->Defragment();
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(syncer.joinable());
  syncer.join();
  EXPECT_TRUE(sync_returned.load());
  const Contents after = AllContents(**b);
  ASSERT_EQ(after.at("key").size(), 301u);
  b->reset();
  // No copy is left behind, and the data file is the new one.
  for (const auto& entry : std::filesystem::directory_iterator(path)) {
    EXPECT_EQ(entry.path().filename().string().find("data.mdb.defrag"), std::string::npos)
        << entry.path();
  }
  auto again = OpenLmdb(path, Options());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(AllContents(**again), after);
  again->reset();
  auto old = OpenLmdb(crash, Options());
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  const Contents before_switch = AllContents(**old);
  ASSERT_EQ(before_switch.at("key").size(), 300u);
  EXPECT_EQ(before_switch.at("key").front().second, std::string(1000, 'x'));
}

TEST_F(BackendLmdbTest, ReadOnlyImageIsNotDefragmented) {
  auto b = OpenLmdb(dir_.path() + "/db", Options());
  ASSERT_TRUE(b.ok());
  std::string image = dir_.path() + "/image.db";
  ASSERT_TRUE((*b)->CopyTo(image).ok());
  auto copy = OpenLmdbImage(image);
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ((*copy)->Defragment().code(), Code::kFailedPrecondition);
}

TEST_F(BackendLmdbTest, UncreatableDirectoryIsIoError) {
  auto b = OpenLmdb("/proc/definitely/not/here", Options());
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Code::kIoError);
}

}  // namespace
}  // namespace dolmen::backend
