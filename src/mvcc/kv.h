// The MVCC vocabulary shared by the store, the server and watch: key-values and range requests,
// with etcd v3's meaning for every field.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/ids.h"

namespace dolmen::mvcc {

// One version of a key, as etcd's mvccpb.KeyValue.
struct KeyValue {
  std::string key;
  Revision create_revision;  // revision that created the key's current generation
  Revision mod_revision;     // revision of this version
  int64_t version = 0;       // 1 on create, +1 per put, reset when the key is deleted
  std::string value;
  LeaseId lease;  // 0 = none

  bool operator==(const KeyValue&) const = default;
};

// One change, as etcd's mvccpb.Event: a put carries the new version; a delete carries only the
// key and the delete's revision in mod_revision (all else zero), as etcd does.
struct Event {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;

  bool operator==(const Event&) const = default;
};

enum class SortOrder { kNone, kAscend, kDescend };
enum class SortTarget { kKey, kVersion, kCreate, kMod, kValue };

// etcd's RangeRequest.
struct RangeOptions {
  std::string key;
  // Empty = just `key`; "\0" = every key >= `key`; otherwise [key, range_end).
  std::string range_end;
  int64_t limit = 0;     // <= 0 = no limit
  Revision revision{0};  // <= 0 = current
  SortOrder sort_order = SortOrder::kNone;
  SortTarget sort_target = SortTarget::kKey;
  bool keys_only = false;   // values come back empty
  bool count_only = false;  // only `count` is filled
  // 0 = no bound. As in etcd these prune the returned kvs but do not change `count`.
  Revision min_mod_revision{0}, max_mod_revision{0};
  Revision min_create_revision{0}, max_create_revision{0};
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  bool more = false;  // limit cut the result short
  int64_t count = 0;  // keys in the range at the read revision, before limit and filters
  Revision revision;  // the store's current revision (for the response header), not the read one
};

}  // namespace dolmen::mvcc
