// Membership changes. A change is proposed as a kConfChange entry and takes effect on each node
// when the application applies that entry and calls RawNode::ApplyConfChange (etcd raft's
// semantics). The leader allows one unapplied change in its log at a time, and none before it
// has applied an entry of its own term.
//
// ConfChange: one member at a time (Raft thesis §4.1): any two successive configurations share
// a majority.
// ConfChangeV2: several members at once through joint consensus (Raft paper §6): the leader
// first moves to the joint configuration (decisions need a majority of the old voters AND of
// the new), then, once that is applied, to the new one. With transition kAuto (or
// kJointImplicit) the leader proposes the second step itself; with kJointExplicit the
// application proposes an empty ConfChangeV2 to leave. A V2 with at most one change and kAuto is
// a simple one-member change.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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

enum class ConfChangeTransition : uint8_t {
  kAuto = 0,           // simple if possible, else joint with automatic leave
  kJointImplicit = 1,  // always joint, automatic leave
  kJointExplicit = 2,  // always joint, the application proposes the leave
};

struct ConfChangeSingle {
  ConfChangeType type = ConfChangeType::kAddNode;
  MemberId node_id;
  bool operator==(const ConfChangeSingle&) const = default;
};

struct ConfChangeV2 {
  static constexpr size_t kMaxChanges = 64;

  ConfChangeTransition transition = ConfChangeTransition::kAuto;
  std::vector<ConfChangeSingle> changes;  // empty: leave the joint configuration
  std::string context;

  bool LeavesJoint() const { return changes.empty(); }
  bool EntersJoint() const {
    return !changes.empty() && (transition != ConfChangeTransition::kAuto || changes.size() > 1);
  }
  bool AutoLeave() const { return transition != ConfChangeTransition::kJointExplicit; }
  bool operator==(const ConfChangeV2&) const = default;
};

ConfChangeV2 ToV2(const ConfChange& cc);

// Encoding inside an entry's data. V1: version byte 1, type byte, varint node id,
// length-prefixed context. V2: version byte 2, transition byte, varint count, then per change a
// type byte and a varint node id, then the length-prefixed context.
std::string EncodeConfChange(const ConfChange& cc);
Result<ConfChange> DecodeConfChange(std::string_view data);  // V1 only
std::string EncodeConfChangeV2(const ConfChangeV2& cc);
// Accepts both versions (a V1 change becomes a V2 with one change).
Result<ConfChangeV2> DecodeConfChangeV2(std::string_view data);

}  // namespace dolmen::raft
