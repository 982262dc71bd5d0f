#include "transport/grpc_handoff.h"

#include <fcntl.h>
#include <grpcpp/server_posix.h>

namespace dolmen::transport {

void HandToGrpc(grpc::Server* server, int fd) {
  // gRPC's I/O expects a non-blocking socket: a blocking read would hold up its poller thread.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  grpc::AddInsecureChannelFromFd(server, fd);
}

void HandToGrpc(grpc::Server* server, AcceptedConnection& connection) {
  const int fd = connection.Release();
  if (fd >= 0) HandToGrpc(server, fd);
}

}  // namespace dolmen::transport
