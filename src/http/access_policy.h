#pragma once

// Who may use the client port's HTTP side, as etcd 3.4's access controller decides it
// (embed/serve.go, etcdserver/server_access_control.go):
// - --host-whitelist guards plaintext connections against DNS rebinding: a request whose Host
//   header names a host outside the list is answered 421 (a TLS connection is not checked, since
//   a rebound name cannot present the member's certificate);
// - --cors names the origins that get CORS headers: "*" (the default) or an empty list answers
//   every request with "Access-Control-Allow-Origin: *", a list of origins echoes the request's
//   Origin only when it is listed.

#include <set>
#include <string>

namespace dolmen::http {

struct AccessPolicy {
  std::set<std::string> cors{"*"};            // origins, "*" or empty: any
  std::set<std::string> host_whitelist{"*"};  // host names, "*" or empty: any

  bool OriginAllowed(const std::string& origin) const;
  bool HostAllowed(const std::string& host) const;
};

// The host of a Host header: "example.com:2379" -> "example.com", "[::1]:2379" -> "::1"; a
// value without a port is returned whole, as Go's net.SplitHostPort fails on it.
std::string HostOfHeader(const std::string& host_header);

// etcd's answer body to a refused host (its errCVE20185702), naming the host.
std::string HostRefusedText(const std::string& host);

}  // namespace dolmen::http
