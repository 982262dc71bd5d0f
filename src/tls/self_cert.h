// Auto-TLS (--auto-tls, --peer-auto-tls): a self-signed certificate and key in a directory
// (<data-dir>/fixtures/client or fixtures/peer, as etcd), reused on restart and renewed in
// place when little of its validity is left (etcd reuses the files unchecked, so its member
// fails a year later). Such a certificate encrypts but authenticates nobody: no client can
// verify it, so clients skip verification.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"

namespace dolmen::tls {

struct SelfCertFiles {
  std::string cert_file;  // <dir>/cert.pem
  std::string key_file;   // <dir>/key.pem (mode 0600)
};

// A certificate is renewed once less than this share of its validity is left.
inline constexpr double kRenewWhenLeft = 0.10;
// The longest --self-signed-cert-validity, in years. X.509 dates end in 9999 and etcd's own
// arithmetic (a time.Duration) wraps past 292 years; no use needs more than this, so a larger
// value is taken for a typo and refused (SelfCertValidityTooLarge says so).
inline constexpr uint64_t kMaxSelfCertValidityYears = 100;
std::string SelfCertValidityTooLarge(uint64_t years);

// Makes sure <dir> holds a usable self-signed certificate for `hosts` (each an IP address, which
// becomes an IP SAN, or a name, a DNS SAN; duplicates ignored), valid `validity_years` years:
// keeps the existing pair unless it is unreadable, mismatched or within kRenewWhenLeft of its
// end, else writes a new one (ECDSA P-256, subject O=dolmen, serverAuth and clientAuth; files
// replaced by rename). `log` hears what was done. kInvalidArgument unless 1 <= validity_years <=
// kMaxSelfCertValidityYears.
Result<SelfCertFiles> EnsureSelfCert(const std::string& dir, const std::vector<std::string>& hosts,
                                     int validity_years,
                                     const std::function<void(const std::string&)>& log);

}  // namespace dolmen::tls
