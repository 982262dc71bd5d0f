#include "aws/credentials.h"

#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>

namespace dolmen::aws {

std::optional<std::string> ProcessEnv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

Result<std::optional<Credentials>> CredentialsFromEnv(const Getenv& getenv) {
  const auto id = getenv("AWS_ACCESS_KEY_ID");
  const auto secret = getenv("AWS_SECRET_ACCESS_KEY");
  if (!id && !secret) return std::optional<Credentials>();
  if (!id || !secret) {
    return InvalidArgument(
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together (only one is set)");
  }
  Credentials c;
  c.access_key_id = *id;
  c.secret_access_key = *secret;
  c.session_token = getenv("AWS_SESSION_TOKEN").value_or("");
  return std::optional<Credentials>(c);
}

Result<std::chrono::system_clock::time_point> ParseUtcTime(const std::string& text) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) return InvalidArgument("not an RFC 3339 time: " + text);
  if (*end == '.') {
    ++end;
    while (*end >= '0' && *end <= '9') ++end;
  }
  if (std::string(end) != "Z" && std::string(end) != "+00:00") {
    return InvalidArgument("not an RFC 3339 time in UTC: " + text);
  }
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

Result<Credentials> ParseRoleCredentials(const std::string& json) {
  const nlohmann::json doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return InvalidArgument("instance role credentials are not a JSON object");
  auto text = [&](const char* key) -> std::string {
    const auto it = doc.find(key);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : "";
  };
  if (const std::string code = text("Code"); !code.empty() && code != "Success") {
    return Unavailable("instance role credentials: IMDS answered Code " + code + ": " +
                       text("Message"));
  }
  Credentials c;
  c.access_key_id = text("AccessKeyId");
  c.secret_access_key = text("SecretAccessKey");
  c.session_token = text("Token");
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    return InvalidArgument("instance role credentials lack AccessKeyId or SecretAccessKey");
  }
  if (const std::string expiration = text("Expiration"); !expiration.empty()) {
    ASSIGN_OR_RETURN(auto when, ParseUtcTime(expiration));
    c.expiration = when;
  }
  return c;
}

CredentialsCache::CredentialsCache(Fetch fetch, WallClock now, std::chrono::seconds refresh_margin)
    : fetch_(std::move(fetch)), now_(std::move(now)), refresh_margin_(refresh_margin) {}

Result<Credentials> CredentialsCache::Get() {
  std::lock_guard<std::mutex> lock(mu_);
  const bool fresh =
      cached_ && (!cached_->expiration || now_() + refresh_margin_ < *cached_->expiration);
  if (!fresh) {
    ASSIGN_OR_RETURN(Credentials fetched, fetch_());
    cached_ = std::move(fetched);
  }
  return *cached_;
}

}  // namespace dolmen::aws
