#include "transport/url.h"

#include <charconv>
#include <string_view>

namespace dolmen::transport {

Result<std::string> PeerUrlToTarget(const std::string& url) {
  std::string_view s = url;
  constexpr std::string_view kHttp = "http://";
  if (s.starts_with("https://")) {
    return Unimplemented("peer URL " + url + ": https needs TLS, which the transport lacks yet");
  }
  if (!s.starts_with(kHttp)) {
    return InvalidArgument("peer URL " + url + ": scheme must be http");
  }
  std::string_view hostport = s.substr(kHttp.size());
  if (!hostport.empty() && hostport.back() == '/') hostport.remove_suffix(1);
  size_t colon = hostport.rfind(':');
  size_t bracket = hostport.rfind(']');
  if (colon == std::string_view::npos || (bracket != std::string_view::npos && colon < bracket) ||
      colon == 0) {
    return InvalidArgument("peer URL " + url + ": expected http://host:port");
  }
  std::string_view port = hostport.substr(colon + 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value > 65535 ||
      hostport.find('/') != std::string_view::npos) {
    return InvalidArgument("peer URL " + url + ": expected http://host:port");
  }
  return std::string(hostport);
}

std::string IdHex(uint64_t id) {
  char buf[17];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), id, 16);
  CHECK(ec == std::errc());
  return std::string(buf, end);
}

}  // namespace dolmen::transport
