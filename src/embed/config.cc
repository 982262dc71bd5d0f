#include "embed/config.h"

#include <algorithm>
#include <map>
#include <string_view>

#include "backend/lmdb/lmdb_backend.h"
#include "embed/member_record.h"
#include "io/posix/posix_file_system.h"
#include "log/outputs.h"
#include "transport/transport.h"

namespace dolmen::embed {
namespace {

// A URL-list flag: checked when parsed (by ParseUrls or ParsePeerUrls), so a bad URL is reported
// against its flag.
void AddUrls(FlagSet* flags, const std::string& name, std::string* target, std::string help,
             Result<std::vector<Url>> (*parse)(const std::string&) = ParseUrls) {
  flags->Add(name, *target, std::move(help), [target, parse](const std::string& v) {
    auto urls = parse(v);
    if (!urls.ok()) return urls.status();
    *target = v;
    return OkStatus();
  });
}

// A Go time.Duration ("10m0s", "1.5s", "300ms", "-1h"), in whole milliseconds; Go's flag
// package reports any malformed value as "parse error".
Result<int64_t> ParseGoDurationMs(const std::string& text) {
  static const std::map<std::string, double, std::less<>> kUnitMs = {
      {"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"\xce\xbcs", 1e-3},
      {"ms", 1},    {"s", 1e3},   {"m", 60e3},         {"h", 3600e3}};
  auto is_number = [](char ch) { return ch == '.' || (ch >= '0' && ch <= '9'); };
  size_t i = 0;
  double sign = 1;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) sign = text[i++] == '-' ? -1 : 1;
  if (text.substr(i) == "0") return int64_t{0};
  if (i == text.size()) return InvalidArgument("parse error");
  double total_ms = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && is_number(text[i])) ++i;
    std::string number = text.substr(start, i - start);
    start = i;
    while (i < text.size() && !is_number(text[i])) ++i;
    auto unit = kUnitMs.find(std::string_view(text).substr(start, i - start));
    if (number.empty() || number == "." || number.size() > 30 ||
        std::count(number.begin(), number.end(), '.') > 1 || unit == kUnitMs.end()) {
      return InvalidArgument("parse error");
    }
    total_ms += std::stod(number) * unit->second;
  }
  return static_cast<int64_t>(sign * total_ms);
}

}  // namespace

Status UnsupportedTls(const std::string& what) {
  return InvalidArgument(what +
                         " is not supported by this version of dolmen yet (TLS arrives with "
                         "the TLS work); refusing to start rather than serve without it");
}

