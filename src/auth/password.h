// bcrypt password hashes through libxcrypt (Debian's libcrypt), in the "$2b$" form etcd's Go
// bcrypt writes and reads (it also reads etcd's "$2a$" hashes). Hashing costs 2^cost rounds
// (about 70 ms at etcd's default cost 10), so callers keep it off the driver thread.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace dolmen::auth {

// etcd's bounds (Go bcrypt's MinCost and MaxCost) and default.
constexpr int kMinBcryptCost = 4;
constexpr int kMaxBcryptCost = 31;
constexpr int kDefaultBcryptCost = 10;

// A new salted hash of `password`. kInvalidArgument for a cost outside the bounds; kInternal if
// libxcrypt cannot produce one.
Result<std::string> HashPassword(std::string_view password, int cost);

// Whether `password` matches `hash`; the final comparison takes the same time wherever the two
// differ. A malformed hash matches nothing.
bool PasswordMatches(std::string_view hash, std::string_view password);

}  // namespace dolmen::auth
