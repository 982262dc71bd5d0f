#include "discovery/srv_answer.h"

#include <gtest/gtest.h>

#include <map>

namespace dolmen::discovery {
namespace {

// A DNS response built by hand (RFC 1035 section 4): header, one question, answer records.
class Message {
 public:
  explicit Message(int rcode = 0, const std::string& question = "_etcd-server._tcp.example.test") {
    Put16(0x1234);                                 // id
    Put16(0x8180 | static_cast<uint16_t>(rcode));  // response, RD, RA, rcode
    Put16(1);                                      // questions
    Put16(0);                                      // answers, patched by Add*
    Put16(0);
    Put16(0);
    PutName(question);
    Put16(33);  // SRV
    Put16(1);   // IN
  }
  // An SRV record owned by the question's name (a pointer to offset 12). `target_suffix_at`, if
  // set, ends the target with a pointer to that offset instead of spelling it out.
  Message& AddSrv(uint16_t priority, uint16_t weight, uint16_t port, const std::string& target,
                  int target_suffix_at = -1, const std::string& suffix_label = "") {
    std::vector<uint8_t> rdata;
    auto put16 = [&rdata](uint16_t v) {
      rdata.push_back(static_cast<uint8_t>(v >> 8));
      rdata.push_back(static_cast<uint8_t>(v));
    };
    put16(priority);
    put16(weight);
    put16(port);
    if (target_suffix_at >= 0) {
      rdata.push_back(static_cast<uint8_t>(suffix_label.size()));
      rdata.insert(rdata.end(), suffix_label.begin(), suffix_label.end());
      rdata.push_back(static_cast<uint8_t>(0xc0 | (target_suffix_at >> 8)));
      rdata.push_back(static_cast<uint8_t>(target_suffix_at));
    } else {
      Encode(target, &rdata);
    }
    return AddRecord(33, rdata);
  }
  Message& AddRecord(uint16_t type, const std::vector<uint8_t>& rdata) {
    Put16(0xc00c);
    Put16(type);
    Put16(1);
    Put16(0);
    Put16(60);  // ttl
    Put16(static_cast<uint16_t>(rdata.size()));
    bytes_.insert(bytes_.end(), rdata.begin(), rdata.end());
    ++bytes_[7];
    return *this;
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  Result<std::vector<SrvRecord>> Parse() const {
    return ParseSrvAnswer(bytes_.data(), bytes_.size());
  }

  static void Encode(const std::string& name, std::vector<uint8_t>* out) {
    size_t start = 0;
    while (start < name.size()) {
      size_t dot = name.find('.', start);
      if (dot == std::string::npos) dot = name.size();
      out->push_back(static_cast<uint8_t>(dot - start));
      out->insert(out->end(), name.begin() + start, name.begin() + dot);
      start = dot + 1;
    }
    out->push_back(0);
  }

 private:
  void Put16(uint16_t v) {
    bytes_.push_back(static_cast<uint8_t>(v >> 8));
    bytes_.push_back(static_cast<uint8_t>(v));
  }
  void PutName(const std::string& name) { Encode(name, &bytes_); }

  std::vector<uint8_t> bytes_;
};

TEST(SrvAnswerTest, ParsesRecordsInMessageOrderWithTheTrailingDot) {
  auto records = Message()
                     .AddSrv(0, 0, 2380, "m2.example.test")
                     .AddSrv(10, 5, 2381, "m1.example.test")
                     .Parse();
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].target, "m2.example.test.");
  EXPECT_EQ((*records)[0].port, 2380);
  EXPECT_EQ((*records)[1].target, "m1.example.test.");
  EXPECT_EQ((*records)[1].priority, 10);
  EXPECT_EQ((*records)[1].weight, 5);
  EXPECT_EQ((*records)[1].port, 2381);
}

TEST(SrvAnswerTest, FollowsNameCompressionInTheTarget) {
  // Offset 12 is the question name "_etcd-server._tcp.example.test"; its "example.test" suffix
  // starts after the labels "_etcd-server" (1+12) and "_tcp" (1+4): 12 + 13 + 5 = 30.
  auto records = Message().AddSrv(0, 0, 2380, "", 30, "m3").Parse();
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].target, "m3.example.test.");
}

