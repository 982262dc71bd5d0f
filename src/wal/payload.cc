#include "wal/payload.h"

#include "base/coding.h"

namespace dolmen::wal {
namespace {

constexpr size_t kEntryFixedBytes = 17;  // term, index, type
constexpr size_t kHardStateBytes = 24;   // term, vote, commit

void PutIds(const std::vector<MemberId>& ids, std::string* out) {
  coding::PutVarint64(out, ids.size());
  for (MemberId id : ids) coding::PutFixed64(out, id.value());
}

bool GetIds(std::string_view* in, std::vector<MemberId>* ids) {
  auto count = coding::GetVarint64(in);
  // Bound the count by the bytes present before reserving anything.
  if (!count || *count > in->size() / 8) return false;
  ids->clear();
  ids->reserve(*count);
  for (uint64_t i = 0; i < *count; ++i) {
    ids->push_back(MemberId(coding::DecodeFixed64(in->data())));
    in->remove_prefix(8);
  }
  return true;
}

}  // namespace

void EncodeEntry(const raft::Entry& entry, std::string* out) {
  coding::PutFixed64(out, entry.term.value());
  coding::PutFixed64(out, entry.index.value());
  out->push_back(static_cast<char>(entry.type));
  out->append(entry.data);
}

void EncodeHardState(const raft::HardState& hs, std::string* out) {
  coding::PutFixed64(out, hs.term.value());
  coding::PutFixed64(out, hs.vote.value());
  coding::PutFixed64(out, hs.commit.value());
}

void EncodeSnapshot(const raft::SnapshotMetadata& meta, std::string* out) {
  coding::PutFixed64(out, meta.index.value());
  coding::PutFixed64(out, meta.term.value());
  PutIds(meta.conf_state.voters, out);
  PutIds(meta.conf_state.learners, out);
}

bool DecodeEntry(std::string_view payload, raft::Entry* out) {
  if (payload.size() < kEntryFixedBytes) return false;
  auto type = static_cast<uint8_t>(payload[16]);
  if (type != static_cast<uint8_t>(raft::EntryType::kNormal) &&
      type != static_cast<uint8_t>(raft::EntryType::kConfChange)) {
    return false;
  }
  out->term = Term(coding::DecodeFixed64(payload.data()));
  out->index = Index(coding::DecodeFixed64(payload.data() + 8));
  out->type = static_cast<raft::EntryType>(type);
  out->data.assign(payload.substr(kEntryFixedBytes));
  return true;
}

bool DecodeHardState(std::string_view payload, raft::HardState* out) {
  if (payload.size() != kHardStateBytes) return false;
  out->term = Term(coding::DecodeFixed64(payload.data()));
  out->vote = MemberId(coding::DecodeFixed64(payload.data() + 8));
  out->commit = Index(coding::DecodeFixed64(payload.data() + 16));
  return true;
}

bool DecodeSnapshot(std::string_view payload, raft::SnapshotMetadata* out) {
  if (payload.size() < 16) return false;
  out->index = Index(coding::DecodeFixed64(payload.data()));
  out->term = Term(coding::DecodeFixed64(payload.data() + 8));
  payload.remove_prefix(16);
  if (!GetIds(&payload, &out->conf_state.voters)) return false;
  if (!GetIds(&payload, &out->conf_state.learners)) return false;
  return payload.empty();
}

}  // namespace dolmen::wal
