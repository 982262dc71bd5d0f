// The XML answers of the AutoScaling (2011-01-01) and EC2 (2016-11-15) Query APIs, read with
// libxml2 (docs/architecture.md says why that one). Elements are matched by local name, so the
// answers' namespaces do not matter; elements we do not use are ignored. A document that is
// not XML, or lacks an element the caller needs, is InvalidArgument with what was missing.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace dolmen::aws {

struct AsgInstance {
  std::string instance_id;
  std::string group_name;       // DescribeAutoScalingInstances only
  std::string lifecycle_state;  // "InService", "Pending", "Terminating", ...
  std::string health_status;    // "HEALTHY", "UNHEALTHY"
};

struct AutoScalingGroup {
  std::string name;
  int desired_capacity = 0;
  std::vector<AsgInstance> instances;
};

struct Ec2Instance {
  std::string instance_id;
  std::string private_ip;  // privateIpAddress; empty before the instance has one
  std::string state;       // instanceState/name: "pending", "running", "terminated", ...
};

// An error answer: AutoScaling's <ErrorResponse><Error><Code>, EC2's <Response><Errors><Error>.
struct QueryError {
  std::string code;  // "Throttling", "RequestLimitExceeded", "SignatureDoesNotMatch", ...
  std::string message;
};

struct Page {
  std::string next_token;  // empty on the last page
};

Result<std::vector<AsgInstance>> ParseAutoScalingInstances(const std::string& xml);
Result<std::vector<AutoScalingGroup>> ParseAutoScalingGroups(const std::string& xml, Page* page);
Result<std::vector<Ec2Instance>> ParseInstances(const std::string& xml, Page* page);
// Never fails: a body that is not an error document gives an empty code.
QueryError ParseQueryError(const std::string& xml);

}  // namespace dolmen::aws
