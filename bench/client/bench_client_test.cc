// Flag parsing, key format and percentiles: the parts of dolmen-bench that need no server.
#include <gtest/gtest.h>

#include <vector>

#include "keys.h"
#include "options.h"
#include "report.h"

namespace dolmen::bench {
namespace {

std::string Parse(std::vector<std::string> args, Options* options) {
  std::vector<char*> argv{const_cast<char*>("dolmen-bench")};
  for (auto& a : args) argv.push_back(a.data());
  return ParseOptions(static_cast<int>(argv.size()), argv.data(), options);
}

TEST(OptionsTest, ReadsBothFlagForms) {
  Options o;
  ASSERT_EQ(Parse({"range", "--clients=64", "--total", "500", "--consistency=s", "--prefix",
                   "--endpoints", "http://127.0.0.1:1,127.0.0.1:2"},
                  &o),
            "");
  EXPECT_EQ(o.workload, "range");
  EXPECT_EQ(o.clients, 64);
  EXPECT_EQ(o.total, 500);
  EXPECT_FALSE(o.linearizable);
  EXPECT_TRUE(o.prefix);
  EXPECT_EQ(o.endpoints, (std::vector<std::string>{"127.0.0.1:1", "127.0.0.1:2"}));
}

TEST(OptionsTest, RefusesBadInputWithTheFlagName) {
  auto error = [](std::vector<std::string> args) {
    Options o;
    return Parse(std::move(args), &o);
  };
  EXPECT_NE(error({"put", "--clients=0"}).find("--clients"), std::string::npos);
  EXPECT_NE(error({"put", "--total=12x"}).find("--total"), std::string::npos);
  EXPECT_NE(error({"put", "--consistency=x"}).find("--consistency"), std::string::npos);
  EXPECT_NE(error({"put", "--bogus"}).find("--bogus"), std::string::npos);
  EXPECT_NE(error({"put", "--total"}).find("missing value"), std::string::npos);
  EXPECT_NE(error({"put", "range"}).find("unexpected argument"), std::string::npos);
  EXPECT_NE(error({"get"}).find("unknown workload"), std::string::npos);
  EXPECT_NE(error({}).find("missing workload"), std::string::npos);
}

TEST(KeysTest, ZeroPaddedToKeySizeSoTheySortNumerically) {
  EXPECT_EQ(FormatKey(42, 6), "000042");
  EXPECT_EQ(FormatKey(1234567, 3), "1234567");
}

TEST(FiguresTest, PercentilesAreNearestRank) {
  Figures f;
  for (int i = 1; i <= 1000; ++i) f.latencies_ns.push_back(i * 1000000LL);
  f.Finish();
  EXPECT_DOUBLE_EQ(f.PercentileMs(0.5), 500);
  EXPECT_DOUBLE_EQ(f.PercentileMs(0.99), 990);
  EXPECT_DOUBLE_EQ(f.PercentileMs(0.999), 999);
  EXPECT_DOUBLE_EQ(f.PercentileMs(1.0), 1000);
  EXPECT_DOUBLE_EQ(Figures{}.PercentileMs(0.5), 0);
}

}  // namespace
}  // namespace dolmen::bench
