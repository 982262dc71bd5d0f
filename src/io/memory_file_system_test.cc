#include "io/memory_file_system.h"

#include <gtest/gtest.h>

namespace dolmen::io {
namespace {

// Creates `path` with `data`, synced and with its directory entry synced.
void WriteDurable(MemoryFileSystem* fs, const std::string& path, std::string_view data) {
  auto file = fs->OpenForAppend(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_TRUE((*file)->Append(data).ok());
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE(fs->SyncDir(DirName(path)).ok());
}

TEST(IoMemoryFileSystemTest, AppendAndReadBack) {
  auto fs = NewMemoryFileSystem();
  ASSERT_TRUE(fs->CreateDirs("d/e").ok());
  auto file = fs->OpenForAppend("d/e/f");
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append("hello ").ok());
  ASSERT_TRUE((*file)->Append("world").ok());
  EXPECT_EQ((*file)->Size(), 11u);
  EXPECT_EQ(*fs->ReadFile("d/e/f"), "hello world");
  // Reopening appends at the end.
  auto again = fs->OpenForAppend("d/e/f");
  ASSERT_TRUE((*again)->Append("!").ok());
  EXPECT_EQ(*fs->ReadFile("d/e/f"), "hello world!");
  EXPECT_EQ((*again)->Size(), 12u);
}

TEST(IoMemoryFileSystemTest, MissingThingsAreNotFound) {
  auto fs = NewMemoryFileSystem();
  EXPECT_EQ(fs->ReadFile("nope").status().code(), Code::kNotFound);
  EXPECT_EQ(fs->ListDir("nodir").status().code(), Code::kNotFound);
  EXPECT_EQ(fs->OpenForAppend("nodir/f").status().code(), Code::kNotFound);
  EXPECT_EQ(fs->Remove("nope").code(), Code::kNotFound);
  EXPECT_FALSE(fs->Exists("nope"));
}

TEST(IoMemoryFileSystemTest, ListDirIsSortedAndShallow) {
  auto fs = NewMemoryFileSystem();
  ASSERT_TRUE(fs->CreateDirs("d/sub").ok());
  for (const char* name : {"d/b", "d/a", "d/c", "d/sub/x"}) WriteDurable(fs.get(), name, "");
  auto names = fs->ListDir("d");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "b", "c", "sub"}));
}

TEST(IoMemoryFileSystemTest, RenameRemoveTruncate) {
  auto fs = NewMemoryFileSystem();
  ASSERT_TRUE(fs->CreateDirs("d").ok());
  WriteDurable(fs.get(), "d/a", "abc");
  ASSERT_TRUE(fs->Rename("d/a", "d/b").ok());
  EXPECT_FALSE(fs->Exists("d/a"));
  EXPECT_EQ(*fs->ReadFile("d/b"), "abc");
  ASSERT_TRUE(fs->Truncate("d/b", 5).ok());
  EXPECT_EQ(*fs->ReadFile("d/b"), std::string("abc\0\0", 5));
  ASSERT_TRUE(fs->Truncate("d/b", 1).ok());
  EXPECT_EQ(*fs->ReadFile("d/b"), "a");
  ASSERT_TRUE(fs->Remove("d/b").ok());
  EXPECT_FALSE(fs->Exists("d/b"));
}

