// Which cluster members' instances have left the auto scaling group (dead-member removal under
// --discovery-aws-asg; docs/discovery.md, "Replacement"). A member belongs to the instance whose
// id is its name (discovery names members so), or, for a member that has not published a name
// yet or was named otherwise, to the instance whose private IP is its peer URL's host. A member
// is gone when no instance of the group matches it, or when its instance is Terminating,
// Terminated, Detaching or Detached (ASG lifecycle states) or shutting-down/terminated (EC2).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "aws/query_xml.h"
#include "base/status.h"
#include "discovery/asg_cluster.h"

namespace dolmen::discovery {

struct ClusterMemberView {
  uint64_t id = 0;
  std::string name;
  std::vector<std::string> peer_urls;
};

// The members gone from `group` (by member id), each with a sentence saying why. Refuses
// (FailedPrecondition) an answer that does not list `self_instance_id`: the leader runs on an
// instance of the group, so such an answer is not about this cluster (a wrong group name, a
// stale or partial answer) and must not remove anything.
Result<std::map<uint64_t, std::string>> MembersGoneFromGroup(
    const std::vector<ClusterMemberView>& members, const aws::AutoScalingGroup& group,
    const std::vector<aws::Ec2Instance>& instances, const std::string& self_instance_id);

// The same after asking AWS: DescribeAutoScalingGroups, then DescribeInstances of its instances.
Result<std::map<uint64_t, std::string>> FindMembersGoneFromGroup(
    const std::vector<ClusterMemberView>& members, const std::string& group,
    const std::string& self_instance_id, AsgApi& api);

// "10.0.1.5" from "http://10.0.1.5:2380" ("::1" from "http://[::1]:2380"); empty if unparsable.
std::string PeerUrlHost(const std::string& url);

}  // namespace dolmen::discovery
