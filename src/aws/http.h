// One HTTP exchange as the AWS clients see it, and the interface that carries it. The real
// transport is libcurl (curl_transport.h); unit tests hand in a fake that answers from a script.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace dolmen::aws {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // "http://169.254.169.254/latest/api/token", with any query string
  Headers headers;  // sent as given; SignV4 adds its own
  std::string body;
  // Bounds on the whole exchange: an unreachable endpoint costs at most `timeout`.
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds timeout{5000};
};

struct HttpResponse {
  int status = 0;
  std::string body;
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // A response of any status, or Unavailable when no response came (refused, timed out, reset).
  virtual Result<HttpResponse> Send(const HttpRequest& request) = 0;
};

// The parts of an http(s) URL SigV4 signs. Only what AWS endpoints use: no user info, no
// fragment. InvalidArgument for anything else.
struct UrlParts {
  std::string scheme;
  std::string host;   // with ":port" when the URL has one (the Host header's value)
  std::string path;   // "/" when empty
  std::string query;  // without '?'
};
Result<UrlParts> SplitUrl(const std::string& url);

}  // namespace dolmen::aws
