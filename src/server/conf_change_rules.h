// The rule a committed learner addition must pass when it is applied, besides when it was
// proposed. Server::MemberAdd checks --max-learners and the peer URLs against the member list
// when the request arrives, but two requests that arrive together (two instances of an
// auto-scaling group joining at once) both pass that check against the same list and are then
// proposed one after the other. Only the apply, where every member sees the changes one after
// another in the same order, can refuse the second (etcd checks at apply too:
// ValidateConfigurationChange).
//
// Only learner additions are checked here. A learner does not vote, so skipping one can never
// change a quorum. That matters for a member that joined a running cluster: it knows the
// current member list before it replays the log from the start (Server::Join), so a check of
// older voter changes against that list would refuse changes that really happened.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "base/status.h"
#include "dolmen/internal.pb.h"
#include "raft/conf_change.h"
#include "server/membership.h"

namespace dolmen::server {

// The rules both checks apply (MemberAdd when the request arrives, the apply below):
// "Peer URLs already exists" when a member already has one of `urls`, and, for a learner,
// "too many learner members in cluster" when `membership` has `max_learners` (at least 1).
Status CheckPeerUrlsFree(const Membership& membership, const std::vector<std::string>& urls);
Status CheckRoomForALearner(const Membership& membership, size_t max_learners);

// OK unless `cc` adds `member` (whose id is cc.node_id) as a new learner and `membership`
// already has `max_learners` learners ("too many learner members in cluster", as MemberAdd
// says it) or a member with one of its peer URLs ("Peer URLs already exists"). A refused change
// is skipped by every member alike and its proposer gets the reason.
Status CheckLearnerAddAtApply(const raft::ConfChange& cc, const internal::Member& member,
                              const Membership& membership, size_t max_learners);

// At a restart the changes already in the backend are given to Raft again (only its
// configuration was lost). A learner addition that was refused when applied must be skipped
// again: with `membership` the list after all of them, it took effect exactly when its member
// is listed or was removed since. Every other change took effect.
bool TookEffect(const raft::ConfChange& cc, const Membership& membership);

}  // namespace dolmen::server
