// Peer URLs to dial targets. Our own small parser: transport may not depend on src/embed, and it
// needs only the scheme and host:port.
#pragma once

#include <string>

#include "base/status.h"

namespace dolmen::transport {

// A peer URL as a target that both gRPC and socket.h understand:
//   "http://host:port"  -> "host:port" (an IPv6 host keeps its brackets);
//   "unix://name:port"  -> "unix:name:port": a unix-domain socket whose path is the URL's host
//                          part, port included, relative to the working directory (what etcd
//                          does with unix peer URLs).
//   "https://host:port" and "unixs://name:port" -> the same, spoken over TLS (DialTarget).
// One trailing "/" is allowed. Anything else (no port, a path such as unix:///abs/path, which
// etcd refuses too, another scheme) is kInvalidArgument, with the URL named.
Result<std::string> PeerUrlToTarget(const std::string& url);

// Where to dial a peer URL and how.
struct DialTarget {
  std::string address;  // as PeerUrlToTarget
  bool tls = false;     // https or unixs
  // The host the server's certificate must name (https only; a unix socket's name is no host,
  // so unixs checks the chain alone).
  std::string host;

  bool operator==(const DialTarget&) const = default;
};
Result<DialTarget> PeerUrlToDialTarget(const std::string& url);

// Member and cluster ids as etcd prints them: lower-case hex without leading zeros.
std::string IdHex(uint64_t id);

}  // namespace dolmen::transport
