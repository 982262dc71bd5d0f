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

// Client URLs. A unix URL's socket path is everything after "unix://" ("unix:///tmp/s.sock"
// is /tmp/s.sock; "unix://localhost:2379" is the file "localhost:2379").
Result<Url> ParseUrl(const std::string& s);
Result<std::vector<Url>> ParseUrls(const std::string& comma_separated);

// Peer URLs (--listen-peer-urls, --initial-advertise-peer-urls, --initial-cluster), as etcd 3.4
// takes them: unix and unixs URLs too must have the form scheme://host:port without a path, and
// the socket is the file "host:port" in the working directory (unix:///tmp/x is refused, as
// etcd refuses it). The transport dials what it can: https and unixs need TLS.
Result<Url> ParsePeerUrl(const std::string& s);
Result<std::vector<Url>> ParsePeerUrls(const std::string& comma_separated);
std::vector<std::string> UrlTexts(const std::vector<Url>& urls);

}  // namespace dolmen::embed
