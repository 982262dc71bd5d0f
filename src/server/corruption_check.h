// Corruption detection (docs/corruption.md): members compare etcd's HashKV of their stores at
// the same revision. Three checks, as etcd's:
//  - the initial check (--experimental-initial-corrupt-check): before a restarted member
//    serves, it compares its hash with every peer's at its own revision and refuses to start
//    if a peer with the same compact revision differs;
//  - the periodic check (--experimental-corrupt-check-time): the leader compares its hash with
//    every follower's at its revision and raises the CORRUPT alarm, through Raft, naming the
//    member whose data differs;
//  - the compaction hash check (--experimental-compact-hash-check-enabled): the leader compares
//    the hashes members recorded when they compacted at the same revision, and names the
//    members outside the majority.
//
// The decisions are pure functions over what was fetched (tested with fake peers in
// corruption_check_test.cc); CorruptionMonitor runs the two leader checks on its own thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/ids.h"
#include "base/status.h"

namespace dolmen::server {

// One member's HashKV answer: the hash of its store at hash_revision, taken with
// compact_revision, and the member's current revision when it answered.
struct KvHash {
  uint32_t hash = 0;
  Revision compact_revision;
  Revision hash_revision;
  Revision revision;

  bool operator==(const KvHash&) const = default;
};

// How a member asks a peer for its hash (embed/PeerLink over the peer transport; fakes in
// tests). Blocks until answered or `deadline`. Codes: kCompacted / kFutureRevision from the
// peer; kUnavailable, kDeadlineExceeded when it could not be asked.
class PeerHasher {
 public:
  virtual ~PeerHasher() = default;
  virtual Result<KvHash> PeerHashKv(MemberId peer, Revision revision,
                                    std::chrono::steady_clock::time_point deadline) = 0;
};

// One peer's answer to "your hash at revision R": a hash, or why there is none.
struct PeerHash {
  MemberId id;
  Status status;  // ok: `hash` is the answer
  KvHash hash;
};

// Asks each of `peers` in turn, each for at most `timeout_per_peer`.
std::vector<PeerHash> AskPeers(PeerHasher* hasher, const std::vector<MemberId>& peers,
                               Revision revision, std::chrono::milliseconds timeout_per_peer);

using CheckLog = std::function<void(const std::string&)>;

// "8e9e05c52164694d", as etcd prints member ids.
std::string MemberHex(MemberId id);

// The initial check's verdict for member `self` whose store hashes to `local`, given its
// peers' hashes at local.hash_revision: kCorruption "<self> found data inconsistency with
// peers" (etcd's wording) if a peer with the same compact revision has another hash; OK
// otherwise (a peer that did not answer, or answered with another compact revision, is
// logged and passes, as in etcd).
Status InitialCheckVerdict(MemberId self, const KvHash& local, const std::vector<PeerHash>& peers,
                           const CheckLog& log);

// The periodic check's verdict (etcd's rules), on the leader. `before` is its hash when it
// asked the peers (at before.hash_revision), `after` its hash again once a linearizable read
// barrier passed. Names the member to raise the CORRUPT alarm for, the first one found:
//  - the leader itself if its own hash changed while neither revision nor compact revision did;
//  - a follower whose current revision is past after.revision, or whose compact revision is
//    past after.compact_revision (a follower cannot be ahead of the leader), or whose hash
//    differs from `before` although its compact revision equals before.compact_revision.
// nullopt if nothing differs. Peers that did not answer are skipped.
std::optional<MemberId> PeriodicCheckVerdict(MemberId leader, const KvHash& before,
                                             const KvHash& after,
                                             const std::vector<PeerHash>& peers,
                                             const CheckLog& log);

// The compaction hash check's verdict for one recorded compaction hash of the leader (etcd
// 3.6's rule). Members (leader included) with the same compact revision are grouped by hash.
struct CompactVerdict {
  // True when the revision needs no further look: every peer agreed, or a mismatch was found.
  // False when some peer could not be compared (no answer, another compact revision): the
  // caller tries the next older recorded hash.
  bool settled = false;
  // Whether every peer was compared and agreed: the revision counts as checked.
  bool all_agreed = false;
  // The members to raise the CORRUPT alarm for: those outside a majority group; member 0
  // alone ("the whole cluster") when no group holds a majority of the members.
  std::vector<MemberId> corrupt;
};
CompactVerdict CompactHashVerdict(MemberId leader, const KvHash& leader_hash,
                                  const std::vector<PeerHash>& peers, const CheckLog& log);

// The hashes a member recorded when it compacted (hash at the compaction revision, taken with
// the previous compact revision), newest last, at most kMaxRecorded. Thread-safe: the apply
// thread records, peer requests and the monitor read.
class CompactionHashes {
 public:
  static constexpr size_t kMaxRecorded = 10;  // etcd keeps 10 as well
  void Record(const KvHash& hash);
  std::optional<KvHash> At(Revision revision) const;
  std::vector<KvHash> NewestFirst() const;

 private:
  mutable std::mutex mu_;
  std::deque<KvHash> hashes_;  // guarded by mu_
};

struct CorruptionMonitorOptions {
  std::chrono::milliseconds corrupt_check_interval{0};       // 0: no periodic check
  std::chrono::milliseconds compact_hash_check_interval{0};  // 0: no compaction hash check
  std::chrono::milliseconds request_timeout{7000};           // per peer, and the read barrier
};

// Runs the leader's checks on its own thread from Start to Stop. Every hook is called on that
// thread only.
class CorruptionMonitor {
 public:
  struct Hooks {
    MemberId self;
    std::function<bool()> is_leader;
    std::function<std::vector<MemberId>()> peers;  // every member but self
    PeerHasher* hasher = nullptr;
    std::function<Result<KvHash>()> local_hash;  // the current revision
    // Waits until this member applied everything committed now (etcd's
    // linearizableReadNotify); an error after the deadline.
    std::function<Status(std::chrono::milliseconds)> read_barrier;
    const CompactionHashes* compaction_hashes = nullptr;
    // Raises the CORRUPT alarm naming the member (which logs it, unless it is active).
    std::function<void(MemberId)> raise_alarm;
    CheckLog log;
  };
  CorruptionMonitor(CorruptionMonitorOptions options, Hooks hooks);
  ~CorruptionMonitor();

  void Start();
  void Stop();

  // One pass of each check, now (what the thread runs; public for tests).
  Status PeriodicCheck();
  void CompactHashCheck();

 private:
  void Run();

  const CorruptionMonitorOptions options_;
  const Hooks hooks_;
  Revision latest_compaction_checked_;  // monitor thread only
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace dolmen::server
