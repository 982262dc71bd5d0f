// The member's configuration as an operator gives it: etcd's flag names, defaults and
// ETCD_* variables. Validated into the pieces the server and listeners need.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"
#include "embed/flag_set.h"
#include "embed/url.h"
#include "server/server.h"
#include "transport/transport.h"

namespace dolmen::embed {

struct Config {
  std::string name = "default";
  std::string data_dir;  // default "<name>.dolmen"
  std::string wal_dir;
  std::string listen_client_urls = "http://localhost:2379";
  // etcd 3.5's --listen-client-http-urls: HTTP-only client listeners; when given, the
  // --listen-client-urls serve gRPC only (docs/http.md, "HTTP-only client URLs").
  std::string listen_client_http_urls;
  std::string advertise_client_urls = "http://localhost:2379";
  std::string listen_peer_urls = "http://localhost:2380";
  std::string initial_advertise_peer_urls = "http://localhost:2380";
  std::string initial_cluster;  // default "<name>=<initial-advertise-peer-urls>"
  std::string initial_cluster_state = "new";
  std::string initial_cluster_token = "etcd-cluster";
  // DNS SRV discovery (docs/discovery.md): the initial cluster from _etcd-server(-ssl)._tcp
  // records of this domain, looked up at the first start (embed/srv_bootstrap.h).
  std::string discovery_srv;
  std::string discovery_srv_name;
  int64_t discovery_srv_wait_ms = 60 * 1000;  // --experimental-discovery-srv-wait (dolmen only)
  // AWS auto-scaling-group discovery (dolmen only; docs/discovery.md, embed/asg_bootstrap.h):
  // "auto" or a group name; how long to wait for the group to be complete; and which of the
  // flags discovery would otherwise fill were given (Validate sets them: explicit flags win).
  std::string discovery_aws_asg;
  int64_t discovery_aws_asg_wait_ms = 5 * 60 * 1000;
  // Dead-member removal (docs/discovery.md, "Replacement"): how long a member whose instance left
  // the group stays before the leader removes it; and what BootstrapFromAwsAsg hands the server
  // to ask the group which members are gone.
  int64_t discovery_aws_asg_removal_grace_ms = 5 * 60 * 1000;
  std::function<Result<std::map<MemberId, std::string>>(
      const std::vector<server::DeadMemberRemover::Member>&)>
      aws_asg_find_dead_members;
  struct ExplicitFlags {
    bool name = false, data_dir = false, advertise_peer = false, advertise_client = false,
         token = false;
  } explicit_flags;
  // etcd 3.6's v3 discovery (docs/discovery.md; embed/v3_bootstrap.h registers and checks the
  // --discovery-* flags and asks the discovery service at the first start). Durations in ms.
  std::string discovery_token;
  std::string discovery_endpoints;  // comma-separated
  int64_t discovery_dial_timeout_ms = 2000;
  int64_t discovery_request_timeout_ms = 5000;
  int64_t discovery_keepalive_time_ms = 2000;
  int64_t discovery_keepalive_timeout_ms = 6000;
  bool discovery_insecure_transport = true;
  bool discovery_insecure_skip_tls_verify = false;
  std::string discovery_cert, discovery_key, discovery_cacert;
  std::string discovery_user, discovery_password;
  // --auto-promote-learners (dolmen; etcd-io/etcd#15107): the leader promotes a learner that
  // has stayed in sync (server/learner_promoter.h).
  bool auto_promote_learners = false;
  // --auto-remove-unreachable-after (dolmen): the leader removes a voter it has not heard from
  // for this long (0: never). docs/membership.md, "Dead-member removal".
  int64_t auto_remove_unreachable_after_ms = 0;
  uint64_t snapshot_count = 100000;
  uint64_t heartbeat_interval_ms = 100;
  uint64_t election_timeout_ms = 1000;
  int64_t max_txn_ops = 128;
  // Auth (docs/auth.md): --auth-token (only etcd's "simple" tokens), --bcrypt-cost and
  // --auth-token-ttl (seconds).
  std::string auth_token = "simple";
  uint64_t bcrypt_cost = 10;
  uint64_t auth_token_ttl = 300;
  uint64_t max_request_bytes = 1572864;
  int64_t quota_backend_bytes = 0;
  // --experimental-wal-segment-bytes (dolmen only; etcd's segments are always 64 MiB): the WAL
  // segment size, which also sets the free-space reserve (docs/maintenance.md).
  uint64_t wal_segment_bytes = 64ull << 20;
  // --backend-batch-interval / --backend-batch-limit: how long applied entries wait, and how
  // many, before the backend commits them (0: the defaults, 100 ms and 10,000, as etcd).
  int64_t backend_batch_interval_ms = 0;
  int64_t backend_batch_limit = 0;
  // --experimental-watch-progress-notify-interval, already adjusted as etcd does.
  int64_t watch_progress_notify_interval_ms = 10 * 60 * 1000;
  // Corruption detection (docs/corruption.md), etcd's experimental flags.
  bool experimental_initial_corrupt_check = false;
  int64_t experimental_corrupt_check_time_ms = 0;  // 0: off
  bool experimental_compact_hash_check_enabled = false;
  int64_t experimental_compact_hash_check_time_ms = 60 * 1000;
  bool strict_reconfig_check = true;
  // --auto-compaction-mode / --auto-compaction-retention / --force-new-cluster (etcd's; the
  // retention's meaning depends on the mode, so it is parsed in Validate).
  std::string auto_compaction_mode = "periodic";
  std::string auto_compaction_retention = "0";
  bool force_new_cluster = false;
  server::AutoCompactionOptions auto_compaction;  // filled by Validate
  bool enable_v2 = false;
  // etcd 3.5's tuning flags (docs/flags.md). gRPC: 0 streams means etcd's default
  // (math.MaxUint32: gRPC's own, unlimited); keepalive durations in ms.
  uint64_t max_concurrent_streams = 4294967295u;
  int64_t grpc_keepalive_min_time_ms = 5000;
  bool grpc_keepalive_min_time_explicit = false;  // set by Validate: the flag was given
  int64_t grpc_keepalive_interval_ms = 2 * 3600 * 1000;
  int64_t grpc_keepalive_timeout_ms = 20 * 1000;
  bool socket_reuse_port = false;
  // etcd's --enable-grpc-gateway: the JSON gateway (/v3/...) on the client URLs (docs/http.md).
  bool enable_grpc_gateway = true;
  // etcd's --cors (origins given CORS headers) and --host-whitelist (Host names a plaintext
  // HTTP request may carry); "*" or empty: any (http/access_policy.h).
  std::set<std::string> cors = {"*"};
  std::set<std::string> host_whitelist = {"*"};
  // Raft: entries kept behind a checkpoint for slow followers (--snapshot-catchup-entries,
  // etcd 3.5's --experimental-snapshot-catchup-entries), pre-vote, the first election's
  // tick advance, the learner limit (--max-learners / --experimental-max-learners).
  uint64_t snapshot_catchup_entries = 5000;
  bool pre_vote = true;
  bool initial_election_tick_advance = true;
  int64_t max_learners = 1;
  // Durability off (--unsafe-no-fsync): no fsync of the WAL or the backend.
  bool unsafe_no_fsync = false;
  // Slow-operation warnings, in nanoseconds (etcd: 100 ms and 300 ms).
  int64_t warning_apply_duration_ns = 100 * 1000 * 1000;
  int64_t warning_unary_request_duration_ns = 300 * 1000 * 1000;
  // Values of the flags dolmen accepts without effect or refuses (answered_flags.h), by name.
  std::map<std::string, std::string> answered_values;
  std::string logger = "zap";
  std::string log_level = "info";
  std::string log_outputs = "default";
  // TLS (embed/tls_config.h registers and checks these flags).
  std::string cert_file, key_file, trusted_ca_file, client_crl_file;
  std::string peer_cert_file, peer_key_file, peer_trusted_ca_file, peer_crl_file;
  std::string peer_cert_allowed_cn, peer_cert_allowed_hostname;
  std::string peer_client_cert_file, peer_client_key_file;  // etcd 3.5: presented when dialing
  std::string client_cert_file, client_key_file;  // etcd 3.5: presented when dialing a client URL
  bool client_cert_auth = false, peer_client_cert_auth = false;
  bool auto_tls = false, peer_auto_tls = false;
  bool peer_skip_client_san_verification = false;  // etcd 3.4's experimental flag
  std::string cipher_suites;                       // comma-separated Go names
  std::string tls_min_version = "TLS1.2", tls_max_version;
  uint64_t self_signed_cert_validity_years = 1;
  // --listen-metrics-urls: extra listeners for /metrics and the health endpoints (http, or
  // https with the client TLS flags, as etcd); --metrics: "basic", or "extensive" to add
  // grpc_server_handling_seconds.
  std::string listen_metrics_urls;
  std::string metrics = "basic";
  // --config-file / ETCD_CONFIG_FILE: when given, every other flag and ETCD_* is ignored.
  std::string config_file;
  bool show_version = false;
  bool show_help = false;

