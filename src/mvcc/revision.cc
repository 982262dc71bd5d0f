#include "mvcc/revision.h"

#include "base/check.h"
#include "base/coding.h"

namespace dolmen::mvcc {

std::string EncodeRevisionKey(RevisionPair rev, bool tombstone) {
  CHECK_GE(rev.main, 0);
  CHECK_GE(rev.sub, 0);
  std::string out;
  out.reserve(kRevisionKeyBytes + 1);
  coding::PutBigEndian64(&out, static_cast<uint64_t>(rev.main));
  out.push_back('_');
  coding::PutBigEndian64(&out, static_cast<uint64_t>(rev.sub));
  if (tombstone) out.push_back('t');
  return out;
}

std::optional<DecodedRevisionKey> DecodeRevisionKey(std::string_view key) {
  if (key.size() != kRevisionKeyBytes && key.size() != kRevisionKeyBytes + 1) return std::nullopt;
  if (key[8] != '_') return std::nullopt;
  if (key.size() == kRevisionKeyBytes + 1 && key.back() != 't') return std::nullopt;
  uint64_t main = coding::DecodeBigEndian64(key.data());
  uint64_t sub = coding::DecodeBigEndian64(key.data() + 9);
  if (main > INT64_MAX || sub > INT64_MAX) return std::nullopt;
  return DecodedRevisionKey{{static_cast<int64_t>(main), static_cast<int64_t>(sub)},
                            key.size() == kRevisionKeyBytes + 1};
}

}  // namespace dolmen::mvcc
