// A later start of an auto-scaling-group member (a replacement, a scale-up): when instances of
// the group already form a cluster, this member must not bootstrap a new one. It asks their
// client URLs for the member list (etcd's Cluster.MemberList over gRPC) and, unless it is listed
// already (a member of the initial cluster that starts late), adds itself as a learner
// (MemberAdd isLearner) and starts with state existing. Promotion is the leader's
// (--auto-promote-learners), not this code's.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace dolmen::embed {

struct ClusterMember {
  uint64_t id = 0;
  std::string name;  // empty for a member that has not started yet
  std::vector<std::string> peer_urls;
  bool is_learner = false;
};

// The member list from the first of `endpoints` ("127.0.0.2:2379", plaintext gRPC) that
// answers within `timeout` each; nullopt when none answers (no cluster runs there yet).
std::optional<std::vector<ClusterMember>> FindExistingCluster(
    const std::vector<std::string>& endpoints, std::chrono::milliseconds timeout,
    std::string* answered_by);

// MemberAdd(isLearner) through `endpoint`; the cluster's members afterwards, this one among
// them. FailedPrecondition with the server's message (e.g. "too many learner members in
// cluster") when it refuses.
Result<std::vector<ClusterMember>> AddLearner(const std::string& endpoint,
                                              const std::vector<std::string>& peer_urls,
                                              std::chrono::milliseconds timeout);

// Whether a member with exactly these peer URLs (in any order) is in `members`.
bool ListsPeerUrls(const std::vector<ClusterMember>& members,
                   const std::vector<std::string>& peer_urls);

// --initial-cluster text for a member joining an existing cluster: every member by name (or,
// before it has started, by its id in hex), this one by `self_name`.
std::string ExistingInitialCluster(const std::vector<ClusterMember>& members,
                                   const std::vector<std::string>& self_peer_urls,
                                   const std::string& self_name);

}  // namespace dolmen::embed