TEST(IoMemoryFileSystemTest, CrashKeepsOnlySyncedBytes) {
  auto fs = NewMemoryFileSystem();
  ASSERT_TRUE(fs->CreateDirs("d").ok());
  auto file = fs->OpenForAppend("d/f").value();
  ASSERT_TRUE(file->Append("synced").ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(fs->SyncDir("d").ok());
  ASSERT_TRUE(file->Append("-lost").ok());
  fs->Crash();
  EXPECT_EQ(*fs->ReadFile("d/f"), "synced");
  // The old handle belongs to the dead process.
  EXPECT_EQ(file->Append("x").code(), Code::kIoError);
}

TEST(IoMemoryFileSystemTest, CrashForgetsNamesWhoseDirectoryWasNotSynced) {
  auto fs = NewMemoryFileSystem();
  ASSERT_TRUE(fs->CreateDirs("d").ok());
  auto file = fs->OpenForAppend("d/f").value();
  ASSERT_TRUE(file->Append("data").ok());
  ASSERT_TRUE(file->Sync().ok());  // the data, but not the name
  fs->Crash();
  EXPECT_FALSE(fs->Exists("d/f"));

  WriteDurable(fs.get(), "d/g", "x");
  ASSERT_TRUE(fs->Rename("d/g", "d/h").ok());
  fs->Crash();  // the rename was not made durable
  EXPECT_TRUE(fs->Exists("d/g"));
  EXPECT_FALSE(fs->Exists("d/h"));
}

TEST(IoMemoryFileSystemTest, CrashCanLeaveATornPrefix) {
  auto fs = NewMemoryFileSystem();
  ASSERT_TRUE(fs->CreateDirs("d").ok());
  WriteDurable(fs.get(), "d/f", "base");
  {
    auto file = fs->OpenForAppend("d/f").value();
    ASSERT_TRUE(file->Append("0123456789").ok());
  }
  CrashOptions torn;
  torn.tail = CrashOptions::Tail::kTornPrefix;
  torn.keep_bytes = 3;
  fs->Crash(torn);
  EXPECT_EQ(*fs->ReadFile("d/f"), "base012");
  EXPECT_EQ(*fs->DurableContents("d/f"), "base012");

  {
    auto file = fs->OpenForAppend("d/f").value();
    ASSERT_TRUE(file->Append("abc").ok());
  }
  CrashOptions zeros;
  zeros.tail = CrashOptions::Tail::kTornZeros;
  zeros.keep_bytes = 100;  // capped at the unsynced length
  fs->Crash(zeros);
  EXPECT_EQ(*fs->ReadFile("d/f"), std::string("base012\0\0\0", 10));
}

TEST(IoMemoryFileSystemTest, RandomTornPrefixIsAPrefix) {
  for (uint64_t seed = 0; seed < 50; ++seed) {
    auto fs = NewMemoryFileSystem();
    ASSERT_TRUE(fs->CreateDirs("d").ok());
    WriteDurable(fs.get(), "d/f", "base");
    auto file = fs->OpenForAppend("d/f").value();
    ASSERT_TRUE(file->Append("0123456789").ok());
    CrashOptions options;
    options.tail = CrashOptions::Tail::kTornPrefix;
    options.seed = seed;
    fs->Crash(options);
    std::string got = *fs->ReadFile("d/f");
    ASSERT_GE(got.size(), 4u);
    EXPECT_EQ(got, std::string("base0123456789").substr(0, got.size()));
  }
}

TEST(IoMemoryFileSystemTest, LocksAreExclusiveAndDieWithTheProcess) {
  auto fs = NewMemoryFileSystem();
  ASSERT_TRUE(fs->CreateDirs("d").ok());
  auto held = fs->LockFile("d/LOCK");
  ASSERT_TRUE(held.ok());
  auto second = fs->LockFile("d/LOCK");
  EXPECT_EQ(second.status().code(), Code::kUnavailable);
  EXPECT_NE(second.status().message().find("d/LOCK"), std::string::npos);
  held = fs->LockFile("d/other");  // releases the first lock
  EXPECT_TRUE(fs->LockFile("d/LOCK").ok());

  auto before_crash = fs->LockFile("d/C");
  ASSERT_TRUE(before_crash.ok());
  fs->Crash();
  auto after = fs->LockFile("d/C");
  ASSERT_TRUE(after.ok());
  before_crash = Status(Code::kInternal, "drop");  // the dead holder's release is a no-op
  EXPECT_EQ(fs->LockFile("d/C").status().code(), Code::kUnavailable);
}

TEST(IoMemoryFileSystemTest, PreallocateIsRecordedButDoesNotChangeSize) {
  auto fs = NewMemoryFileSystem();
  ASSERT_TRUE(fs->CreateDirs("d").ok());
  auto file = fs->OpenForAppend("d/f").value();
  ASSERT_TRUE(file->Preallocate(4096).ok());
  EXPECT_EQ(file->Size(), 0u);
  EXPECT_EQ(fs->PreallocatedBytes("d/f"), 4096u);
}

}  // namespace
}  // namespace dolmen::io