TEST(SrvAnswerTest, SkipsOtherRecordTypesInTheAnswer) {
  std::vector<uint8_t> cname;
  Message::Encode("alias.example.test", &cname);
  auto records = Message().AddRecord(5, cname).AddSrv(0, 0, 2380, "m1.example.test").Parse();
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].target, "m1.example.test.");
}

TEST(SrvAnswerTest, MissingRecordsAreNoSuchHostAsGoSaysIt) {
  auto nxdomain = Message(3).Parse();
  EXPECT_EQ(nxdomain.status().code(), Code::kNotFound);
  EXPECT_EQ(nxdomain.status().message(), "no such host");
  auto nodata = Message(0).Parse();
  EXPECT_EQ(nodata.status().code(), Code::kNotFound);
  EXPECT_EQ(nodata.status().message(), "no such host");
}

TEST(SrvAnswerTest, ServerErrorsAreServerMisbehaving) {
  for (int rcode : {2 /* SERVFAIL */, 5 /* REFUSED */, 4 /* NOTIMP */}) {
    auto r = Message(rcode).Parse();
    EXPECT_EQ(r.status().code(), Code::kUnavailable) << rcode;
    EXPECT_EQ(r.status().message(), "server misbehaving") << rcode;
  }
}

TEST(SrvAnswerTest, RefusesShortRdataAndTruncatedMessages) {
  auto short_rdata = Message().AddRecord(33, {0, 1, 0, 2}).Parse();
  EXPECT_EQ(short_rdata.status().code(), Code::kInvalidArgument);
  std::vector<uint8_t> bytes = Message().AddSrv(0, 0, 2380, "m1.example.test").bytes();
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    auto r = ParseSrvAnswer(bytes.data(), cut);
    EXPECT_FALSE(r.ok()) << "cut at " << cut;
  }
}

TEST(SrvAnswerTest, RandomDamageIsAnErrorOrRecordsNeverACrash) {
  const uint64_t seed = 20261206;
  SeededRandom random(seed);
  std::vector<uint8_t> good =
      Message().AddSrv(0, 0, 2380, "m1.example.test").AddSrv(0, 0, 2380, "", 30, "m2").bytes();
  for (int round = 0; round < 2000; ++round) {
    std::vector<uint8_t> bytes = good;
    for (int flips = 1 + static_cast<int>(random.Uniform(4)); flips > 0; --flips) {
      bytes[random.Uniform(bytes.size())] = static_cast<uint8_t>(random.Next());
    }
    auto r = ParseSrvAnswer(bytes.data(), bytes.size());
    if (r.ok()) {
      for (const auto& rec : *r) EXPECT_EQ(rec.target.back(), '.') << "seed " << seed;
    }
  }
}

TEST(SrvAnswerTest, OrdersByPriorityAndKeepsTheAnswerOrderWithoutWeights) {
  std::vector<SrvRecord> records = {
      {20, 0, 1, "c."}, {10, 0, 2, "a."}, {20, 0, 3, "d."}, {10, 0, 4, "b."}};
  SeededRandom random(1);
  OrderSrvRecords(&records, &random);
  std::vector<std::string> order;
  for (const auto& r : records) order.push_back(r.target);
  EXPECT_EQ(order, (std::vector<std::string>{"a.", "b.", "c.", "d."}));
}

TEST(SrvAnswerTest, WeightsDecideTheOrderWithinAPriorityInProportion) {
  SeededRandom random(7);
  std::map<std::string, int> first;
  for (int round = 0; round < 4000; ++round) {
    std::vector<SrvRecord> records = {{0, 0, 1, "zero."}, {0, 1, 1, "light."}, {0, 3, 1, "heavy."}};
    OrderSrvRecords(&records, &random);
    ++first[records[0].target];
    EXPECT_EQ(records[2].target, "zero.");  // weight 0 is never drawn before the others
  }
  EXPECT_EQ(first["zero."], 0);
  // 3:1 expected; a wide band keeps the test about the rule, not the generator.
  EXPECT_GT(first["heavy."], 2700);
  EXPECT_LT(first["heavy."], 3300);
}

}  // namespace
}  // namespace dolmen::discovery
