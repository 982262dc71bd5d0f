#include "metrics/metrics.h"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "metrics/process.h"

namespace dolmen::metrics {
namespace {

TEST(FormatValue, FollowsGoShortestG) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(1), "1");
  EXPECT_EQ(FormatValue(0.5), "0.5");
  EXPECT_EQ(FormatValue(0.001), "0.001");
  EXPECT_EQ(FormatValue(0.0001), "0.0001");
  EXPECT_EQ(FormatValue(0.00001), "1e-05");
  EXPECT_EQ(FormatValue(123456), "123456");
  EXPECT_EQ(FormatValue(1234567), "1.234567e+06");
  EXPECT_EQ(FormatValue(1e6), "1e+06");
  EXPECT_EQ(FormatValue(8.192), "8.192");
  EXPECT_EQ(FormatValue(-2.5), "-2.5");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
}

TEST(Registry, ExposesCountersAndGaugesSortedWithHelpAndType) {
  Registry r;
  r.AddGauge("b_gauge", "A gauge.").Set(2.5);
  Counter& c = r.AddCounter("a_total", "A counter.");
  c.Inc();
  c.Add(2);
  EXPECT_EQ(&r.AddCounter("a_total", "again"), &c);  // a second registration shares it
  EXPECT_EQ(r.Expose(),
            "# HELP a_total A counter.\n# TYPE a_total counter\na_total 3\n"
            "# HELP b_gauge A gauge.\n# TYPE b_gauge gauge\nb_gauge 2.5\n");
}

// Label pairs are written sorted by name (uppercase first, byte order), as Go's client does.
TEST(Registry, LabelledFamilyEscapesValuesAndSkipsEmptyFamilies) {
  Registry r;
  CounterFamily& f = r.AddCounterFamily("x_total", "X.", {"code", "To"});
  r.AddCounterFamily("unused_total", "Never used.", {"a"});
  f.With({"c\\d\n", "a\"b"}).Add(5);
  f.With({"ok", "2"}).Inc();
  EXPECT_EQ(r.Expose(),
            "# HELP x_total X.\n# TYPE x_total counter\n"
            "x_total{To=\"a\\\"b\",code=\"c\\\\d\\n\"} 5\n"
            "x_total{To=\"2\",code=\"ok\"} 1\n");
}

TEST(Histogram, CumulativeBucketsSumAndCount) {
  Registry r;
  Histogram& h = r.AddHistogram("lat_seconds", "Latency.", ExponentialBuckets(0.001, 2, 3));
  h.Observe(0.0005);
  h.Observe(0.001);  // on a bound: counted in that bucket (le)
  h.Observe(0.003);
  h.Observe(10);
  EXPECT_EQ(r.Expose(),
            "# HELP lat_seconds Latency.\n# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{le=\"0.001\"} 2\n"
            "lat_seconds_bucket{le=\"0.002\"} 2\n"
            "lat_seconds_bucket{le=\"0.004\"} 3\n"
            "lat_seconds_bucket{le=\"+Inf\"} 4\n"
            "lat_seconds_sum 10.0045\n"
            "lat_seconds_count 4\n");
}

TEST(Histogram, LabelledBucketsPutLeLast) {
  Registry r;
  r.AddHistogramFamily("rtt_seconds", "RTT.", {"To"}, {0.5}).With({"7"}).Observe(0.1);
  EXPECT_NE(r.Expose().find("rtt_seconds_bucket{To=\"7\",le=\"0.5\"} 1\n"), std::string::npos);
}

TEST(Registry, CollectorsAreReadAtScrapeAndRemovedByOwner) {
  Registry r;
  int owner = 0;
  double v = 1;
  r.AddGaugeFunc(
      "g", "G.", [&v] { return v; }, &owner);
  v = 7;
  EXPECT_NE(r.Expose().find("\ng 7\n"), std::string::npos);
  r.RemoveCollectors(&owner);
  EXPECT_EQ(r.Expose(), "");
}

TEST(Counter, ConcurrentIncrementsAllCount) {
  Counter c;
  Histogram h({1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        c.Inc();
        h.Observe(0.5);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.Get(), 400000);
  EXPECT_EQ(h.Read().cumulative.back(), 400000u);
  EXPECT_EQ(h.Read().sum, 200000);
}

TEST(ProcessMetrics, ReportPlausibleValues) {
  Registry r;
  RegisterProcessMetrics(r);
  const std::string text = r.Expose();
  for (const char* name : {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
                           "process_virtual_memory_bytes ", "process_open_fds ", "process_max_fds ",
                           "process_start_time_seconds "}) {
    const size_t at = text.find(std::string("\n") + name);
    ASSERT_NE(at, std::string::npos) << name << " missing in\n" << text;
    const double value = std::strtod(text.c_str() + at + 1 + std::strlen(name), nullptr);
    // A test process may not have used one clock tick of CPU yet.
    if (std::string(name) == "process_cpu_seconds_total ") {
      EXPECT_GE(value, 0);
    } else {
      EXPECT_GT(value, 0) << name;
    }
  }
}

}  // namespace
}  // namespace dolmen::metrics