  // Filled by Validate.
  std::vector<Url> listen_client;
  std::vector<Url> listen_client_http;
  std::vector<Url> advertise_client;
  std::vector<Url> advertise_peer;
  std::vector<Url> listen_peer;
  std::vector<Url> listen_metrics;
  std::vector<server::InitialMember> initial_members;
  // Lines the member logs once at start-up: flags accepted with no effect, and the warning
  // that --unsafe-no-fsync gives up durability.
  std::vector<std::string> startup_warnings;
};

// etcd's parseCompactionRetention: a bare non-negative integer is hours (periodic) or a
// revision count (revision); anything else is a Go duration (in revision mode its nanoseconds
// are the count, as etcd reads it). Negative retentions are refused.
Result<server::AutoCompactionOptions> ParseAutoCompaction(const std::string& mode,
                                                          const std::string& retention);

// Parses --initial-cluster ("infra0=http://10.0.1.10:2380,infra1=http://10.0.1.11:2380"; a name
// may repeat to give a member several URLs).
Result<std::vector<server::InitialMember>> ParseInitialCluster(const std::string& text);

void RegisterFlags(FlagSet* flags, Config* config);
// A Go time.Duration ("10m0s", "1.5s", "300ms", "1ns", "-1h"): Go's flag package reports any
// malformed value as "parse error".
Result<int64_t> ParseGoDurationMs(const std::string& text);
Result<int64_t> ParseGoDurationNs(const std::string& text);
// Whether a flag takes a Go duration: a config file gives those as integer nanoseconds.
bool IsDurationFlag(const std::string& name);
// Applies defaults that depend on other flags, parses URL lists, and refuses what this build
// cannot honour (with the reason).
Status Validate(const FlagSet& flags, Config* config);
// `peer_tls`: how a joining member dials https peer URLs (NewPeerTls).
server::ServerConfig ToServerConfig(const Config& config,
                                    const transport::TlsOptions& peer_tls = {});

}  // namespace dolmen::embed
