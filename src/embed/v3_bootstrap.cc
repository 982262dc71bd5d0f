#include "embed/v3_bootstrap.h"

#include <algorithm>
#include <set>
#include <thread>

#include "discovery/v3_discovery.h"
#include "discovery/v3_grpc_registry.h"
#include "io/posix/posix_file_system.h"
#include "server/member_id.h"
#include "wal/wal.h"

namespace dolmen::embed {
namespace {

constexpr char kConflict[] =
    "multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", "
    "\"discovery-endpoints\" or \"discovery-srv\"";
// etcd's --initial-cluster default as it reads back from a config file: not a choice.
constexpr char kDefaultInitialCluster[] = "default=http://localhost:2380";

void AddDurationMs(FlagSet* f, const std::string& name, const std::string& default_text,
                   const std::string& help, int64_t* target) {
  f->Add(name, default_text, help, [target](const std::string& v) {
    ASSIGN_OR_RETURN(int64_t ms, ParseGoDurationMs(v));
    if (ms < 0) return InvalidArgument("must not be negative");
    *target = ms;
    return OkStatus();
  });
}

std::vector<std::string> SplitEndpoints(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    out.push_back(
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

bool IsBlank(const std::string& s) { return s.find_first_not_of(" \t") == std::string::npos; }

discovery::V3ClientOptions ClientOptions(const Config& c) {
  discovery::V3ClientOptions o;
  o.endpoints = SplitEndpoints(c.discovery_endpoints);
  o.dial_timeout = std::chrono::milliseconds(c.discovery_dial_timeout_ms);
  o.request_timeout = std::chrono::milliseconds(c.discovery_request_timeout_ms);
  o.keepalive_time = std::chrono::milliseconds(c.discovery_keepalive_time_ms);
  o.keepalive_timeout = std::chrono::milliseconds(c.discovery_keepalive_timeout_ms);
  o.insecure_transport = c.discovery_insecure_transport;
  o.insecure_skip_tls_verify = c.discovery_insecure_skip_tls_verify;
  o.cert_file = c.discovery_cert;
  o.key_file = c.discovery_key;
  o.cacert_file = c.discovery_cacert;
  o.user = c.discovery_user;
  o.password = c.discovery_password;
  return o;
}

// etcd's registration value: "name=url" for each advertised peer URL, sorted (URLsMap.String).
std::string SelfRegistration(const Config& c) {
  std::vector<std::string> pairs;
  for (const std::string& url : UrlTexts(c.advertise_peer)) pairs.push_back(c.name + "=" + url);
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& p : pairs) out += (out.empty() ? "" : ",") + p;
  return out;
}

// What etcd checks of the discovered cluster before bootstrapping it: valid URLs, no URL twice,
// and (VerifyBootstrap) this member in it with its own URLs.
Status CheckDiscovered(const Config& c) {
  std::set<std::string> seen;
  for (const auto& m : c.initial_members) {
    for (const auto& url : m.peer_urls) {
      if (!seen.insert(url).second) {
        return InvalidArgument("discovery cluster " + c.initial_cluster + " has duplicate url");
      }
    }
  }
  return OkStatus();
}

}  // namespace

void RegisterV3DiscoveryFlags(FlagSet* f, Config* c) {
  f->AddString("discovery-token", &c->discovery_token,
               "V3 discovery: discovery token for the etcd cluster to be bootstrapped.");
  f->AddString("discovery-endpoints", &c->discovery_endpoints,
               "V3 discovery: List of gRPC endpoints of the discovery service.");
  AddDurationMs(f, "discovery-dial-timeout", "2s",
                "V3 discovery: dial timeout for client connections.",
                &c->discovery_dial_timeout_ms);
  AddDurationMs(f, "discovery-request-timeout", "5s",
                "V3 discovery: timeout for discovery requests (excluding dial timeout).",
                &c->discovery_request_timeout_ms);
  AddDurationMs(f, "discovery-keepalive-time", "2s",
                "V3 discovery: keepalive time for client connections.",
                &c->discovery_keepalive_time_ms);
  AddDurationMs(f, "discovery-keepalive-timeout", "6s",
                "V3 discovery: keepalive timeout for client connections.",
                &c->discovery_keepalive_timeout_ms);
  f->AddBool("discovery-insecure-transport", &c->discovery_insecure_transport,
             "V3 discovery: disable transport security for client connections.");
  f->AddBool("discovery-insecure-skip-tls-verify", &c->discovery_insecure_skip_tls_verify,
             "V3 discovery: skip server certificate verification (CAUTION: this option should be "
             "enabled only for testing purposes).");
  f->AddString("discovery-cert", &c->discovery_cert,
               "V3 discovery: identify secure client using this TLS certificate file.");
  f->AddString("discovery-key", &c->discovery_key,
               "V3 discovery: identify secure client using this TLS key file.");
  f->AddString("discovery-cacert", &c->discovery_cacert,
               "V3 discovery: verify certificates of TLS-enabled secure servers using this CA "
               "bundle.");
  f->AddString("discovery-user", &c->discovery_user,
               "V3 discovery: username[:password] for authentication.");
  f->AddString("discovery-password", &c->discovery_password,
               "V3 discovery: password for authentication (if this option is used, "
               "--discovery-user shouldn't include password).");
}

Status ValidateV3Discovery(Config* c) {
  const bool endpoints = !c->discovery_endpoints.empty();
  if (endpoints) {
    const bool initial_cluster =
        !c->initial_cluster.empty() && c->initial_cluster != kDefaultInitialCluster;
    if (initial_cluster || !c->discovery_srv.empty()) return InvalidArgument(kConflict);
    // The temporary cluster of this member alone (etcd's PeerURLsMapAndToken), which the first
    // start replaces with the discovered one.
    c->initial_cluster.clear();
  }
  if (c->discovery_token.empty() == endpoints) {
    return InvalidArgument("both --discovery-token and --discovery-endpoints must be set");
  }
  for (const std::string& e : SplitEndpoints(c->discovery_endpoints)) {
    if (endpoints && IsBlank(e)) {
      return InvalidArgument("--discovery-endpoints must not contain empty endpoints");
    }
  }
  return OkStatus();
}

Status BootstrapFromV3Discovery(Config* config,
                                const std::function<void(const std::string&)>& log) {
  if (config->discovery_token.empty()) return OkStatus();
  const std::string wal_dir =
      config->wal_dir.empty() ? config->data_dir + "/member/wal" : config->wal_dir;
  if (wal::Wal::Exists(io::PosixFileSystem(), wal_dir)) {
    log("data dir " + config->data_dir +
        " is already initialized: the discovery service is not asked again");
    return OkStatus();
  }
  if (config->initial_cluster_state == "existing") {
    // etcd would look for peers in a cluster of this member alone and find none.
    return InvalidArgument(
        "--discovery-token bootstraps a new cluster only; to join a running cluster, add this "
        "member (etcdctl member add) and start it with --initial-cluster and "
        "--initial-cluster-state existing");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<discovery::V3Registry> registry,
                   discovery::NewV3GrpcRegistry(ClientOptions(*config)));
  discovery::V3JoinRequest request;
  request.token = config->discovery_token;
  request.member_id =
      server::ComputeMemberId(UrlTexts(config->advertise_peer), config->discovery_token).value();
  request.self = SelfRegistration(*config);
  log("v3 discovery: token " + request.token + " at " + config->discovery_endpoints);
  ASSIGN_OR_RETURN(std::string cluster,
                   discovery::JoinV3Cluster(
                       request, registry.get(), discovery::V3RetryPolicy{},
                       [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }, log));
  auto members = ParseInitialCluster(cluster);
  if (!members.ok()) return InvalidArgument(discovery::kV3InvalidUrl);
  config->initial_cluster = cluster;
  config->initial_members = std::move(members).value();
  RETURN_IF_ERROR(CheckDiscovered(*config));
  // etcd bootstraps with the discovery token as the cluster token: every member derives the
  // same ids from the registry's URLs.
  config->initial_cluster_token = config->discovery_token;
  log("v3 discovery: initial cluster " + cluster);
  return OkStatus();
}

bool IsDiscoveryTokenUsedUp(const Status& status) {
  return status.message() == discovery::kV3FullCluster;
}

}  // namespace dolmen::embed
