#include "transport/url.h"

#include <charconv>
#include <string_view>

#include "log/log.h"

namespace dolmen::transport {
namespace {

// "host:port" with a non-empty host and a port in 0..65535; an IPv6 host in brackets.
bool IsHostPort(std::string_view hostport) {
  size_t colon = hostport.rfind(':');
  size_t bracket = hostport.rfind(']');
  if (colon == std::string_view::npos || colon == 0 ||
      (bracket != std::string_view::npos && colon < bracket)) {
    return false;
  }
  std::string_view port = hostport.substr(colon + 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  return ec == std::errc() && end == port.data() + port.size() && value <= 65535;
}

}  // namespace

Result<std::string> PeerUrlToTarget(const std::string& url) {
  ASSIGN_OR_RETURN(DialTarget target, PeerUrlToDialTarget(url));
  return target.address;
}

Result<DialTarget> PeerUrlToDialTarget(const std::string& url) {
  std::string_view s = url;
  size_t sep = s.find("://");
  std::string_view scheme = s.substr(0, sep);
  if (sep == std::string_view::npos ||
      (scheme != "http" && scheme != "unix" && scheme != "https" && scheme != "unixs")) {
    return InvalidArgument("peer URL " + url + ": scheme must be http, https, unix or unixs");
  }
  const bool unix_socket = scheme == "unix" || scheme == "unixs";
  std::string_view hostport = s.substr(sep + 3);
  if (!hostport.empty() && hostport.back() == '/') hostport.remove_suffix(1);
  // In a socket name, '?', '#' and '%' would be read as URI syntax by gRPC's target parser.
  const std::string_view refused = unix_socket ? "/?#%" : "/";
  if (!IsHostPort(hostport) || hostport.find_first_of(refused) != std::string_view::npos) {
    return InvalidArgument("peer URL " + url + ": expected " + std::string(scheme) +
                           "://host:port");
  }
  DialTarget target;
  target.tls = scheme == "https" || scheme == "unixs";
  if (unix_socket) {
    target.address = "unix:" + std::string(hostport);
    return target;
  }
  target.address = std::string(hostport);
  std::string_view host = hostport.substr(0, hostport.rfind(':'));
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (target.tls) target.host = std::string(host);
  return target;
}

std::string IdHex(uint64_t id) { return log::Hex(id); }

}  // namespace dolmen::transport
