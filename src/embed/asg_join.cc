#include "embed/asg_join.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "log/log.h"

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

std::unique_ptr<etcdserverpb::Cluster::Stub> StubFor(const std::string& endpoint) {
  return etcdserverpb::Cluster::NewStub(
      grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials()));
}

}  // namespace

std::optional<std::vector<ClusterMember>> FindExistingCluster(
    const std::vector<std::string>& endpoints, std::chrono::milliseconds timeout,
    std::string* answered_by) {
  for (const std::string& endpoint : endpoints) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + timeout);
    etcdserverpb::MemberListRequest request;
    etcdserverpb::MemberListResponse response;
    if (StubFor(endpoint)->MemberList(&context, request, &response).ok()) {
      *answered_by = endpoint;
      return FromProto(response.members());
    }
  }
  return std::nullopt;
}

Result<std::vector<ClusterMember>> AddLearner(const std::string& endpoint,
                                              const std::vector<std::string>& peer_urls,
                                              std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  etcdserverpb::MemberAddRequest request;
  for (const auto& url : peer_urls) request.add_peerurls(url);
  request.set_islearner(true);
  etcdserverpb::MemberAddResponse response;
  const grpc::Status status = StubFor(endpoint)->MemberAdd(&context, request, &response);
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
