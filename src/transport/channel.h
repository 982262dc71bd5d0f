// How the transport's client channels are configured: quick reconnects (gRPC's own default
// backoff grows to two minutes, far too slow for a restarted member) and keepalive pings so
// that a peer that vanished without closing its connection fails our stream within seconds.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "transport/peer_tls.h"
#include "transport/transport.h"
#include "transport/url.h"

namespace dolmen::transport {

enum class ChannelKind {
  kSnapshot,  // its own connection: a large snapshot shares no HTTP/2 flow window with others
  kOneShot,   // FetchClusterInfo
  kForward,   // requests forwarded to the leader (lease renew, time-to-live, promote)
};

// A channel to `target`: plaintext, or TLS with `tls`'s credentials for https and unixs.
std::shared_ptr<grpc::Channel> NewPeerChannel(const DialTarget& target, const Options& options,
                                              ChannelKind kind, const PeerTls& tls);

// Server-side counterparts: accept the pings the channels above send.
void ConfigurePeerServer(const Options& options, grpc::ServerBuilder* builder);

// Trailing-metadata key a receiver sets when it refuses a sender for who it is (another
// cluster, removed, wrong member), so the sender can tell a refusal from a broken stream.
inline constexpr char kRefusedKey[] = "dolmen-refused";
inline constexpr char kRefusedRemoved[] = "removed";
inline constexpr char kRefusedOther[] = "refused";

// Turns a failed call's status into the Status on_refused reports, or OK if the call failed for
// any other reason (the peer is down, the stream broke).
Status RefusalOf(const grpc::ClientContext& context, const grpc::Status& status);

}  // namespace dolmen::transport
