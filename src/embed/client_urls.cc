#include "embed/client_urls.h"

#include <set>

namespace dolmen::embed {

Result<std::vector<Url>> ParseClientHttpUrls(const std::string& text,
                                             const std::vector<Url>& client_urls) {
  if (text.empty()) return std::vector<Url>{};
  ASSIGN_OR_RETURN(std::vector<Url> parsed, ParseUrls(text));
  std::set<std::string> grpc_addresses;
  for (const Url& u : client_urls) grpc_addresses.insert(u.ListenAddress());
  std::vector<Url> unique;
  std::set<std::string> seen;
  for (Url& u : parsed) {
    if (!seen.insert(u.text).second) continue;
    // etcd keys its listeners by address, so http:// and https:// on one host:port collide too.
    if (grpc_addresses.contains(u.ListenAddress())) {
      return InvalidArgument(
          "cannot bind both --listen-client-urls and --listen-client-http-urls on the same "
          "url " +
          u.text);
    }
    unique.push_back(std::move(u));
  }
  return unique;
}

std::vector<transport::ClientUrl> ClientListenerUrls(const std::vector<Url>& client_urls,
                                                     const std::vector<Url>& client_http_urls) {
  using transport::ClientTraffic;
  const ClientTraffic client_traffic =
      client_http_urls.empty() ? ClientTraffic::kGrpcAndHttp : ClientTraffic::kGrpcOnly;
  std::vector<transport::ClientUrl> out;
  for (const Url& u : client_urls) {
    out.push_back({u.text, u.ListenAddress(), u.secure(), client_traffic});
  }
  for (const Url& u : client_http_urls) {
    out.push_back({u.text, u.ListenAddress(), u.secure(), ClientTraffic::kHttpOnly});
  }
  return out;
}

const char* TrafficName(transport::ClientTraffic traffic) {
  switch (traffic) {
    case transport::ClientTraffic::kGrpcAndHttp:
      return "grpc+http";
    case transport::ClientTraffic::kGrpcOnly:
      return "grpc";
    case transport::ClientTraffic::kHttpOnly:
      return "http";
  }
  return "grpc+http";
}

}  // namespace dolmen::embed
