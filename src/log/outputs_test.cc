#include "log/outputs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/check.h"

namespace dolmen::log {
namespace {

TEST(LogLevelFlag, ZapNamesOnly) {
  EXPECT_EQ(*ParseLevel("debug"), Level::kDebug);
  EXPECT_EQ(*ParseLevel("WARN"), Level::kWarn);
  EXPECT_EQ(*ParseLevel("panic"), Level::kPanic);
  EXPECT_EQ(*ParseLevel("fatal"), Level::kFatal);
  EXPECT_EQ(*ParseLevel(""), Level::kInfo);
  EXPECT_EQ(ParseLevel("verbose").status().message(), "unrecognized level: \"verbose\"");
  EXPECT_FALSE(ParseLevel("Info").ok());
}

TEST(LogOutputsFlag, SplitUniqueSorted) {
  EXPECT_EQ(SplitOutputs("stdout,stderr,stdout"), (std::vector<std::string>{"stderr", "stdout"}));
  EXPECT_EQ(SplitOutputs("default"), (std::vector<std::string>{"default"}));
}

TEST(LogOutputsFlag, RefusedAsEtcdRefuses) {
  EXPECT_EQ(OpenOutputs({"default", "stdout"}).status().message(),
            "multi logoutput for \"default\" is not supported yet");
  EXPECT_EQ(OpenOutputs(SplitOutputs("systemd/journal,stderr")).status().message(),
            "running with systemd/journal but other '--log-outputs' values ([\"stderr\" "
            "\"systemd/journal\"]) are configured with 'default'; override 'default' value with "
            "something else");
  EXPECT_EQ(OpenOutputs({"/nonexistent-dir/x.log"}).status().message(),
            "couldn't open sink \"/nonexistent-dir/x.log\": open /nonexistent-dir/x.log: no such "
            "file or directory");
  if (access(kJournalSocket, F_OK) != 0) {
    EXPECT_EQ(OpenOutputs({"systemd/journal"}).status().message(),
              std::string("can't find journal (dial unixgram ") + kJournalSocket +
                  ": connect: no such file or directory)");
  }
}

TEST(LogOutputsFlag, FileIsAppendedTo) {
  const std::string path = testing::TempDir() + "/outputs_test_" + std::to_string(getpid());
  std::filesystem::remove(path);
  {
    std::ofstream before(path);
    before << "kept\n";
  }
  auto sink = OpenOutputs({path});
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  (*sink)->Write(Level::kInfo, "{\"msg\":\"one\"}", "log/outputs_test.cc");
  (*sink)->Write(Level::kError, "{\"msg\":\"two\"}", "log/outputs_test.cc");
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "kept\n{\"msg\":\"one\"}\n{\"msg\":\"two\"}\n");
  std::filesystem::remove(path);
}

TEST(LogOutputsFlag, DevNullDiscardsEverything) {
  auto sink = OpenOutputs({"/dev/null", "stderr"});
  ASSERT_TRUE(sink.ok());
  testing::internal::CaptureStderr();
  (*sink)->Write(Level::kError, "{\"msg\":\"gone\"}", "log/outputs_test.cc");
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

TEST(LoggerFlag, OnlyZap) {
  Options o;
  o.logger = "capnslog";
  EXPECT_EQ(Configure(o).message(), "--logger=capnslog is removed in v3.5");
  o.logger = "glog";
  EXPECT_EQ(Configure(o).message(), "unknown logger option \"glog\"");
  o.logger = "zap";
  o.level = "loud";
  EXPECT_EQ(Configure(o).message(), "unrecognized level: \"loud\"");
  EXPECT_EQ(CurrentLevel(), Level::kInfo) << "nothing changes on a refusal";
}

TEST(LoggerFlag, ConfigureSwitchesLevelAndOutput) {
  const std::string path = testing::TempDir() + "/configure_test_" + std::to_string(getpid());
  std::filesystem::remove(path);
  Options o;
  o.level = "warn";
  o.outputs = path;
  ASSERT_TRUE(Configure(o).ok());
  Info("dropped");
  Warn("kept", {{"k", "v"}});
  SetSink(nullptr);
  SetLevel(Level::kInfo);
  std::ifstream in(path);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["msg"], "kept");
  EXPECT_EQ(j["k"], "v");
  EXPECT_FALSE(std::getline(in, line)) << line;
  std::filesystem::remove(path);
}

TEST(LogDeath, FailedCheckIsALogLineInTheConfiguredOutput) {
  const std::string path = testing::TempDir() + "/check_test_" + std::to_string(getpid());
  std::filesystem::remove(path);
  Options o;
  o.outputs = path;
  EXPECT_DEATH(
      {
        if (Configure(o).ok()) CHECK(1 + 1 == 3) << "arithmetic";
      },
      "");
  std::ifstream in(path);
  std::string line;
  ASSERT_TRUE(std::getline(in, line)) << "nothing in " << path;
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["level"], "panic");
  EXPECT_EQ(j["msg"], "CHECK failed");
  EXPECT_NE(j["check"].get<std::string>().find("CHECK failed: 1 + 1 == 3 arithmetic"),
            std::string::npos)
      << line;
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace dolmen::log
