// DNS SRV bootstrap (--discovery-srv, --discovery-srv-name) with etcd's rules: which records are
// asked for, how a member finds itself among their targets, what the other members are called,
// and the errors etcd gives. Pure logic over an injected resolver (srv_lookup.h is the real one),
// so every rule is unit-tested without DNS.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "discovery/srv_answer.h"

namespace dolmen::discovery {

struct SrvResolver {
  // The records of _<service>._<proto>.<domain>, ordered (LookupSrv).
  std::function<Result<std::vector<SrvRecord>>(const std::string& service, const std::string& proto,
                                               const std::string& domain)>
      lookup_srv;
  // "ip:port" for host and port (ResolveTcpAddr); host is bracketed for IPv6.
  std::function<Result<std::string>(const std::string& host, const std::string& port)> resolve_tcp;
};

// One of the member's --initial-advertise-peer-urls.
struct PeerUrl {
  std::string scheme;  // "http", "https"
  std::string host;    // as in the URL; bracketed for IPv6
  std::string port;
  std::string text;  // the URL as given, for messages
};

// etcd's service names: "etcd-server" / "etcd-server-ssl" (or etcd-client...) plus
// "-<service_name>" when --discovery-srv-name is given.
std::string SrvService(const std::string& base, const std::string& service_name, bool secure);

// etcd's srv.GetCluster for one service: each record is "<name>=<scheme>://<target>:<port>",
// the target without its trailing dot. A record whose target:port resolves to the same
// "ip:port" as one of `advertised` is this member and gets `name`; the others get "0", "1", ...
// in record order. Errors are etcd's ("error querying DNS SRV records for _<service> ...",
// "bootstrap at ... has scheme mismatch with expected peer ...").
Result<std::vector<std::string>> GetSrvCluster(const std::string& scheme,
                                               const std::string& service, const std::string& name,
                                               const std::string& domain,
                                               const std::vector<PeerUrl>& advertised,
                                               const SrvResolver& resolver);

struct SrvQuery {
  std::string domain;               // --discovery-srv
  std::string service_name;         // --discovery-srv-name
  std::string name;                 // --name
  std::vector<PeerUrl> advertised;  // --initial-advertise-peer-urls
};

// The initial cluster as etcd 3.5 finds it (GetDNSClusterNames and PeerURLsMapAndToken): the
// entries of _etcd-server-ssl (https peer URLs, served with the --peer-* TLS flags) and of
// _etcd-server (http) together (etcd 3.4 used only the first, a bug 3.5 fixed); an error only
// when neither gave an entry (both errors, joined by "; "), or when this member is not among
// them: `cannot find local etcd member "<name>" in SRV records`.
// `log` gets etcd's "got bootstrap from DNS for etcd-server at <entry>" lines.
Result<std::vector<std::string>> DiscoverSrvCluster(
    const SrvQuery& query, const SrvResolver& resolver,
    const std::function<void(const std::string&)>& log);

}  // namespace dolmen::discovery
