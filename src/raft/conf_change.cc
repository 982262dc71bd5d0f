#include "raft/conf_change.h"

#include "base/coding.h"

namespace dolmen::raft {

namespace {
constexpr char kConfChangeVersion = 1;
}  // namespace

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
