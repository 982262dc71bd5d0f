#include "io/fault_injection_file_system.h"

#include <gtest/gtest.h>

#include "io/memory_file_system.h"

namespace dolmen::io {
namespace {

using Op = FaultInjectionFileSystem::Op;

class IoFaultInjectionTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fs_.CreateDirs("d").ok()); }
  std::unique_ptr<MemoryFileSystem> base_ = NewMemoryFileSystem();
  FaultInjectionFileSystem fs_{base_.get()};
};

TEST_F(IoFaultInjectionTest, FailsTheNthSyncOnly) {
  auto file = fs_.OpenForAppend("d/f").value();
  fs_.FailNth(Op::kSync, 2);
  EXPECT_TRUE(file->Sync().ok());
  Status s = file->Sync();
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_NE(s.message().find("injected"), std::string::npos);
  EXPECT_TRUE(file->Sync().ok());
  EXPECT_EQ(fs_.Count(Op::kSync), 3u);
}

TEST_F(IoFaultInjectionTest, AvailableBytesIsSetOrAskedOfTheBase) {
  // The memory file system has no free-space limit to report.
  EXPECT_EQ(fs_.AvailableBytes("d").status().code(), Code::kUnimplemented);
  fs_.SetAvailableBytes(4096);
  EXPECT_EQ(*fs_.AvailableBytes("d"), 4096u);
  fs_.SetAvailableBytes(std::nullopt);
  EXPECT_EQ(fs_.AvailableBytes("d").status().code(), Code::kUnimplemented);
}

TEST_F(IoFaultInjectionTest, FailedAppendWritesNothing) {
  auto file = fs_.OpenForAppend("d/f").value();
  fs_.FailNth(Op::kAppend, 1);
  EXPECT_EQ(file->Append("abc").code(), Code::kIoError);
  EXPECT_EQ(*fs_.ReadFile("d/f"), "");
  EXPECT_TRUE(file->Append("xyz").ok());
  EXPECT_EQ(*fs_.ReadFile("d/f"), "xyz");
}

TEST_F(IoFaultInjectionTest, TornAppendWritesAPrefixAndFails) {
  auto file = fs_.OpenForAppend("d/f").value();
  fs_.TearNthAppend(1, 2);
  EXPECT_EQ(file->Append("abcdef").code(), Code::kIoError);
  EXPECT_EQ(*fs_.ReadFile("d/f"), "ab");
}

TEST_F(IoFaultInjectionTest, FailAllUntilTurnedOff) {
  fs_.FailAll(Op::kRename, true);
  auto file = fs_.OpenForAppend("d/f").value();
  EXPECT_EQ(fs_.Rename("d/f", "d/g").code(), Code::kIoError);
  EXPECT_EQ(fs_.Rename("d/f", "d/g").code(), Code::kIoError);
  fs_.FailAll(Op::kRename, false);
  EXPECT_TRUE(fs_.Rename("d/f", "d/g").ok());
}

TEST_F(IoFaultInjectionTest, EveryOperationCanFail) {
  fs_.FailNth(Op::kOpen, 1);
  EXPECT_FALSE(fs_.OpenForAppend("d/f").ok());
  auto file = fs_.OpenForAppend("d/f").value();
  fs_.FailNth(Op::kRead, 1);
  EXPECT_FALSE(fs_.ReadFile("d/f").ok());
  fs_.FailNth(Op::kListDir, 1);
  EXPECT_FALSE(fs_.ListDir("d").ok());
  fs_.FailNth(Op::kCreateDirs, 1);
  EXPECT_FALSE(fs_.CreateDirs("e").ok());
  fs_.FailNth(Op::kTruncate, 1);
  EXPECT_FALSE(fs_.Truncate("d/f", 0).ok());
  fs_.FailNth(Op::kSyncDir, 1);
  EXPECT_FALSE(fs_.SyncDir("d").ok());
  fs_.FailNth(Op::kLock, 1);
  EXPECT_FALSE(fs_.LockFile("d/L").ok());
  fs_.FailNth(Op::kPreallocate, 1);
  EXPECT_FALSE(file->Preallocate(10).ok());
  fs_.FailNth(Op::kRemove, 1);
  EXPECT_FALSE(fs_.Remove("d/f").ok());
  fs_.FailNth(Op::kClose, 1);
  EXPECT_FALSE(file->Close().ok());
  fs_.ClearFaults();
  EXPECT_TRUE(fs_.Remove("d/f").ok());
}

}  // namespace
}  // namespace dolmen::io
