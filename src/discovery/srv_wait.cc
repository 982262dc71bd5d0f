#include "discovery/srv_wait.h"

#include <algorithm>

namespace dolmen::discovery {

bool IsWorthRetrying(const Status& status) {
  return status.code() != Code::kFailedPrecondition && status.code() != Code::kInvalidArgument;
}

Result<std::vector<std::string>> RetryDiscovery(
    const std::function<Result<std::vector<std::string>>()>& attempt, const WaitPolicy& policy,
    const Clock& clock, const std::function<void(std::chrono::milliseconds)>& sleep,
    const std::function<void(const std::string&)>& log) {
  const auto start = clock.Now();
  auto backoff = policy.first_backoff;
  for (int attempts = 1;; ++attempts) {
    auto result = attempt();
    if (result.ok() || !IsWorthRetrying(result.status())) return result;
    const auto waited = clock.Now() - start;
    if (waited + backoff > policy.wait) {
      if (attempts > 1) {
        log(policy.what + " gave up after " + std::to_string(attempts) + " attempts in " +
            std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()) +
            " ms");
      }
      return result;
    }
    log(policy.what + " attempt " + std::to_string(attempts) + " failed: " +
        result.status().message() + "; retrying in " + std::to_string(backoff.count()) + " ms");
    sleep(backoff);
    backoff = std::min(backoff * 2, policy.max_backoff);
  }
}

}  // namespace dolmen::discovery
