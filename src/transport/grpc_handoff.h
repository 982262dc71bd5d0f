// Handing a connected plaintext socket to a gRPC server (gRPC C++ 1.51 adopts only plaintext
// sockets; a TLS connection reaches it as one end of a socketpair, see tls/connection.h).
#pragma once

#include <grpcpp/grpcpp.h>

#include "transport/acceptor.h"

namespace dolmen::transport {

// gRPC owns `fd` afterwards (and closes it).
void HandToGrpc(grpc::Server* server, int fd);
// The accepted socket itself. Does nothing while the acceptor stops (the socket is then
// closed with the connection).
void HandToGrpc(grpc::Server* server, AcceptedConnection& connection);

}  // namespace dolmen::transport
