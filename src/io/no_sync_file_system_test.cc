#include "io/no_sync_file_system.h"

#include <gtest/gtest.h>

#include "io/fault_injection_file_system.h"
#include "io/memory_file_system.h"

namespace dolmen::io {
namespace {

// What --unsafe-no-fsync costs: a write "synced" through the wrapper is lost by a crash that a
// real sync would have survived.
TEST(NoSyncFileSystemTest, SyncedDataIsLostByACrash) {
  for (bool no_sync : {false, true}) {
    auto memory = NewMemoryFileSystem();
    NoSyncFileSystem wrapper(memory.get());
    FileSystem* fs = no_sync ? static_cast<FileSystem*>(&wrapper) : memory.get();
    ASSERT_TRUE(fs->CreateDirs("/d").ok());
    ASSERT_TRUE(fs->SyncDir("/").ok());
    auto file = fs->OpenForAppend("/d/f");
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->Append("record").ok());
    ASSERT_TRUE((*file)->Sync().ok());
    ASSERT_TRUE(fs->SyncDir("/d").ok());
    memory->Crash();
    auto contents = memory->ReadFile("/d/f");
    if (no_sync) {
      EXPECT_TRUE(!contents.ok() || contents->empty()) << "no_sync kept " << *contents;
    } else {
      ASSERT_TRUE(contents.ok()) << contents.status().ToString();
      EXPECT_EQ(*contents, "record");
    }
  }
}

TEST(NoSyncFileSystemTest, NeverCallsTheBaseSync) {
  auto memory = NewMemoryFileSystem();
  FaultInjectionFileSystem faults(memory.get());
  NoSyncFileSystem fs(&faults);
  faults.FailAll(FaultInjectionFileSystem::Op::kSync, true);
  faults.FailAll(FaultInjectionFileSystem::Op::kSyncDir, true);
  auto file = fs.OpenForAppend("/f");
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append("x").ok());
  EXPECT_TRUE((*file)->Sync().ok());
  EXPECT_TRUE(fs.SyncDir("/").ok());
  EXPECT_EQ(faults.Count(FaultInjectionFileSystem::Op::kSync), 0u);
  EXPECT_EQ(faults.Count(FaultInjectionFileSystem::Op::kSyncDir), 0u);
  EXPECT_EQ(*fs.ReadFile("/f"), "x");
}

// The simulator's lying WAL: the file's name and its first synced bytes (a segment header)
// survive a crash, what was "synced" after them does not.
TEST(NoSyncFileSystemTest, KeepsDirSyncsAndEachFilesFirstSyncWhenAsked) {
  auto memory = NewMemoryFileSystem();
  NoSyncFileSystem fs(memory.get(), NoSyncFileSystem::Options{.keep_dir_syncs = true,
                                                              .keep_first_file_sync = true});
  ASSERT_TRUE(fs.CreateDirs("/d").ok());
  auto file = fs.OpenForAppend("/d/f");
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append("header").ok());
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE(fs.SyncDir("/d").ok());
  ASSERT_TRUE((*file)->Append("+entry").ok());
  ASSERT_TRUE((*file)->Sync().ok());
  memory->Crash();
  auto contents = memory->ReadFile("/d/f");
  ASSERT_TRUE(contents.ok()) << contents.status().ToString();
  EXPECT_EQ(*contents, "header");
}

}  // namespace
}  // namespace dolmen::io
