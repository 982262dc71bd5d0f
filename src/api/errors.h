// The one table from Dolmen's Status codes to etcd's gRPC status codes and exact messages.
// Clients (etcdctl, clientv3, Kubernetes) compare these strings, so they are facts of the
// protocol, not prose.
#pragma once

#include <grpcpp/support/status.h>

#include "base/status.h"

namespace dolmen::api {

grpc::Status ToGrpcStatus(const Status& status);

// UNIMPLEMENTED, naming the RPC: "dolmen: /etcdserverpb.Lease/LeaseGrant is not implemented yet".
grpc::Status NotImplemented(const std::string& method);

}  // namespace dolmen::api
