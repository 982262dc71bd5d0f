#pragma once

// What answers HTTP/1 on a client URL, in etcd 3.4's order (embed/serve.go): its
// accessController first (CORS headers on every answer, OPTIONS answered 200 at once, the
// /v3beta/ prefix rewritten to /v3/), then the JSON gateway under /v3/, then the endpoints
// (/health, /version, /metrics ...). Before all of them, on plaintext connections, the
// --host-whitelist check (access_policy.h).

#include "http/access_policy.h"
#include "http/gateway.h"
#include "http/http_server.h"

namespace dolmen::http {

// `gateway` may be null (--enable-grpc-gateway=false): /v3/ paths then fall through to the
// endpoints, which answer 404. Both must outlive the handler. `tls`: the handler serves
// connections that arrived over TLS (the host check does not apply to them).
Handler MakeClientPortHandler(Handler endpoints, Gateway* gateway, AccessPolicy policy, bool tls);

// The path the gateway serves for `path`: /v3beta/x and /v3alpha/x become /v3/x (etcd 3.4
// rewrites /v3beta/ only; /v3alpha/ is etcd 3.2's prefix, which 3.3 still served and old
// clients still use). Other paths are returned as they are.
std::string GatewayPath(const std::string& path);

}  // namespace dolmen::http
