// Peer URLs ("http://10.0.0.1:2380") to gRPC targets ("10.0.0.1:2380"). Our own small parser:
// transport may not depend on src/embed, and it needs only the scheme and host:port.
#pragma once

#include <string>

#include "base/status.h"

namespace dolmen::transport {

// "http://host:port" -> "host:port" (an IPv6 host keeps its brackets). https is refused until
// TLS arrives; anything else (no port, a path, another scheme) is refused with the URL named.
Result<std::string> PeerUrlToTarget(const std::string& url);

// Member and cluster ids as etcd prints them: lower-case hex without leading zeros.
std::string IdHex(uint64_t id);

}  // namespace dolmen::transport
