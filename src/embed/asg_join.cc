#include "embed/asg_join.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "log/log.h"
#include "transport/socket.h"

namespace dolmen::embed {
namespace {

std::vector<ClusterMember> FromProto(
    const google::protobuf::RepeatedPtrField<etcdserverpb::Member>& members) {
  std::vector<ClusterMember> out;
  for (const auto& m : members) {
    ClusterMember c;
    c.id = m.id();
    c.name = m.name();
    c.peer_urls.assign(m.peerurls().begin(), m.peerurls().end());
    c.is_learner = m.islearner();
    out.push_back(std::move(c));
  }
  return out;
}

bool SameUrls(std::vector<std::string> a, std::vector<std::string> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

// "host:port" of a client URL, as gRPC and ConnectTo dial it.
std::string TargetOf(const std::string& url) {
  const size_t sep = url.find("://");
  return sep == std::string::npos ? url : url.substr(sep + 3);
}

bool IsHttps(const std::string& url) { return url.rfind("https://", 0) == 0; }

Result<std::unique_ptr<etcdserverpb::Cluster::Stub>> StubFor(const std::string& url,
                                                             const JoinDialer& dialer) {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (IsHttps(url)) {
    if (dialer.tls == nullptr) return InvalidArgument("no TLS credentials to dial " + url);
    credentials = dialer.tls;
  }
  return etcdserverpb::Cluster::NewStub(grpc::CreateChannel(TargetOf(url), credentials));
}

// Whether anything accepts a connection at the URL's address: a member of a running cluster,
// or one that has started and waits for the others.
bool Listening(const std::string& url, std::chrono::milliseconds timeout) {
  Result<int> fd = transport::ConnectTo(TargetOf(url), timeout, -1);
  if (!fd.ok()) return false;
  ::close(*fd);
  return true;
}

}  // namespace

Result<std::optional<std::vector<ClusterMember>>> FindExistingCluster(
    const std::vector<std::string>& endpoints, const JoinDialer& dialer, std::string* answered_by) {
  std::string failures;
  for (const std::string& endpoint : endpoints) {
    if (!Listening(endpoint, dialer.timeout)) continue;
    ASSIGN_OR_RETURN(auto stub, StubFor(endpoint, dialer));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + dialer.timeout);
    etcdserverpb::MemberListRequest request;
    etcdserverpb::MemberListResponse response;
    const grpc::Status status = stub->MemberList(&context, request, &response);
    if (status.ok()) {
      *answered_by = endpoint;
      return std::optional<std::vector<ClusterMember>>(FromProto(response.members()));
    }
    failures += (failures.empty() ? "" : "; ") + endpoint + ": " + status.error_message();
  }
  if (!failures.empty()) {
    return Status(Code::kUnavailable,
                  "the group's members listen but did not answer MemberList (" + failures + ")");
  }
  return std::optional<std::vector<ClusterMember>>();
}

Result<std::vector<ClusterMember>> AddLearner(const std::string& endpoint,
                                              const std::vector<std::string>& peer_urls,
                                              const JoinDialer& dialer) {
  ASSIGN_OR_RETURN(auto stub, StubFor(endpoint, dialer));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + dialer.timeout);
  etcdserverpb::MemberAddRequest request;
  for (const auto& url : peer_urls) request.add_peerurls(url);
  request.set_islearner(true);
  etcdserverpb::MemberAddResponse response;
  const grpc::Status status = stub->MemberAdd(&context, request, &response);
  if (!status.ok()) {
    // At most --max-learners learners at a time: a refusal for that is waited out, as is a
    // cluster without a leader for the moment.
    const bool retry = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                       status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
                       status.error_message().find("too many learner") != std::string::npos;
    return Status(retry ? Code::kUnavailable : Code::kFailedPrecondition,
                  "MemberAdd (learner) through " + endpoint + ": " + status.error_message());
  }
  return FromProto(response.members());
}

bool ListsPeerUrls(const std::vector<ClusterMember>& members,
                   const std::vector<std::string>& peer_urls) {
  return std::any_of(members.begin(), members.end(),
                     [&](const ClusterMember& m) { return SameUrls(m.peer_urls, peer_urls); });
}

std::string ExistingInitialCluster(const std::vector<ClusterMember>& members,
                                   const std::vector<std::string>& self_peer_urls,
                                   const std::string& self_name) {
  std::string out;
  for (const auto& m : members) {
    const std::string name = SameUrls(m.peer_urls, self_peer_urls) ? self_name
                             : !m.name.empty()                     ? m.name
                                                                   : log::Hex(m.id);
    for (const auto& url : m.peer_urls) out += (out.empty() ? "" : ",") + name + "=" + url;
  }
  return out;
}

}  // namespace dolmen::embed
