// The value stored for each revision: a KeyValue in the protobuf wire format of etcd's
// mvccpb.KeyValue (field numbers 1..6, proto3 rules: zero fields omitted, in field order).
// Hand-written so that mvcc does not depend on generated code, and byte-identical to what etcd
// writes, which keeps HashKv comparable with etcd's (docs/formats/mvcc.md).
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "mvcc/kv.h"

namespace dolmen::mvcc {

std::string EncodeKeyValue(const KeyValue& kv);
// kCorruption on malformed input; never crashes.
Result<KeyValue> DecodeKeyValue(std::string_view data);

// A decoded record whose key and value point into the bytes it was decoded from (no copy).
struct KeyValueView {
  std::string_view key;
  Revision create_revision;
  Revision mod_revision;
  int64_t version = 0;
  std::string_view value;
  LeaseId lease;
};
// As DecodeKeyValue; the views live as long as `data`.
Result<KeyValueView> DecodeKeyValueView(std::string_view data);

}  // namespace dolmen::mvcc
