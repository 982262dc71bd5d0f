#include "io/posix/posix_file_system.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>

namespace dolmen::io {
namespace {

class IoPosixFileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dolmen_io_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  FileSystem* fs_ = PosixFileSystem();
  std::string dir_;
};

TEST_F(IoPosixFileSystemTest, AppendSyncReadBack) {
  std::string path = JoinPath(dir_, "f");
  auto file = fs_->OpenForAppend(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_TRUE((*file)->Append("hello").ok());
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->Close().ok());
  auto again = fs_->OpenForAppend(path).value();
  EXPECT_EQ(again->Size(), 5u);
  ASSERT_TRUE(again->Append(" world").ok());
  EXPECT_EQ(again->Size(), 11u);
  EXPECT_EQ(*fs_->ReadFile(path), "hello world");
  EXPECT_TRUE(again->Close().ok());
  EXPECT_FALSE(again->Append("x").ok());
}

TEST_F(IoPosixFileSystemTest, PreallocateExtendsWithZerosAndAppendsContinueAtSize) {
  std::string path = JoinPath(dir_, "f");
  auto file = fs_->OpenForAppend(path).value();
  ASSERT_TRUE(file->Append("abc").ok());
  ASSERT_TRUE(file->Preallocate(1 << 20).ok());
  // The file is as long as the reservation (so appends inside it do not change its length),
  // but the handle still appends after what it wrote.
  EXPECT_EQ(std::filesystem::file_size(path), 1u << 20);
  EXPECT_EQ(file->Size(), 3u);
  ASSERT_TRUE(file->Append("d").ok());
  ASSERT_TRUE(file->Sync().ok());
  std::string bytes = *fs_->ReadFile(path);
  ASSERT_EQ(bytes.size(), 1u << 20);
  EXPECT_EQ(bytes.substr(0, 4), "abcd");
  EXPECT_EQ(bytes.find_first_not_of('\0', 4), std::string::npos);
  // Trimming gives the space back.
  ASSERT_TRUE(file->TrimPreallocation().ok());
  EXPECT_EQ(*fs_->ReadFile(path), "abcd");
  ASSERT_TRUE(file->Append("e").ok());
  EXPECT_EQ(*fs_->ReadFile(path), "abcde");
}

TEST_F(IoPosixFileSystemTest, ReopenedFileAppendsAtItsEnd) {
  std::string path = JoinPath(dir_, "g");
  ASSERT_TRUE(fs_->OpenForAppend(path).value()->Append("one").ok());
  auto file = fs_->OpenForAppend(path).value();
  EXPECT_EQ(file->Size(), 3u);
  ASSERT_TRUE(file->Append("two").ok());
  EXPECT_EQ(*fs_->ReadFile(path), "onetwo");
}

TEST_F(IoPosixFileSystemTest, DirectoryOperations) {
  std::string sub = JoinPath(dir_, "a/b/c");
  ASSERT_TRUE(fs_->CreateDirs(sub).ok());
  ASSERT_TRUE(fs_->CreateDirs(sub).ok());  // idempotent
  for (const char* name : {"z", "x", "y"}) {
    ASSERT_TRUE(fs_->OpenForAppend(JoinPath(sub, name)).value()->Close().ok());
  }
  EXPECT_EQ(*fs_->ListDir(sub), (std::vector<std::string>{"x", "y", "z"}));
  ASSERT_TRUE(fs_->Rename(JoinPath(sub, "x"), JoinPath(sub, "w")).ok());
  ASSERT_TRUE(fs_->Remove(JoinPath(sub, "y")).ok());
  EXPECT_EQ(*fs_->ListDir(sub), (std::vector<std::string>{"w", "z"}));
  ASSERT_TRUE(fs_->SyncDir(sub).ok());
  ASSERT_TRUE(fs_->Truncate(JoinPath(sub, "w"), 4).ok());
  EXPECT_EQ(*fs_->ReadFile(JoinPath(sub, "w")), std::string(4, '\0'));
  EXPECT_TRUE(fs_->Exists(sub));
  EXPECT_FALSE(fs_->Exists(JoinPath(sub, "y")));
  EXPECT_EQ(fs_->ReadFile(JoinPath(sub, "y")).status().code(), Code::kNotFound);
  EXPECT_EQ(fs_->Remove(JoinPath(sub, "y")).code(), Code::kNotFound);
}

TEST_F(IoPosixFileSystemTest, AvailableBytesFollowsStatvfs) {
  auto free = fs_->AvailableBytes(dir_);
  ASSERT_TRUE(free.ok()) << free.status().ToString();
  EXPECT_GT(*free, 0u);
  auto missing = fs_->AvailableBytes(JoinPath(dir_, "missing"));
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
}

TEST_F(IoPosixFileSystemTest, LockIsExclusive) {
  std::string path = JoinPath(dir_, "LOCK");
  auto first = fs_->LockFile(path);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = fs_->LockFile(path);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kUnavailable);
  EXPECT_NE(second.status().message().find(path), std::string::npos);
  first = Status(Code::kInternal, "released");
  EXPECT_TRUE(fs_->LockFile(path).ok());
}

TEST(IoPathTest, JoinAndDirName) {
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(DirName("a/b/c"), "a/b");
  EXPECT_EQ(DirName("c"), ".");
  EXPECT_EQ(DirName("/c"), "/");
  EXPECT_EQ(DirName("a/b/"), "a");
}

}  // namespace
}  // namespace dolmen::io
