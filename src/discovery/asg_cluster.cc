#include "discovery/asg_cluster.h"

#include <algorithm>

namespace dolmen::discovery {

Result<std::string> ResolveGroupName(const AsgQuery& query, AsgApi& api) {
  if (query.group != "auto") return query.group;
  ASSIGN_OR_RETURN(std::vector<aws::AsgInstance> found,
                   api.DescribeAutoScalingInstances({query.instance_id}));
  for (const auto& i : found) {
    if (i.instance_id == query.instance_id && !i.group_name.empty()) return i.group_name;
  }
  return Status(Code::kFailedPrecondition,
                "--discovery-aws-asg auto: instance " + query.instance_id +
                    " belongs to no auto scaling group (DescribeAutoScalingInstances found none)");
}

Result<AsgCluster> DiscoverAsgCluster(const std::string& group, const AsgQuery& query,
                                      AsgApi& api) {
  Result<aws::AutoScalingGroup> described = api.DescribeAutoScalingGroup(group);
  if (!described.ok()) {
    if (described.status().code() == Code::kNotFound) {
      return Status(Code::kFailedPrecondition, described.status().message());
    }
    return described.status();
  }
  if (described->desired_capacity < 1) {
    return Unavailable("auto scaling group " + group + " has desired capacity 0");
  }
  std::vector<std::string> in_service;
  std::string others;
  for (const auto& i : described->instances) {
    if (i.lifecycle_state == "InService") {
      in_service.push_back(i.instance_id);
    } else {
      others += (others.empty() ? "" : ", ") + i.instance_id + " " + i.lifecycle_state;
    }
  }
  const int desired = described->desired_capacity;
  if (static_cast<int>(in_service.size()) != desired) {
    return Unavailable("auto scaling group " + group + ": " + std::to_string(in_service.size()) +
                       " of " + std::to_string(desired) + " instances InService" +
                       (others.empty() ? "" : "; waiting for " + others));
  }
  if (std::find(in_service.begin(), in_service.end(), query.instance_id) == in_service.end()) {
    return Unavailable("auto scaling group " + group + ": this instance " + query.instance_id +
                       " is not among its InService instances yet");
  }
  ASSIGN_OR_RETURN(std::vector<aws::Ec2Instance> instances, api.DescribeInstances(in_service));
  AsgCluster cluster;
  cluster.group = group;
  for (const std::string& id : in_service) {
    const auto it = std::find_if(instances.begin(), instances.end(),
                                 [&](const aws::Ec2Instance& e) { return e.instance_id == id; });
    if (it == instances.end() || it->private_ip.empty()) {
      return Unavailable("auto scaling group " + group + ": instance " + id +
                         " has no private IP address yet");
    }
    cluster.members.push_back(AsgMember{id, it->private_ip});
  }
  std::sort(cluster.members.begin(), cluster.members.end(),
            [](const AsgMember& a, const AsgMember& b) { return a.instance_id < b.instance_id; });
  return cluster;
}

std::string UrlOf(const std::string& scheme, const std::string& ip, const std::string& port) {
  const bool v6 = ip.find(':') != std::string::npos;
  return scheme + "://" + (v6 ? "[" + ip + "]" : ip) + ":" + port;
}

std::vector<std::string> InitialClusterEntries(const AsgCluster& cluster, const std::string& scheme,
                                               const std::string& port) {
  std::vector<std::string> entries;
  for (const auto& m : cluster.members) {
    entries.push_back(m.instance_id + "=" + UrlOf(scheme, m.private_ip, port));
  }
  return entries;
}

}  // namespace dolmen::discovery
