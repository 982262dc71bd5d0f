#include "aws/http.h"

namespace dolmen::aws {

Result<UrlParts> SplitUrl(const std::string& url) {
  UrlParts parts;
  const size_t colon = url.find("://");
  if (colon == std::string::npos) return InvalidArgument("URL without a scheme: " + url);
  parts.scheme = url.substr(0, colon);
  if (parts.scheme != "http" && parts.scheme != "https") {
    return InvalidArgument("URL with scheme " + parts.scheme + " (only http and https): " + url);
  }
  const size_t host_start = colon + 3;
  size_t path_start = url.find_first_of("/?#", host_start);
  if (path_start == std::string::npos) path_start = url.size();
  parts.host = url.substr(host_start, path_start - host_start);
  if (parts.host.empty() || parts.host.find('@') != std::string::npos) {
    return InvalidArgument("URL without a plain host: " + url);
  }
  if (path_start < url.size() && url[path_start] == '#') {
    return InvalidArgument("URL with a fragment: " + url);
  }
  std::string rest = url.substr(path_start);
  if (rest.find('#') != std::string::npos) return InvalidArgument("URL with a fragment: " + url);
  const size_t q = rest.find('?');
  parts.path = rest.substr(0, q);
  if (parts.path.empty()) parts.path = "/";
  if (q != std::string::npos) parts.query = rest.substr(q + 1);
  return parts;
}

}  // namespace dolmen::aws
