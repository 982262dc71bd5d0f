#include "raft/conf_change.h"

#include "base/coding.h"

namespace dolmen::raft {

namespace {
constexpr char kConfChangeVersion = 1;
constexpr char kConfChangeV2Version = 2;
}  // namespace

ConfChangeV2 ToV2(const ConfChange& cc) {
  ConfChangeV2 v2;
  v2.changes.push_back(ConfChangeSingle{cc.type, cc.node_id});
  v2.context = cc.context;
  return v2;
}

std::string EncodeConfChangeV2(const ConfChangeV2& cc) {
  std::string out;
  out.push_back(kConfChangeV2Version);
  out.push_back(static_cast<char>(cc.transition));
  coding::PutVarint64(&out, cc.changes.size());
  for (const ConfChangeSingle& c : cc.changes) {
    out.push_back(static_cast<char>(c.type));
    coding::PutVarint64(&out, c.node_id.value());
  }
  coding::PutLengthPrefixed(&out, cc.context);
  return out;
}

Result<ConfChangeV2> DecodeConfChangeV2(std::string_view data) {
  if (!data.empty() && data[0] == kConfChangeVersion) {
    ASSIGN_OR_RETURN(ConfChange v1, DecodeConfChange(data));
    return ToV2(v1);
  }
  if (data.size() < 2 || data[0] != kConfChangeV2Version) {
    return Corruption("conf change: bad version");
  }
  const auto transition = static_cast<uint8_t>(data[1]);
  if (transition > static_cast<uint8_t>(ConfChangeTransition::kJointExplicit)) {
    return Corruption("conf change: unknown transition");
  }
  data.remove_prefix(2);
  ConfChangeV2 cc;
  cc.transition = static_cast<ConfChangeTransition>(transition);
  auto count = coding::GetVarint64(&data);
  if (!count || *count > ConfChangeV2::kMaxChanges) return Corruption("conf change: bad count");
  for (uint64_t i = 0; i < *count; ++i) {
    if (data.empty()) return Corruption("conf change: truncated");
    const auto type = static_cast<uint8_t>(data[0]);
    if (type > static_cast<uint8_t>(ConfChangeType::kAddLearner)) {
      return Corruption("conf change: unknown type");
    }
    data.remove_prefix(1);
    auto id = coding::GetVarint64(&data);
    if (!id) return Corruption("conf change: bad node id");
    cc.changes.push_back(ConfChangeSingle{static_cast<ConfChangeType>(type), MemberId(*id)});
  }
  auto context = coding::GetLengthPrefixed(&data);
  if (!context || !data.empty()) return Corruption("conf change: bad context");
  cc.context = std::string(*context);
  return cc;
}

std::string EncodeConfChange(const ConfChange& cc) {
  std::string out;
  out.push_back(kConfChangeVersion);
  out.push_back(static_cast<char>(cc.type));
  coding::PutVarint64(&out, cc.node_id.value());
  coding::PutLengthPrefixed(&out, cc.context);
  return out;
}

Result<ConfChange> DecodeConfChange(std::string_view data) {
  if (data.size() < 2 || data[0] != kConfChangeVersion) {
    return Corruption("conf change: bad version");
  }
  const auto type = static_cast<uint8_t>(data[1]);
  if (type > static_cast<uint8_t>(ConfChangeType::kAddLearner)) {
    return Corruption("conf change: unknown type");
  }
  data.remove_prefix(2);
  auto id = coding::GetVarint64(&data);
  if (!id) return Corruption("conf change: bad node id");
  auto context = coding::GetLengthPrefixed(&data);
  if (!context || !data.empty()) return Corruption("conf change: bad context");
  return ConfChange{static_cast<ConfChangeType>(type), MemberId(*id), std::string(*context)};
}

}  // namespace dolmen::raft
