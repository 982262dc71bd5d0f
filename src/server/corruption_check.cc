#include "server/corruption_check.h"

#include <algorithm>
#include <map>
#include <utility>

#include "log/log.h"

namespace dolmen::server {
namespace {

std::string Num(int64_t v) { return std::to_string(v); }
std::string Rev(Revision r) { return std::to_string(r.value()); }

void Emit(const CheckLog& log, const std::string& line) {
  if (log) log(line);
}

}  // namespace

std::string MemberHex(MemberId id) { return log::Hex(id.value()); }

std::vector<PeerHash> AskPeers(PeerHasher* hasher, const std::vector<MemberId>& peers,
                               Revision revision, std::chrono::milliseconds timeout_per_peer) {
  std::vector<PeerHash> out;
  for (MemberId peer : peers) {
    PeerHash answer;
    answer.id = peer;
    auto hash =
        hasher->PeerHashKv(peer, revision, std::chrono::steady_clock::now() + timeout_per_peer);
    if (hash.ok()) {
      answer.hash = *hash;
    } else {
      answer.status = hash.status();
    }
    out.push_back(std::move(answer));
  }
  return out;
}

Status InitialCheckVerdict(MemberId self, const KvHash& local, const std::vector<PeerHash>& peers,
                           const CheckLog& log) {
  const std::string me = MemberHex(self);
  const std::string local_text = "local member " + me + " revision " + Rev(local.hash_revision) +
                                 " compact revision " + Rev(local.compact_revision) + " hash " +
                                 Num(local.hash);
  int mismatches = 0;
  for (const PeerHash& p : peers) {
    const std::string peer = MemberHex(p.id);
    if (!p.status.ok()) {
      switch (p.status.code()) {
        case Code::kFutureRevision:
          Emit(log, "corruption check: cannot fetch the hash of slow peer " + peer +
                        " at revision " + Rev(local.hash_revision) + " (it is behind); " +
                        local_text);
          break;
        case Code::kCompacted:
          Emit(log, "corruption check: cannot fetch the hash of peer " + peer + " at revision " +
                        Rev(local.hash_revision) + ": it has compacted past it (this member " +
                        "is behind); " + local_text);
          break;
        default:
          Emit(log, "corruption check: no hash from peer " + peer + " at revision " +
                        Rev(local.hash_revision) + ": " + p.status.ToString());
          break;
      }
      continue;
    }
    if (p.hash.hash == local.hash) continue;
    const std::string fields = local_text + "; remote peer " + peer + " revision " +
                               Rev(p.hash.revision) + " compact revision " +
                               Rev(p.hash.compact_revision) + " hash " + Num(p.hash.hash);
    if (p.hash.compact_revision == local.compact_revision) {
      Emit(log, "corruption check: found different hash values from remote peer: " + fields);
      ++mismatches;
    } else {
      Emit(log,
           "corruption check: found different compact revision values from remote peer "
           "(hashes not comparable): " +
               fields);
    }
  }
  if (mismatches > 0) return Corruption(me + " found data inconsistency with peers");
  Emit(log, "initial corruption checking passed; no corruption (member " + me + ", " +
                std::to_string(peers.size()) + " peers asked)");
  return OkStatus();
}

std::optional<MemberId> PeriodicCheckVerdict(MemberId leader, const KvHash& before,
                                             const KvHash& after,
                                             const std::vector<PeerHash>& peers,
                                             const CheckLog& log) {
  std::optional<MemberId> named;
  auto mismatch = [&named](MemberId id) {
    if (!named) named = id;
  };
  if (after.hash != before.hash && after.hash_revision == before.hash_revision &&
      after.compact_revision == before.compact_revision) {
    Emit(log, "corruption check: found hash mismatch on leader " + MemberHex(leader) +
                  ": revision " + Rev(before.hash_revision) + " compact revision " +
                  Rev(before.compact_revision) + " hash " + Num(before.hash) + ", then hash " +
                  Num(after.hash) + " at the same revisions");
    mismatch(leader);
  }
  int checked = 0;
  for (const PeerHash& p : peers) {
    if (!p.status.ok()) continue;
    ++checked;
    const std::string follower = MemberHex(p.id);
    if (p.hash.revision > after.hash_revision) {
      Emit(log,
           "corruption check: revision from follower must be less than or equal to "
           "leader's: leader revision " +
               Rev(after.hash_revision) + ", follower " + follower + " revision " +
               Rev(p.hash.revision));
      mismatch(p.id);
    }
    if (p.hash.compact_revision > after.compact_revision) {
      Emit(log,
           "corruption check: compact revision from follower must be less than or "
           "equal to leader's: leader compact revision " +
               Rev(after.compact_revision) + ", follower " + follower + " compact revision " +
               Rev(p.hash.compact_revision));
      mismatch(p.id);
    }
    if (p.hash.compact_revision == before.compact_revision && p.hash.hash != before.hash) {
      Emit(log, "corruption check: same compact revision then hashes must match: at revision " +
                    Rev(before.hash_revision) + " compact revision " +
                    Rev(before.compact_revision) + " leader " + MemberHex(leader) + " hash " +
                    Num(before.hash) + ", follower " + follower + " hash " + Num(p.hash.hash));
      mismatch(p.id);
    }
  }
  Emit(log, "finished peer corruption check: " + std::to_string(checked) + " of " +
                std::to_string(peers.size()) + " peers checked at revision " +
                Rev(before.hash_revision) +
                (named ? ", member " + MemberHex(*named) + " differs" : ", no mismatch"));
  return named;
}

CompactVerdict CompactHashVerdict(MemberId leader, const KvHash& leader_hash,
                                  const std::vector<PeerHash>& peers, const CheckLog& log) {
  CompactVerdict verdict;
  std::map<uint32_t, std::vector<MemberId>> by_hash{{leader_hash.hash, {leader}}};
  size_t compared = 0;
  for (const PeerHash& p : peers) {
    std::string skipped;
    if (!p.status.ok()) {
      skipped = p.status.ToString();
    } else if (p.hash.compact_revision != leader_hash.compact_revision) {
      skipped = "its compact revision " + Rev(p.hash.compact_revision) + " is not the leader's " +
                Rev(leader_hash.compact_revision);
    }
    if (!skipped.empty()) {
      Emit(log, "compaction hash check: skipped peer " + MemberHex(p.id) + " at revision " +
                    Rev(leader_hash.hash_revision) + ": " + skipped);
      continue;
    }
    ++compared;
    by_hash[p.hash.hash].push_back(p.id);
  }
  if (by_hash.size() == 1) {
    verdict.all_agreed = compared == peers.size();
    verdict.settled = verdict.all_agreed;
    Emit(log, verdict.all_agreed
                  ? "compaction hash check: the whole cluster agrees at revision " +
                        Rev(leader_hash.hash_revision) + " (compact revision " +
                        Rev(leader_hash.compact_revision) + ", hash " + Num(leader_hash.hash) + ")"
                  : "compaction hash check: skipped revision " + Rev(leader_hash.hash_revision) +
                        ", only " + std::to_string(compared) + " of " +
                        std::to_string(peers.size()) + " peers compared");
    return verdict;
  }
  verdict.settled = true;
  const size_t quorum = (peers.size() + 1) / 2 + 1;
  auto majority = std::find_if(by_hash.begin(), by_hash.end(), [quorum](const auto& group) {
    return group.second.size() >= quorum;
  });
  const bool quorum_exists = majority != by_hash.end();
  if (quorum_exists) {
    by_hash.erase(majority);
  } else {
    Emit(log, "compaction hash check: hash mismatch at revision " + Rev(leader_hash.hash_revision) +
                  " but no majority agrees, so the alarm names member 0 (the whole cluster)");
    verdict.corrupt.push_back(MemberId(0));
  }
  for (const auto& [hash, members] : by_hash) {
    std::string ids;
    for (MemberId id : members) {
      ids += (ids.empty() ? "" : ",") + MemberHex(id);
      if (quorum_exists) verdict.corrupt.push_back(id);
    }
    Emit(log, "compaction hash check: detected hash mismatch at revision " +
                  Rev(leader_hash.hash_revision) + " compact revision " +
                  Rev(leader_hash.compact_revision) + ": leader " + MemberHex(leader) + " hash " +
                  Num(leader_hash.hash) + ", members [" + ids + "] hash " + Num(hash) +
                  (quorum_exists ? "" : " (no majority)"));
  }
  return verdict;
}

void CompactionHashes::Record(const KvHash& hash) {
  std::lock_guard lock(mu_);
  hashes_.push_back(hash);
  while (hashes_.size() > kMaxRecorded) hashes_.pop_front();
}

std::optional<KvHash> CompactionHashes::At(Revision revision) const {
  std::lock_guard lock(mu_);
  for (const KvHash& h : hashes_) {
    if (h.hash_revision == revision) return h;
  }
  return std::nullopt;
}

std::vector<KvHash> CompactionHashes::NewestFirst() const {
  std::lock_guard lock(mu_);
  std::vector<KvHash> out(hashes_.rbegin(), hashes_.rend());
  return out;
}

CorruptionMonitor::CorruptionMonitor(CorruptionMonitorOptions options, Hooks hooks)
    : options_(options), hooks_(std::move(hooks)) {}

CorruptionMonitor::~CorruptionMonitor() { Stop(); }

void CorruptionMonitor::Start() {
  if (options_.corrupt_check_interval.count() <= 0 &&
      options_.compact_hash_check_interval.count() <= 0) {
    return;
  }
  if (options_.corrupt_check_interval.count() > 0) {
    Emit(hooks_.log, "enabled corruption checking every " +
                         std::to_string(options_.corrupt_check_interval.count()) + " ms");
  }
  if (options_.compact_hash_check_interval.count() > 0) {
    Emit(hooks_.log, "enabled compaction hash check every " +
                         std::to_string(options_.compact_hash_check_interval.count()) + " ms");
  }
  thread_ = std::thread([this] { Run(); });
}

void CorruptionMonitor::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CorruptionMonitor::Run() {
  using Clock = std::chrono::steady_clock;
  const auto now = Clock::now();
  // A check that is off is due "never": time_point::max().
  auto due = [now](std::chrono::milliseconds interval) {
    return interval.count() > 0 ? now + interval : Clock::time_point::max();
  };
  Clock::time_point next_periodic = due(options_.corrupt_check_interval);
  Clock::time_point next_compact = due(options_.compact_hash_check_interval);
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_until(lock, std::min(next_periodic, next_compact),
                         [this] { return stopping_; })) {
        return;
      }
    }
    const auto t = Clock::now();
    if (t >= next_periodic) {
      next_periodic = t + options_.corrupt_check_interval;
      if (hooks_.is_leader()) {
        Status s = PeriodicCheck();
        if (!s.ok()) Emit(hooks_.log, "failed to check hash KV: " + s.ToString());
      }
    }
    if (t >= next_compact) {
      next_compact = t + options_.compact_hash_check_interval;
      if (hooks_.is_leader()) CompactHashCheck();
    }
  }
}

