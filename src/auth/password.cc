#include "auth/password.h"

#include <crypt.h>

#include <memory>
#include <string>

namespace dolmen::auth {
namespace {

// libxcrypt's failure tokens ("*0", "*1") start with '*', which no real hash does.
bool IsFailure(const char* out) { return out == nullptr || out[0] == '*'; }

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

}  // namespace

Result<std::string> HashPassword(std::string_view password, int cost) {
  if (cost < kMinBcryptCost || cost > kMaxBcryptCost) {
    return InvalidArgument("bcrypt cost " + std::to_string(cost) + " is outside [" +
                           std::to_string(kMinBcryptCost) + ", " + std::to_string(kMaxBcryptCost) +
                           "]");
  }
  if (password.find('\0') != std::string_view::npos) {
    return InvalidArgument("a password cannot contain a NUL byte");
  }
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  // No random bytes given: libxcrypt draws the salt from the kernel (getrandom).
  if (crypt_gensalt_rn("$2b$", static_cast<unsigned long>(cost), nullptr, 0, setting,
                       sizeof(setting)) == nullptr) {
    return Internal("crypt_gensalt_rn cannot make a bcrypt salt");
  }
  // crypt_data is large (tens of KiB): on the heap, not the caller's stack.
  auto data = std::make_unique<crypt_data>();
  const std::string plain(password);  // crypt_r wants a NUL-terminated string
  const char* hashed = crypt_r(plain.c_str(), setting, data.get());
  if (IsFailure(hashed)) return Internal("crypt_r cannot hash with bcrypt");
  return std::string(hashed);
}

bool PasswordMatches(std::string_view hash, std::string_view password) {
  if (hash.empty() || hash.find('\0') != std::string_view::npos ||
      password.find('\0') != std::string_view::npos) {
    return false;
  }
  auto data = std::make_unique<crypt_data>();
  const std::string stored(hash), plain(password);
  const char* computed = crypt_r(plain.c_str(), stored.c_str(), data.get());
  if (IsFailure(computed)) return false;
  return ConstantTimeEquals(computed, stored);
}

}  // namespace dolmen::auth
