// The values Raft hands to storage and receives back: log entries, hard state, snapshot
// metadata. Shared by the consensus core (src/raft) and the write-ahead log (src/wal), which is
// why they live in their own header with no dependency beyond src/base.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/ids.h"

namespace dolmen::raft {

enum class EntryType : uint8_t {
  kNormal = 0,      // an application command (for dolmen: a serialized InternalRequest)
  kConfChange = 1,  // a membership change
};

struct Entry {
  Term term;
  Index index;
  EntryType type = EntryType::kNormal;
  std::string data;

  bool operator==(const Entry&) const = default;
};

// What must be durable before a message that depends on it is sent (Raft paper, Figure 2).
struct HardState {
  Term term;
  MemberId vote;  // 0 = voted for nobody in this term
  Index commit;

  bool operator==(const HardState&) const = default;
  bool IsEmpty() const { return term.value() == 0 && vote.value() == 0 && commit.value() == 0; }
};

// Voters and learners of a configuration, as recorded in a snapshot. The last three fields are
// only set while a joint-consensus change is in progress (see raft/conf_change.h).
struct ConfState {
  std::vector<MemberId> voters;
  std::vector<MemberId> learners;
  std::vector<MemberId> voters_outgoing;  // joint: the previous voters, also needed for a quorum
  std::vector<MemberId> learners_next;    // joint: outgoing voters that become learners on leaving
  bool auto_leave = false;                // joint: the leader leaves the joint config by itself

  bool operator==(const ConfState&) const = default;
};

struct SnapshotMetadata {
  Index index;  // last entry covered by the snapshot
  Term term;    // term of that entry
  ConfState conf_state;

  bool operator==(const SnapshotMetadata&) const = default;
};

}  // namespace dolmen::raft
