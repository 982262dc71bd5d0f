// The AWS Query protocol (form-encoded POST, XML answer) for the three calls group discovery
// needs, signed with SigV4. Throttling (HTTP 429, Throttling/RequestLimitExceeded codes), 5xx
// answers and no answer at all are retried with a doubling back-off, each retry logged; any
// other 4xx (a bad signature, an unknown group, missing permissions) fails at once with the
// service's code and message: asking again cannot change it.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/query_xml.h"

namespace dolmen::aws {

struct RetryPolicy {
  int max_attempts = 6;
  std::chrono::milliseconds first_backoff{250};
  std::chrono::milliseconds max_backoff{4000};
};

// Whether a failed exchange is worth repeating: no answer, 5xx, 429 or a throttling code.
bool IsRetryableAnswer(int http_status, const std::string& error_code);

// Params in order, form-encoded: "Action=...&Version=...&InstanceIds.member.1=i-1".
std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& params);

class QueryClient {
 public:
  struct Options {
    std::string autoscaling_endpoint;
    std::string ec2_endpoint;
    std::string region;
    RetryPolicy retry;
    std::function<Result<Credentials>()> credentials;
    std::function<void(std::chrono::milliseconds)> sleep;
    std::function<void(const std::string&)> log;
    std::function<std::chrono::system_clock::time_point()> now = std::chrono::system_clock::now;
  };
  QueryClient(Options options, HttpTransport* transport);

  Result<std::vector<AsgInstance>> DescribeAutoScalingInstances(
      const std::vector<std::string>& instance_ids);
  Result<AutoScalingGroup> DescribeAutoScalingGroup(const std::string& name);
  Result<std::vector<Ec2Instance>> DescribeInstances(const std::vector<std::string>& instance_ids);

  // One call with its retries: the answer's body on HTTP 200.
  Result<std::string> Call(const std::string& service,
                           const std::vector<std::pair<std::string, std::string>>& params);

 private:
  Result<HttpResponse> SendOnce(const std::string& service, const std::string& body);

  Options options_;
  HttpTransport* transport_;
};

}  // namespace dolmen::aws
