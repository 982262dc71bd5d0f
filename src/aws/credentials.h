// AWS credentials and where they come from, in the SDKs' order: the environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), else the instance role through
// IMDS (meta-data/iam/security-credentials/<role>), whose temporary keys are fetched again five
// minutes before their Expiration.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "base/status.h"

namespace dolmen::aws {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty for long-term keys
  // Wall-clock end of temporary credentials; none for keys from the environment.
  std::optional<std::chrono::system_clock::time_point> expiration;
};

using Getenv = std::function<std::optional<std::string>(const std::string&)>;
// The process environment (std::getenv); empty values count as unset, as the SDKs do.
std::optional<std::string> ProcessEnv(const std::string& name);

// Credentials from the environment, or nullopt when AWS_ACCESS_KEY_ID is unset.
// InvalidArgument when only one of the key id and the secret is set.
Result<std::optional<Credentials>> CredentialsFromEnv(const Getenv& getenv);

// The JSON document IMDS serves for a role: {"Code":"Success","AccessKeyId":...,
// "SecretAccessKey":...,"Token":...,"Expiration":"2026-12-06T22:00:00Z"}.
Result<Credentials> ParseRoleCredentials(const std::string& json);

// "2026-12-06T22:00:00Z" (RFC 3339 in UTC, optional fraction) to a time point.
Result<std::chrono::system_clock::time_point> ParseUtcTime(const std::string& text);

// Hands out valid credentials, fetching them again when they are within `refresh_margin` of
// their expiration. Thread-safe.
class CredentialsCache {
 public:
  using Fetch = std::function<Result<Credentials>()>;
  using WallClock = std::function<std::chrono::system_clock::time_point()>;
  CredentialsCache(Fetch fetch, WallClock now,
                   std::chrono::seconds refresh_margin = std::chrono::minutes(5));
  Result<Credentials> Get();

 private:
  Fetch fetch_;
  WallClock now_;
  std::chrono::seconds refresh_margin_;
  std::mutex mu_;
  std::optional<Credentials> cached_;
};

}  // namespace dolmen::aws
