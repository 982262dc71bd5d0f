// The client listeners and what each serves: --listen-client-urls, and etcd 3.5's
// --listen-client-http-urls ("List of URLs to listen on for http only client traffic. Enabling
// this flag removes http services from --listen-client-urls."). Without HTTP-only URLs every
// client URL carries gRPC and HTTP/1 (health, metrics, version) side by side, as etcd's cmux
// does; with them, the client URLs carry gRPC only and the HTTP-only URLs HTTP only (etcd's
// embed/serve.go "traffic" grpc / http). docs/http.md, "HTTP-only client URLs".
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "embed/url.h"
#include "transport/client_listener.h"

namespace dolmen::embed {

// --listen-client-http-urls (empty: none). A URL repeated in the list counts once (etcd keeps
// unique URLs); a URL whose address is also one of `client_urls` is refused with etcd's message
// ("cannot bind both --listen-client-urls and --listen-client-http-urls on the same url ..."),
// since one socket cannot be both gRPC-only and HTTP-only.
Result<std::vector<Url>> ParseClientHttpUrls(const std::string& text,
                                             const std::vector<Url>& client_urls);

// Every URL the client listener binds, in flag order: the client URLs first, then the HTTP-only
// ones, each marked with the traffic it carries.
std::vector<transport::ClientUrl> ClientListenerUrls(const std::vector<Url>& client_urls,
                                                     const std::vector<Url>& client_http_urls);

// etcd's name for what a URL carries, for the start-up log: "grpc+http", "grpc" or "http".
const char* TrafficName(transport::ClientTraffic traffic);

}  // namespace dolmen::embed
