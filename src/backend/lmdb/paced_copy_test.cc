// The paced copy of a defragmentation (docs/maintenance.md, "The paced copy"): the writer keeps
// its pace and writes every byte; the compacted copy written through the pipe is LMDB's own copy
// byte for byte and opens; a write error midway is reported and stops nothing else.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <lmdb.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "backend/lmdb/lmdb_compact_copy.h"
#include "backend/lmdb/paced_file_writer.h"
#include "io/posix/temp_dir.h"

namespace dolmen::backend::lmdb_internal {
namespace {

using io::testing::TempDir;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

int CreateFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  CHECK(fd >= 0) << "create " << path;
  return fd;
}

std::string Pattern(size_t bytes) {
  std::string s(bytes, '\0');
  for (size_t i = 0; i < bytes; ++i) s[i] = static_cast<char>((i * 131 + i / 4096) & 0xff);
  return s;
}

TEST(PacedFileWriterTest, WritesEveryByteInOddPiecesAndSyncs) {
  TempDir dir;
  const std::string path = dir.path() + "/f";
  const std::string data = Pattern((1u << 20) + 12345);  // steps, and a partial one at the end
  int fd = CreateFile(path);
  PacedFileWriter writer(fd, path, WritePace{.step_bytes = 64u << 10, .bytes_per_second = 0});
  for (size_t at = 0; at < data.size();) {
    const size_t n = std::min<size_t>(7777, data.size() - at);
    ASSERT_TRUE(writer.Append(data.data() + at, n).ok());
    at += n;
  }
  Status s = writer.Finish(/*sync=*/true);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ::close(fd);
  EXPECT_EQ(writer.written_bytes(), data.size());
  EXPECT_EQ(ReadFile(path), data);
}

TEST(PacedFileWriterTest, KeepsToItsRate) {
  TempDir dir;
  const std::string path = dir.path() + "/f";
  const std::string data = Pattern(1u << 20);
  int fd = CreateFile(path);
  // 1 MiB at 4 MiB/s: the last step is due 0.25 s after the start, less one step.
  PacedFileWriter writer(fd, path,
                         WritePace{.step_bytes = 64u << 10, .bytes_per_second = 4u << 20});
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(writer.Append(data.data(), data.size()).ok());
  ASSERT_TRUE(writer.Finish(/*sync=*/false).ok());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::close(fd);
  EXPECT_GE(seconds, 0.23);
  EXPECT_EQ(ReadFile(path), data);
}

TEST(PacedFileWriterTest, AWriteErrorIsReportedByEveryLaterCall) {
  TempDir dir;
  const std::string path = dir.path() + "/f";
  const std::string data = Pattern(1u << 20);
  int fd = CreateFile(path);
  PacedFileWriter writer(fd, path, WritePace{.step_bytes = 64u << 10, .bytes_per_second = 0});
  writer.after_step_for_test = [](uint64_t written) {
    return written >= (128u << 10) ? IoError("disk full (test)") : OkStatus();
  };
  Status s = writer.Append(data.data(), data.size());
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_EQ(writer.written_bytes(), 128u << 10);  // stopped at the failing step
  EXPECT_EQ(writer.Append("x", 1).code(), Code::kIoError);
  EXPECT_EQ(writer.Finish(/*sync=*/true).message(), "disk full (test)");
  ::close(fd);
}

TEST(PacedFileWriterTest, AdaptiveRateFinishesALargeCopyInTheLongestTime) {
  EXPECT_EQ(AdaptiveBytesPerSecond(10u << 20, 32u << 20, std::chrono::seconds(10)), 32u << 20);
  EXPECT_EQ(AdaptiveBytesPerSecond(2000u << 20, 32u << 20, std::chrono::seconds(10)), 200u << 20);
}

// An LMDB environment of a few MiB in one file, with a named DB, opened directly.
class CompactCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = dir_.path() + "/source.mdb";
    ASSERT_EQ(mdb_env_create(&env_), 0);
    ASSERT_EQ(mdb_env_set_maxdbs(env_, 4), 0);
    ASSERT_EQ(mdb_env_set_mapsize(env_, 64u << 20), 0);
    ASSERT_EQ(mdb_env_open(env_, file_.c_str(), MDB_NOSUBDIR | MDB_NOTLS, 0600), 0);
    MDB_txn* txn;
    ASSERT_EQ(mdb_txn_begin(env_, nullptr, 0, &txn), 0);
    MDB_dbi dbi;
    ASSERT_EQ(mdb_dbi_open(txn, "key", MDB_CREATE, &dbi), 0);
    for (int i = 0; i < kKeys; ++i) {
      std::string k = Key(i), v = Value(i);
      MDB_val key{k.size(), k.data()}, value{v.size(), v.data()};
      ASSERT_EQ(mdb_put(txn, dbi, &key, &value, 0), 0);
    }
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    // Half deleted in a later txn: their pages go to the free list, and the copy, compacted,
    // is smaller than the file.
    ASSERT_EQ(mdb_txn_begin(env_, nullptr, 0, &txn), 0);
    for (int i = 0; i < kKeys; i += 2) {
      std::string k = Key(i);
      MDB_val key{k.size(), k.data()};
      ASSERT_EQ(mdb_del(txn, dbi, &key, nullptr), 0);
    }
    ASSERT_EQ(mdb_txn_commit(txn), 0);
  }
  void TearDown() override { mdb_env_close(env_); }

  static std::string Key(int i) { return "k" + std::to_string(100000 + i); }
  static std::string Value(int i) { return std::string(1000, static_cast<char>('a' + i % 26)); }

  static constexpr int kKeys = 4000;
  TempDir dir_;
  std::string file_;
  MDB_env* env_ = nullptr;
};

