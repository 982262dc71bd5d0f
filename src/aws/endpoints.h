// Where the AWS calls go, from the variables every AWS SDK honours, so the same binary runs
// against AWS, a compatible cloud or the tests' emulator:
//   AWS_EC2_METADATA_SERVICE_ENDPOINT  IMDS (default http://169.254.169.254)
//   AWS_ENDPOINT_URL_AUTO_SCALING      AutoScaling Query API (else AWS_ENDPOINT_URL, else
//                                      https://autoscaling.<region>.amazonaws.com)
//   AWS_ENDPOINT_URL_EC2               EC2 Query API (else AWS_ENDPOINT_URL, else
//                                      https://ec2.<region>.amazonaws.com)
//   AWS_REGION, then AWS_DEFAULT_REGION  the signing region (else the instance's, from IMDS)
#pragma once

#include <optional>
#include <string>

#include "aws/credentials.h"

namespace dolmen::aws {

struct Endpoints {
  std::string imds;
  std::string autoscaling;
  std::string ec2;
  std::string region;
};

std::string ImdsEndpoint(const Getenv& getenv);
std::optional<std::string> RegionFromEnv(const Getenv& getenv);

// `region` is the one the calls are signed for (RegionFromEnv or the instance's).
Endpoints ResolveEndpoints(const Getenv& getenv, const std::string& region);

}  // namespace dolmen::aws
