#include "http/health.h"

#include <condition_variable>
#include <memory>
#include <mutex>

#include "api/errors.h"

namespace dolmen::http {

HealthChecks::HealthChecks(server::Server* server, HealthOptions options)
    : server_(server), options_(options) {}

HealthChecks::Result HealthChecks::Read(bool serializable) {
  // The answer may come after we stopped waiting: the state is shared with the callback.
  struct Answer {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Status status;
  };
  auto answer = std::make_shared<Answer>();
  etcdserverpb::RangeRequest request;
  request.set_key(std::string(1, '\0'));  // any key: only whether a read can be served matters
  request.set_keys_only(true);
  request.set_limit(1);
  request.set_serializable(serializable);
  server_->Range(request, [answer](dolmen::Result<etcdserverpb::RangeResponse> r) {
    std::lock_guard lock(answer->mu);
    answer->done = true;
    answer->status = r.status();
    answer->cv.notify_all();
  });
  std::unique_lock lock(answer->mu);
  if (!answer->cv.wait_for(lock, options_.read_timeout, [&] { return answer->done; })) {
    return {false, api::ToGrpcStatus(Status(Code::kTimeout, "")).error_message()};
  }
  if (answer->status.ok()) return {};
  return {false, api::ToGrpcStatus(answer->status).error_message()};
}

HealthChecks::Result HealthChecks::Health(const std::set<std::string>& excluded_alarms,
                                          bool serializable) {
  for (const etcdserverpb::AlarmMember& a : server_->ActiveAlarms()) {
    const std::string name = etcdserverpb::AlarmType_Name(a.alarm());
    if (excluded_alarms.count(name) != 0) continue;
    if (a.alarm() == etcdserverpb::NOSPACE) return {false, "ALARM NOSPACE"};
    if (a.alarm() == etcdserverpb::CORRUPT) return {false, "ALARM CORRUPT"};
    return {false, "ALARM UNKNOWN"};
  }
  if (!serializable && server_->leader() == MemberId(0)) return {false, "RAFT NO LEADER"};
  Result read = Read(serializable);
  if (!read.ok) read.reason = "RANGE ERROR:" + read.reason;
  return read;
}

HealthChecks::Result HealthChecks::RunCheck(const std::string& name) {
  if (name == "data_corruption") {
    for (const etcdserverpb::AlarmMember& a : server_->ActiveAlarms()) {
      if (a.alarm() == etcdserverpb::CORRUPT) return {false, "alarm activated: CORRUPT"};
    }
    return {};
  }
  if (name == "serializable_read") return Read(true);
  if (name == "linearizable_read") return Read(false);
  return {false, "unknown check " + name};
}

}  // namespace dolmen::http
