#include "embed/url.h"

namespace dolmen::embed {
namespace {

// "host:port" (an IPv6 host in brackets), optionally followed by one "/", as etcd checks the
// address of an http URL. `s` is the whole URL, for the messages.
Status SplitHostPort(std::string rest, const std::string& s, std::string* host, std::string* port) {
  size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    if (slash + 1 < rest.size() || slash != rest.size() - 1) {
      return InvalidArgument("URL must not contain a path: " + s);
    }
    rest = rest.substr(0, slash);
  }
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return InvalidArgument("URL address does not have the form \"host:port\": " + s);
    }
    *host = rest.substr(1, close - 1);
    *port = rest.substr(close + 2);
  } else {
    size_t colon = rest.rfind(':');
    if (colon == std::string::npos || rest.find(':') != colon) {
      return InvalidArgument("URL address does not have the form \"host:port\": " + s);
    }
    *host = rest.substr(0, colon);
    *port = rest.substr(colon + 1);
  }
  if (port->empty() || port->size() > 5 ||
      port->find_first_not_of("0123456789") != std::string::npos || std::stoul(*port) > 65535) {
    return InvalidArgument("URL address does not have a valid port: " + s);
  }
  return OkStatus();
}

}  // namespace

std::string Url::ListenAddress() const {
  if (scheme == "unix" || scheme == "unixs") return "unix:" + host;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + port;
  return host + ":" + port;
}

Result<Url> ParseUrl(const std::string& s) {
  Url u;
  u.text = s;
  size_t sep = s.find("://");
  if (sep == std::string::npos) {
    return InvalidArgument("URL scheme must be http, https, unix, or unixs: " + s);
  }
  u.scheme = s.substr(0, sep);
  if (u.scheme != "http" && u.scheme != "https" && u.scheme != "unix" && u.scheme != "unixs") {
    return InvalidArgument("URL scheme must be http, https, unix, or unixs: " + s);
  }
  std::string rest = s.substr(sep + 3);
  if (u.scheme == "unix" || u.scheme == "unixs") {
    if (rest.empty()) return InvalidArgument("URL has no socket path: " + s);
    u.host = rest;
    return u;
  }
  RETURN_IF_ERROR(SplitHostPort(rest, s, &u.host, &u.port));
  return u;
}

Result<Url> ParsePeerUrl(const std::string& s) {
  ASSIGN_OR_RETURN(Url u, ParseUrl(s));
  if (u.scheme != "unix" && u.scheme != "unixs") return u;
  const Status no_host_port =
      InvalidArgument("URL address does not have the form \"host:port\": " + s);
  // etcd checks the host part before the path: unix:///tmp/x has no host.
  if (u.host.front() == '/') return no_host_port;
  std::string host, port;
  RETURN_IF_ERROR(SplitHostPort(u.host, s, &host, &port));
  if (host.empty()) return no_host_port;
  if (u.host.back() == '/') u.host.pop_back();  // the socket is "host:port"
  return u;
}

namespace {

Result<std::vector<Url>> ParseList(const std::string& comma_separated,
                                   Result<Url> (*parse)(const std::string&)) {
  std::vector<Url> out;
  size_t start = 0;
  while (start <= comma_separated.size()) {
    size_t comma = comma_separated.find(',', start);
    std::string part = comma_separated.substr(
        start, comma == std::string::npos ? std::string::npos : comma - start);
    ASSIGN_OR_RETURN(Url u, parse(part));
    out.push_back(std::move(u));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

Result<std::vector<Url>> ParseUrls(const std::string& comma_separated) {
  return ParseList(comma_separated, ParseUrl);
}

Result<std::vector<Url>> ParsePeerUrls(const std::string& comma_separated) {
  return ParseList(comma_separated, ParsePeerUrl);
}

std::vector<std::string> UrlTexts(const std::vector<Url>& urls) {
  std::vector<std::string> out;
  for (const auto& u : urls) out.push_back(u.text);
  return out;
}

}  // namespace dolmen::embed
