// Handing an accepted, still plaintext connection to a gRPC server (gRPC C++ 1.51 adopts only
// plaintext sockets; TLS connections reach it through a proxy, see tls/proxy.h).
#pragma once

#include <grpcpp/grpcpp.h>

#include "transport/acceptor.h"

namespace dolmen::transport {

// gRPC owns the socket afterwards (and closes it). Does nothing while the acceptor stops.
void HandToGrpc(grpc::Server* server, AcceptedConnection& connection);

}  // namespace dolmen::transport
