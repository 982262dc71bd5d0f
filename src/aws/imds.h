// The instance metadata service, version 2 (docs.aws.amazon.com/AWSEC2/latest/UserGuide/
// configuring-instance-metadata-service.html): a session token from PUT /latest/api/token
// (header X-aws-ec2-metadata-token-ttl-seconds), then GETs of /latest/meta-data/... with the
// token in X-aws-ec2-metadata-token. IMDSv1 (GET without a token) is never used: instances
// that require v2 refuse it, and v2 works everywhere.
#pragma once

#include <chrono>
#include <mutex>
#include <string>

#include "aws/credentials.h"
#include "aws/http.h"

namespace dolmen::aws {

struct InstanceIdentity {
  std::string instance_id;  // "i-0123456789abcdef0"
  std::string local_ipv4;   // the private address the peers reach it at
  std::string region;       // "eu-west-1"
};

class ImdsClient {
 public:
  // `endpoint`: "http://169.254.169.254" or AWS_EC2_METADATA_SERVICE_ENDPOINT's value.
  ImdsClient(std::string endpoint, HttpTransport* transport);

  // GET /latest/meta-data/<path>, asking for a token first when there is none or it is near
  // its end (the token lives 6 hours; one is fetched again after 5). A 401 (the token was
  // refused) fetches a new one once. NotFound for a 404, Unavailable for no answer or 5xx.
  Result<std::string> Get(const std::string& path);

  Result<InstanceIdentity> Identity();
  // The instance role's name (meta-data/iam/security-credentials/ lists it), then its keys.
  Result<Credentials> RoleCredentials();

 private:
  Result<std::string> Token(bool renew);

  std::string endpoint_;
  HttpTransport* transport_;
  std::mutex mu_;
  std::string token_;
  std::chrono::steady_clock::time_point token_expires_{};
};

}  // namespace dolmen::aws
