// AWS Signature Version 4
// (docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html): canonical
// request -> string to sign -> HMAC with a key derived from the secret, date, region and service.
// Each step is its own function so the unit tests can check each against AWS's published test
// vectors (get-vanilla and friends) and against botocore.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "aws/credentials.h"
#include "aws/http.h"
#include "base/status.h"

namespace dolmen::aws {

// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters (A-Z a-z 0-9 - _ . ~) stay,
// everything else is %XX in upper case; '/' stays only when `keep_slash` (paths).
std::string UriEncode(std::string_view text, bool keep_slash);

std::string Sha256Hex(std::string_view data);

// "20150830T123600Z" for a wall-clock time.
std::string AmzDate(std::chrono::system_clock::time_point time);

// The query string with its parameters sorted by name then value, each name and value
// percent-encoded once (decoding first what was encoded already).
std::string CanonicalQuery(std::string_view query);

// The canonical request: method, path, query, headers (names lower-cased, values trimmed and
// inner spaces folded, sorted), the signed header names, the payload's SHA-256.
struct CanonicalForm {
  std::string request;
  std::string signed_headers;  // "host;x-amz-date"
};
CanonicalForm CanonicalRequest(std::string_view method, std::string_view path,
                               std::string_view query, const Headers& headers,
                               std::string_view payload_sha256);

std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request);

// The signing key: HMAC chain over date (yyyymmdd), region, service, "aws4_request".
std::string SigningKey(std::string_view secret, std::string_view date, std::string_view region,
                       std::string_view service);

// Lower-case hex HMAC-SHA256 of the string to sign.
std::string Signature(std::string_view signing_key, std::string_view string_to_sign);

// Signs `request` in place: adds Host, X-Amz-Date, X-Amz-Security-Token (with a session token)
// and Authorization. Every header already on the request is signed.
Status SignV4(HttpRequest* request, const Credentials& credentials, std::string_view region,
              std::string_view service, std::chrono::system_clock::time_point now);

}  // namespace dolmen::aws
