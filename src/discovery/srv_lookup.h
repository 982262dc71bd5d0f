// The system's resolver, as etcd's Go resolver uses it: SRV queries through libresolv
// (res_nsearch: /etc/resolv.conf's name servers, timeouts, attempts and options) and host names
// through getaddrinfo (/etc/hosts, then DNS, as nsswitch.conf says). Blocking calls; used once,
// before the member starts.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "discovery/srv_answer.h"

namespace dolmen::discovery {

// The SRV records of _<service>._<proto>.<domain>, in RFC 2782 order (OrderSrvRecords). Errors
// read as Go's: "lookup _etcd-server._tcp.example.com on 127.0.0.1:53: no such host".
Result<std::vector<SrvRecord>> LookupSrv(const std::string& service, const std::string& proto,
                                         const std::string& domain);

// "ip:port" for a TCP address as Go's net.ResolveTCPAddr gives it: an IP literal as is, a name
// resolved to its first IPv4 address (its first IPv6 one when the host was bracketed, e.g.
// "[::1]"; IPv6 results are bracketed).
Result<std::string> ResolveTcpAddr(const std::string& host, const std::string& port);

}  // namespace dolmen::discovery
