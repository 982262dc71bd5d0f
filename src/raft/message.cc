#include "raft/message.h"

namespace dolmen::raft {

std::string_view MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kHup:
      return "Hup";
    case MessageType::kBeat:
      return "Beat";
    case MessageType::kCheckQuorum:
      return "CheckQuorum";
    case MessageType::kUnreachable:
      return "Unreachable";
    case MessageType::kSnapStatus:
      return "SnapStatus";
    case MessageType::kProp:
      return "Prop";
    case MessageType::kApp:
      return "App";
    case MessageType::kAppResp:
      return "AppResp";
    case MessageType::kVote:
      return "Vote";
    case MessageType::kVoteResp:
      return "VoteResp";
    case MessageType::kPreVote:
      return "PreVote";
    case MessageType::kPreVoteResp:
      return "PreVoteResp";
    case MessageType::kSnap:
      return "Snap";
    case MessageType::kHeartbeat:
      return "Heartbeat";
    case MessageType::kHeartbeatResp:
      return "HeartbeatResp";
    case MessageType::kTransferLeader:
      return "TransferLeader";
    case MessageType::kTimeoutNow:
      return "TimeoutNow";
    case MessageType::kReadIndex:
      return "ReadIndex";
    case MessageType::kReadIndexResp:
      return "ReadIndexResp";
  }
  return "Unknown";
}

bool IsLocalMessage(MessageType type) {
  return type == MessageType::kHup || type == MessageType::kBeat ||
         type == MessageType::kCheckQuorum || type == MessageType::kUnreachable ||
         type == MessageType::kSnapStatus;
}

bool IsResponseMessage(MessageType type) {
  return type == MessageType::kAppResp || type == MessageType::kVoteResp ||
         type == MessageType::kPreVoteResp || type == MessageType::kHeartbeatResp ||
         type == MessageType::kUnreachable || type == MessageType::kSnapStatus;
}

}  // namespace dolmen::raft
