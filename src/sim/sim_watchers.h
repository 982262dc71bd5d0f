// Watchers in the whole-cluster simulator and the check of etcd's watch guarantees
// (docs/watch.md, etcd's "Watch API guarantees"): events arrive in revision order, none twice,
// none missing (every change in the watched range from the start revision up to what the
// member claims, by a progress response, to have sent), and every member delivers the same
// changes for the same revision; a watcher whose next revision was compacted is cancelled with
// the compact revision instead of skipping ahead.
//
// What each revision changed comes from the members' applied observers (RevisionLog): the first
// member to apply a revision records its changes, every later apply of it (another member, a
// replay after a restart) must report the same. A watcher is a client's stream on one member's
// real hub (sim_member_services.h); when the member goes down, the client watches again on
// another member from the revision after the last it was sure of, and the same record checks
// that nothing is missed or repeated across the two.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/ids.h"
#include "mvcc/kv.h"
#include "watch/key_range.h"
#include "watch/stream.h"

namespace dolmen::sim {

class RevisionLog {
 public:
  // A member applied a batch: its changes in revision order. A violation if another member (or
  // this one, before a restart) reported different changes for one of its revisions.
  std::optional<std::string> Applied(MemberId member, const std::vector<mvcc::Event>& events);
  // The changes of `revision`; null if no member applied it yet.
  const std::vector<mvcc::Event>* At(int64_t revision) const;
  int64_t last() const { return by_revision_.empty() ? 0 : by_revision_.rbegin()->first; }

 private:
  struct Entry {
    MemberId first;  // who reported it first
    std::vector<mvcc::Event> events;
  };
  std::map<int64_t, Entry> by_revision_;
};

// One client's watch, across the streams it opens.
struct SimWatch {
  int id = 0;  // for messages
  std::string key, range_end;
  watch::KeyRange range;
  // Every change in range below `next` has been delivered exactly once (or was compacted away
  // and the client was told so).
  int64_t next = 1;
  // The stream it is on now (null: waiting to watch again): on which member, which life of it.
  std::shared_ptr<watch::Stream> stream;
  size_t node = 0;
  uint64_t incarnation = 0;
  bool created = false;  // the current stream's created response arrived

  std::string Describe() const;
};

// "[put k=v@rev, delete k@rev]", for messages.
std::string DescribeEvents(const std::vector<mvcc::Event>& events);

// Checks one response of `w`'s current stream against `log`. `compacted`: the member's compact
// revision. Moves `w.next`; returns the first violation. `events` counts the events checked.
// A compaction cancel leaves `w` without a stream (the client watches again from the compact
// revision, as etcd's clients do).
std::optional<std::string> CheckWatchResponse(SimWatch& w, const watch::Response& r,
                                              int64_t compacted, const RevisionLog& log,
                                              uint64_t* events, bool* compaction_cancel);

}  // namespace dolmen::sim
