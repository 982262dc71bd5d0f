// The member's configuration as an operator gives it: etcd's flag names, defaults and
// ETCD_* variables. Validated into the pieces the server and listeners need.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "embed/flag_set.h"
#include "embed/url.h"
#include "server/server.h"

namespace dolmen::embed {

struct Config {
  std::string name = "default";
  std::string data_dir;  // default "<name>.dolmen"
  std::string wal_dir;
  std::string listen_client_urls = "http://localhost:2379";
  std::string advertise_client_urls = "http://localhost:2379";
  std::string listen_peer_urls = "http://localhost:2380";
  std::string initial_advertise_peer_urls = "http://localhost:2380";
  std::string initial_cluster;  // default "<name>=<initial-advertise-peer-urls>"
  std::string initial_cluster_state = "new";
  std::string initial_cluster_token = "etcd-cluster";
  uint64_t snapshot_count = 100000;
  uint64_t heartbeat_interval_ms = 100;
  uint64_t election_timeout_ms = 1000;
  int64_t max_txn_ops = 128;
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
  bool enable_v2 = false;
  std::string logger = "zap";
  std::string log_level = "info";
  std::string log_outputs = "default";
  // TLS (embed/tls_config.h registers and checks these flags).
  std::string cert_file, key_file, trusted_ca_file, client_crl_file;
  std::string peer_cert_file, peer_key_file, peer_trusted_ca_file, peer_crl_file;
  std::string peer_cert_allowed_cn, peer_cert_allowed_hostname;
  bool client_cert_auth = false, peer_client_cert_auth = false;
  bool auto_tls = false, peer_auto_tls = false;
  std::string cipher_suites;  // comma-separated Go names
  std::string tls_min_version = "TLS1.2", tls_max_version;
  uint64_t self_signed_cert_validity_years = 1;
  // --config-file / ETCD_CONFIG_FILE: when given, every other flag and ETCD_* is ignored.
  std::string config_file;
  bool show_version = false;
  bool show_help = false;

  // Filled by Validate.
  std::vector<Url> listen_client;
  std::vector<Url> advertise_client;
  std::vector<Url> advertise_peer;
  std::vector<Url> listen_peer;
  std::vector<server::InitialMember> initial_members;
};

// Parses --initial-cluster ("infra0=http://10.0.1.10:2380,infra1=http://10.0.1.11:2380"; a name
// may repeat to give a member several URLs).
Result<std::vector<server::InitialMember>> ParseInitialCluster(const std::string& text);

void RegisterFlags(FlagSet* flags, Config* config);
// The refusal of a TLS setting this build cannot honour yet; `what` names the flag or key.
Status UnsupportedTls(const std::string& what);
// Applies defaults that depend on other flags, parses URL lists, and refuses what this build
// cannot honour (with the reason).
Status Validate(const FlagSet& flags, Config* config);
server::ServerConfig ToServerConfig(const Config& config);

}  // namespace dolmen::embed
