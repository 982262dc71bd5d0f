#include "server/range_wire.h"

#include "base/coding.h"

namespace dolmen::server {
namespace {

// RangeResponse's field numbers (proto/etcdserverpb/rpc.proto) with their wire types.
constexpr uint8_t kHeaderTag = (1 << 3) | 2;  // length-delimited
constexpr uint8_t kKvsTag = (2 << 3) | 2;     // length-delimited
constexpr uint8_t kMoreTag = (3 << 3) | 0;    // varint
constexpr uint8_t kCountTag = (4 << 3) | 0;   // varint

size_t VarintBytes(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

size_t FieldBytes(size_t payload) { return 1 + VarintBytes(payload) + payload; }

}  // namespace

std::string EncodeRangeResponse(const etcdserverpb::ResponseHeader& header,
                                const mvcc::EncodedRange& range) {
  const std::string head = header.SerializeAsString();
  // Sized first: the reply is one allocation, however many megabytes it holds.
  size_t total = FieldBytes(head.size()) + 2 + 1 + 10;
  for (std::string_view kv : range.kvs) total += FieldBytes(kv.size());
  std::string out;
  out.reserve(total);
  out.push_back(static_cast<char>(kHeaderTag));
  coding::PutLengthPrefixed(&out, head);
  for (std::string_view kv : range.kvs) {
    out.push_back(static_cast<char>(kKvsTag));
    coding::PutLengthPrefixed(&out, kv);
  }
  if (range.more) {
    out.push_back(static_cast<char>(kMoreTag));
    out.push_back(1);
  }
  if (range.count != 0) {
    out.push_back(static_cast<char>(kCountTag));
    // Protobuf int64: a negative number is its 64-bit two's complement.
    coding::PutVarint64(&out, static_cast<uint64_t>(range.count));
  }
  return out;
}

}  // namespace dolmen::server