TEST_F(CompactCopyTest, ThePacedCopyIsLmdbsOwnCopyByteForByteAndOpens) {
  const std::string direct = dir_.path() + "/direct.mdb";
  int fd = CreateFile(direct);
  ASSERT_EQ(mdb_env_copyfd2(env_, fd, MDB_CP_COMPACT), 0);
  ::close(fd);

  const std::string paced = dir_.path() + "/paced.mdb";
  fd = CreateFile(paced);
  auto result = WriteCompactCopy(env_, fd, paced, WritePace{.step_bytes = 64u << 10},
                                 /*sync=*/true, nullptr);
  ::close(fd);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  const std::string want = ReadFile(direct);
  EXPECT_GT(want.size(), 1u << 20);  // several steps
  EXPECT_LT(want.size(), std::filesystem::file_size(file_));
  EXPECT_EQ(result->bytes, want.size());
  EXPECT_EQ(ReadFile(paced), want);

  // It opens, and holds every key that was not deleted.
  MDB_env* copy;
  ASSERT_EQ(mdb_env_create(&copy), 0);
  ASSERT_EQ(mdb_env_set_maxdbs(copy, 4), 0);
  ASSERT_EQ(mdb_env_open(copy, paced.c_str(), MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0600), 0);
  MDB_txn* txn;
  ASSERT_EQ(mdb_txn_begin(copy, nullptr, MDB_RDONLY, &txn), 0);
  MDB_dbi dbi;
  ASSERT_EQ(mdb_dbi_open(txn, "key", 0, &dbi), 0);
  MDB_stat stat;
  ASSERT_EQ(mdb_stat(txn, dbi, &stat), 0);
  EXPECT_EQ(stat.ms_entries, static_cast<size_t>(kKeys / 2));
  for (int i = 1; i < kKeys; i += 2) {
    std::string k = Key(i);
    MDB_val key{k.size(), k.data()}, value;
    ASSERT_EQ(mdb_get(txn, dbi, &key, &value), 0) << k;
    EXPECT_EQ(std::string(static_cast<char*>(value.mv_data), value.mv_size), Value(i));
  }
  mdb_txn_abort(txn);
  mdb_env_close(copy);
}

TEST_F(CompactCopyTest, AWriteErrorMidwayIsReportedAndTheWalkEnds) {
  const std::string before = ReadFile(file_);
  const std::string paced = dir_.path() + "/paced.mdb";
  int fd = CreateFile(paced);
  auto result =
      WriteCompactCopy(env_, fd, paced, WritePace{.step_bytes = 64u << 10},
                       /*sync=*/true, [](uint64_t written) {
                         return written >= (256u << 10) ? IoError("disk full (test)") : OkStatus();
                       });
  ::close(fd);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(), "disk full (test)");
  EXPECT_EQ(std::filesystem::file_size(paced), 256u << 10);
  EXPECT_EQ(ReadFile(file_), before);  // the source is read only
  // The walk ended (its read txn too): a write txn commits, and another copy succeeds.
  MDB_txn* txn;
  ASSERT_EQ(mdb_txn_begin(env_, nullptr, 0, &txn), 0);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  fd = CreateFile(paced);
  auto again = WriteCompactCopy(env_, fd, paced, WritePace{}, /*sync=*/false, nullptr);
  ::close(fd);
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

}  // namespace
}  // namespace dolmen::backend::lmdb_internal
