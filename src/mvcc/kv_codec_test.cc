#include "mvcc/kv_codec.h"

#include <gtest/gtest.h>

#include "mvcc/revision.h"

namespace dolmen::mvcc {
namespace {

TEST(MvccKvCodecTest, RoundTrips) {
  KeyValue kv{"foo", Revision(2), Revision(9), 3, std::string("b\0r", 3), LeaseId(-5)};
  Result<KeyValue> back = DecodeKeyValue(EncodeKeyValue(kv));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, kv);
  KeyValue empty;
  EXPECT_EQ(EncodeKeyValue(empty), "");
  EXPECT_EQ(*DecodeKeyValue(""), empty);
}

TEST(MvccKvCodecTest, MatchesEtcdProtobufBytes) {
  // mvccpb.KeyValue{key:"a", create_revision:2, mod_revision:3, version:1, value:"b", lease:0}
  // as etcd (gogoproto) marshals it: fields in order, zero fields left out.
  KeyValue kv{"a", Revision(2), Revision(3), 1, "b", LeaseId(0)};
  EXPECT_EQ(EncodeKeyValue(kv), std::string("\x0a\x01"
                                            "a"
                                            "\x10\x02\x18\x03\x20\x01\x2a\x01"
                                            "b"));
  KeyValue tombstone;
  tombstone.key = "k";
  EXPECT_EQ(EncodeKeyValue(tombstone), std::string("\x0a\x01k"));
}

TEST(MvccKvCodecTest, RejectsMalformedWithoutCrashing) {
  std::string good = EncodeKeyValue(KeyValue{"key", Revision(1), Revision(1), 1, "v", LeaseId()});
  for (size_t n = 1; n < good.size(); ++n) {
    Result<KeyValue> r = DecodeKeyValue(good.substr(0, n));
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Code::kCorruption);
    }
  }
  EXPECT_EQ(DecodeKeyValue("\x0a\x7f").status().code(), Code::kCorruption);  // length too long
  EXPECT_EQ(DecodeKeyValue("\x0b").status().code(), Code::kCorruption);      // wire type 3
  EXPECT_EQ(DecodeKeyValue(std::string(11, '\xff')).status().code(), Code::kCorruption);
}

TEST(MvccKvCodecTest, SkipsUnknownFields) {
  KeyValue kv;
  kv.key = "k";
  std::string data = std::string("\x38\x05") + "\x42\x02zz" + EncodeKeyValue(kv);
  Result<KeyValue> r = DecodeKeyValue(data);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->key, "k");
}

TEST(MvccRevisionKeyTest, EncodesBigEndianAndSortsByRevision) {
  std::string a = EncodeRevisionKey({1, 0}, false);
  std::string b = EncodeRevisionKey({1, 1}, true);
  std::string c = EncodeRevisionKey({256, 0}, false);
  EXPECT_EQ(a, std::string("\0\0\0\0\0\0\0\x01_\0\0\0\0\0\0\0\0", 17));
  EXPECT_EQ(b.size(), 18u);
  EXPECT_EQ(b.back(), 't');
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  auto d = DecodeRevisionKey(b);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->rev, (RevisionPair{1, 1}));
  EXPECT_TRUE(d->tombstone);
  EXPECT_FALSE(DecodeRevisionKey("short").has_value());
  std::string bad = a;
  bad[8] = '-';
  EXPECT_FALSE(DecodeRevisionKey(bad).has_value());
  EXPECT_FALSE(DecodeRevisionKey(a + "x").has_value());
}

}  // namespace
}  // namespace dolmen::mvcc
