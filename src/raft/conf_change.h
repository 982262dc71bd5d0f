// Membership changes, one member at a time (Raft thesis §4.1; etcd raft's ConfChange V1
// semantics): a change is proposed as a kConfChange entry and takes effect on each node when the
// application applies that entry and calls RawNode::ApplyConfChange. The leader allows one
// unapplied change in its log at a time, and none before it has applied an entry of its own
// term, which keeps any two successive configurations overlapping in a majority.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/ids.h"
#include "base/status.h"

namespace dolmen::raft {

enum class ConfChangeType : uint8_t {
  kAddNode = 0,     // add a voter, or promote a learner
  kRemoveNode = 1,  // remove a voter or a learner
  kAddLearner = 2,  // add a learner, or demote a voter
};

struct ConfChange {
  ConfChangeType type = ConfChangeType::kAddNode;
  MemberId node_id;
  std::string context;  // opaque to Raft (the server puts the member's URLs here)

  bool operator==(const ConfChange&) const = default;
};

// Encoding inside an entry's data: version byte 1, type byte, varint node id, length-prefixed
// context.
std::string EncodeConfChange(const ConfChange& cc);
Result<ConfChange> DecodeConfChange(std::string_view data);

}  // namespace dolmen::raft
