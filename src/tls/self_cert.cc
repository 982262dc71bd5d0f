#include "tls/self_cert.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <set>

#include "tls/context.h"
#include "tls/identity.h"

namespace dolmen::tls {
namespace {

constexpr int64_t kSecondsPerYear = 365LL * 24 * 3600;  // as etcd: 365 days a year

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using FilePtr = std::unique_ptr<FILE, decltype([](FILE* f) { std::fclose(f); })>;

// Why the pair in place cannot stay ("" if it can).
std::string WhyRenew(const std::string& cert_file, const std::string& key_file) {
  FilePtr cf(std::fopen(cert_file.c_str(), "r"));
  FilePtr kf(std::fopen(key_file.c_str(), "r"));
  if (!cf || !kf) return "none yet";
  X509Ptr cert(PEM_read_X509(cf.get(), nullptr, nullptr, nullptr));
  KeyPtr key(PEM_read_PrivateKey(kf.get(), nullptr, nullptr, nullptr));
  if (!cert || !key) return "the files in place do not parse";
  if (X509_check_private_key(cert.get(), key.get()) != 1) return "the key does not match";
  int days = 0, seconds = 0;
  if (ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(cert.get()),
                     X509_get0_notAfter(cert.get())) != 1) {
    return "its dates do not parse";
  }
  const int64_t total = days * 86400LL + seconds;
  if (ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(cert.get())) != 1) {
    return "its dates do not parse";
  }
  const int64_t left = days * 86400LL + seconds;
  if (left <= 0) return "it has expired";
  if (static_cast<double>(left) < kRenewWhenLeft * static_cast<double>(total)) {
    return "less than 10% of its validity is left";
  }
  ERR_clear_error();
  return "";
}

Status AddExtension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return Internal("certificate extension " + value + ": " + LastSslError());
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return OkStatus();
}

// Writes `write(FILE*)` to path via a temporary file and a rename, so a reader never sees half.
template <typename Write>
Status WriteFileAtomically(const std::string& path, mode_t mode, Write write) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return Unavailable("cannot write " + tmp);
  ::chmod(tmp.c_str(), mode);
  const bool ok = write(f) == 1;
  if (std::fflush(f) != 0 || ::fsync(fileno(f)) != 0 || std::fclose(f) != 0 || !ok) {
    std::remove(tmp.c_str());
    return Unavailable("cannot write " + tmp + ": " + LastSslError());
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return Unavailable("cannot rename " + tmp);
  return OkStatus();
}

Status Generate(const SelfCertFiles& files, const std::vector<std::string>& hosts,
                int validity_years) {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return Internal("cannot make an ECDSA key: " + LastSslError());
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);  // v3
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_time_adj_ex(X509_getm_notAfter(cert.get()), 0, validity_years * kSecondsPerYear, nullptr);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("dolmen"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  RETURN_IF_ERROR(AddExtension(cert.get(), NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(
      AddExtension(cert.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment"));
  RETURN_IF_ERROR(AddExtension(cert.get(), NID_ext_key_usage, "serverAuth,clientAuth"));
  std::string sans;
  std::set<std::string> seen;
  for (const std::string& host : hosts) {
    if (host.empty() || !seen.insert(host).second) continue;
    sans += (sans.empty() ? "" : ",") + std::string(IsIpAddress(host) ? "IP:" : "DNS:") + host;
  }
  if (!sans.empty()) RETURN_IF_ERROR(AddExtension(cert.get(), NID_subject_alt_name, sans));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    return Internal("cannot sign the certificate: " + LastSslError());
  }
  RETURN_IF_ERROR(WriteFileAtomically(files.key_file, 0600, [&](FILE* f) {
    return PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  }));
  return WriteFileAtomically(files.cert_file, 0644,
                             [&](FILE* f) { return PEM_write_X509(f, cert.get()); });
}

}  // namespace

std::string SelfCertValidityTooLarge(uint64_t years) {
  return "selfSignedCertValidity " + std::to_string(years) + " is too large: at most " +
         std::to_string(kMaxSelfCertValidityYears) + " (years)";
}

Result<SelfCertFiles> EnsureSelfCert(const std::string& dir, const std::vector<std::string>& hosts,
                                     int validity_years,
                                     const std::function<void(const std::string&)>& log) {
  if (validity_years <= 0) {
    return InvalidArgument("selfSignedCertValidity is invalid,it should be greater than 0");
  }
  if (static_cast<uint64_t>(validity_years) > kMaxSelfCertValidityYears) {
    return InvalidArgument(SelfCertValidityTooLarge(static_cast<uint64_t>(validity_years)));
  }
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return Unavailable("cannot create " + dir + ": " + error.message());
  ::chmod(dir.c_str(), 0700);
  SelfCertFiles files{dir + "/cert.pem", dir + "/key.pem"};
  const std::string why = WhyRenew(files.cert_file, files.key_file);
  if (why.empty()) return files;
  RETURN_IF_ERROR(Generate(files, hosts, validity_years));
  if (log) {
    log("auto-TLS: wrote a self-signed certificate valid " + std::to_string(validity_years) +
        " year(s) to " + files.cert_file + " (" + why + ")");
  }
  return files;
}

}  // namespace dolmen::tls
