#include "sim/sim_watchers.h"

#include <sstream>

namespace dolmen::sim {
namespace {

std::string DescribeEvent(const mvcc::Event& e) {
  std::ostringstream os;
  os << (e.type == mvcc::Event::Type::kPut ? "put " : "delete ") << e.kv.key;
  if (e.type == mvcc::Event::Type::kPut) os << "=" << e.kv.value;
  os << "@" << e.kv.mod_revision.value();
  if (e.kv.lease.value() != 0) os << " lease " << e.kv.lease.value();
  return os.str();
}

// The changes of `revision` in `w`'s range, or nullopt if no member reported the revision.
std::optional<std::vector<mvcc::Event>> Expected(const SimWatch& w, const RevisionLog& log,
                                                 int64_t revision) {
  const std::vector<mvcc::Event>* all = log.At(revision);
  if (all == nullptr) return std::nullopt;
  std::vector<mvcc::Event> out;
  for (const mvcc::Event& e : *all) {
    if (w.range.Contains(e.kv.key)) out.push_back(e);
  }
  return out;
}

bool AllDeletes(const std::vector<mvcc::Event>& events) {
  for (const mvcc::Event& e : events) {
    if (e.type != mvcc::Event::Type::kDelete) return false;
  }
  return true;
}

// Nothing in `w`'s range changed in [from, to]: the watcher missed nothing there. Except, as in
// etcd, deletes at exactly the compact revision: compaction keeps a key's last version at or
// below it unless that version is a delete, and a watcher may start at the compact revision
// (etcd's ErrCompacted is for a start below it), so it reads that revision without them.
std::optional<std::string> CheckNoneMissed(const SimWatch& w, const RevisionLog& log, int64_t from,
                                           int64_t to, int64_t compacted) {
  for (int64_t rev = from; rev <= to; ++rev) {
    std::optional<std::vector<mvcc::Event>> expected = Expected(w, log, rev);
    if (!expected) {
      return w.Describe() + ": the member claims revision " + std::to_string(rev) +
             ", which no member's applied observer reported";
    }
    if (!expected->empty() && !(rev == compacted && AllDeletes(*expected))) {
      return w.Describe() + " missed revision " + std::to_string(rev) + ": " +
             DescribeEvents(*expected);
    }
  }
  return std::nullopt;
}

}  // namespace

std::string DescribeEvents(const std::vector<mvcc::Event>& events) {
  std::string out = "[";
  for (const mvcc::Event& e : events) out += (out.size() > 1 ? ", " : "") + DescribeEvent(e);
  return out + "]";
}

std::optional<std::string> RevisionLog::Applied(MemberId member,
                                                const std::vector<mvcc::Event>& events) {
  size_t begin = 0;
  while (begin < events.size()) {
    const int64_t rev = events[begin].kv.mod_revision.value();
    size_t end = begin;
    while (end < events.size() && events[end].kv.mod_revision.value() == rev) ++end;
    std::vector<mvcc::Event> these(events.begin() + static_cast<std::ptrdiff_t>(begin),
                                   events.begin() + static_cast<std::ptrdiff_t>(end));
    auto [it, fresh] = by_revision_.try_emplace(rev, Entry{member, these});
    if (!fresh && it->second.events != these) {
      return "members disagree on the changes of revision " + std::to_string(rev) + ": member " +
             std::to_string(it->second.first.value()) + " applied " +
             DescribeEvents(it->second.events) + ", member " + std::to_string(member.value()) +
             " applied " + DescribeEvents(these);
    }
    begin = end;
  }
  return std::nullopt;
}

const std::vector<mvcc::Event>* RevisionLog::At(int64_t revision) const {
  // A new store is at revision 1, which changed nothing; the first write is revision 2.
  static const std::vector<mvcc::Event> kNothing;
  if (revision <= 1) return &kNothing;
  auto it = by_revision_.find(revision);
  return it == by_revision_.end() ? nullptr : &it->second.events;
}

std::string SimWatch::Describe() const {
  std::ostringstream os;
  os << "watch " << id << " (" << key;
  if (!range_end.empty()) os << ".." << range_end;
  os << ", next revision " << next << ", on member " << node + 1 << ")";
  return os.str();
}

std::optional<std::string> CheckWatchResponse(SimWatch& w, const watch::Response& r,
                                              int64_t compacted, const RevisionLog& log,
                                              uint64_t* events, bool* compaction_cancel) {
  *compaction_cancel = false;
  if (r.created) {
    if (r.canceled) return w.Describe() + " was refused: " + r.cancel_reason;
    w.created = true;
    return std::nullopt;
  }
  if (!w.created) return w.Describe() + ": a response before the created one";
  if (r.canceled) {
    if (r.compact_revision.value() == 0) return w.Describe() + " was cancelled by the member";
    // etcd's ErrCompacted: only when the watcher's next revision really is gone.
    if (w.next >= r.compact_revision.value() || r.compact_revision.value() > compacted) {
      return w.Describe() + " was cancelled as compacted at " +
             std::to_string(r.compact_revision.value()) + " but the member compacted only to " +
             std::to_string(compacted);
    }
    w.next = r.compact_revision.value();
    w.stream.reset();
    *compaction_cancel = true;
    return std::nullopt;
  }
  if (r.watch_id == watch::kNoWatchId) {
    // A progress response: every change up to its revision has been sent.
    if (auto missed = CheckNoneMissed(w, log, w.next, r.revision.value(), compacted)) return missed;
    w.next = std::max(w.next, r.revision.value() + 1);
    return std::nullopt;
  }
  size_t begin = 0;
  while (begin < r.events.size()) {
    const int64_t rev = r.events[begin]->kv.mod_revision.value();
    if (rev < w.next) {
      return w.Describe() + " got revision " + std::to_string(rev) +
             " again or out of order: " + DescribeEvent(*r.events[begin]);
    }
    if (auto missed = CheckNoneMissed(w, log, w.next, rev - 1, compacted)) return missed;
    std::vector<mvcc::Event> got;
    size_t end = begin;
    for (; end < r.events.size() && r.events[end]->kv.mod_revision.value() == rev; ++end) {
      got.push_back(*r.events[end]);
    }
    std::optional<std::vector<mvcc::Event>> expected = Expected(w, log, rev);
    if (!expected || *expected != got) {
      return w.Describe() + " got " + DescribeEvents(got) + " for revision " + std::to_string(rev) +
             " where the members applied " +
             (expected ? DescribeEvents(*expected) : std::string("nothing yet"));
    }
    *events += got.size();
    w.next = rev + 1;
    begin = end;
  }
  return std::nullopt;
}

}  // namespace dolmen::sim
