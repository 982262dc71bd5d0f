#include "aws/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>
#include <vector>

namespace dolmen::aws {
namespace {

std::string Hex(const unsigned char* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 15];
  }
  return out;
}

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &size);
  return std::string(reinterpret_cast<const char*>(out), size);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Undoes percent-encoding ('+' is a space in form-encoded queries); a stray '%' stays itself.
std::string Decode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
        HexValue(text[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
      i += 2;
    } else if (text[i] == '+') {
      out += ' ';
    } else {
      out += text[i];
    }
  }
  return out;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Header values: leading and trailing spaces removed, runs of spaces folded to one.
std::string TrimFold(std::string_view value) {
  std::string out;
  bool space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

}  // namespace

std::string UriEncode(std::string_view text, bool keep_slash) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      out += kDigits[c >> 4];
      out += kDigits[c & 15];
    }
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return Hex(digest, sizeof(digest));
}

std::string AmzDate(std::chrono::system_clock::time_point time) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y%m%dT%H%M%SZ", &utc);
  return text;
}

std::string CanonicalQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  size_t start = 0;
  while (start <= query.size() && !query.empty()) {
    size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    const std::string_view part = query.substr(start, end - start);
    if (!part.empty()) {
      const size_t eq = part.find('=');
      const std::string name(Decode(part.substr(0, eq)));
      const std::string value = eq == std::string_view::npos ? "" : Decode(part.substr(eq + 1));
      params.emplace_back(UriEncode(name, false), UriEncode(value, false));
    }
    start = end + 1;
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) {
    out += (out.empty() ? "" : "&") + name + "=" + value;
  }
  return out;
}

CanonicalForm CanonicalRequest(std::string_view method, std::string_view path,
                               std::string_view query, const Headers& headers,
                               std::string_view payload_sha256) {
  // Headers of the same name are joined with commas, in the order given (SigV4's rule).
  std::map<std::string, std::string> canonical;
  for (const auto& [name, value] : headers) {
    std::string& joined = canonical[Lower(name)];
    joined += (joined.empty() ? "" : ",") + TrimFold(value);
  }
  CanonicalForm form;
  std::string header_lines;
  for (const auto& [name, value] : canonical) {
    header_lines += name + ":" + value + "\n";
    form.signed_headers += (form.signed_headers.empty() ? "" : ";") + name;
  }
  // AWS services other than S3 encode each path segment twice; our paths are plain ("/").
  const std::string canonical_path =
      path.empty() ? "/" : UriEncode(UriEncode(Decode(path), true), true);
  form.request = std::string(method) + "\n" + canonical_path + "\n" + CanonicalQuery(query) + "\n" +
                 header_lines + "\n" + form.signed_headers + "\n" + std::string(payload_sha256);
  return form;
}

std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request) {
  return "AWS4-HMAC-SHA256\n" + std::string(amz_date) + "\n" + std::string(scope) + "\n" +
         Sha256Hex(canonical_request);
}

std::string SigningKey(std::string_view secret, std::string_view date, std::string_view region,
                       std::string_view service) {
  const std::string date_key = Hmac("AWS4" + std::string(secret), date);
  const std::string region_key = Hmac(date_key, region);
  const std::string service_key = Hmac(region_key, service);
  return Hmac(service_key, "aws4_request");
}

std::string Signature(std::string_view signing_key, std::string_view string_to_sign) {
  const std::string mac = Hmac(signing_key, string_to_sign);
  return Hex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size());
}

Status SignV4(HttpRequest* request, const Credentials& credentials, std::string_view region,
              std::string_view service, std::chrono::system_clock::time_point now) {
  if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
    return InvalidArgument("cannot sign an AWS request: no access key id or secret access key");
  }
  ASSIGN_OR_RETURN(UrlParts url, SplitUrl(request->url));
  const std::string amz_date = AmzDate(now);
  const std::string date = amz_date.substr(0, 8);
  request->headers.emplace_back("Host", url.host);
  request->headers.emplace_back("X-Amz-Date", amz_date);
  if (!credentials.session_token.empty()) {
    request->headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  const CanonicalForm form = CanonicalRequest(request->method, url.path, url.query,
                                              request->headers, Sha256Hex(request->body));
  const std::string scope =
      date + "/" + std::string(region) + "/" + std::string(service) + "/aws4_request";
  const std::string signature =
      Signature(SigningKey(credentials.secret_access_key, date, region, service),
                StringToSign(amz_date, scope, form.request));
  request->headers.emplace_back(
      "Authorization", "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/" + scope +
                           ", SignedHeaders=" + form.signed_headers + ", Signature=" + signature);
  return OkStatus();
}

}  // namespace dolmen::aws
