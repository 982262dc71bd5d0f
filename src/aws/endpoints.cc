#include "aws/endpoints.h"

namespace dolmen::aws {
namespace {

std::string WithoutTrailingSlash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

std::string ServiceEndpoint(const Getenv& getenv, const std::string& variable,
                            const std::string& service, const std::string& region) {
  if (auto url = getenv(variable)) return WithoutTrailingSlash(*url);
  if (auto url = getenv("AWS_ENDPOINT_URL")) return WithoutTrailingSlash(*url);
  return "https://" + service + "." + region + ".amazonaws.com";
}

}  // namespace

std::string ImdsEndpoint(const Getenv& getenv) {
  return WithoutTrailingSlash(
      getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT").value_or("http://169.254.169.254"));
}

std::optional<std::string> RegionFromEnv(const Getenv& getenv) {
  if (auto region = getenv("AWS_REGION")) return region;
  return getenv("AWS_DEFAULT_REGION");
}

Endpoints ResolveEndpoints(const Getenv& getenv, const std::string& region) {
  Endpoints e;
  e.imds = ImdsEndpoint(getenv);
  e.region = region;
  e.autoscaling = ServiceEndpoint(getenv, "AWS_ENDPOINT_URL_AUTO_SCALING", "autoscaling", region);
  e.ec2 = ServiceEndpoint(getenv, "AWS_ENDPOINT_URL_EC2", "ec2", region);
  return e;
}

}  // namespace dolmen::aws