Status CorruptionMonitor::PeriodicCheck() {
  ASSIGN_OR_RETURN(KvHash before, hooks_.local_hash());
  std::vector<PeerHash> peers =
      AskPeers(hooks_.hasher, hooks_.peers(), before.hash_revision, options_.request_timeout);
  for (const PeerHash& p : peers) {
    if (!p.status.ok()) {
      Emit(hooks_.log, "corruption check: failed hash kv request to peer " + MemberHex(p.id) +
                           " at revision " + Rev(before.hash_revision) + ": " +
                           p.status.ToString());
    }
  }
  RETURN_IF_ERROR(hooks_.read_barrier(options_.request_timeout));
  ASSIGN_OR_RETURN(KvHash after, hooks_.local_hash());
  std::optional<MemberId> named =
      PeriodicCheckVerdict(hooks_.self, before, after, peers, hooks_.log);
  if (named) {
    Emit(hooks_.log, "corruption check: raising the CORRUPT alarm for member " + MemberHex(*named));
    hooks_.raise_alarm(*named);
  }
  return OkStatus();
}

void CorruptionMonitor::CompactHashCheck() {
  if (hooks_.compaction_hashes == nullptr) return;
  std::vector<KvHash> hashes = hooks_.compaction_hashes->NewestFirst();
  size_t checked = 0;
  for (const KvHash& hash : hashes) {
    if (hash.hash_revision <= latest_compaction_checked_) break;
    ++checked;
    std::vector<PeerHash> peers =
        AskPeers(hooks_.hasher, hooks_.peers(), hash.hash_revision, options_.request_timeout);
    if (peers.empty()) continue;
    CompactVerdict verdict = CompactHashVerdict(hooks_.self, hash, peers, hooks_.log);
    if (verdict.all_agreed) latest_compaction_checked_ = hash.hash_revision;
    for (MemberId id : verdict.corrupt) {
      Emit(hooks_.log,
           "compaction hash check: raising the CORRUPT alarm for member " + MemberHex(id));
      hooks_.raise_alarm(id);
    }
    if (verdict.settled) break;
  }
  if (checked > 0) {
    Emit(hooks_.log, "finished compaction hash check: " + std::to_string(checked) +
                         " recorded hashes looked at");
  }
}

}  // namespace dolmen::server
