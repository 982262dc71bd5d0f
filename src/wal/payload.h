// Payload encodings of the WAL's record types (docs/formats/wal.md). Decoders take untrusted
// bytes (a checksum only proves the bytes are what was written, not that this build wrote
// them) and return an error string, never crash.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "raft/types.h"

namespace dolmen::wal {

void EncodeEntry(const raft::Entry& entry, std::string* out);
void EncodeHardState(const raft::HardState& hs, std::string* out);
void EncodeSnapshot(const raft::SnapshotMetadata& meta, std::string* out);

// Each returns false (and leaves *out unspecified) if `payload` is malformed.
bool DecodeEntry(std::string_view payload, raft::Entry* out);
bool DecodeHardState(std::string_view payload, raft::HardState* out);
bool DecodeSnapshot(std::string_view payload, raft::SnapshotMetadata* out);

}  // namespace dolmen::wal
