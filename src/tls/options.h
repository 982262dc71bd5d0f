// What a TLS endpoint is configured with: etcd's TLS flags, for one side (client port or peer
// port). Plain data; context.h turns it into an OpenSSL context and keeps it current.
#pragma once

#include <string>
#include <vector>

namespace dolmen::tls {

struct Options {
  std::string cert_file;          // --cert-file / --peer-cert-file (PEM, leaf first)
  std::string key_file;           // --key-file / --peer-key-file (PEM)
  std::string trusted_ca_file;    // --trusted-ca-file: set => client certificates required
  std::string crl_file;           // --client-crl-file / --peer-crl-file
  bool client_cert_auth = false;  // --client-cert-auth / --peer-client-cert-auth
  // Go names (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ...) as --cipher-suites takes them; empty:
  // OpenSSL's defaults. They apply to TLS 1.2; TLS 1.3's suites are fixed, as in Go.
  std::vector<std::string> cipher_suites;
  std::string min_version = "TLS1.2";  // --tls-min-version: TLS1.2 or TLS1.3
  std::string max_version;             // --tls-max-version: "" (highest), TLS1.2 or TLS1.3
  // Peer side only: the verified leaf's CN must be this, or it must name this host (SAN).
  std::string allowed_cn;        // --peer-cert-allowed-cn
  std::string allowed_hostname;  // --peer-cert-allowed-hostname
  // Peer side only: the pair presented when dialing (etcd 3.5's --peer-client-cert-file and
  // --peer-client-key-file, e.g. a clientAuth-only certificate beside a serverAuth-only one);
  // empty: cert_file and key_file, as etcd 3.4.
  std::string client_cert_file;
  std::string client_key_file;

  bool empty() const { return cert_file.empty() && key_file.empty(); }
  // These options as a dialing context takes them: the client pair, if given, in place of the
  // server's.
  Options Dialing() const {
    Options o = *this;
    if (!client_cert_file.empty()) {
      o.cert_file = client_cert_file;
      o.key_file = client_key_file;
    }
    return o;
  }
  // Whether a connecting side must present a certificate that verifies.
  bool RequiresClientCert() const { return client_cert_auth || !trusted_ca_file.empty(); }
};

}  // namespace dolmen::tls
