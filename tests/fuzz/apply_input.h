// The apply fuzzer's input format, shared by the fuzzer and the seed writer: a sequence of
// InternalRequests, each a 2-byte little-endian length and that many bytes of protobuf, so one
// input drives a series of applies on one store (a put, then a txn on what it wrote, ...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dolmen/internal.pb.h"

namespace dolmen::fuzz {

inline void AppendRequest(const internal::InternalRequest& request, std::string* out) {
  const std::string bytes = request.SerializeAsString();
  out->push_back(static_cast<char>(bytes.size() & 0xff));
  out->push_back(static_cast<char>((bytes.size() >> 8) & 0xff));
  out->append(bytes.substr(0, 0xffff));
}

// Calls fn(bytes) for each framed request; a truncated last frame is passed as it is.
template <typename Fn>
void ForEachRequest(std::string_view data, Fn fn) {
  while (data.size() >= 2) {
    const size_t size = static_cast<uint8_t>(data[0]) | (static_cast<uint8_t>(data[1]) << 8);
    data.remove_prefix(2);
    const std::string_view bytes = data.substr(0, size);
    data.remove_prefix(bytes.size());
    fn(bytes);
  }
}

}  // namespace dolmen::fuzz
