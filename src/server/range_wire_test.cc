// The RangeResponse written from stored records parses to the message ToRangeResponse fills.
#include "server/range_wire.h"

#include <gtest/gtest.h>

#include "mvcc/kv_codec.h"
#include "server/applier.h"

namespace dolmen::server {
namespace {

mvcc::KeyValue Version(std::string key, int64_t create, int64_t mod, int64_t version,
                       std::string value, int64_t lease) {
  return mvcc::KeyValue{std::move(key), Revision(create), Revision(mod),
                        version,        std::move(value), LeaseId(lease)};
}

// Encodes `rr` both ways and compares the parsed messages field by field.
void ExpectSameResponse(const mvcc::RangeResult& rr) {
  etcdserverpb::ResponseHeader header;
  header.set_cluster_id(0xfeedULL << 48);
  header.set_member_id(42);
  header.set_raft_term(7);
  header.set_revision(rr.revision.value());

  etcdserverpb::RangeResponse want;
  ToRangeResponse(rr, /*keys_only=*/false, &want);
  *want.mutable_header() = header;

  std::vector<std::string> records;
  for (const mvcc::KeyValue& kv : rr.kvs) records.push_back(mvcc::EncodeKeyValue(kv));
  mvcc::EncodedRange encoded;
  for (const std::string& r : records) encoded.kvs.push_back(r);
  encoded.more = rr.more;
  encoded.count = rr.count;
  encoded.revision = rr.revision;

  const std::string bytes = EncodeRangeResponse(header, encoded);
  etcdserverpb::RangeResponse got;
  ASSERT_TRUE(got.ParseFromString(bytes));
  // Parsed back and written by protobuf, the two messages are the same message.
  EXPECT_EQ(got.SerializeAsString(), want.SerializeAsString())
      << "want " << want.ShortDebugString() << "\ngot  " << got.ShortDebugString();
  EXPECT_EQ(got.kvs_size(), static_cast<int>(rr.kvs.size()));
  // Canonical field order and no defaults written: the same bytes protobuf writes.
  EXPECT_EQ(bytes, want.SerializeAsString());
}

TEST(RangeWireTest, EmptyRangeHasHeaderOnly) {
  mvcc::RangeResult rr;
  rr.revision = Revision(1);
  ExpectSameResponse(rr);
}

TEST(RangeWireTest, VersionsMoreAndCount) {
  mvcc::RangeResult rr;
  rr.revision = Revision(1'000'000'000'000);
  rr.kvs.push_back(Version("a", 2, 2, 1, "v", 0));
  rr.kvs.push_back(Version("b", 3, 9, 4, "", 0x1234567890));  // empty value, lease
  rr.kvs.push_back(Version(std::string("\0k", 2), 5, 5, 1, std::string(70'000, 'x'), 0));
  rr.more = true;
  rr.count = 300;
  ExpectSameResponse(rr);
}

TEST(RangeWireTest, CountWithoutVersions) {
  mvcc::RangeResult rr;
  rr.revision = Revision(12);
  rr.count = 5;  // count_only
  ExpectSameResponse(rr);
}

}  // namespace
}  // namespace dolmen::server
