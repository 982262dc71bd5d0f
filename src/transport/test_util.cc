#include "transport/test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace dolmen::transport::testing {

int PickPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  CHECK(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  CHECK(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  CHECK(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string LoopbackUrl(int port) { return "http://127.0.0.1:" + std::to_string(port); }

TempDir::TempDir() {
  std::string templ = (std::filesystem::temp_directory_path() / "dolmen-transport-XXXXXX").string();
  CHECK(::mkdtemp(templ.data()) != nullptr);
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void RecordingHandler::OnMessages(std::vector<raft::Message> received) {
  monitor.Await([this] { return !blocked_; }, 30s);
  monitor.Update([&] {
    ++on_messages_calls;
    for (raft::Message& m : received) messages.push_back(std::move(m));
  });
}

void RecordingHandler::OnSnapshot(raft::Message message, std::string db_path) {
  monitor.Update([&] { snapshots.push_back({std::move(message), std::move(db_path)}); });
}

std::vector<Handler::MemberInfo> RecordingHandler::Members() {
  return monitor.Read([this] { return members_; });
}

bool RecordingHandler::IsRemoved(MemberId from) {
  return monitor.Read([&] { return removed_.count(from) != 0; });
}

void RecordingHandler::SetBlocked(bool blocked) {
  monitor.Update([&] { blocked_ = blocked; });
}

void RecordingHandler::SetRemoved(MemberId id) {
  monitor.Update([&] { removed_.insert(id); });
}

void RecordingHandler::SetMembers(std::vector<MemberInfo> members) {
  monitor.Update([&] { members_ = std::move(members); });
}

Node::Node(const NodeConfig& config, const TempDir& dir) {
  options_.cluster_id = config.cluster_id;
  options_.self = config.id;
  url_ = config.url.empty() ? LoopbackUrl(config.port) : config.url;
  options_.listen_urls = {url_};
  options_.snapshot_dir = dir.path();
  if (config.tweak) config.tweak(&options_);
  auto made = NewGrpcTransport(options_, &handler);
  CHECK(made.ok()) << made.status().ToString();
  transport_ = std::move(made).value();
  transport_->on_unreachable = [this](MemberId peer) {
    events.monitor.Update([&] { ++events.unreachable[peer]; });
  };
  transport_->on_refused = [this](MemberId peer, Status why) {
    events.monitor.Update([&] { events.refused.emplace_back(peer, why); });
  };
  transport_->on_snapshot_status = [this](MemberId peer, bool ok) {
    events.monitor.Update([&] { events.snapshot_status.emplace_back(peer, ok); });
  };
}

Node::~Node() { Stop(); }

Status Node::Start() { return transport_->Start(); }

void Node::Stop() { transport_->Stop(); }

raft::Message Msg(raft::MessageType type, MemberId from, MemberId to, uint64_t index) {
  raft::Message m;
  m.type = type;
  m.from = from;
  m.to = to;
  m.term = Term(1);
  m.index = Index(index);
  return m;
}

}  // namespace dolmen::transport::testing
