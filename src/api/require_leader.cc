#include "api/require_leader.h"

#include <vector>

#include "api/errors.h"

namespace dolmen::api {
namespace {

// etcd's rpctypes.MetadataRequireLeaderKey / MetadataHasLeader.
constexpr char kRequireLeaderKey[] = "hasleader";
constexpr char kHasLeader[] = "true";
// etcd's maxNoLeaderCnt: election timeouts without a leader before open streams are ended.
constexpr int kMaxNoLeaderRounds = 3;

}  // namespace

bool RequiresLeader(const grpc::CallbackServerContext* context) {
  const auto& metadata = context->client_metadata();
  auto it = metadata.find(kRequireLeaderKey);
  // etcd looks at the first value only.
  return it != metadata.end() &&
         std::string_view(it->second.data(), it->second.size()) == kHasLeader;
}

bool RefuseWithoutLeader(grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor,
                         const server::Server* server) {
  if (!RequiresLeader(context) || server->leader().value() != 0) return false;
  reactor->Finish(ToGrpcStatus(Status(Code::kNoLeader, "no leader")));
  return true;
}

LeaderMonitor::LeaderMonitor(const server::Server* server)
    : server_(server),
      period_(server->config().driver.tick_interval * server->config().driver.election_ticks) {}

LeaderMonitor::~LeaderMonitor() { Stop(); }

void LeaderMonitor::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void LeaderMonitor::Stop() {
  {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LeaderMonitor::Register(Stream* stream) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  streams_.insert(stream);
}

void LeaderMonitor::Unregister(Stream* stream) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  streams_.erase(stream);
}

void LeaderMonitor::Loop() {
  int rounds_without_leader = 0;
  std::unique_lock<std::recursive_mutex> lock(mu_);
  while (!stopping_) {
    if (cv_.wait_for(lock, period_, [this] { return stopping_; })) return;
    rounds_without_leader = server_->leader().value() == 0 ? rounds_without_leader + 1 : 0;
    if (rounds_without_leader < kMaxNoLeaderRounds) continue;
    // Reconnecting a stream costs more than refusing a request, hence the patience (etcd).
    std::vector<Stream*> open(streams_.begin(), streams_.end());
    for (Stream* s : open) {
      // An earlier cancellation may have ended (and unregistered) this one meanwhile.
      if (streams_.count(s) == 0) continue;
      streams_.erase(s);
      s->CancelNoLeader();
    }
  }
}

}  // namespace dolmen::api
