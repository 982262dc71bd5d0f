#include "discovery/asg_members.h"

#include <algorithm>

namespace dolmen::discovery {
namespace {

bool LifecycleGone(const std::string& state) {
  return state.rfind("Terminat", 0) == 0 || state.rfind("Detach", 0) == 0;
}

bool Ec2Gone(const std::string& state) { return state == "shutting-down" || state == "terminated"; }

}  // namespace

std::string PeerUrlHost(const std::string& url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  if (start < url.size() && url[start] == '[') {
    const size_t close = url.find(']', start);
    return close == std::string::npos ? "" : url.substr(start + 1, close - start - 1);
  }
  const size_t end = url.find_first_of(":/", start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

Result<std::map<uint64_t, std::string>> MembersGoneFromGroup(
    const std::vector<ClusterMemberView>& members, const aws::AutoScalingGroup& group,
    const std::vector<aws::Ec2Instance>& instances, const std::string& self_instance_id) {
  const auto self = std::find_if(group.instances.begin(), group.instances.end(),
                                 [&](const auto& i) { return i.instance_id == self_instance_id; });
  if (self == group.instances.end()) {
    return Status(Code::kFailedPrecondition,
                  "auto scaling group " + group.name + " does not list this instance " +
                      self_instance_id + ": its answer is not trusted to remove members");
  }
  std::map<std::string, const aws::Ec2Instance*> by_id, by_ip;
  for (const auto& e : instances) {
    by_id[e.instance_id] = &e;
    if (!e.private_ip.empty()) by_ip[e.private_ip] = &e;
  }
  std::map<uint64_t, std::string> gone;
  for (const ClusterMemberView& m : members) {
    const aws::AsgInstance* match = nullptr;
    for (const auto& i : group.instances) {
      if (i.instance_id == m.name) match = &i;
    }
    for (const std::string& url : m.peer_urls) {
      if (match != nullptr) break;
      auto e = by_ip.find(PeerUrlHost(url));
      if (e == by_ip.end()) continue;
      for (const auto& i : group.instances) {
        if (i.instance_id == e->second->instance_id) match = &i;
      }
    }
    if (match == nullptr) {
      gone[m.id] = "no instance of auto scaling group " + group.name + " is named " +
                   (m.name.empty() ? "(unstarted)" : m.name) + " or has its peer address";
      continue;
    }
    if (LifecycleGone(match->lifecycle_state)) {
      gone[m.id] = "instance " + match->instance_id + " is " + match->lifecycle_state +
                   " in auto scaling group " + group.name;
      continue;
    }
    auto e = by_id.find(match->instance_id);
    if (e != by_id.end() && Ec2Gone(e->second->state)) {
      gone[m.id] = "instance " + match->instance_id + " is " + e->second->state + " (EC2)";
    }
  }
  return gone;
}

Result<std::map<uint64_t, std::string>> FindMembersGoneFromGroup(
    const std::vector<ClusterMemberView>& members, const std::string& group,
    const std::string& self_instance_id, AsgApi& api) {
  ASSIGN_OR_RETURN(aws::AutoScalingGroup described, api.DescribeAutoScalingGroup(group));
  std::vector<std::string> ids;
  for (const auto& i : described.instances) ids.push_back(i.instance_id);
  std::vector<aws::Ec2Instance> instances;
  if (!ids.empty()) {
    ASSIGN_OR_RETURN(instances, api.DescribeInstances(ids));
  }
  return MembersGoneFromGroup(members, described, instances, self_instance_id);
}

}  // namespace dolmen::discovery
