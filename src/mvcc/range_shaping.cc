#include "mvcc/range_shaping.h"

#include <algorithm>
#include <functional>

namespace dolmen::mvcc {
namespace {

bool Filters(const RangeOptions& o) {
  return o.min_mod_revision.value() != 0 || o.max_mod_revision.value() != 0 ||
         o.min_create_revision.value() != 0 || o.max_create_revision.value() != 0;
}

// True if `kv` fails one of the revision bounds (a bound of 0 is unset).
bool FilteredOut(const RangeOptions& o, const KeyValue& kv) {
  if (o.max_mod_revision.value() != 0 && kv.mod_revision > o.max_mod_revision) return true;
  if (o.min_mod_revision.value() != 0 && kv.mod_revision < o.min_mod_revision) return true;
  if (o.max_create_revision.value() != 0 && kv.create_revision > o.max_create_revision) return true;
  if (o.min_create_revision.value() != 0 && kv.create_revision < o.min_create_revision) return true;
  return false;
}

std::function<bool(const KeyValue&, const KeyValue&)> Less(SortTarget target) {
  switch (target) {
    case SortTarget::kKey:
      return [](const auto& a, const auto& b) { return a.key < b.key; };
    case SortTarget::kVersion:
      return [](const auto& a, const auto& b) { return a.version < b.version; };
    case SortTarget::kCreate:
      return [](const auto& a, const auto& b) { return a.create_revision < b.create_revision; };
    case SortTarget::kMod:
      return [](const auto& a, const auto& b) { return a.mod_revision < b.mod_revision; };
    case SortTarget::kValue:
      return [](const auto& a, const auto& b) { return a.value < b.value; };
  }
  return [](const auto& a, const auto& b) { return a.key < b.key; };
}

}  // namespace

int64_t VersionsToRead(const RangeOptions& opts) {
  if (opts.count_only) return 0;
  if (opts.limit <= 0 || opts.sort_order != SortOrder::kNone || Filters(opts)) return INT64_MAX;
  return opts.limit == INT64_MAX ? INT64_MAX : opts.limit + 1;
}

void ShapeRange(const RangeOptions& opts, std::vector<KeyValue>* kvs, bool* more) {
  std::erase_if(*kvs, [&](const KeyValue& kv) { return FilteredOut(opts, kv); });
  // Versions arrive in ascending key order; etcd sorts ascending by default for any target but
  // the key. Stable sorting keeps ties in key order, so results are deterministic (etcd's
  // unstable sort leaves tie order unspecified).
  SortOrder order = opts.sort_order;
  if (order == SortOrder::kNone && opts.sort_target != SortTarget::kKey) order = SortOrder::kAscend;
  auto less = Less(opts.sort_target);
  if (order == SortOrder::kAscend && opts.sort_target != SortTarget::kKey) {
    std::stable_sort(kvs->begin(), kvs->end(), less);
  } else if (order == SortOrder::kDescend) {
    std::stable_sort(kvs->begin(), kvs->end(),
                     [&](const KeyValue& a, const KeyValue& b) { return less(b, a); });
  }
  *more = false;
  if (opts.limit > 0 && static_cast<int64_t>(kvs->size()) > opts.limit) {
    kvs->resize(static_cast<size_t>(opts.limit));
    *more = true;
  }
  if (opts.keys_only) {
    for (KeyValue& kv : *kvs) kv.value.clear();
  }
}

}  // namespace dolmen::mvcc
