// The key ranges one user may read and write: the union of the permissions of all the user's
// roles, as etcd's range permission cache (auth/range_perm_cache.go) computes it.
//
// Conventions (etcd's): a permission or request with an empty range_end is the single key;
// range_end "\0" means every key from `key` on; otherwise [key, range_end). A single key is
// permitted when one permission range holds it; a range when the union of the permission
// ranges covers all of it without a gap.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "authpb/auth.pb.h"

namespace dolmen::auth {

class KeyPermissions {
 public:
  // Adds one of a role's permissions.
  void Add(const authpb::Permission& permission);
  // Merges the ranges added so far; before the first check.
  void Finish();

  bool CanRead(std::string_view key, std::string_view range_end) const {
    return Covers(read_, key, range_end);
  }
  bool CanWrite(std::string_view key, std::string_view range_end) const {
    return Covers(write_, key, range_end);
  }

 private:
  // [begin, end); `unbounded` stands for "every key from begin on".
  struct Range {
    std::string begin;
    std::string end;
    bool unbounded = false;
  };
  static Range ToRange(std::string_view key, std::string_view range_end);
  static void Merge(std::vector<Range>* ranges);
  static bool Covers(const std::vector<Range>& merged, std::string_view key,
                     std::string_view range_end);

  std::vector<Range> read_;   // sorted, disjoint and not touching after Finish
  std::vector<Range> write_;  // likewise
};

}  // namespace dolmen::auth
