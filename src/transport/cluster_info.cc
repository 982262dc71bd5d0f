// FetchClusterInfo: the first step of joining an existing cluster (etcd's "get cluster from
// remote peers"): ask the given peers, in turn, for the cluster id and its members.
#include <grpcpp/grpcpp.h>

#include "dolmen/peer.grpc.pb.h"
#include "transport/channel.h"
#include "transport/codec.h"
#include "transport/peer_tls.h"
#include "transport/transport.h"
#include "transport/url.h"

namespace dolmen::transport {

Result<ClusterInfo> FetchClusterInfo(const std::vector<std::string>& peer_urls,
                                     std::chrono::milliseconds timeout, const TlsOptions& tls) {
  if (peer_urls.empty()) return InvalidArgument("no peer URL to ask for the cluster");
  Options options;  // channel defaults: reconnect backoff and keepalive only
  ASSIGN_OR_RETURN(std::shared_ptr<PeerTls> peer_tls, PeerTls::New(tls));
  std::string errors;
  for (const std::string& url : peer_urls) {
    Result<DialTarget> target = PeerUrlToDialTarget(url);
    if (!target.ok()) return target.status();
    auto stub =
        peer::Peer::NewStub(NewPeerChannel(*target, options, ChannelKind::kOneShot, *peer_tls));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + timeout);
    // Fail fast (not wait_for_ready): a peer that refuses the connection is down, and the
    // next URL may answer; `timeout` still bounds a peer that accepts but is slow.
    peer::GetMembersResponse response;
    grpc::Status status = stub->GetMembers(&context, peer::GetMembersRequest(), &response);
    if (!status.ok()) {
      errors += (errors.empty() ? "" : "; ") + url + ": " + status.error_message();
      continue;
    }
    if (response.cluster_id() == 0) {
      errors += (errors.empty() ? "" : "; ") + url + ": answered without a cluster id";
      continue;
    }
    ClusterInfo info;
    info.cluster_id = ClusterId(response.cluster_id());
    for (const peer::MemberInfo& m : response.members())
      info.members.push_back(DecodeMemberInfo(m));
    return info;
  }
  return Unavailable("could not get the cluster from any peer (" + errors + ")");
}

}  // namespace dolmen::transport
