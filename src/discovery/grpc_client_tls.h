// gRPC channel credentials for dialing an etcd-compatible cluster's client URLs over TLS: the
// v3 discovery client (--discovery-cacert/-cert/-key/-insecure-skip-tls-verify) and a member
// under --discovery-aws-asg asking the group's running cluster to add it (its own client TLS
// flags). One place for the files, the skip-verify mode and their error messages.
#pragma once

#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

#include "base/status.h"

namespace dolmen::discovery {

struct GrpcClientTls {
  std::string ca_file;    // roots to check the server with; empty: the system's
  std::string cert_file;  // a client certificate to present, with key_file; both or neither
  std::string key_file;
  bool skip_verify = false;  // encrypt without checking the server (auto-TLS, self-signed)
  // The flags the files came from, for the messages.
  std::string ca_flag, cert_flag, key_flag;
};

// Reads the files now: a missing or empty file, or a certificate without its key, is an
// InvalidArgument naming the flag.
Result<std::shared_ptr<grpc::ChannelCredentials>> NewGrpcClientCredentials(
    const GrpcClientTls& tls);

}  // namespace dolmen::discovery
