#include "sim/history.h"

#include <algorithm>
#include <sstream>

namespace dolmen::sim {
namespace {

const char* KindName(ClientOp::Kind k) {
  switch (k) {
    case ClientOp::Kind::kPut:
      return "put";
    case ClientOp::Kind::kCas:
      return "cas";
    case ClientOp::Kind::kDelete:
      return "delete";
    case ClientOp::Kind::kRead:
      return "read";
    case ClientOp::Kind::kGrant:
      return "grant";
    case ClientOp::Kind::kRevoke:
      return "revoke";
  }
  return "?";
}

}  // namespace

std::string ClientOp::Describe() const {
  std::ostringstream os;
  os << "op " << id << " (client " << client << ", " << KindName(kind) << " " << key;
  if (!value.empty()) os << "=" << value;
  if (kind == Kind::kCas) os << " if " << (expected.empty() ? "<absent>" : expected);
  if (lease != 0) os << (kind == Kind::kPut ? " with lease " : " lease ") << lease;
  if (kind == Kind::kGrant) os << " ttl " << ttl_seconds << " s";
  os << ", [" << invoked_ms << " ms, " << completed_ms << " ms]";
  if (outcome == Outcome::kOk) {
    os << ", revision " << revision << (wrote ? ", wrote" : "");
    if (observed) {
      os << ", read " << (found ? read_value + "@" + std::to_string(mod_revision) : "<absent>");
    }
  } else {
    os << ", " << (outcome == Outcome::kFailed ? "failed: " + error : "pending");
  }
  os << ")";
  return os.str();
}

std::optional<std::string> HistoryChecker::Check() {
  for (const ClientOp& op : ops_) {
    if (op.kind == ClientOp::Kind::kRevoke && op.outcome == ClientOp::Outcome::kOk) {
      revoked_at_[op.lease].push_back(op.revision);
    }
  }
  for (auto step : {&HistoryChecker::CheckUniqueRevisions, &HistoryChecker::LearnFailedWrites,
                    &HistoryChecker::CheckRealTime, &HistoryChecker::CheckRegisters}) {
    if (auto failure = (this->*step)()) return failure;
  }
  return std::nullopt;
}

std::optional<std::string> HistoryChecker::CheckUniqueRevisions() {
  std::map<int64_t, size_t> by_revision;
  for (size_t i = 0; i < ops_.size(); ++i) {
    const ClientOp& op = ops_[i];
    if (op.outcome != ClientOp::Outcome::kOk || !op.wrote) continue;
    auto [it, fresh] = by_revision.emplace(op.revision, i);
    if (!fresh) {
      return "two writes at revision " + std::to_string(op.revision) + ": " +
             ops_[it->second].Describe() + " and " + op.Describe();
    }
    write_revision_[i] = op.revision;
  }
  return std::nullopt;
}

// A value read names the write that wrote it; a failed write that is read took effect, at the
// revision the read reports.
std::optional<std::string> HistoryChecker::LearnFailedWrites() {
  std::map<std::pair<std::string, std::string>, size_t> writer;  // (key, value) -> op
  for (size_t i = 0; i < ops_.size(); ++i) {
    const ClientOp& op = ops_[i];
    if ((op.kind == ClientOp::Kind::kPut || op.kind == ClientOp::Kind::kCas) &&
        op.outcome != ClientOp::Outcome::kPending) {
      writer[{op.key, op.value}] = i;
    }
  }
  for (const ClientOp& op : ops_) {
    if (op.outcome != ClientOp::Outcome::kOk || !op.observed || !op.found) continue;
    if (op.mod_revision > op.revision) {
      return "read a version newer than the revision it read at: " + op.Describe();
    }
    auto w = writer.find({op.key, op.read_value});
    if (w == writer.end()) return "read a value no write wrote: " + op.Describe();
    const ClientOp& write = ops_[w->second];
    auto [it, fresh] = write_revision_.emplace(w->second, op.mod_revision);
    if (!fresh && it->second != op.mod_revision) {
      return "a read reports revision " + std::to_string(op.mod_revision) + " for " +
             write.Describe() + " which wrote at " + std::to_string(it->second) + ": " +
             op.Describe();
    }
    if (op.mod_revision == 0 || (fresh && op.mod_revision <= 0)) {
      return "a read found a value without a revision: " + op.Describe();
    }
  }
  // A learned revision must also be unique.
  std::map<int64_t, size_t> by_revision;
  for (const auto& [i, rev] : write_revision_) {
    auto [it, fresh] = by_revision.emplace(rev, i);
    if (!fresh) {
      return "two writes at revision " + std::to_string(rev) + ": " + ops_[it->second].Describe() +
             " and " + ops_[i].Describe();
    }
  }
  return std::nullopt;
}

// Sweeps operations by invocation time; `done` holds those completed before it, and the
// highest revision among them must not exceed the operation's own.
std::optional<std::string> HistoryChecker::CheckRealTime() {
  struct Point {
    uint64_t invoked, completed;
    int64_t revision;
    bool wrote;
    size_t op;
  };
  std::vector<Point> points;
  for (size_t i = 0; i < ops_.size(); ++i) {
    const ClientOp& op = ops_[i];
    auto learned = write_revision_.find(i);
    if (op.outcome == ClientOp::Outcome::kOk) {
      points.push_back({op.invoked_ms, op.completed_ms, op.revision, op.wrote, i});
    } else if (learned != write_revision_.end()) {
      // A failed write that took effect: it completed at some unknown time, so it only bounds
      // what came before it.
      points.push_back({op.invoked_ms, UINT64_MAX, learned->second, true, i});
    }
  }
  std::vector<size_t> by_completion(points.size());
  for (size_t i = 0; i < points.size(); ++i) by_completion[i] = i;
  std::sort(by_completion.begin(), by_completion.end(),
            [&](size_t a, size_t b) { return points[a].completed < points[b].completed; });
  std::vector<size_t> by_invocation = by_completion;
  std::sort(by_invocation.begin(), by_invocation.end(),
            [&](size_t a, size_t b) { return points[a].invoked < points[b].invoked; });
  size_t next_done = 0;
  std::optional<size_t> highest;  // the point with the highest revision completed so far
  for (size_t p : by_invocation) {
    const Point& op = points[p];
    while (next_done < by_completion.size() &&
           points[by_completion[next_done]].completed < op.invoked) {
      const size_t d = by_completion[next_done++];
      if (!highest || points[d].revision > points[*highest].revision) highest = d;
    }
    if (!highest) continue;
    const Point& before = points[*highest];
    if (op.revision < before.revision || (op.wrote && op.revision == before.revision)) {
      return "revisions go back in real time: " + ops_[before.op].Describe() +
             " completed before " + ops_[op.op].Describe() + " began";
    }
  }
  return std::nullopt;
}

bool HistoryChecker::RevokedBetween(int64_t lease, int64_t after, int64_t upto) const {
  auto it = revoked_at_.find(lease);
  if (it == revoked_at_.end()) return false;
  for (int64_t rev : it->second) {
    if (rev > after && rev <= upto) return true;
  }
  return false;
}

bool HistoryChecker::MaybeRevokedBefore(int64_t lease, const ClientOp& read) const {
  for (const ClientOp& op : ops_) {
    if (op.kind == ClientOp::Kind::kRevoke && op.lease == lease &&
        op.outcome != ClientOp::Outcome::kOk && op.invoked_ms <= read.completed_ms) {
      return true;
    }
  }
  return false;
}

bool HistoryChecker::MaybeDeletedBefore(const ClientOp& read) const {
  for (const ClientOp& op : ops_) {
    if (op.key != read.key || op.outcome == ClientOp::Outcome::kOk ||
        op.invoked_ms > read.completed_ms) {
      continue;
    }
    if (op.kind == ClientOp::Kind::kDelete) return true;
    // A put with a lease that failed may have taken effect, and the lease's revoke then
    // deleted the key.
    if (op.kind == ClientOp::Kind::kPut && op.lease != 0 &&
        (RevokedBetween(op.lease, 0, read.revision) || MaybeRevokedBefore(op.lease, read))) {
      return true;
    }
  }
  return false;
}

std::optional<std::string> HistoryChecker::CheckRegisters() {
  // Per key: revision -> the write there (a delete writes "absent").
  std::map<std::string, std::map<int64_t, size_t>> writes;
  for (const auto& [i, rev] : write_revision_) writes[ops_[i].key][rev] = i;
  for (const ClientOp& op : ops_) {
    if (op.outcome != ClientOp::Outcome::kOk || !op.observed) continue;
    const auto& history = writes[op.key];
    auto after = history.upper_bound(op.revision);
    const bool any = after != history.begin();
    const ClientOp* latest = any ? &ops_[std::prev(after)->second] : nullptr;
    const bool latest_present = latest != nullptr && latest->kind != ClientOp::Kind::kDelete;
    // The latest write's lease was revoked since: the key went with it.
    const bool revoked = latest_present && latest->lease != 0 &&
                         RevokedBetween(latest->lease, std::prev(after)->first, op.revision);
    if (!op.found) {
      // A delete or revoke that failed may still have taken effect, at a revision no read can
      // reveal.
      if (latest_present && !revoked && !MaybeDeletedBefore(op) &&
          !(latest->lease != 0 && MaybeRevokedBefore(latest->lease, op))) {
        return "a read found nothing where " + latest->Describe() + " wrote: " + op.Describe();
      }
      continue;
    }
    if (revoked) {
      return "a read found a key its lease's revoke had deleted: " + latest->Describe() + ": " +
             op.Describe();
    }
    if (!latest_present || latest->value != op.read_value) {
      return "stale or phantom read: the latest write below its revision is " +
             (latest ? latest->Describe() : std::string("none")) + ": " + op.Describe();
    }
  }
  return std::nullopt;
}

}  // namespace dolmen::sim
