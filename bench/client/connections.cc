#include "connections.h"

namespace dolmen::bench {

Connections::Connections(const Options& options) {
  for (int i = 0; i < options.conns; ++i) {
    grpc::ChannelArguments args;
    // Without a local pool, channels with equal arguments share one TCP connection and
    // --conns would measure nothing.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(-1);
    const std::string& endpoint =
        options.endpoints[static_cast<size_t>(i) % options.endpoints.size()];
    auto channel = grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
    kv_.push_back(etcdserverpb::KV::NewStub(channel));
    watch_.push_back(etcdserverpb::Watch::NewStub(channel));
    lease_.push_back(etcdserverpb::Lease::NewStub(channel));
    channels_.push_back(std::move(channel));
  }
}

}  // namespace dolmen::bench
