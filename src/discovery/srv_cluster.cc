#include "discovery/srv_cluster.h"

#include <map>

namespace dolmen::discovery {
namespace {

std::string WithoutTrailingDot(const std::string& host) {
  return !host.empty() && host.back() == '.' ? host.substr(0, host.size() - 1) : host;
}

// "host:port", bracketing an IPv6 literal (Go's net.JoinHostPort).
std::string JoinHostPort(const std::string& host, const std::string& port) {
  return host.find(':') != std::string::npos ? "[" + host + "]:" + port : host + ":" + port;
}

}  // namespace

std::string SrvService(const std::string& base, const std::string& service_name, bool secure) {
  std::string service = secure ? base + "-ssl" : base;
  return service_name.empty() ? service : service + "-" + service_name;
}

Result<std::vector<std::string>> GetSrvCluster(const std::string& scheme,
                                               const std::string& service, const std::string& name,
                                               const std::string& domain,
                                               const std::vector<PeerUrl>& advertised,
                                               const SrvResolver& resolver) {
  // The member's own addresses, resolved: an SRV target names a host, the flag may give an IP.
  std::map<std::string, const PeerUrl*> self_by_addr;
  for (const PeerUrl& url : advertised) {
    ASSIGN_OR_RETURN(std::string addr, resolver.resolve_tcp(url.host, url.port));
    self_by_addr[addr] = &url;
  }
  auto records = resolver.lookup_srv(service, "tcp", domain);
  if (!records.ok()) {
    return Status(records.status().code(), "error querying DNS SRV records for _" + service + " " +
                                               records.status().message());
  }
  std::vector<std::string> entries;
  Status last_error = NotFound("no SRV records");
  int temp_name = 0;
  for (const SrvRecord& record : *records) {
    const std::string port = std::to_string(record.port);
    // Resolved the same way as the advertised URLs, so equal addresses mean this member.
    auto addr = resolver.resolve_tcp(record.target, port);
    if (!addr.ok()) {
      last_error = addr.status();
      continue;
    }
    auto self = self_by_addr.find(*addr);
    const std::string url = scheme + "://" + JoinHostPort(WithoutTrailingDot(record.target), port);
    if (self != self_by_addr.end() && self->second->scheme != scheme) {
      last_error = InvalidArgument("bootstrap at " + url + " from DNS for " + service +
                                   " has scheme mismatch with expected peer " + self->second->text);
      continue;
    }
    const std::string member = self != self_by_addr.end() ? name : std::to_string(temp_name++);
    entries.push_back(member + "=" + url);
  }
  if (entries.empty()) {
    return Status(last_error.code(),
                  "error querying DNS SRV records for _" + service + " " + last_error.message());
  }
  return entries;
}

Result<std::vector<std::string>> DiscoverSrvCluster(
    const SrvQuery& query, const SrvResolver& resolver,
    const std::function<void(const std::string&)>& log) {
  std::vector<std::string> entries;
  std::vector<Status> errors;
  // https first, as etcd: the order of the entries is the order of --initial-cluster.
  for (bool secure : {true, false}) {
    auto found = GetSrvCluster(secure ? "https" : "http",
                               SrvService("etcd-server", query.service_name, secure), query.name,
                               query.domain, query.advertised, resolver);
    if (!found.ok()) {
      errors.push_back(found.status());
      continue;
    }
    entries.insert(entries.end(), found->begin(), found->end());
  }
  if (entries.empty()) {
    std::string message;
    for (const Status& e : errors) message += (message.empty() ? "" : "; ") + e.message();
    // Retry-worthy unless every failure was a refusal of the configuration.
    Code code = Code::kInvalidArgument;
    for (const Status& e : errors) {
      if (e.code() != Code::kInvalidArgument) code = e.code();
    }
    return Status(code, message);
  }
  bool self_found = false;
  for (const std::string& entry : entries) {
    log("got bootstrap from DNS for etcd-server at " + entry);
    if (entry.compare(0, query.name.size() + 1, query.name + "=") == 0) self_found = true;
  }
  if (!self_found) {
    return NotFound("cannot find local etcd member \"" + query.name + "\" in SRV records");
  }
  return entries;
}

}  // namespace dolmen::discovery
