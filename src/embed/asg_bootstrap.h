// --discovery-aws-asg at member start (docs/discovery.md): the instance's identity from IMDSv2,
// then, at the first start, the initial cluster from its auto-scaling group, turned into what
// --initial-cluster, --name, the advertise URLs and --initial-cluster-token would have given.
#pragma once

#include <functional>
#include <string>

#include "base/status.h"
#include "embed/config.h"

namespace dolmen::embed {

// With --discovery-aws-asg: asks IMDS who this instance is (every start: the defaults of --name,
// --data-dir and the advertise URLs come from it) and, when the data dir holds no log yet, waits
// (bounded by --experimental-discovery-aws-asg-wait, each wait logged) until the group's
// InService instances equal its desired capacity, then fills config->initial_members: the
// group's list at a first start, or, when the group's instances already run a cluster that does
// not list this member, the list after adding itself as a learner (state existing). Flags
// given explicitly win. Errors say what failed (IMDS, the AWS answer, the wait's last reason).
Status BootstrapFromAwsAsg(Config* config, const std::function<void(const std::string&)>& log);

}  // namespace dolmen::embed
