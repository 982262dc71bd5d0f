#include "transport/channel.h"

#include <climits>

namespace dolmen::transport {
namespace {

constexpr int kKeepaliveTimeMs = 10'000;
constexpr int kKeepaliveTimeoutMs = 5'000;

}  // namespace

std::shared_ptr<grpc::Channel> NewPeerChannel(const DialTarget& target, const Options& options,
                                              ChannelKind kind, const PeerTls& tls) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(options.min_backoff.count()));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(options.max_backoff.count()));
  // Not GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: gRPC also uses it as the connect timeout, and 50 ms
  // fails handshakes on a loaded machine. Its default (20 s) only bounds a hanging connect.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetMaxSendMessageSize(INT_MAX);
  // Only acks and membership come back, and a forwarded time-to-live's keys (each within
  // the request size limit, so their list is bounded by the leader's store rather than by us).
  args.SetMaxReceiveMessageSize(kind == ChannelKind::kForward ? (64 << 20) : (1 << 20));
  // Channels with different arguments never share a connection (gRPC keys subchannels by
  // their arguments): the snapshot stream gets its own TCP connection.
  args.SetInt("dolmen.channel_kind", static_cast<int>(kind));
  return grpc::CreateCustomChannel(
      target.address,
      target.tls ? tls.ChannelCredentials(target) : grpc::InsecureChannelCredentials(), args);
}

void ConfigurePeerServer(const Options& options, grpc::ServerBuilder* builder) {
  constexpr size_t kEnvelopeSlack = 1 << 16;
  builder->SetMaxReceiveMessageSize(
      static_cast<int>(std::min<size_t>(options.max_envelope_bytes + kEnvelopeSlack, INT_MAX)));
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                              kKeepaliveTimeMs / 2);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
}

Status RefusalOf(const grpc::ClientContext& context, const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::FAILED_PRECONDITION) return OkStatus();
  const auto& trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find(kRefusedKey);
  if (it == trailers.end()) return OkStatus();
  std::string_view reason(it->second.data(), it->second.size());
  return Status(reason == kRefusedRemoved ? Code::kRemoved : Code::kFailedPrecondition,
                status.error_message());
}

}  // namespace dolmen::transport
