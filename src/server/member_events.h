// What goes into the member core (member_core.h) and how it answers: the events other threads
// queue in the inbox (driver_inbox.h), each carrying its own deadline, the I/O completions the
// shell reports (SyncDone, WalPersisted), and the callbacks the core runs when it is done with
// them. Plain data: no thread, no clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "dolmen/internal.pb.h"
#include "raft/conf_change.h"
#include "raft/message.h"
#include "server/applier.h"

namespace dolmen::server {

using TimePoint = std::chrono::steady_clock::time_point;

// How the core reaches peers; the real one is the peer transport, tests use fakes.
class PeerSender {
 public:
  virtual ~PeerSender() = default;
  virtual void Send(std::vector<raft::Message> messages) = 0;
  virtual void SendSnapshot(raft::Message message) = 0;
  // Membership changed: the set of peers to talk to.
  virtual void SetPeers(const std::vector<internal::Member>& members) = 0;
};

// Runs once, when a proposal was applied here (its result) or failed.
using ProposalDone = std::function<void(ApplyResult)>;
// Runs once with OK, or with why it could not be done.
using StatusDone = std::function<void(dolmen::Status)>;
// Runs with OK on the owner thread between turns, or with the stop's status if the member stops
// first: every task runs exactly once.
using Task = std::function<void(dolmen::Status)>;

// A serialized InternalRequest whose id is `id`, to be proposed.
struct Proposal {
  uint64_t id = 0;
  std::string data;
  ProposalDone done;
  TimePoint deadline;
};

struct ConfProposal {
  raft::ConfChange cc;
  StatusDone done;
  TimePoint deadline;
};

// A caller waiting for something with a deadline: a read barrier, a MoveLeader.
struct Waiter {
  StatusDone done;
  TimePoint deadline;
};

// A peer's report about the transport: unreachable, or a snapshot sent (ok or not).
struct PeerReport {
  enum class Kind { kUnreachable, kSnapshotFailed, kSnapshotDone };
  MemberId peer;
  Kind kind;
};

// A checkpoint's backend sync finished beside the loop (I/O completed).
struct SyncDone {
  uint64_t applied = 0;
  dolmen::Status status;
};

// The WAL write a turn asked for (TakePersistRequest, persist_request.h) finished: durable
// when `status` is OK; an error stops the member (after a failed fdatasync the durable state
// is unknown). I/O completed, as SyncDone.
struct WalPersisted {
  dolmen::Status status;
};

// Everything other threads handed to the owner thread since its last turn: the events of one
// turn, in the order the core takes them (messages first, then requests).
struct InboxBatch {
  std::vector<raft::Message> messages;
  std::vector<PeerReport> reports;
  std::vector<MemberId> transfers;
  std::vector<Proposal> proposals;
  std::vector<ConfProposal> conf_changes;
  std::vector<Waiter> reads;
  std::vector<Task> tasks;
  std::vector<SyncDone> synced;
  // From the shell itself, not other threads: at most one persist is outstanding.
  std::optional<WalPersisted> persisted;

  bool empty() const {
    return messages.empty() && reports.empty() && transfers.empty() && proposals.empty() &&
           conf_changes.empty() && reads.empty() && tasks.empty() && synced.empty() && !persisted;
  }
};

// What the core holds besides the inbox, published after each turn so the inbox can apply the
// bounds without the owner's lists.
struct Backlog {
  size_t proposals = 0;
  size_t reads = 0;
  size_t conf_changes = 0;
};

inline dolmen::Status TooManyRequests() {
  return dolmen::Status(Code::kTooManyRequests, "too many requests");
}

}  // namespace dolmen::server
