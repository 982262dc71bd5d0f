// Waiting, bounded, on an operation that answers through a callback on another thread: what the
// leader's background loops (learner promotion, dead-member removal) use to call the member's
// own asynchronous paths one step at a time.
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <memory>

#include "base/status.h"

namespace dolmen::server {

// Runs `start` (which answers through its callback, on any thread) and waits for the answer at
// most `timeout`; kTimeout ("request timed out") then. The callback may run after the timeout:
// it owns its share of the promise.
inline Status AwaitStatus(const std::function<void(std::function<void(Status)>)>& start,
                          std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<Status>>();
  std::future<Status> answer = promise->get_future();
  start([promise](Status s) { promise->set_value(std::move(s)); });
  if (answer.wait_for(timeout) != std::future_status::ready) {
    return Status(Code::kTimeout, "request timed out");
  }
  return answer.get();
}

}  // namespace dolmen::server
