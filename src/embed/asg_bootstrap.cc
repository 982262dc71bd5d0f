#include "embed/asg_bootstrap.h"

#include <memory>
#include <thread>

#include "aws/credentials.h"
#include "aws/curl_transport.h"
#include "aws/endpoints.h"
#include "aws/imds.h"
#include "aws/query_client.h"
#include "discovery/asg_cluster.h"
#include "discovery/asg_members.h"
#include "discovery/grpc_client_tls.h"
#include "discovery/srv_wait.h"
#include "embed/asg_join.h"
#include "embed/tls_config.h"
#include "io/posix/posix_file_system.h"
#include "wal/wal.h"

namespace dolmen::embed {
namespace {

void Sleep(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// The AWS calls group discovery makes, over src/aws's Query client.
class QueryAsgApi final : public discovery::AsgApi {
 public:
  explicit QueryAsgApi(aws::QueryClient* client) : client_(client) {}
  Result<std::vector<aws::AsgInstance>> DescribeAutoScalingInstances(
      const std::vector<std::string>& ids) override {
    return client_->DescribeAutoScalingInstances(ids);
  }
  Result<aws::AutoScalingGroup> DescribeAutoScalingGroup(const std::string& name) override {
    return client_->DescribeAutoScalingGroup(name);
  }
  Result<std::vector<aws::Ec2Instance>> DescribeInstances(
      const std::vector<std::string>& ids) override {
    return client_->DescribeInstances(ids);
  }

 private:
  aws::QueryClient* client_;
};

// The member's AWS clients, from its first IMDS question at start to its last dead-member check
// on the leader: one transport, IMDS (also the instance role's keys) and the Query client. Used
// by one thread at a time (the starting thread, then the remover's).
struct AwsSession {
  aws::CurlTransport transport;
  std::unique_ptr<aws::ImdsClient> imds;
  std::shared_ptr<aws::CredentialsCache> role;
  std::unique_ptr<aws::QueryClient> client;
  std::unique_ptr<QueryAsgApi> api;
  std::string group;  // resolved ("auto" -> the group's name) at the first need
};

discovery::WaitPolicy PolicyFor(const Config& config, const std::string& what) {
  discovery::WaitPolicy policy;
  policy.wait = std::chrono::milliseconds(config.discovery_aws_asg_wait_ms);
  policy.first_backoff = std::chrono::milliseconds(250);
  policy.max_backoff = std::chrono::milliseconds(8000);
  policy.what = what;
  return policy;
}

// IMDS is asked again while it does not answer (an instance's metadata service can lag its
// boot), within the same bound as the group.
Result<aws::InstanceIdentity> WaitForIdentity(aws::ImdsClient* imds, const Config& config,
                                              const std::function<void(const std::string&)>& log) {
  aws::InstanceIdentity identity;
  SystemClock clock;
  RETURN_IF_ERROR(discovery::RetryDiscovery(
                      [&]() -> Result<std::vector<std::string>> {
                        ASSIGN_OR_RETURN(identity, imds->Identity());
                        return std::vector<std::string>{};
                      },
                      PolicyFor(config, "AWS instance metadata (IMDSv2)"), clock, Sleep, log)
                      .status());
  return identity;
}

// Defaults from the instance's identity for the flags not given (explicit flags win).
Status ApplyIdentity(const aws::InstanceIdentity& identity, Config* config,
                     const std::function<void(const std::string&)>& log) {
  const Config::ExplicitFlags& given = config->explicit_flags;
  if (!given.name) config->name = identity.instance_id;
  if (!given.data_dir) config->data_dir = config->name + ".dolmen";
  if (!given.advertise_peer) {
    std::vector<std::string> urls;
    for (const Url& u : config->listen_peer) {
      urls.push_back(discovery::UrlOf(u.scheme, identity.local_ipv4, u.port));
    }
    ASSIGN_OR_RETURN(config->advertise_peer, ParsePeerUrls(urls.front()));
    config->initial_advertise_peer_urls = urls.front();
  }
  if (!given.advertise_client) {
    // One URL per client listener that others can reach; loopback listeners (the lab's
    // http://127.0.0.1:2379 for local tools) are not advertised.
    std::vector<std::string> urls;
    for (const Url& u : config->listen_client) {
      if (IsLoopback(u.host) && config->listen_client.size() > 1) continue;
      urls.push_back(discovery::UrlOf(u.scheme, identity.local_ipv4, u.port));
    }
    config->advertise_client_urls = Join(urls);
    ASSIGN_OR_RETURN(config->advertise_client, ParseUrls(config->advertise_client_urls));
  }
  log("AWS instance " + identity.instance_id + " at " + identity.local_ipv4 + " in " +
      identity.region + ": name " + config->name + ", peer URL " +
      config->advertise_peer.front().text + ", client URLs " + config->advertise_client_urls);
  return OkStatus();
}

// The group's cluster, once complete, as --initial-cluster entries; this member's entry carries
// its own name and advertised peer URL.
Status ApplyGroup(const discovery::AsgCluster& cluster, const aws::InstanceIdentity& identity,
                  Config* config, const std::function<void(const std::string&)>& log) {
  const Url& peer = config->listen_peer.front();
  std::vector<std::string> entries;
  for (const auto& m : cluster.members) {
    const std::string url = discovery::UrlOf(peer.scheme, m.private_ip, peer.port);
    if (m.instance_id != identity.instance_id) {
      entries.push_back(m.instance_id + "=" + url);
      continue;
    }
    if (config->advertise_peer.front().text != url) {
      log("--initial-advertise-peer-urls " + config->advertise_peer.front().text +
          " differs from " + url +
          ", which the other members compute for this instance: "
          "their member ids will not match this member's unless it is reachable there");
    }
    std::string own;
    for (const Url& u : config->advertise_peer) own += (own.empty() ? "" : ",") + u.text;
    entries.push_back(config->name + "=" + own);
  }
  if (!config->explicit_flags.token) config->initial_cluster_token = cluster.group;
  config->initial_cluster = Join(entries);
  ASSIGN_OR_RETURN(config->initial_members, ParseInitialCluster(config->initial_cluster));
  log("AWS auto scaling group discovery: group " + cluster.group + ", token " +
      config->initial_cluster_token + ", initial cluster " + config->initial_cluster);
  return OkStatus();
}

// The listener the other members' client URLs mirror: the first one others can reach (the
// lab's loopback listener for local tools is not), as ApplyIdentity advertises them.
const Url& ReachableClientListener(const Config& config) {
  for (const Url& u : config.listen_client) {
    if (!IsLoopback(u.host) || config.listen_client.size() == 1) return u;
  }
  return config.listen_client.front();
}

// The other members' client URLs (the group's private IPs with this member's client scheme and
// port), where a running cluster of the group would answer.
std::vector<std::string> OtherClientUrls(const discovery::AsgCluster& cluster,
                                         const aws::InstanceIdentity& identity,
                                         const Config& config) {
  std::vector<std::string> out;
  const Url& client = ReachableClientListener(config);
  if (client.scheme != "http" && client.scheme != "https") return out;  // unix sockets: local
  for (const auto& m : cluster.members) {
    if (m.instance_id == identity.instance_id) continue;
    out.push_back(discovery::UrlOf(client.scheme, m.private_ip, client.port));
  }
  return out;
}

// How this member dials the others' https client URLs: as a client of its own cluster, with its
// client TLS flags. The CA of --trusted-ca-file checks them (the system's roots without it); the
// member's certificate is presented (--client-cert-auth clusters ask for one, as etcd's own
// gateway presents it). Under --auto-tls without files every member's certificate is
// self-signed, so the connection is encrypted but not checked, as etcdctl's
// --insecure-skip-tls-verify against it.
Result<JoinDialer> DialerFor(const Config& config) {
  JoinDialer dialer;
  if (ReachableClientListener(config).scheme != "https") return dialer;
  discovery::GrpcClientTls tls;
  tls.skip_verify = config.auto_tls && config.cert_file.empty();
  if (!tls.skip_verify) {
    // --client-cert-file/--client-key-file when given (etcd 3.5), else the server's pair.
    const tls::Options dialing = ClientTlsOptions(config).Dialing();
    tls.ca_file = dialing.trusted_ca_file;
    tls.cert_file = dialing.cert_file;
    tls.key_file = dialing.key_file;
  }
  const bool own_pair = !config.client_cert_file.empty();
  tls.ca_flag = "--trusted-ca-file";
  tls.cert_flag = own_pair ? "--client-cert-file" : "--cert-file";
  tls.key_flag = own_pair ? "--client-key-file" : "--key-file";
  ASSIGN_OR_RETURN(dialer.tls, discovery::NewGrpcClientCredentials(tls));
  return dialer;
}

// A cluster of the group already runs and does not list this member: add it as a learner and
// start with state existing. OkStatus with *joined false when there is nothing to join.
Status JoinExistingCluster(const discovery::AsgCluster& cluster,
                           const aws::InstanceIdentity& identity, const JoinDialer& dialer,
                           Config* config, bool* joined,
                           const std::function<void(const std::string&)>& log) {
  *joined = false;
  std::string endpoint;
  ASSIGN_OR_RETURN(
      const auto members,
      FindExistingCluster(OtherClientUrls(cluster, identity, *config), dialer, &endpoint));
  if (!members) return OkStatus();
  std::vector<std::string> own;
  for (const Url& u : config->advertise_peer) own.push_back(u.text);
  if (ListsPeerUrls(*members, own)) {
    log("the group's cluster at " + endpoint +
        " lists this member already: it starts as a "
        "member of the initial cluster");
    return OkStatus();
  }
  log("the group's instances already form a cluster (answered at " + endpoint +
      "): adding this member as a learner");
  JoinDialer adding = dialer;
  adding.timeout = std::chrono::milliseconds(5000);
  ASSIGN_OR_RETURN(std::vector<ClusterMember> after, AddLearner(endpoint, own, adding));
  config->initial_cluster = ExistingInitialCluster(after, own, config->name);
  config->initial_cluster_state = "existing";
  ASSIGN_OR_RETURN(config->initial_members, ParseInitialCluster(config->initial_cluster));
  log("joined as a learner: initial cluster " + config->initial_cluster + ", state existing");
  *joined = true;
  return OkStatus();
}

// The Query client for the group's calls (no call is made here): endpoints from the SDK's
// variables, keys from the environment or else the instance role.
Status ConnectQueryApi(const aws::Getenv& env, const aws::InstanceIdentity& identity,
                       AwsSession* session, const std::function<void(const std::string&)>& log) {
  const aws::Endpoints endpoints =
      aws::ResolveEndpoints(env, aws::RegionFromEnv(env).value_or(identity.region));
  ASSIGN_OR_RETURN(std::optional<aws::Credentials> from_env, aws::CredentialsFromEnv(env));
  aws::ImdsClient* imds = session->imds.get();
  session->role = std::make_shared<aws::CredentialsCache>(
      [imds] { return imds->RoleCredentials(); }, [] { return std::chrono::system_clock::now(); });
  log(std::string("AWS credentials from ") +
      (from_env ? "the environment (AWS_ACCESS_KEY_ID)" : "the instance role (IMDS)") +
      "; AutoScaling at " + endpoints.autoscaling + ", EC2 at " + endpoints.ec2 + ", region " +
      endpoints.region);
  aws::QueryClient::Options options;
  options.autoscaling_endpoint = endpoints.autoscaling;
  options.ec2_endpoint = endpoints.ec2;
  options.region = endpoints.region;
  options.credentials = [from_env, role = session->role]() -> Result<aws::Credentials> {
    if (from_env) return *from_env;
    return role->Get();
  };
  options.sleep = Sleep;
  options.log = log;
  session->client = std::make_unique<aws::QueryClient>(options, &session->transport);
  session->api = std::make_unique<QueryAsgApi>(session->client.get());
  return OkStatus();
}

// Dead-member removal's question to the group (the leader asks it every round): which members'
// instances are terminated or gone. The session lives as long as the finder.
std::function<
    Result<std::map<MemberId, std::string>>(const std::vector<server::DeadMemberRemover::Member>&)>
DeadMemberFinder(std::shared_ptr<AwsSession> session, discovery::AsgQuery query,
                 std::function<void(const std::string&)> log) {
  return [session, query, log](const std::vector<server::DeadMemberRemover::Member>& members)
             -> Result<std::map<MemberId, std::string>> {
    if (session->group.empty()) {
      ASSIGN_OR_RETURN(session->group, ResolveGroupName(query, *session->api));
    }
    std::vector<discovery::ClusterMemberView> views;
    for (const auto& m : members) views.push_back({m.id.value(), m.name, m.peer_urls});
    ASSIGN_OR_RETURN(auto gone, discovery::FindMembersGoneFromGroup(
                                    views, session->group, query.instance_id, *session->api));
    std::map<MemberId, std::string> out;
    for (auto& [id, why] : gone) out[MemberId(id)] = std::move(why);
    return out;
  };
}

}  // namespace

Status BootstrapFromAwsAsg(Config* config, const std::function<void(const std::string&)>& log) {
  if (config->discovery_aws_asg.empty()) return OkStatus();
  const aws::Getenv env = aws::ProcessEnv;
  auto session = std::make_shared<AwsSession>();
  session->imds = std::make_unique<aws::ImdsClient>(aws::ImdsEndpoint(env), &session->transport);
  log("AWS auto scaling group discovery: asking the instance metadata service at " +
      aws::ImdsEndpoint(env) + " who this instance is");
  ASSIGN_OR_RETURN(aws::InstanceIdentity identity,
                   WaitForIdentity(session->imds.get(), *config, log));
  RETURN_IF_ERROR(ApplyIdentity(identity, config, log));
  RETURN_IF_ERROR(ConnectQueryApi(env, identity, session.get(), log));
  const discovery::AsgQuery query{config->discovery_aws_asg, identity.instance_id};
  config->aws_asg_find_dead_members = DeadMemberFinder(session, query, log);
  if (wal::Wal::Exists(io::PosixFileSystem(), config->data_dir + "/member/wal")) {
    log("data dir " + config->data_dir +
        " is already initialized: the member resumes with its membership and the auto scaling "
        "group is not asked");
    return OkStatus();
  }

  QueryAsgApi& api = *session->api;
  discovery::AsgCluster cluster;
  SystemClock clock;
  const discovery::WaitPolicy policy = PolicyFor(*config, "AWS auto scaling group discovery");
  log("AWS auto scaling group discovery: waiting up to " + std::to_string(policy.wait.count()) +
      " ms for group " + query.group + " to have its desired capacity InService");
  // The credentials are read once, not at every round of the wait.
  ASSIGN_OR_RETURN(const JoinDialer dialer, DialerFor(*config));
  bool joined = false;
  RETURN_IF_ERROR(discovery::RetryDiscovery(
                      [&]() -> Result<std::vector<std::string>> {
                        ASSIGN_OR_RETURN(std::string group, ResolveGroupName(query, api));
                        ASSIGN_OR_RETURN(cluster, DiscoverAsgCluster(group, query, api));
                        RETURN_IF_ERROR(
                            JoinExistingCluster(cluster, identity, dialer, config, &joined, log));
                        return std::vector<std::string>{};
                      },
                      policy, clock, Sleep, log)
                      .status());
  session->group = cluster.group;
  if (joined) return OkStatus();
  return ApplyGroup(cluster, identity, config, log);
}

}  // namespace dolmen::embed
