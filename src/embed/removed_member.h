// A member removed from its cluster while it runs, or restarted on the data dir of a removed
// member (a re-attached volume): etcd stops it with "the member has been permanently removed
// from the cluster" (exit 0), and so does dolmen with static flags. Under --discovery-aws-asg
// the data dir is moved aside instead (kept, renamed, for an operator to inspect) and the
// process starts again from its own command line: with no data dir it joins the group's cluster
// as a new member, a learner first (docs/discovery.md, "Replacement").
#pragma once

#include <ctime>
#include <string>

#include "base/status.h"
#include "embed/config.h"

namespace dolmen::embed {

// "<data-dir>.removed-<UTC time>", e.g. "/var/lib/etcd.removed-20261207T004512Z".
std::string RemovedDataDirName(const std::string& data_dir, std::time_t now);

// Renames the data dir (and a --wal-dir outside it) aside; the new names are logged.
Status MoveDataDirAside(const Config& config);

// execv of this program with its own arguments (/proc/self/cmdline) and environment. Returns
// only on failure. Every descriptor the member had is closed or close-on-exec by then.
Status RestartSelf();

}  // namespace dolmen::embed
