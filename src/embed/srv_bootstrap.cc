#include "embed/srv_bootstrap.h"

#include <thread>

#include "discovery/srv_cluster.h"
#include "discovery/srv_lookup.h"
#include "discovery/srv_wait.h"
#include "io/posix/posix_file_system.h"
#include "wal/wal.h"

namespace dolmen::embed {
namespace {

discovery::SrvQuery QueryFrom(const Config& config) {
  discovery::SrvQuery query;
  query.domain = config.discovery_srv;
  query.service_name = config.discovery_srv_name;
  query.name = config.name;
  for (const Url& url : config.advertise_peer) {
    const bool v6 = url.host.find(':') != std::string::npos;
    query.advertised.push_back(
        discovery::PeerUrl{url.scheme, v6 ? "[" + url.host + "]" : url.host, url.port, url.text});
  }
  return query;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

}  // namespace

Status BootstrapFromSrv(Config* config, const std::function<void(const std::string&)>& log) {
  if (config->discovery_srv.empty()) return OkStatus();
  if (wal::Wal::Exists(io::PosixFileSystem(), config->data_dir + "/member/wal")) {
    log("data dir " + config->data_dir +
        " is already initialized: --discovery-srv is not needed and SRV records are not asked for");
    return OkStatus();
  }
  const discovery::SrvQuery query = QueryFrom(*config);
  discovery::SrvResolver resolver{discovery::LookupSrv, discovery::ResolveTcpAddr};
  discovery::WaitPolicy policy;
  policy.wait = std::chrono::milliseconds(config->discovery_srv_wait_ms);
  SystemClock clock;
  log("DNS SRV discovery: asking for _" +
      discovery::SrvService("etcd-server", query.service_name, true) + "._tcp." + query.domain +
      " and _" + discovery::SrvService("etcd-server", query.service_name, false) + "._tcp." +
      query.domain + " (waiting up to " + std::to_string(policy.wait.count()) + " ms for them)");
  ASSIGN_OR_RETURN(
      std::vector<std::string> entries,
      discovery::RetryDiscovery(
          [&] { return discovery::DiscoverSrvCluster(query, resolver, log); }, policy, clock,
          [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }, log));
  config->initial_cluster = Join(entries);
  ASSIGN_OR_RETURN(config->initial_members, ParseInitialCluster(config->initial_cluster));
  for (const auto& member : config->initial_members) {
    if (member.name != config->name) continue;
    // The matcher resolved these to the advertised addresses already (etcd checks the same
    // again in VerifyBootstrap); from here on the member is known by them.
    ASSIGN_OR_RETURN(config->advertise_peer, ParsePeerUrls(Join(member.peer_urls)));
  }
  log("DNS SRV discovery: initial cluster " + config->initial_cluster);
  return OkStatus();
}

}  // namespace dolmen::embed
