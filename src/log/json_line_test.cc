#include "log/json_line.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>
#include <random>

namespace dolmen::log {
namespace {

std::string Quoted(std::string_view text) {
  std::string out;
  AppendJsonString(&out, text);
  return out;
}

TEST(JsonString, EscapesAsZap) {
  EXPECT_EQ(Quoted("plain"), "\"plain\"");
  EXPECT_EQ(Quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(Quoted("l1\nl2\r\t"), "\"l1\\nl2\\r\\t\"");
  EXPECT_EQ(Quoted(std::string("\x00\x01\x1f", 3)), "\"\\u0000\\u0001\\u001f\"");
  EXPECT_EQ(Quoted("\x7f"), "\"\x7f\"");  // DEL is valid JSON as is
  EXPECT_EQ(Quoted("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
}

TEST(JsonString, InvalidUtf8BecomesReplacementCharacters) {
  EXPECT_EQ(Quoted("\xff"), "\"\\ufffd\"");
  EXPECT_EQ(Quoted("a\xc3"), "\"a\\ufffd\"");                                 // truncated sequence
  EXPECT_EQ(Quoted("\xc0\xaf"), "\"\\ufffd\\ufffd\"");                        // overlong '/'
  EXPECT_EQ(Quoted("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");             // a surrogate
  EXPECT_EQ(Quoted("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // > U+10FFFF
  EXPECT_EQ(Quoted("\x80x"), "\"\\ufffdx\"");
}

TEST(JsonString, RandomBytesAlwaysParse) {
  const char* env = std::getenv("DOLMEN_LOG_SEED");
  const unsigned seed = env != nullptr ? static_cast<unsigned>(std::strtoul(env, nullptr, 10))
                                       : std::random_device{}();
  std::printf(
      "seed %u (replay: DOLMEN_LOG_SEED=%u build/src/log/dolmen_log_test "
      "--gtest_filter=JsonString.RandomBytesAlwaysParse)\n",
      seed, seed);
  std::mt19937 rng(seed);
  for (int round = 0; round < 2000; ++round) {
    std::string bytes(rng() % 40, '\0');
    for (char& ch : bytes) ch = static_cast<char>(rng() % 256);
    const Field fields[] = {{bytes, bytes}};
    const std::string line =
        JsonLine(Level::kInfo, std::chrono::system_clock::now(), "x/y.cc", 1, bytes, fields);
    nlohmann::json parsed;
    ASSERT_NO_THROW(parsed = nlohmann::json::parse(line)) << "seed " << seed << ": " << line;
    ASSERT_TRUE(parsed.is_object());
    ASSERT_EQ(parsed.size(), 5u) << line;
  }
}

TEST(JsonLine, KeysInZapOrderThenFields) {
  setenv("TZ", "UTC", 1);
  tzset();
  const auto when = std::chrono::system_clock::time_point(std::chrono::milliseconds(1234));
  const std::vector<std::string> urls = {"http://a:1", "http://b:2"};
  const std::string id = Hex(0x8e9e05c52164694d);  // a Field only views its value
  const Field fields[] = {{"term", uint64_t{2}},
                          {"delta", -3},
                          {"ok", true},
                          {"ratio", 0.25},
                          {"took", std::chrono::milliseconds(1500)},
                          {"member-id", id},
                          {"urls", urls}};
  EXPECT_EQ(JsonLine(Level::kWarn, when, "server/driver.cc", 42, "became \"leader\"", fields),
            "{\"level\":\"warn\",\"ts\":\"1970-01-01T00:00:01.234Z\",\"caller\":"
            "\"server/driver.cc:42\",\"msg\":\"became \\\"leader\\\"\",\"term\":2,\"delta\":-3,"
            "\"ok\":true,\"ratio\":0.25,\"took\":\"1.5s\",\"member-id\":\"8e9e05c52164694d\","
            "\"urls\":[\"http://a:1\",\"http://b:2\"]}");
}

TEST(JsonLine, NonFiniteNumbersAreStringsAsZap) {
  const Field fields[] = {{"a", std::nan("")}, {"b", 1.0 / 0.0}};
  nlohmann::json j = nlohmann::json::parse(
      JsonLine(Level::kInfo, std::chrono::system_clock::now(), "a/b.cc", 1, "m", fields));
  EXPECT_EQ(j["a"], "NaN");
  EXPECT_EQ(j["b"], "+Inf");
}

TEST(Timestamp, LocalOffsetAsZapIso8601) {
  const auto when = std::chrono::system_clock::time_point(std::chrono::seconds(86400));
  setenv("TZ", "UTC", 1);
  tzset();
  EXPECT_EQ(FormatTimestamp(when), "1970-01-02T00:00:00.000Z");
  setenv("TZ", "XST-1", 1);  // POSIX TZ: one hour east of UTC
  tzset();
  EXPECT_EQ(FormatTimestamp(when), "1970-01-02T01:00:00.000+0100");
  setenv("TZ", "YST+5:30", 1);
  tzset();
  EXPECT_EQ(FormatTimestamp(when + std::chrono::milliseconds(7)), "1970-01-01T18:30:00.007-0530");
  setenv("TZ", "UTC", 1);
  tzset();
}

TEST(Caller, LastDirectoryAndFile) {
  EXPECT_EQ(ShortFile("/work/wt/src/server/driver.cc"), "server/driver.cc");
  EXPECT_EQ(ShortFile("server/driver.cc"), "server/driver.cc");
  EXPECT_EQ(ShortFile("driver.cc"), "driver.cc");
  EXPECT_EQ(ShortFile("/driver.cc"), "/driver.cc");
}

TEST(GoDurationText, AsGoPrintsIt) {
  using namespace std::chrono;
  EXPECT_EQ(GoDuration(nanoseconds(0)), "0s");
  EXPECT_EQ(GoDuration(nanoseconds(999)), "999ns");
  EXPECT_EQ(GoDuration(nanoseconds(1500)), "1.5\xc2\xb5s");
  EXPECT_EQ(GoDuration(microseconds(300)), "300\xc2\xb5s");
  EXPECT_EQ(GoDuration(milliseconds(300)), "300ms");
  EXPECT_EQ(GoDuration(microseconds(1500)), "1.5ms");
  EXPECT_EQ(GoDuration(seconds(1)), "1s");
  EXPECT_EQ(GoDuration(milliseconds(1500)), "1.5s");
  EXPECT_EQ(GoDuration(seconds(90)), "1m30s");
  EXPECT_EQ(GoDuration(minutes(10)), "10m0s");
  EXPECT_EQ(GoDuration(hours(1)), "1h0m0s");
  EXPECT_EQ(GoDuration(hours(1) + nanoseconds(1)), "1h0m0.000000001s");
  EXPECT_EQ(GoDuration(-seconds(2)), "-2s");
  EXPECT_EQ(GoDuration(nanoseconds(INT64_MIN)), "-2562047h47m16.854775808s");
}

}  // namespace
}  // namespace dolmen::log
