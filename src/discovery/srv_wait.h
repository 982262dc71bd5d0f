// Waiting for DNS SRV records. etcd asks once and exits when the records are missing or do not
// name the member yet; under an orchestrator that publishes records as members come up (a
// Kubernetes headless service, a DNS update after provisioning) that turns a few seconds of
// propagation into a crash loop. dolmen asks again with a bounded, doubling back-off for up to
// `wait` (--experimental-discovery-srv-wait), logging each failed attempt, and then fails with
// the last error, etcd's words. A refusal of the configuration (FailedPrecondition,
// InvalidArgument) is not retried: asking again cannot change it.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"

namespace dolmen::discovery {

struct WaitPolicy {
  std::chrono::milliseconds wait{60000};  // 0: one attempt, as etcd
  std::chrono::milliseconds first_backoff{500};
  std::chrono::milliseconds max_backoff{8000};
  std::string what = "DNS SRV discovery";  // how the log lines name the wait
};

bool IsWorthRetrying(const Status& status);

// Runs `attempt` until it succeeds, fails in a way not worth retrying, or the next attempt
// would start after `policy.wait` from the first. `sleep` waits (a test's advances a clock).
Result<std::vector<std::string>> RetryDiscovery(
    const std::function<Result<std::vector<std::string>>()>& attempt, const WaitPolicy& policy,
    const Clock& clock, const std::function<void(std::chrono::milliseconds)>& sleep,
    const std::function<void(const std::string&)>& log);

}  // namespace dolmen::discovery
