// Who a verified certificate names, checked as etcd checks its peers (pkg/transport/listener.go,
// listener_tls.go): --peer-cert-allowed-cn / --peer-cert-allowed-hostname, and the SANs of a
// connecting peer's certificate against the address it connects from.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string>

#include "base/status.h"

namespace dolmen::tls {

// Whether `host` is an IPv4 or IPv6 address (no brackets).
bool IsIpAddress(const std::string& host);

// Whether `cert` names `host` in its SANs: an IP SAN for an address, a DNS SAN (wildcards
// allowed) for a name; the subject CN is never used (as Go's VerifyHostname).
bool NamesHost(X509* cert, const std::string& host);

// Before a dialing handshake on `ssl`: the server's certificate must name `host` (an IP SAN for
// an address; a DNS SAN, also sent as SNI, for a name), never its subject CN.
void ExpectServerHost(SSL* ssl, const std::string& host);

// --peer-cert-allowed-cn: the CN must equal `allowed_cn`; --peer-cert-allowed-hostname: the
// SANs must name `allowed_hostname`. At most one is set (tls::Validate); neither: OK. The error
// says what the certificate has and what was allowed.
Status CheckAllowedIdentity(X509* cert, const std::string& allowed_cn,
                            const std::string& allowed_hostname);

// etcd's check of a connecting peer's certificate against its remote address `ip`: a
// certificate without IP or DNS SANs passes; with IP SANs, one must be `ip`; else a DNS SAN must
// match the reverse lookup of `ip` (wildcards allowed) or resolve to `ip`. Blocks on DNS.
Status CheckSanCoversAddress(X509* cert, const std::string& ip);

}  // namespace dolmen::tls