void RegisterFlags(FlagSet* f, Config* c) {
  f->AddString("name", &c->name, "Human-readable name for this member.");
  f->AddString("data-dir", &c->data_dir, "Path to the data directory (default '${name}.dolmen').");
  f->AddString("wal-dir", &c->wal_dir, "Path to the dedicated wal directory.");
  f->AddUint("snapshot-count", &c->snapshot_count,
             "Number of committed transactions to trigger a snapshot to disk.");
  f->AddUint("heartbeat-interval", &c->heartbeat_interval_ms,
             "Time (in milliseconds) of a heartbeat interval.");
  f->AddUint("election-timeout", &c->election_timeout_ms,
             "Time (in milliseconds) for an election to timeout.");
  AddUrls(f, "listen-peer-urls", &c->listen_peer_urls,
          "List of URLs to listen on for peer traffic.", ParsePeerUrls);
  AddUrls(f, "listen-client-urls", &c->listen_client_urls,
          "List of URLs to listen on for client traffic.");
  AddUrls(f, "advertise-client-urls", &c->advertise_client_urls,
          "List of this member's client URLs to advertise to the public.");
  AddUrls(f, "initial-advertise-peer-urls", &c->initial_advertise_peer_urls,
          "List of this member's peer URLs to advertise to the rest of the cluster.",
          ParsePeerUrls);
  f->AddString("initial-cluster", &c->initial_cluster,
               "Initial cluster configuration for bootstrapping.");
  f->Add("initial-cluster-state", c->initial_cluster_state,
         "Initial cluster state ('new' or 'existing').", [c](const std::string& v) {
           if (v != "new" && v != "existing") {
             return InvalidArgument("valid values include new,existing");
           }
           c->initial_cluster_state = v;
           return OkStatus();
         });
  f->AddString("initial-cluster-token", &c->initial_cluster_token,
               "Initial cluster token for the etcd cluster during bootstrap.");
  f->AddInt("max-txn-ops", &c->max_txn_ops,
            "Maximum number of operations permitted in a transaction.");
  f->AddUint("max-request-bytes", &c->max_request_bytes,
             "Maximum client request size in bytes the server will accept.");
  f->AddInt("quota-backend-bytes", &c->quota_backend_bytes,
            "Raise alarms when backend size exceeds the given quota (0 defaults to low space "
            "quota).");
  f->AddUint("experimental-wal-segment-bytes", &c->wal_segment_bytes,
             "Size of a write-ahead log segment, preallocated in full (dolmen only; at least "
             "65536). The data dir's file system keeps two segments plus 16 MiB free; below "
             "that, writes are refused with the NOSPACE alarm.");
  f->Add("backend-batch-interval", "0",
         "BackendBatchInterval is the maximum time before commit the backend transaction.",
         [c](const std::string& v) {
           ASSIGN_OR_RETURN(int64_t ms, ParseGoDurationMs(v));
           if (ms < 0) return InvalidArgument("must not be negative");
           c->backend_batch_interval_ms = ms;
           return OkStatus();
         });
  f->AddInt("backend-batch-limit", &c->backend_batch_limit,
            "BackendBatchLimit is the maximum operations before commit the backend transaction.");
  f->Add("experimental-watch-progress-notify-interval", "10m0s",
         "Duration of periodic watch progress notifications.", [c](const std::string& v) {
           ASSIGN_OR_RETURN(int64_t ms, ParseGoDurationMs(v));
           // etcd: zero or negative keeps the default; below 100 ms is raised to 100 ms.
           if (ms > 0) c->watch_progress_notify_interval_ms = std::max<int64_t>(ms, 100);
           return OkStatus();
         });
  f->AddBool("experimental-initial-corrupt-check", &c->experimental_initial_corrupt_check,
             "Enable to check data corruption before serving any client/peer traffic.");
  f->Add("experimental-corrupt-check-time", "0s",
         "Duration of time between cluster corruption check passes.", [c](const std::string& v) {
           ASSIGN_OR_RETURN(int64_t ms, ParseGoDurationMs(v));
           if (ms < 0) return InvalidArgument("must not be negative");
           c->experimental_corrupt_check_time_ms = ms;
           return OkStatus();
         });
  f->AddBool("experimental-compact-hash-check-enabled", &c->experimental_compact_hash_check_enabled,
             "Enable leader to periodically check followers compaction hashes.");
  f->Add("experimental-compact-hash-check-time", "1m0s",
         "Duration of time between leader checks followers compaction hashes.",
         [c](const std::string& v) {
           ASSIGN_OR_RETURN(int64_t ms, ParseGoDurationMs(v));
           // etcd refuses a non-positive interval.
           if (ms <= 0) return InvalidArgument("must be positive");
           c->experimental_compact_hash_check_time_ms = ms;
           return OkStatus();
         });
  f->AddBool("strict-reconfig-check", &c->strict_reconfig_check,
             "Reject reconfiguration requests that would cause quorum loss.");
  f->AddBool("enable-v2", &c->enable_v2, "Accept etcd V2 client requests (not served).");
  // Logging (docs/logging.md): main hands these to log::Configure, which refuses what etcd
  // refuses; the level is checked here already, so a bad one reads as a bad flag value.
  f->AddString("logger", &c->logger, "Currently only supports 'zap' for structured logging.");
  f->Add("log-level", c->log_level,
         "Configures log level. Only supports debug, info, warn, error, panic, or fatal. "
         "Default 'info'.",
         [c](const std::string& v) {
           RETURN_IF_ERROR(log::ParseLevel(v).status());
           c->log_level = v;
           return OkStatus();
         });
  f->AddString("log-outputs", &c->log_outputs,
               "Specify 'stdout' or 'stderr' to skip journald logging even when running under "
               "systemd, or list of comma separated output targets.");
  f->AddString("cert-file", &c->cert_file, "Path to the client server TLS cert file.");
  f->AddString("key-file", &c->key_file, "Path to the client server TLS key file.");
  f->AddString("trusted-ca-file", &c->trusted_ca_file, "Path to the client server TLS trusted CA.");
  f->AddBool("client-cert-auth", &c->client_cert_auth, "Enable client cert authentication.");
  f->AddBool("auto-tls", &c->auto_tls, "Client TLS using generated certificates.");
  f->AddString("peer-cert-file", &c->peer_cert_file, "Path to the peer server TLS cert file.");
  f->AddString("peer-key-file", &c->peer_key_file, "Path to the peer server TLS key file.");
  f->AddString("peer-trusted-ca-file", &c->peer_trusted_ca_file,
               "Path to the peer server TLS trusted CA file.");
  f->AddBool("peer-client-cert-auth", &c->peer_client_cert_auth,
             "Enable peer client cert authentication.");
  f->AddBool("peer-auto-tls", &c->peer_auto_tls, "Peer TLS using generated certificates.");
  f->AddString("config-file", &c->config_file,
               "Path to the server configuration file (etcd's YAML format). Note that if a "
               "configuration file is provided, other command line flags and environment "
               "variables will be ignored.");
  f->AddBool("version", &c->show_version, "Print the version and exit.");
  f->AddBool("help", &c->show_help, "Show this help and exit.");
  f->AddBool("h", &c->show_help, "Show this help and exit.");
}

