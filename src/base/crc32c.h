// CRC-32C (Castagnoli), the checksum of every on-disk record. Extend() lets a record's checksum
// be computed over its header and payload without concatenating them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace dolmen::crc32c {

// Uses the CPU's crc32 instruction where there is one (x86-64 with SSE4.2).
uint32_t Extend(uint32_t crc, const void* data, size_t n);
// The table-driven version, for tests that check the two agree.
uint32_t ExtendPortable(uint32_t crc, const void* data, size_t n);
inline uint32_t Value(const void* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::string_view s) { return Value(s.data(), s.size()); }

}  // namespace dolmen::crc32c
