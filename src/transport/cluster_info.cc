// FetchClusterInfo: the first step of joining an existing cluster (etcd's "get cluster from
// remote peers"): ask the given peers, in turn, for the cluster id and its members.
#include <grpcpp/grpcpp.h>

#include <algorithm>

#include "dolmen/peer.grpc.pb.h"
#include "tls/refusal_probe.h"
#include "transport/channel.h"
#include "transport/codec.h"
#include "transport/peer_tls.h"
#include "transport/transport.h"
#include "transport/url.h"

namespace dolmen::transport {

namespace {

// A peer that accepts the probe is silent until this (it waits for our HTTP/2 preface).
constexpr std::chrono::milliseconds kMaxProbe{2000};

// Why a TLS peer refused the connection, as " (REASON)", or "": gRPC says only "Endpoint read
// failed" when the peer refused our certificate, and a member that cannot join must say why.
std::string TlsRefusal(const DialTarget& target, const PeerTls& peer_tls,
                       std::chrono::milliseconds timeout) {
  if (!target.tls || target.host.empty()) return "";
  const size_t colon = target.address.rfind(':');
  if (colon == std::string::npos) return "";
  const std::string why =
      tls::ProbeTlsRefusal(peer_tls.ClientContext(), target.host, target.address.substr(colon + 1),
                           static_cast<int>(std::min(timeout, kMaxProbe).count()));
  return why.empty() ? "" : " (" + why + ")";
}

}  // namespace

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
      errors += (errors.empty() ? "" : "; ") + url + ": " + status.error_message() +
                TlsRefusal(*target, *peer_tls, timeout);
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
