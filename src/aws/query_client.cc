#include "aws/query_client.h"

#include <algorithm>

#include "aws/sigv4.h"

namespace dolmen::aws {
namespace {

constexpr const char* kAutoScalingVersion = "2011-01-01";
constexpr const char* kEc2Version = "2016-11-15";

std::string ServiceTitle(const std::string& service) {
  return service == "ec2" ? "EC2" : "AutoScaling";
}

}  // namespace

bool IsRetryableAnswer(int http_status, const std::string& error_code) {
  if (http_status == 0 || http_status >= 500 || http_status == 429) return true;
  static const char* kThrottling[] = {
      "Throttling",       "ThrottlingException",      "RequestLimitExceeded",
      "RequestThrottled", "TooManyRequestsException", "SlowDown"};
  return std::find(std::begin(kThrottling), std::end(kThrottling), error_code) !=
         std::end(kThrottling);
}

std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [name, value] : params) {
    out += (out.empty() ? "" : "&") + UriEncode(name, false) + "=" + UriEncode(value, false);
  }
  return out;
}

QueryClient::QueryClient(Options options, HttpTransport* transport)
    : options_(std::move(options)), transport_(transport) {}

Result<HttpResponse> QueryClient::SendOnce(const std::string& service, const std::string& body) {
  ASSIGN_OR_RETURN(Credentials credentials, options_.credentials());
  HttpRequest request;
  request.method = "POST";
  request.url = (service == "ec2" ? options_.ec2_endpoint : options_.autoscaling_endpoint) + "/";
  request.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded; charset=utf-8");
  request.body = body;
  RETURN_IF_ERROR(SignV4(&request, credentials, options_.region, service, options_.now()));
  return transport_->Send(request);
}

Result<std::string> QueryClient::Call(
    const std::string& service, const std::vector<std::pair<std::string, std::string>>& params) {
  const std::string action = params.empty() ? "" : params.front().second;
  const std::string what = ServiceTitle(service) + " " + action;
  const std::string body = FormEncode(params);
  std::chrono::milliseconds backoff = options_.retry.first_backoff;
  for (int attempt = 1;; ++attempt) {
    Result<HttpResponse> response = SendOnce(service, body);
    std::string failure;
    if (!response.ok()) {
      // No answer (refused, timed out) is retried; a refusal to sign (no keys) is not.
      if (response.status().code() != Code::kUnavailable) return response.status();
      failure = response.status().message();
    } else if (response->status == 200) {
      return std::move(response->body);
    } else {
      const QueryError error = ParseQueryError(response->body);
      failure = "HTTP " + std::to_string(response->status) +
                (error.code.empty() ? "" : " " + error.code + ": " + error.message);
      if (!IsRetryableAnswer(response->status, error.code)) {
        return Status(Code::kFailedPrecondition, what + " failed: " + failure);
      }
    }
    if (attempt >= options_.retry.max_attempts) {
      return Unavailable(what + " failed after " + std::to_string(attempt) +
                         " attempts; last: " + failure);
    }
    if (options_.log) {
      options_.log(what + " attempt " + std::to_string(attempt) + " failed (" + failure +
                   "); retrying in " + std::to_string(backoff.count()) + " ms");
    }
    options_.sleep(backoff);
    backoff = std::min(backoff * 2, options_.retry.max_backoff);
  }
}

Result<std::vector<AsgInstance>> QueryClient::DescribeAutoScalingInstances(
    const std::vector<std::string>& instance_ids) {
  std::vector<std::pair<std::string, std::string>> params = {
      {"Action", "DescribeAutoScalingInstances"}, {"Version", kAutoScalingVersion}};
  for (size_t i = 0; i < instance_ids.size(); ++i) {
    params.emplace_back("InstanceIds.member." + std::to_string(i + 1), instance_ids[i]);
  }
  ASSIGN_OR_RETURN(std::string xml, Call("autoscaling", params));
  return ParseAutoScalingInstances(xml);
}

Result<AutoScalingGroup> QueryClient::DescribeAutoScalingGroup(const std::string& name) {
  std::vector<std::pair<std::string, std::string>> params = {
      {"Action", "DescribeAutoScalingGroups"},
      {"Version", kAutoScalingVersion},
      {"AutoScalingGroupNames.member.1", name}};
  ASSIGN_OR_RETURN(std::string xml, Call("autoscaling", params));
  Page page;
  ASSIGN_OR_RETURN(std::vector<AutoScalingGroup> groups, ParseAutoScalingGroups(xml, &page));
  for (auto& g : groups) {
    if (g.name == name) return std::move(g);
  }
  return NotFound("auto scaling group " + name + " not found");
}

Result<std::vector<Ec2Instance>> QueryClient::DescribeInstances(
    const std::vector<std::string>& instance_ids) {
  std::vector<Ec2Instance> out;
  std::string next_token;
  // Pages are followed to the end; a bound stops a service that always answers a next token.
  for (int page_count = 0; page_count < 100; ++page_count) {
    std::vector<std::pair<std::string, std::string>> params = {{"Action", "DescribeInstances"},
                                                               {"Version", kEc2Version}};
    for (size_t i = 0; i < instance_ids.size(); ++i) {
      params.emplace_back("InstanceId." + std::to_string(i + 1), instance_ids[i]);
    }
    if (!next_token.empty()) params.emplace_back("NextToken", next_token);
    ASSIGN_OR_RETURN(std::string xml, Call("ec2", params));
    Page page;
    ASSIGN_OR_RETURN(std::vector<Ec2Instance> instances, ParseInstances(xml, &page));
    out.insert(out.end(), instances.begin(), instances.end());
    if (page.next_token.empty()) return out;
    next_token = page.next_token;
  }
  return Internal("EC2 DescribeInstances: more than 100 pages of answers");
}

}  // namespace dolmen::aws
