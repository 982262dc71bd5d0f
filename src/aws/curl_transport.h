// HttpTransport over libcurl (Debian libcurl4-openssl-dev): one easy handle per exchange, the
// request's connect and total timeouts applied, no redirects followed, no proxy from the
// environment for link-local IMDS (curl honours NO_PROXY as usual). Thread-safe: each Send
// owns its handle; curl_global_init runs once.
#pragma once

#include "aws/http.h"

namespace dolmen::aws {

class CurlTransport final : public HttpTransport {
 public:
  CurlTransport();
  Result<HttpResponse> Send(const HttpRequest& request) override;
};

}  // namespace dolmen::aws