Result<std::vector<server::InitialMember>> ParseInitialCluster(const std::string& text) {
  std::vector<server::InitialMember> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string part =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t eq = part.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgument("--initial-cluster entry \"" + part +
                             "\" is not of the form name=peerURL");
    }
    std::string name = part.substr(0, eq);
    ASSIGN_OR_RETURN(Url url, ParsePeerUrl(part.substr(eq + 1)));
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& m) { return m.name == name; });
    if (it == out.end()) {
      out.push_back(server::InitialMember{name, {url.text}});
    } else {
      it->peer_urls.push_back(url.text);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

Status Validate(const FlagSet& flags, Config* c) {
  if (c->data_dir.empty()) c->data_dir = c->name + ".dolmen";
  if (!c->wal_dir.empty()) {
    return InvalidArgument("--wal-dir is not supported yet: the log lives under --data-dir");
  }
  if (c->initial_cluster.empty()) {
    c->initial_cluster = c->name + "=" + c->initial_advertise_peer_urls;
  }
  if (c->max_txn_ops <= 0) return InvalidArgument("--max-txn-ops must be positive");
  if (c->backend_batch_limit < 0) {
    return InvalidArgument("--backend-batch-limit must not be negative");
  }
  if (c->max_request_bytes == 0) return InvalidArgument("--max-request-bytes must be positive");
  if (c->quota_backend_bytes < 0) return InvalidArgument("--quota-backend-bytes must be >= 0");
  if (c->wal_segment_bytes < 65536) {
    return InvalidArgument("--experimental-wal-segment-bytes must be at least 65536");
  }
  ASSIGN_OR_RETURN(c->listen_client, ParseUrls(c->listen_client_urls));
  ASSIGN_OR_RETURN(c->advertise_client, ParseUrls(c->advertise_client_urls));
  ASSIGN_OR_RETURN(c->advertise_peer, ParsePeerUrls(c->initial_advertise_peer_urls));
  ASSIGN_OR_RETURN(c->listen_peer, ParsePeerUrls(c->listen_peer_urls));
  ASSIGN_OR_RETURN(c->initial_members, ParseInitialCluster(c->initial_cluster));
  if (c->heartbeat_interval_ms == 0) return InvalidArgument("--heartbeat-interval must be > 0");
  if (c->election_timeout_ms < 5 * c->heartbeat_interval_ms) {
    // etcd's rule: an election timeout must leave room for several heartbeats.
    return InvalidArgument("--election-timeout[" + std::to_string(c->election_timeout_ms) +
                           "ms] should be at least as 5 times as --heartbeat-interval[" +
                           std::to_string(c->heartbeat_interval_ms) + "ms]");
  }
  for (const char* tls_flag : {"cert-file", "key-file", "trusted-ca-file", "client-cert-auth",
                               "auto-tls", "peer-cert-file", "peer-key-file",
                               "peer-trusted-ca-file", "peer-client-cert-auth", "peer-auto-tls"}) {
    if (flags.WasSet(tls_flag)) return UnsupportedTls(std::string("--") + tls_flag);
  }
  for (const Url& u : c->listen_client) {
    if (u.secure()) {
      return InvalidArgument("listen URL " + u.text +
                             " needs TLS, which this version of dolmen does not serve yet");
    }
  }
  return OkStatus();
}

server::ServerConfig ToServerConfig(const Config& c) {
  server::ServerConfig s;
  s.name = c.name;
  s.data_dir = c.data_dir;
  s.peer_urls = UrlTexts(c.advertise_peer);
  s.client_urls = UrlTexts(c.advertise_client);
  s.cluster_token = c.initial_cluster_token;
  s.initial_cluster = c.initial_members;
  s.initial_cluster_existing = c.initial_cluster_state == "existing";
  s.strict_reconfig_check = c.strict_reconfig_check;
  s.initial_corrupt_check = c.experimental_initial_corrupt_check;
  s.corrupt_check_interval = std::chrono::milliseconds(c.experimental_corrupt_check_time_ms);
  s.compact_hash_check_enabled = c.experimental_compact_hash_check_enabled;
  s.compact_hash_check_interval =
      std::chrono::milliseconds(c.experimental_compact_hash_check_time_ms);
  s.driver.tick_interval = std::chrono::milliseconds(c.heartbeat_interval_ms);
  // etcd's --snapshot-count: committed entries between two snapshots (our checkpoints).
  if (c.snapshot_count > 0) s.driver.checkpoint_entries = c.snapshot_count;
  s.driver.election_ticks = static_cast<int>(c.election_timeout_ms / c.heartbeat_interval_ms);
  // etcd's backend batch: 0 keeps the default (100 ms, 10,000 entries).
  if (c.backend_batch_interval_ms > 0) {
    s.driver.backend_commit_interval = std::chrono::milliseconds(c.backend_batch_interval_ms);
  }
  if (c.backend_batch_limit > 0) {
    s.driver.backend_commit_entries = static_cast<uint64_t>(c.backend_batch_limit);
  }
  s.max_txn_ops = c.max_txn_ops;
  s.max_request_bytes = c.max_request_bytes;
  s.quota_backend_bytes = static_cast<uint64_t>(c.quota_backend_bytes);
  s.wal.segment_bytes = c.wal_segment_bytes;
  s.fs = io::PosixFileSystem();
  s.fetch_cluster_info =
      [](const std::vector<std::string>& peer_urls) -> Result<server::ClusterInfo> {
    ASSIGN_OR_RETURN(transport::ClusterInfo info,
                     transport::FetchClusterInfo(peer_urls, std::chrono::seconds(5)));
    server::ClusterInfo out;
    out.cluster_id = info.cluster_id;
    for (const auto& m : info.members) out.members.push_back(ToMember(m));
    return out;
  };
  s.open_backend = [](const std::string& dir, const backend::Options& options) {
    return backend::OpenLmdb(dir, options);
  };
  s.open_backend_image = [](const std::string& path) { return backend::OpenLmdbImage(path); };
  return s;
}

}  // namespace dolmen::embed
