// The initial cluster from an AWS auto-scaling group (--discovery-aws-asg), the lab's shell
// procedure as code: find the group (`auto`: the one this instance belongs to), wait until the
// InService instances equal the desired capacity, then list them sorted by instance id as
// "<instance id>=<scheme>://<private IP>:<port>". Every member asks the same group and computes
// the same list, so the member ids derived from it (docs/membership.md) agree.
//
// The AWS calls arrive as an interface (the real one over src/aws's QueryClient, a fake in the
// unit tests). Waiting is RetryDiscovery's (srv_wait.h): a group not complete yet is
// Unavailable and asked again; a group that does not exist, or an instance outside any group,
// is FailedPrecondition and fails at once.
#pragma once

#include <string>
#include <vector>

#include "aws/query_xml.h"
#include "base/status.h"

namespace dolmen::discovery {

class AsgApi {
 public:
  virtual ~AsgApi() = default;
  virtual Result<std::vector<aws::AsgInstance>> DescribeAutoScalingInstances(
      const std::vector<std::string>& instance_ids) = 0;
  virtual Result<aws::AutoScalingGroup> DescribeAutoScalingGroup(const std::string& name) = 0;
  virtual Result<std::vector<aws::Ec2Instance>> DescribeInstances(
      const std::vector<std::string>& instance_ids) = 0;
};

struct AsgQuery {
  std::string group;        // a group name, or "auto"
  std::string instance_id;  // this instance (IMDS)
};

struct AsgMember {
  std::string instance_id;
  std::string private_ip;
};

struct AsgCluster {
  std::string group;
  std::vector<AsgMember> members;  // sorted by instance id; this instance among them
};

// "auto": the group of `instance_id` (DescribeAutoScalingInstances); else `group` as given.
Result<std::string> ResolveGroupName(const AsgQuery& query, AsgApi& api);

// One look at the group: the complete cluster, or Unavailable saying what it waits for
// ("2 of 3 instances InService; waiting for i-0c Pending").
Result<AsgCluster> DiscoverAsgCluster(const std::string& group, const AsgQuery& query, AsgApi& api);

// "i-0a=http://10.0.0.1:2380" per member, in the cluster's order.
std::vector<std::string> InitialClusterEntries(const AsgCluster& cluster, const std::string& scheme,
                                               const std::string& port);

// "http://10.0.0.1:2380", with brackets for an IPv6 address.
std::string UrlOf(const std::string& scheme, const std::string& ip, const std::string& port);

}  // namespace dolmen::discovery
