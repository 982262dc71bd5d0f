// The snapshot image fuzzer's input format, shared by the fuzzer and the seed writer: the records
// of a backend image, each a bucket name, a key and a value, every part a 2-byte little-endian
// length and that many bytes. A leader's snapshot image is a backend file, so this is what a
// member decodes when it installs one (or opens its own backend at start).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dolmen::fuzz {

inline void AppendPart(std::string_view part, std::string* out) {
  part = part.substr(0, 0xffff);
  out->push_back(static_cast<char>(part.size() & 0xff));
  out->push_back(static_cast<char>((part.size() >> 8) & 0xff));
  out->append(part);
}

inline void AppendRecord(std::string_view bucket, std::string_view key, std::string_view value,
                         std::string* out) {
  AppendPart(bucket, out);
  AppendPart(key, out);
  AppendPart(value, out);
}

// Calls fn(bucket, key, value) for each whole record; a truncated last record is dropped.
template <typename Fn>
void ForEachRecord(std::string_view data, Fn fn) {
  auto take = [&data](std::string_view* part) {
    if (data.size() < 2) return false;
    const size_t size = static_cast<uint8_t>(data[0]) | (static_cast<uint8_t>(data[1]) << 8);
    data.remove_prefix(2);
    if (data.size() < size) return false;
    *part = data.substr(0, size);
    data.remove_prefix(size);
    return true;
  };
  std::string_view bucket, key, value;
  while (take(&bucket) && take(&key) && take(&value)) fn(bucket, key, value);
}

}  // namespace dolmen::fuzz
