// A revision pair (main, sub): `main` is the store revision of a write txn, `sub` the position
// of a change inside it. Every stored version of a key is named by one, and the key bucket is
// ordered by them (see docs/formats/mvcc.md).
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/ids.h"

namespace dolmen::mvcc {

struct RevisionPair {
  int64_t main = 0;
  int64_t sub = 0;
  auto operator<=>(const RevisionPair&) const = default;
};

// Backend key of one version: 8-byte big-endian main, '_', 8-byte big-endian sub (17 bytes),
// plus a trailing 't' when the version is a tombstone. Big-endian so byte order is revision
// order (revisions are never negative).
inline constexpr size_t kRevisionKeyBytes = 17;

std::string EncodeRevisionKey(RevisionPair rev, bool tombstone);

struct DecodedRevisionKey {
  RevisionPair rev;
  bool tombstone = false;
};
// nullopt if `key` is not a well-formed revision key.
std::optional<DecodedRevisionKey> DecodeRevisionKey(std::string_view key);

}  // namespace dolmen::mvcc
