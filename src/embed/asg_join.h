// A later start of an auto-scaling-group member (a replacement, a scale-up): when instances of
// the group already form a cluster, this member must not bootstrap a new one. It asks their
// client URLs for the member list (etcd's Cluster.MemberList over gRPC) and, unless it is listed
// already (a member of the initial cluster that starts late), adds itself as a learner
// (MemberAdd isLearner) and starts with state existing. Promotion is the leader's
// (--auto-promote-learners), not this code's.
#pragma once

#include <grpcpp/security/credentials.h>

#include <chrono>
#include <memory>
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

// How to reach the other members' client URLs: `tls` dials the https ones (null when there are
// none).
struct JoinDialer {
  std::shared_ptr<grpc::ChannelCredentials> tls;
  std::chrono::milliseconds timeout{1000};  // per endpoint and call
};

// The member list from the first of `endpoints` (client URLs, "http://127.0.0.2:2379" or
// https) that answers; nullopt when nothing listens at any of them (no cluster runs there yet).
// An endpoint that accepts the connection but does not answer (a TLS handshake refused, an
// error status) is an error, kUnavailable with its reason, rather than "no cluster": taking it
// for an empty group would bootstrap a second cluster beside the running one.
Result<std::optional<std::vector<ClusterMember>>> FindExistingCluster(
    const std::vector<std::string>& endpoints, const JoinDialer& dialer, std::string* answered_by);

// MemberAdd(isLearner) through the client URL `endpoint`; the cluster's members afterwards, this
// one among them. FailedPrecondition with the server's message when it refuses for good;
// kUnavailable when it may pass on a later try ("too many learner members in cluster", no
// leader for the moment).
Result<std::vector<ClusterMember>> AddLearner(const std::string& endpoint,
                                              const std::vector<std::string>& peer_urls,
                                              const JoinDialer& dialer);

// Whether a member with exactly these peer URLs (in any order) is in `members`.
bool ListsPeerUrls(const std::vector<ClusterMember>& members,
                   const std::vector<std::string>& peer_urls);

// --initial-cluster text for a member joining an existing cluster: every member by name (or,
// before it has started, by its id in hex), this one by `self_name`.
std::string ExistingInitialCluster(const std::vector<ClusterMember>& members,
                                   const std::vector<std::string>& self_peer_urls,
                                   const std::string& self_name);

}  // namespace dolmen::embed
