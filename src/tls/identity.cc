#include "tls/identity.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>
#include <vector>

namespace dolmen::tls {
namespace {

struct Sans {
  std::vector<std::string> ips;  // as text
  std::vector<std::string> dns;
};

std::string IpText(const ASN1_OCTET_STRING* ip) {
  char text[INET6_ADDRSTRLEN] = {};
  const int length = ASN1_STRING_length(ip);
  const unsigned char* data = ASN1_STRING_get0_data(ip);
  if (length == 4) ::inet_ntop(AF_INET, data, text, sizeof(text));
  if (length == 16) ::inet_ntop(AF_INET6, data, text, sizeof(text));
  return text;
}

Sans SansOf(X509* cert) {
  Sans out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_IPADD) out.ips.push_back(IpText(name->d.iPAddress));
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* dns = name->d.dNSName;
      out.dns.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                           static_cast<size_t>(ASN1_STRING_length(dns)));
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

std::string CommonName(X509* cert) {
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
  return cn;
}

std::string Quoted(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const std::string& item : items) out += (out.size() > 1 ? " \"" : "\"") + item + "\"";
  return out + "]";
}

// The name the resolver gives `ip` (its PTR record or /etc/hosts), or "".
std::string ReverseLookup(const std::string& ip) {
  sockaddr_storage addr{};
  socklen_t length = 0;
  auto* in4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (::inet_pton(AF_INET, ip.c_str(), &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    length = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, ip.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    length = sizeof(sockaddr_in6);
  } else {
    return "";
  }
  char host[NI_MAXHOST] = {};
  if (::getnameinfo(reinterpret_cast<sockaddr*>(&addr), length, host, sizeof(host), nullptr, 0,
                    NI_NAMEREQD) != 0) {
    return "";
  }
  std::string name = host;
  if (!name.empty() && name.back() == '.') name.pop_back();
  return name;
}

bool ResolvesTo(const std::string& name, const std::string& ip) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(name.c_str(), nullptr, &hints, &found) != 0) return false;
  bool match = false;
  for (addrinfo* a = found; a != nullptr && !match; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* where =
        a->ai_family == AF_INET
            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
            : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
    match = ::inet_ntop(a->ai_family, where, text, sizeof(text)) != nullptr && ip == text;
  }
  ::freeaddrinfo(found);
  return match;
}

}  // namespace

bool IsIpAddress(const std::string& host) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

bool NamesHost(X509* cert, const std::string& host) {
  if (IsIpAddress(host)) return X509_check_ip_asc(cert, host.c_str(), 0) == 1;
  return X509_check_host(cert, host.data(), host.size(), X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
                         nullptr) == 1;
}

void ExpectServerHost(SSL* ssl, const std::string& host) {
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
  if (IsIpAddress(host)) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
    SSL_set_tlsext_host_name(ssl, host.c_str());
  }
}

Status CheckAllowedIdentity(X509* cert, const std::string& allowed_cn,
                            const std::string& allowed_hostname) {
  if (!allowed_cn.empty() && CommonName(cert) != allowed_cn) {
    return Status(Code::kFailedPrecondition, "certificate CN \"" + CommonName(cert) +
                                                 "\" is not the allowed CN \"" + allowed_cn +
                                                 "\" (--peer-cert-allowed-cn)");
  }
  if (!allowed_hostname.empty() && !NamesHost(cert, allowed_hostname)) {
    const Sans sans = SansOf(cert);
    std::vector<std::string> all = sans.ips;
    all.insert(all.end(), sans.dns.begin(), sans.dns.end());
    return Status(Code::kFailedPrecondition,
                  "certificate SANs " + Quoted(all) + " do not name the allowed host \"" +
                      allowed_hostname + "\" (--peer-cert-allowed-hostname)");
  }
  return OkStatus();
}

Status CheckSanCoversAddress(X509* cert, const std::string& ip) {
  const Sans sans = SansOf(cert);
  if (sans.ips.empty() && sans.dns.empty()) return OkStatus();
  if (!sans.ips.empty()) {
    if (X509_check_ip_asc(cert, ip.c_str(), 0) == 1) return OkStatus();
    if (sans.dns.empty()) {
      std::string list;
      for (const std::string& s : sans.ips) list += (list.empty() ? "" : ", ") + s;
      return Status(Code::kFailedPrecondition,
                    "certificate is valid for " + list + ", not " + ip +
                        " (the address the connection comes from; etcd's SAN check)");
    }
  }
  const std::string reverse = ReverseLookup(ip);
  for (const std::string& name : sans.dns) {
    if (!reverse.empty() && name.starts_with("*.") &&
        reverse.ends_with(std::string_view(name).substr(1))) {
      return OkStatus();
    }
    if (!reverse.empty() && name == reverse) return OkStatus();
  }
  for (const std::string& name : sans.dns) {
    if (!name.starts_with("*.") && ResolvesTo(name, ip)) return OkStatus();
  }
  return Status(Code::kFailedPrecondition,
                "\"" + ip + "\" does not match any of DNSNames " + Quoted(sans.dns) +
                    " (the address the connection comes from; etcd's SAN check)");
}

}  // namespace dolmen::tls
