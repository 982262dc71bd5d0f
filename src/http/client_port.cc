#include "http/client_port.h"

#include "log/log.h"

namespace dolmen::http {
namespace {

// etcd's addCORSHeader, for one allowed origin or "*".
void AddCorsHeaders(const std::string& origin, Response* r) {
  r->headers.emplace_back("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE");
  r->headers.emplace_back("Access-Control-Allow-Origin", origin);
  r->headers.emplace_back("Access-Control-Allow-Headers", "accept, content-type, authorization");
}

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

std::string GatewayPath(const std::string& path) {
  for (const char* old_prefix : {"/v3beta/", "/v3alpha/"}) {
    if (StartsWith(path, old_prefix)) return "/v3/" + path.substr(std::string(old_prefix).size());
  }
  return path;
}

Handler MakeClientPortHandler(Handler endpoints, Gateway* gateway, AccessPolicy policy, bool tls) {
  return [endpoints = std::move(endpoints), gateway, policy = std::move(policy),
          tls](const Request& original) {
    if (!tls) {
      const std::string host = HostOfHeader(original.Header("host"));
      if (!policy.HostAllowed(host)) {
        log::Warn("rejecting HTTP request to prevent DNS rebinding attacks", {{"host", host}});
        return Response::Error(421, HostRefusedText(host));
      }
    }
    Response r;
    if (original.method == "OPTIONS") {
      r.status = 200;  // a CORS preflight, answered by the access controller itself
    } else if (gateway != nullptr) {
      const std::string path = GatewayPath(original.path);
      if (StartsWith(path, "/v3/")) {
        r = gateway->Serve(original, path);
      } else if (path == "/v3") {
        r.status = 301;  // Go's ServeMux sends a subtree's root without its slash there
        r.headers = {{"Location", "/v3/"}};
      } else {
        r = endpoints(original);
      }
    } else {
      r = endpoints(original);
    }
    // The headers go on every answer but a refused host's, as etcd writes them before it serves.
    if (policy.OriginAllowed("*")) {
      AddCorsHeaders("*", &r);
    } else if (const std::string origin = original.Header("origin"); policy.OriginAllowed(origin)) {
      AddCorsHeaders(origin, &r);
    }
    return r;
  };
}

}  // namespace dolmen::http
