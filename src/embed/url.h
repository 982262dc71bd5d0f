// URL lists as etcd's flags take them ("http://10.0.0.1:2379,https://host:2379"), with etcd's
// validation messages.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace dolmen::embed {

struct Url {
  std::string scheme;  // http, https, unix, unixs
  std::string host;    // host or IP (without brackets); for unix: the socket path
  std::string port;
  std::string text;  // as given, for display and hashing

  bool secure() const { return scheme == "https" || scheme == "unixs"; }
  // "host:port" for TCP (IPv6 hosts bracketed), "unix:path" for unix sockets.
  std::string ListenAddress() const;
};

Result<Url> ParseUrl(const std::string& s);
Result<std::vector<Url>> ParseUrls(const std::string& comma_separated);
std::vector<std::string> UrlTexts(const std::vector<Url>& urls);

}  // namespace dolmen::embed
