// --force-new-cluster (etcd's restartAsStandaloneNode, etcdserver/raft.go): a member restarted
// on its data dir after its cluster lost quorum makes itself the only member, keeping its data.
// The plan is computed from what the log recovered, without I/O; Server::OpenStorage writes the
// entries and hard state it returns and starts Raft on the result (docs/membership.md).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "dolmen/internal.pb.h"
#include "raft/types.h"
#include "wal/wal.h"

namespace dolmen::server {

struct StandaloneRestart {
  // Conf changes appended after the commit index, at the last term: add `self` if the
  // configuration lacks it (first, so the voter set is never empty), then remove every other
  // member, in id order.
  std::vector<raft::Entry> appended;
  size_t discarded_entries = 0;   // uncommitted entries dropped from the log's tail
  std::vector<MemberId> removed;  // the other members, voters and learners
  bool added_self = false;
  Index commit;  // the new commit index: the last appended entry
};

// Rewrites `recovered` in place: entries past the commit index (or past `applied`, if the
// backend is somehow ahead of the logged commit) are discarded, the conf changes appended and
// the hard state's commit moved to the last of them, so that Raft applies them at once.
// `self_record` is the context of the add when this member is missing (its id and peer URLs).
// The members are those of the last snapshot marker's configuration changed by the conf
// changes logged after it, as etcd's getIDs; a joint configuration is refused (dolmen never
// enters one, so it would mean a log this build did not write).
Result<StandaloneRestart> PlanStandaloneRestart(wal::Recovered* recovered, Index applied,
                                                MemberId self, const internal::Member& self_record);

}  // namespace dolmen::server
