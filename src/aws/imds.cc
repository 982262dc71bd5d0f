#include "aws/imds.h"

namespace dolmen::aws {
namespace {

constexpr int kTokenTtlSeconds = 21600;

std::string Trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

Status AnswerStatus(const std::string& what, const HttpResponse& response) {
  if (response.status == 200) return OkStatus();
  const std::string text = "IMDS " + what + " answered HTTP " + std::to_string(response.status);
  if (response.status == 404) return NotFound(text);
  if (response.status >= 500 || response.status == 429) return Unavailable(text);
  return {Code::kFailedPrecondition, text};
}

}  // namespace

ImdsClient::ImdsClient(std::string endpoint, HttpTransport* transport)
    : endpoint_(std::move(endpoint)), transport_(transport) {
  while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
}

Result<std::string> ImdsClient::Token(bool renew) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  if (!renew && !token_.empty() && now < token_expires_) return token_;
  HttpRequest request;
  request.method = "PUT";
  request.url = endpoint_ + "/latest/api/token";
  request.headers.emplace_back("X-aws-ec2-metadata-token-ttl-seconds",
                               std::to_string(kTokenTtlSeconds));
  ASSIGN_OR_RETURN(HttpResponse response, transport_->Send(request));
  RETURN_IF_ERROR(AnswerStatus("PUT /latest/api/token", response));
  token_ = Trim(response.body);
  // Renewed an hour before IMDS forgets it, so a token never expires in flight.
  token_expires_ = now + std::chrono::seconds(kTokenTtlSeconds - 3600);
  return token_;
}

Result<std::string> ImdsClient::Get(const std::string& path) {
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(std::string token, Token(/*renew=*/attempt > 0));
    HttpRequest request;
    request.url = endpoint_ + "/latest/meta-data/" + path;
    request.headers.emplace_back("X-aws-ec2-metadata-token", token);
    ASSIGN_OR_RETURN(HttpResponse response, transport_->Send(request));
    if (response.status == 401 && attempt == 0) continue;
    RETURN_IF_ERROR(AnswerStatus("GET meta-data/" + path, response));
    return Trim(response.body);
  }
}

Result<InstanceIdentity> ImdsClient::Identity() {
  InstanceIdentity id;
  ASSIGN_OR_RETURN(id.instance_id, Get("instance-id"));
  ASSIGN_OR_RETURN(id.local_ipv4, Get("local-ipv4"));
  ASSIGN_OR_RETURN(id.region, Get("placement/region"));
  return id;
}

Result<Credentials> ImdsClient::RoleCredentials() {
  Result<std::string> roles = Get("iam/security-credentials/");
  if (!roles.ok()) {
    if (roles.status().code() == Code::kNotFound) {
      return NotFound(
          "no AWS credentials: AWS_ACCESS_KEY_ID is not set and the instance has no IAM role "
          "(IMDS meta-data/iam/security-credentials/ answered 404)");
    }
    return roles.status();
  }
  const std::string role = roles->substr(0, roles->find('\n'));
  if (role.empty()) return NotFound("no AWS credentials: the instance lists no IAM role");
  ASSIGN_OR_RETURN(std::string json, Get("iam/security-credentials/" + role));
  return ParseRoleCredentials(json);
}

}  // namespace dolmen::aws
