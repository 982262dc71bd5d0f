// etcd 3.6's v3 discovery protocol (--discovery-token, --discovery-endpoints): members of a new
// cluster register in an existing etcd-compatible cluster and wait until the configured number
// of them has registered; the first `size` registrations, in create-revision order, are the
// initial cluster. docs/discovery.md describes it step by step; the rules are etcd's
// (server/etcdserver/api/v3discovery), the code our own.
//
// Keys, for token T:
//   /_etcd/registry/T/_config/size       the cluster size, a positive decimal (set by the operator)
//   /_etcd/registry/T/members/<id hex>   one per member: "name=peerURL[,name=peerURL...]"
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "discovery/v3_registry.h"

namespace dolmen::discovery {

// etcd's error texts (v3discovery's Err* values), as the member's final error.
inline constexpr char kV3SizeNotFound[] = "discovery: size key not found";
inline constexpr char kV3BadSizeKey[] = "discovery: size key is bad";
inline constexpr char kV3FullCluster[] = "discovery: cluster is full";
inline constexpr char kV3InvalidUrl[] = "discovery: invalid peer URL";

std::string V3SizeKey(const std::string& token);
std::string V3MembersPrefix(const std::string& token);
std::string V3MemberKey(const std::string& token, uint64_t member_id);

// The registrations seen so far, kept in create-revision order (etcd's clusterInfo).
class V3Registrations {
 public:
  explicit V3Registrations(std::string token) : token_(std::move(token)) {}
  // Adds one registration; refused (with etcd's reason, which the caller logs and skips) when
  // the key is outside the token's members, the value has no '=', or the key is known already.
  Status Add(const RegistryKv& kv);
  size_t size() const { return members_.size(); }
  // Whether `key` is among the first `size` registrations: the initial cluster.
  bool AmongFirst(const std::string& key, size_t size) const;
  // The position of `key`, or size() when it has not registered.
  size_t PositionOf(const std::string& key) const;
  // The first `size` registrations' values joined by ',': an --initial-cluster text.
  std::string InitialCluster(size_t size) const;

 private:
  std::string token_;
  std::vector<RegistryKv> members_;  // sorted by create_revision
};

struct V3JoinRequest {
  std::string token;
  uint64_t member_id = 0;  // this member's id, from its peer URLs and the token
  std::string self;        // this member's registration: "name=peerURL,..." (sorted)
};

struct V3RetryPolicy {
  // etcd: after the n-th failure in a row, wait 2^n s (n capped at 8: 256 s), and try again,
  // with no limit on the attempts (nRetries is MaxUint32).
  std::chrono::milliseconds base{1000};
  int max_exponent = 8;
  uint64_t max_retries = UINT32_MAX;
};

// etcd's JoinCluster: checks the registry (size set, not full), registers this member (a put of
// its key; a restarted member finds its own key and keeps its place), checks again, waits
// (a watch from the revision read) until `size` members registered, and returns the initial
// cluster. Errors: kV3SizeNotFound / kV3BadSizeKey at once; kV3FullCluster when this member is
// not among the first `size`; the service's failures are retried by `policy`, each logged.
// `sleep` waits between retries (a test's returns at once).
Result<std::string> JoinV3Cluster(const V3JoinRequest& request, V3Registry* registry,
                                  const V3RetryPolicy& policy,
                                  const std::function<void(std::chrono::milliseconds)>& sleep,
                                  const std::function<void(const std::string&)>& log);

}  // namespace dolmen::discovery
