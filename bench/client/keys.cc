#include "keys.h"

namespace dolmen::bench {

std::string FormatKey(int64_t n, int key_size) {
  std::string digits = std::to_string(n);
  if (digits.size() >= static_cast<size_t>(key_size)) return digits;
  return std::string(static_cast<size_t>(key_size) - digits.size(), '0') + digits;
}

}  // namespace dolmen::bench
