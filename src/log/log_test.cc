#include "log/log.h"

#include <gtest/gtest.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

namespace dolmen::log {
namespace {

class CaptureSink : public Sink {
 public:
  void Write(Level level, std::string_view line, std::string_view file) override {
    std::lock_guard lock(mu_);
    lines_.emplace_back(line);
    levels_.push_back(level);
    files_.emplace_back(file);
  }
  std::vector<std::string> lines() {
    std::lock_guard lock(mu_);
    return lines_;
  }
  std::vector<std::string> files() {
    std::lock_guard lock(mu_);
    return files_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
  std::vector<Level> levels_;
  std::vector<std::string> files_;
};

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetSink(sink_);
    SetLevel(Level::kInfo);
  }
  void TearDown() override {
    SetSink(nullptr);
    SetLevel(Level::kInfo);
  }
  std::shared_ptr<CaptureSink> sink_ = std::make_shared<CaptureSink>();
};

TEST_F(LogTest, LevelsBelowTheThresholdAreDropped) {
  SetLevel(Level::kWarn);
  EXPECT_FALSE(Enabled(Level::kInfo));
  EXPECT_TRUE(Enabled(Level::kError));
  Debug("d");
  Info("i");
  Warn("w");
  Error("e");
  auto lines = sink_->lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(lines[0])["msg"], "w");
  EXPECT_EQ(nlohmann::json::parse(lines[0])["level"], "warn");
  EXPECT_EQ(nlohmann::json::parse(lines[1])["level"], "error");
  SetLevel(Level::kDebug);
  Debug("d2");
  ASSERT_EQ(sink_->lines().size(), 3u);
  EXPECT_EQ(nlohmann::json::parse(sink_->lines()[2])["level"], "debug");
}

TEST_F(LogTest, CallerIsThisFileAndLine) {
  const int line = __LINE__ + 1;
  Info("here", {{"n", 1}});
  auto j = nlohmann::json::parse(sink_->lines().at(0));
  EXPECT_EQ(j["caller"], "log/log_test.cc:" + std::to_string(line));
  EXPECT_EQ(sink_->files().at(0), "log/log_test.cc");
  EXPECT_EQ(j["n"], 1);
  EXPECT_TRUE(j.contains("ts"));
}

TEST_F(LogTest, ConcurrentWritersEachProduceWholeLines) {
  constexpr int kThreads = 4, kLines = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < kLines; ++i) Info("line", {{"thread", t}, {"i", i}});
    });
  }
  for (auto& th : threads) th.join();
  auto lines = sink_->lines();
  ASSERT_EQ(lines.size(), size_t{kThreads * kLines});
  for (const auto& l : lines) ASSERT_EQ(nlohmann::json::parse(l)["msg"], "line");
}

TEST(LogDeath, FatalWritesTheLineAndExitsWithOne) {
  EXPECT_EXIT(Fatal("cannot go on", {{"why", "test"}}), ::testing::ExitedWithCode(1),
              "\"level\":\"fatal\".*\"msg\":\"cannot go on\",\"why\":\"test\"");
}

TEST(LogDeath, PanicWritesTheLineAndAborts) {
  EXPECT_DEATH(Panic("broken"), "\"level\":\"panic\".*\"msg\":\"broken\"");
}

TEST(Hex, AsEtcdTypesId) {
  EXPECT_EQ(Hex(0x8e9e05c52164694d), "8e9e05c52164694d");
  EXPECT_EQ(Hex(0x1a), "1a");
}

}  // namespace
}  // namespace dolmen::log
