#include "http/access_policy.h"

namespace dolmen::http {
namespace {

bool AllowsAll(const std::set<std::string>& list) { return list.empty() || list.count("*") > 0; }

}  // namespace

bool AccessPolicy::OriginAllowed(const std::string& origin) const {
  return AllowsAll(cors) || cors.count(origin) > 0;
}

bool AccessPolicy::HostAllowed(const std::string& host) const {
  return AllowsAll(host_whitelist) || host_whitelist.count(host) > 0;
}

std::string HostOfHeader(const std::string& host_header) {
  // Go's SplitHostPort: "[v6]:port" or "host:port" with exactly one colon; anything else fails
  // and etcd then uses the header whole.
  if (!host_header.empty() && host_header.front() == '[') {
    const size_t close = host_header.find(']');
    if (close != std::string::npos && close + 1 < host_header.size() &&
        host_header[close + 1] == ':' && host_header.find(':', close + 2) == std::string::npos) {
      return host_header.substr(1, close - 1);
    }
    return host_header;
  }
  const size_t colon = host_header.find(':');
  if (colon == std::string::npos || host_header.find(':', colon + 1) != std::string::npos) {
    return host_header;
  }
  return host_header.substr(0, colon);
}

std::string HostRefusedText(const std::string& host) {
  // The same words as etcd's, so an operator's search finds the explanation.
  return "\netcd received your request, but the Host header was unrecognized.\n\n"
         "To fix this, choose one of the following options:\n"
         "- Enable TLS, then any HTTPS request will be allowed.\n"
         "- Add the hostname you want to use to the whitelist in settings.\n"
         "  - e.g. etcd --host-whitelist \"" +
         host +
         "\"\n\n"
         "This requirement has been added to help prevent \"DNS Rebinding\" attacks "
         "(CVE-2018-5702).\n";
}

}  // namespace dolmen::http
