// Messages between Raft peers, and the local messages a RawNode feeds to itself. Plain structs:
// the transport owns their wire encoding.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/ids.h"
#include "raft/types.h"

namespace dolmen::raft {

enum class MessageType : uint8_t {
  // Local only: never sent over the network.
  kHup,          // an election timeout elapsed: start a (pre-)election
  kBeat,         // the heartbeat timeout elapsed: the leader sends heartbeats
  kCheckQuorum,  // the leader checks it heard from a quorum in the last election timeout
  kUnreachable,  // the transport could not reach a peer
  kSnapStatus,   // the transport finished (or failed) sending a snapshot
  // Between peers.
  kProp,            // a proposal forwarded from a follower to the leader
  kApp,             // append entries (also a probe when it carries none)
  kAppResp,         // accept (index = last matching) or reject (reject_hint, log_term)
  kVote,            // request vote (§5.2)
  kVoteResp,        // grant or reject
  kPreVote,         // would you vote for me at term+1? (§9.6); changes no state at the receiver
  kPreVoteResp,     // grant or reject
  kSnap,            // install snapshot
  kHeartbeat,       // leader liveness and commit index; context carries a ReadIndex round
  kHeartbeatResp,   // echoes the context
  kTransferLeader,  // from = the wanted transferee; forwarded to the leader
  kTimeoutNow,      // leader to transferee: campaign now, ignoring leases
  kReadIndex,       // a follower asks the leader for a read index; context identifies the read
  kReadIndexResp,   // index = the read index for context
};

std::string_view MessageTypeName(MessageType type);

// A snapshot: the state machine at metadata.index, serialized by the application.
struct Snapshot {
  SnapshotMetadata metadata;
  std::string data;

  bool IsEmpty() const { return metadata.index.value() == 0; }
  bool operator==(const Snapshot&) const = default;
};

struct Message {
  MessageType type = MessageType::kHup;
  MemberId to;
  MemberId from;
  Term term;  // 0 for local messages
  // kApp: term and index of the entry before `entries`. kVote/kPreVote: the candidate's last
  // entry. kAppResp reject: the follower's term at reject_hint.
  Term log_term;
  Index index;
  std::vector<Entry> entries;
  Index commit;
  std::optional<Snapshot> snapshot;
  bool reject = false;
  Index reject_hint;
  std::string context;
  MemberId transferee;  // kTransferLeader: the member that should become leader

  bool operator==(const Message&) const = default;
};

// Whether a message is only ever generated and consumed inside one node.
bool IsLocalMessage(MessageType type);
// Whether a message is a response (counted into the sender's progress or votes).
bool IsResponseMessage(MessageType type);

}  // namespace dolmen::raft
