// Why a TLS server refuses this side, in words a log can carry.
//
// gRPC reports a server that refused our certificate only as "Endpoint read failed" or
// "Connection reset by peer": under TLS 1.3 the server's verdict on a client's certificate
// arrives after the client's handshake has ended, as an alert on the first read, which gRPC
// does not pass on. A member that cannot join because of its own certificate must say so, so
// the caller of a failed dial asks once more, here, with the same context.
#pragma once

#include <string>

#include "tls/context.h"

namespace dolmen::tls {

// One TCP connection to `host`:`port` (a name or an IP address; every step bounded by
// `timeout_ms`), the handshake with `ctx` (the server's certificate checked against `host`
// as ClientConnection does), then a one-byte read for the server's verdict. Returns why the
// handshake failed: "this member refused the peer's certificate: REASON" or "the peer refused
// this member's certificate (TLS alert: ALERT; the peer's log says why)". Returns "" when TLS
// is not the problem: the server accepted (it answered, or kept silent until the timeout, as
// an HTTP/2 server waiting for the client's preface does) or could not be reached at all.
std::string ProbeTlsRefusal(const SslCtxPtr& ctx, const std::string& host, const std::string& port,
                            int timeout_ms);

}  // namespace dolmen::tls
