#include "mvcc/kv_codec.h"

#include "base/coding.h"

namespace dolmen::mvcc {
namespace {

// Protobuf wire types used by mvccpb.KeyValue, and the 64-bit one we only skip.
constexpr uint32_t kVarint = 0;
constexpr uint32_t kFixed64 = 1;
constexpr uint32_t kLengthDelimited = 2;
constexpr uint32_t kFixed32 = 5;

enum Field : uint32_t {
  kKey = 1,
  kCreateRevision = 2,
  kModRevision = 3,
  kVersion = 4,
  kValue = 5,
  kLease = 6,
};

void PutTag(std::string* out, uint32_t field, uint32_t wire_type) {
  coding::PutVarint64(out, (field << 3) | wire_type);
}

void PutInt64Field(std::string* out, uint32_t field, int64_t v) {
  if (v == 0) return;
  PutTag(out, field, kVarint);
  // Protobuf int64: negative numbers are their 64-bit two's complement as a varint.
  coding::PutVarint64(out, static_cast<uint64_t>(v));
}

void PutBytesField(std::string* out, uint32_t field, std::string_view v) {
  if (v.empty()) return;
  PutTag(out, field, kLengthDelimited);
  coding::PutLengthPrefixed(out, v);
}

Status Malformed(std::string_view why) {
  return Corruption("mvcc key-value record: " + std::string(why));
}

}  // namespace

std::string EncodeKeyValue(const KeyValue& kv) {
  std::string out;
  out.reserve(kv.key.size() + kv.value.size() + 40);
  PutBytesField(&out, kKey, kv.key);
  PutInt64Field(&out, kCreateRevision, kv.create_revision.value());
  PutInt64Field(&out, kModRevision, kv.mod_revision.value());
  PutInt64Field(&out, kVersion, kv.version);
  PutBytesField(&out, kValue, kv.value);
  PutInt64Field(&out, kLease, kv.lease.value());
  return out;
}

Result<KeyValue> DecodeKeyValue(std::string_view data) {
  ASSIGN_OR_RETURN(KeyValueView view, DecodeKeyValueView(data));
  return KeyValue{std::string(view.key), view.create_revision,    view.mod_revision,
                  view.version,          std::string(view.value), view.lease};
}

Result<KeyValueView> DecodeKeyValueView(std::string_view data) {
  KeyValueView kv;
  while (!data.empty()) {
    std::optional<uint64_t> tag = coding::GetVarint64(&data);
    if (!tag) return Malformed("truncated tag");
    const uint64_t field = *tag >> 3;
    const uint32_t wire_type = static_cast<uint32_t>(*tag & 7);
    if (wire_type == kVarint) {
      std::optional<uint64_t> v = coding::GetVarint64(&data);
      if (!v) return Malformed("truncated varint");
      const auto i = static_cast<int64_t>(*v);
      switch (field) {
        case kCreateRevision:
          kv.create_revision = Revision(i);
          break;
        case kModRevision:
          kv.mod_revision = Revision(i);
          break;
        case kVersion:
          kv.version = i;
          break;
        case kLease:
          kv.lease = LeaseId(i);
          break;
        default:
          break;  // unknown field: skipped, as protobuf does
      }
    } else if (wire_type == kLengthDelimited) {
      std::optional<std::string_view> v = coding::GetLengthPrefixed(&data);
      if (!v) return Malformed("truncated bytes field");
      if (field == kKey) kv.key = *v;
      if (field == kValue) kv.value = *v;
    } else if (wire_type == kFixed64 || wire_type == kFixed32) {
      const size_t n = wire_type == kFixed64 ? 8 : 4;
      if (data.size() < n) return Malformed("truncated fixed field");
      data.remove_prefix(n);
    } else {
      return Malformed("unsupported wire type " + std::to_string(wire_type));
    }
  }
  return kv;
}

}  // namespace dolmen::mvcc
