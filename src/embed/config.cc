#include "embed/config.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <set>
#include <string_view>

#include "backend/lmdb/lmdb_backend.h"
#include "embed/answered_flags.h"
#include "embed/client_urls.h"
#include "embed/member_record.h"
#include "embed/tls_config.h"
#include "embed/v3_bootstrap.h"
#include "io/no_sync_file_system.h"
#include "io/posix/posix_file_system.h"
#include "log/outputs.h"
#include "transport/transport.h"

namespace dolmen::embed {
namespace {

// The setter of a duration flag (Go's syntax) that must not be negative, kept in milliseconds.
FlagSet::Setter NonNegativeMs(int64_t* target_ms) {
  return [target_ms](const std::string& v) -> Status {
    ASSIGN_OR_RETURN(int64_t ms, ParseGoDurationMs(v));
    if (ms < 0) return InvalidArgument("must not be negative");
    *target_ms = ms;
    return OkStatus();
  };
}

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

// A Go time.Duration in units of `unit_ns` nanoseconds (rounded toward zero).
Result<int64_t> ParseGoDuration(const std::string& text, double unit_ns) {
  static const std::map<std::string, double, std::less<>> kUnitNs = {
      {"ns", 1},   {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3},
      {"ms", 1e6}, {"s", 1e9},  {"m", 60e9},        {"h", 3600e9}};
  auto is_number = [](char ch) { return ch == '.' || (ch >= '0' && ch <= '9'); };
  size_t i = 0;
  double sign = 1;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) sign = text[i++] == '-' ? -1 : 1;
  if (text.substr(i) == "0") return int64_t{0};
  if (i == text.size()) return InvalidArgument("parse error");
  double total = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && is_number(text[i])) ++i;
    std::string number = text.substr(start, i - start);
    start = i;
    while (i < text.size() && !is_number(text[i])) ++i;
    auto unit = kUnitNs.find(std::string_view(text).substr(start, i - start));
    if (number.empty() || number == "." || number.size() > 30 ||
        std::count(number.begin(), number.end(), '.') > 1 || unit == kUnitNs.end()) {
      return InvalidArgument("parse error");
    }
    total += std::stod(number) * (unit->second / unit_ns);
  }
  return static_cast<int64_t>(sign * total);
}

// A Go-duration flag stored in `target` (ms or ns) after `check`.
void AddDuration(FlagSet* flags, const std::string& name, const std::string& default_text,
                 std::string help, int64_t* target, double unit_ns, bool allow_negative) {
  flags->Add(name, default_text, std::move(help),
             [target, unit_ns, allow_negative](const std::string& v) {
               ASSIGN_OR_RETURN(int64_t value, ParseGoDuration(v, unit_ns));
               if (value < 0 && !allow_negative) return InvalidArgument("must not be negative");
               *target = value;
               return OkStatus();
             });
}

// A URL list that may be empty (etcd's --listen-metrics-urls default).
Result<std::vector<Url>> ParseOptionalUrls(const std::string& text) {
  if (text.empty()) return std::vector<Url>{};
  return ParseUrls(text);
}

}  // namespace

Result<int64_t> ParseGoDurationMs(const std::string& text) { return ParseGoDuration(text, 1e6); }
Result<int64_t> ParseGoDurationNs(const std::string& text) { return ParseGoDuration(text, 1); }

bool IsDurationFlag(const std::string& name) {
  static const std::set<std::string> kNames = {"backend-batch-interval",
                                               "experimental-watch-progress-notify-interval",
                                               "experimental-corrupt-check-time",
                                               "experimental-compact-hash-check-time",
                                               "grpc-keepalive-min-time",
                                               "grpc-keepalive-interval",
                                               "grpc-keepalive-timeout",
                                               "experimental-warning-apply-duration",
                                               "experimental-warning-unary-request-duration",
                                               "warning-unary-request-duration",
                                               "experimental-downgrade-check-time",
                                               "experimental-compaction-sleep-interval",
                                               "raft-read-timeout",
                                               "raft-write-timeout",
                                               "discovery-dial-timeout",
                                               "discovery-request-timeout",
                                               "discovery-keepalive-time",
                                               "discovery-keepalive-timeout"};
  return kNames.count(name) > 0;
}

namespace {

// etcd 3.5's gRPC, Raft and durability tuning flags (docs/flags.md says what each does here).
void RegisterTuningFlags(FlagSet* f, Config* c) {
  f->AddUint("max-concurrent-streams", &c->max_concurrent_streams,
             "Maximum concurrent streams that each client can open at a time.");
  AddDuration(f, "grpc-keepalive-min-time", "5s",
              "Minimum interval duration that a client should wait before pinging server.",
              &c->grpc_keepalive_min_time_ms, 1e6, false);
  AddDuration(f, "grpc-keepalive-interval", "2h0m0s",
              "Frequency duration of server-to-client ping to check if a connection is alive (0 "
              "to disable).",
              &c->grpc_keepalive_interval_ms, 1e6, false);
  AddDuration(f, "grpc-keepalive-timeout", "20s",
              "Additional duration of wait before closing a non-responsive connection (0 to "
              "disable).",
              &c->grpc_keepalive_timeout_ms, 1e6, false);
  f->AddBool("enable-grpc-gateway", &c->enable_grpc_gateway, "Enable GRPC gateway.");
  f->Add("cors", "*",
         "Comma-separated white list of origins for CORS, or cross-origin resource sharing, "
         "(empty or * means allow all)",
         [c](const std::string& v) -> Status {
           // etcd's rule: "*" alone, or origins checked as it checks peer URLs
           // (scheme://host:port, no path).
           if (v == "*") {
             c->cors = {v};
             return OkStatus();
           }
           ASSIGN_OR_RETURN(std::vector<Url> urls, ParsePeerUrls(v));
           c->cors.clear();
           for (const Url& u : urls) c->cors.insert(u.text);
           return OkStatus();
         });
  f->Add("host-whitelist", "*",
         "Comma-separated acceptable hostnames from HTTP client requests, if server is not "
         "secure (empty means allow all).",
         [c](const std::string& v) -> Status {
           c->host_whitelist.clear();
           for (size_t start = 0;;) {
             const size_t comma = v.find(',', start);
             c->host_whitelist.insert(v.substr(start, comma - start));
             if (comma == std::string::npos) break;
             start = comma + 1;
           }
           return OkStatus();
         });
  f->AddBool("socket-reuse-port", &c->socket_reuse_port,
             "Enable to set socket option SO_REUSEPORT on listeners allowing rebinding of a port "
             "already in use.");
  const std::string catchup_help =
      "Number of entries for a slow follower to catch up after compacting the raft storage "
      "entries.";
  f->AddUint("snapshot-catchup-entries", &c->snapshot_catchup_entries, catchup_help);
  f->AddUint("experimental-snapshot-catchup-entries", &c->snapshot_catchup_entries,
             catchup_help + " (etcd 3.5's name for --snapshot-catchup-entries)");
  f->AddBool("pre-vote", &c->pre_vote, "Enable to run an additional Raft election phase.");
  f->AddBool("initial-election-tick-advance", &c->initial_election_tick_advance,
             "Whether to fast-forward initial election ticks on boot for faster election.");
  const std::string learners_help =
      "Sets the maximum number of learners that can be available in the cluster membership.";
  f->AddInt("max-learners", &c->max_learners, learners_help);
  f->AddInt("experimental-max-learners", &c->max_learners,
            learners_help + " (etcd 3.5's name for --max-learners)");
  f->AddBool("unsafe-no-fsync", &c->unsafe_no_fsync,
             "Disables fsync, unsafe, will cause data loss.");
  AddDuration(f, "experimental-warning-apply-duration", "100ms",
              "Time duration after which a warning is generated if request takes more time.",
              &c->warning_apply_duration_ns, 1, false);
  const std::string unary_help =
      "Time duration after which a warning is generated if a unary request takes more time.";
  AddDuration(f, "warning-unary-request-duration", "300ms", unary_help,
              &c->warning_unary_request_duration_ns, 1, false);
  AddDuration(f, "experimental-warning-unary-request-duration", "300ms",
              unary_help + " (etcd 3.5's name for --warning-unary-request-duration)",
              &c->warning_unary_request_duration_ns, 1, false);
}

}  // namespace

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
  AddUrls(f, "listen-client-http-urls", &c->listen_client_http_urls,
          "List of URLs to listen on for http only client traffic. Enabling this flag removes "
          "http services from --listen-client-urls.",
          ParseOptionalUrls);
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
  f->AddString("discovery-srv", &c->discovery_srv, "DNS domain used to bootstrap initial cluster.");
  f->AddString("discovery-srv-name", &c->discovery_srv_name,
               "Service name to query when using DNS discovery.");
  f->Add("experimental-discovery-srv-wait", "1m0s",
         "How long to keep asking DNS while the --discovery-srv records are missing or do not "
         "name this member yet (dolmen only; 0s asks once, as etcd).",
         NonNegativeMs(&c->discovery_srv_wait_ms));
  // AWS auto-scaling-group discovery (dolmen only; docs/discovery.md).
  f->AddString("discovery-aws-asg", &c->discovery_aws_asg,
               "Build the initial cluster from this AWS auto scaling group ('auto': the group of "
               "this instance) at the first start (dolmen only).");
  f->Add("experimental-discovery-aws-asg-wait", "5m0s",
         "How long --discovery-aws-asg waits for the metadata service and for the group's "
         "InService instances to reach its desired capacity (dolmen only).",
         NonNegativeMs(&c->discovery_aws_asg_wait_ms));
  f->Add("discovery-aws-asg-removal-grace", "5m0s",
         "With --discovery-aws-asg, how long a member whose instance is terminated or gone from "
         "the group stays in the cluster before the leader removes it (dolmen only).",
         NonNegativeMs(&c->discovery_aws_asg_removal_grace_ms));
  RegisterV3DiscoveryFlags(f, c);  // etcd 3.6's --discovery-token & co (embed/v3_bootstrap.h)
  f->AddBool("auto-promote-learners", &c->auto_promote_learners,
             "Let the leader promote a learner once it has stayed in sync with the leader's log "
             "(dolmen only; etcd-io/etcd#15107).");
  f->Add("auto-remove-unreachable-after", "0s",
         "Let the leader remove a voter it has not heard from for this long, when the others "
         "keep a healthy quorum (dolmen only; 0s: never).",
         NonNegativeMs(&c->auto_remove_unreachable_after_ms));
  // Auth (docs/auth.md).
  f->AddString("auth-token", &c->auth_token,
               "Specify auth token specific options (dolmen: only \"simple\").");
  f->AddUint("bcrypt-cost", &c->bcrypt_cost,
             "Specify bcrypt algorithm cost factor for auth password hashing.");
  f->AddUint("auth-token-ttl", &c->auth_token_ttl, "The lifetime in seconds of the auth token.");
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
  // Auto-compaction and --force-new-cluster (docs/maintenance.md, docs/membership.md).
  f->AddString("auto-compaction-retention", &c->auto_compaction_retention,
               "Auto compaction retention for mvcc key value store. 0 means disable auto "
               "compaction.");
  f->AddString("auto-compaction-mode", &c->auto_compaction_mode,
               "interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for "
               "duration based retention, defaulting to hours if no time unit is provided (e.g. "
               "'5m'). 'revision' for revision number based retention.");
  f->AddBool("force-new-cluster", &c->force_new_cluster,
             "Force to create a new one member cluster.");
  f->AddBool("strict-reconfig-check", &c->strict_reconfig_check,
             "Reject reconfiguration requests that would cause quorum loss.");
  RegisterTuningFlags(f, c);
  RegisterAnsweredFlags(f, &c->answered_values);
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
  RegisterTlsFlags(f, c);
  // The HTTP side (docs/http.md).
  AddUrls(f, "listen-metrics-urls", &c->listen_metrics_urls,
          "List of URLs to listen on for the metrics and health endpoints.", ParseOptionalUrls);
  f->AddString("metrics", &c->metrics,
               "Set level of detail for exported metrics, specify 'extensive' to include "
               "histogram metrics");
  f->AddString("config-file", &c->config_file,
               "Path to the server configuration file (etcd's YAML format). Note that if a "
               "configuration file is provided, other command line flags and environment "
               "variables will be ignored.");
  f->AddBool("version", &c->show_version, "Print the version and exit.");
  f->AddBool("help", &c->show_help, "Show this help and exit.");
  f->AddBool("h", &c->show_help, "Show this help and exit.");
}

Result<server::AutoCompactionOptions> ParseAutoCompaction(const std::string& mode,
                                                          const std::string& retention) {
  server::AutoCompactionOptions out;
  if (mode == "periodic") {
    out.mode = server::AutoCompactionMode::kPeriodic;
  } else if (mode == "revision") {
    out.mode = server::AutoCompactionMode::kRevision;
  } else {
    return InvalidArgument("unknown auto-compaction-mode \"" + mode + "\"");
  }
  // Go's strconv.Atoi: optional sign, decimal digits, no overflow.
  const size_t digits_from = !retention.empty() && retention[0] == '+' ? 1 : 0;
  const bool integer = retention.size() > digits_from && retention.size() - digits_from <= 18 &&
                       retention.find_first_not_of("0123456789", digits_from) == std::string::npos;
  if (integer) {
    const int64_t n = std::stoll(retention.substr(digits_from));
    if (out.mode == server::AutoCompactionMode::kPeriodic) {
      if (n > std::chrono::nanoseconds::max().count() / 3600000000000) {
        return InvalidArgument("--auto-compaction-retention " + retention + " is too long");
      }
      out.retention_time = std::chrono::hours(n);
    } else {
      out.retention_revisions = n;
    }
    return out;
  }
  auto ms = ParseGoDurationMs(retention);
  if (!ms.ok()) {
    return InvalidArgument("error parsing CompactionRetention: time: invalid duration \"" +
                           retention + "\"");
  }
  if (*ms < 0) {
    return InvalidArgument("--auto-compaction-retention " + retention + " is negative");
  }
  if (*ms > std::chrono::nanoseconds::max().count() / 1000000) {
    return InvalidArgument("--auto-compaction-retention " + retention + " is too long");
  }
  if (out.mode == server::AutoCompactionMode::kPeriodic) {
    out.retention_time = std::chrono::milliseconds(*ms);
  } else {
    out.retention_revisions = *ms * 1000000;  // etcd: int64(time.Duration), in nanoseconds
  }
  return out;
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

namespace {

// etcd 3.5's experimental names and their 3.6 successors set the same value: giving both is
// ambiguous, and refused as etcd 3.6 refuses it for the warning duration.
Status CheckOneOfEachPair(const FlagSet& flags) {
  for (const auto& [old_name, new_name] : std::vector<std::pair<std::string, std::string>>{
           {"experimental-snapshot-catchup-entries", "snapshot-catchup-entries"},
           {"experimental-max-learners", "max-learners"},
           {"experimental-warning-unary-request-duration", "warning-unary-request-duration"}}) {
    if (flags.WasSet(old_name) && flags.WasSet(new_name)) {
      return InvalidArgument("both --" + old_name + " and --" + new_name +
                             " flags are set. Use only --" + new_name);
    }
  }
  return OkStatus();
}

// etcd's --auth-token: "<type>[,<name>=<value>...]". Dolmen issues etcd's simple tokens only;
// every other type (jwt included) gets etcd's refusal for a type it does not know.
Status CheckAuthToken(const std::string& value) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t comma = value.find(',', start);
    parts.push_back(value.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  std::set<std::string> names;
  for (size_t i = 1; i < parts.size(); ++i) {
    size_t eq = parts[i].find('=');
    if (eq == std::string::npos || parts[i].find('=', eq + 1) != std::string::npos ||
        !names.insert(parts[i].substr(0, eq)).second) {
      return InvalidArgument("auth: invalid auth options (--auth-token " + value +
                             "): an option is not one name=value");
    }
  }
  if (parts[0] == "simple") return OkStatus();
  return InvalidArgument("auth: invalid auth options (--auth-token " + value +
                         "): dolmen issues only \"simple\" tokens (docs/auth.md)");
}

Status ValidateTuning(const FlagSet& flags, const Config& c) {
  RETURN_IF_ERROR(CheckOneOfEachPair(flags));
  if (c.max_concurrent_streams == 0) {
    return InvalidArgument("--max-concurrent-streams must be positive");
  }
  if (c.max_learners < 1) return InvalidArgument("--max-learners must be at least 1");
  if (c.snapshot_catchup_entries == 0) {
    return InvalidArgument("--snapshot-catchup-entries must be positive");
  }
  return CheckAnsweredFlags(flags, c.answered_values);
}

// --discovery-aws-asg: the initial cluster comes from the group at start
// (embed/asg_bootstrap.h), and the flags it would fill are noted when given.
Status ValidateAwsAsg(const FlagSet& flags, Config* c) {
  c->explicit_flags = {
      flags.WasSet("name"), !c->data_dir.empty(), flags.WasSet("initial-advertise-peer-urls"),
      flags.WasSet("advertise-client-urls"), flags.WasSet("initial-cluster-token")};
  if (c->discovery_aws_asg.empty()) return OkStatus();
  if (!c->initial_cluster.empty() && c->initial_cluster != "default=http://localhost:2380") {
    return InvalidArgument(
        "--discovery-aws-asg and --initial-cluster are both set: choose one (the auto scaling "
        "group gives the initial cluster)");
  }
  if (!c->discovery_srv.empty()) {
    return InvalidArgument("--discovery-aws-asg and --discovery-srv are both set: choose one");
  }
  if (!c->discovery_token.empty() || !c->discovery_endpoints.empty()) {
    return InvalidArgument(
        "--discovery-aws-asg and --discovery-token/--discovery-endpoints are both set: choose "
        "one");
  }
  c->initial_cluster.clear();
  return OkStatus();
}

}  // namespace

Status Validate(const FlagSet& flags, Config* c) {
  RETURN_IF_ERROR(ValidateAwsAsg(flags, c));
  if (c->data_dir.empty()) c->data_dir = c->name + ".dolmen";
  RETURN_IF_ERROR(ValidateTuning(flags, *c));
  c->startup_warnings = NoEffectNotes(flags);
  c->grpc_keepalive_min_time_explicit = flags.WasSet("grpc-keepalive-min-time");
  if (c->unsafe_no_fsync) {
    c->startup_warnings.push_back(
        "--unsafe-no-fsync: the write-ahead log and the backend are NEVER fsynced; a power "
        "loss or kernel crash can lose acknowledged writes and break Raft's guarantees. Use "
        "only for tests and throwaway clusters");
  }
  RETURN_IF_ERROR(ValidateV3Discovery(c));  // --discovery-token & co (embed/v3_bootstrap.h)
  // --discovery-srv: the initial cluster comes from DNS at start (embed/srv_bootstrap.h). etcd
  // takes its own default initial cluster (as read back from a config file) as unset.
  if (!c->discovery_srv.empty()) {
    if (!c->initial_cluster.empty() && c->initial_cluster != "default=http://localhost:2380") {
      return InvalidArgument(
          "multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", "
          "\"discovery\" or \"discovery-srv\"");
    }
    c->initial_cluster.clear();
  } else if (!c->discovery_srv_name.empty()) {
    return InvalidArgument("--discovery-srv-name is set without --discovery-srv");
  }
  if (c->initial_cluster.empty() && c->discovery_srv.empty() && c->discovery_aws_asg.empty()) {
    c->initial_cluster = c->name + "=" + c->initial_advertise_peer_urls;
  }
  if (c->max_txn_ops <= 0) return InvalidArgument("--max-txn-ops must be positive");
  RETURN_IF_ERROR(CheckAuthToken(c->auth_token));
  if (c->backend_batch_limit < 0) {
    return InvalidArgument("--backend-batch-limit must not be negative");
  }
  if (c->max_request_bytes == 0) return InvalidArgument("--max-request-bytes must be positive");
  if (c->quota_backend_bytes < 0) return InvalidArgument("--quota-backend-bytes must be >= 0");
  if (c->wal_segment_bytes < 65536) {
    return InvalidArgument("--experimental-wal-segment-bytes must be at least 65536");
  }
  ASSIGN_OR_RETURN(c->auto_compaction,
                   ParseAutoCompaction(c->auto_compaction_mode, c->auto_compaction_retention));
  ASSIGN_OR_RETURN(c->listen_client, ParseUrls(c->listen_client_urls));
  ASSIGN_OR_RETURN(c->listen_client_http,
                   ParseClientHttpUrls(c->listen_client_http_urls, c->listen_client));
  ASSIGN_OR_RETURN(c->advertise_client, ParseUrls(c->advertise_client_urls));
  ASSIGN_OR_RETURN(c->advertise_peer, ParsePeerUrls(c->initial_advertise_peer_urls));
  ASSIGN_OR_RETURN(c->listen_peer, ParsePeerUrls(c->listen_peer_urls));
  if (c->discovery_srv.empty() && c->discovery_aws_asg.empty()) {
    ASSIGN_OR_RETURN(c->initial_members, ParseInitialCluster(c->initial_cluster));
  }
  if (c->heartbeat_interval_ms == 0) return InvalidArgument("--heartbeat-interval must be > 0");
  if (c->election_timeout_ms < 5 * c->heartbeat_interval_ms) {
    // etcd's rule: an election timeout must leave room for several heartbeats.
    return InvalidArgument("--election-timeout[" + std::to_string(c->election_timeout_ms) +
                           "ms] should be at least as 5 times as --heartbeat-interval[" +
                           std::to_string(c->heartbeat_interval_ms) + "ms]");
  }
  ASSIGN_OR_RETURN(c->listen_metrics, ParseOptionalUrls(c->listen_metrics_urls));
  for (const Url& u : c->listen_metrics) {
    // etcd 3.4 would also take unix:// and unixs:// here; nobody scrapes a socket file.
    if (u.scheme != "http" && u.scheme != "https") {
      return InvalidArgument("--listen-metrics-urls: " + u.text +
                             ": only http and https URLs are served for metrics");
    }
  }
  RETURN_IF_ERROR(ValidateTls(flags, *c));
  return OkStatus();
}

server::ServerConfig ToServerConfig(const Config& c, const transport::TlsOptions& peer_tls) {
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
  s.auto_compaction = c.auto_compaction;
  // Test-only hook (tests/integration/auto_compaction_test.py): etcd's revision compactor
  // checks every 5 minutes, too slow for a test; DOLMEN_TEST_REVISION_COMPACTION_INTERVAL_MS
  // shortens it. Never set it outside tests.
  if (const char* env = std::getenv("DOLMEN_TEST_REVISION_COMPACTION_INTERVAL_MS")) {
    const long long ms = std::strtoll(env, nullptr, 10);
    if (ms > 0) s.auto_compaction.revision_check_interval = std::chrono::milliseconds(ms);
  }
  s.force_new_cluster = c.force_new_cluster;
  // A replacement instance joins as a learner; under --discovery-aws-asg the leader promotes it
  // and removes the member of the instance it replaced (docs/discovery.md, "Replacement").
  s.auto_promote_learners = c.auto_promote_learners || !c.discovery_aws_asg.empty();
  s.remove_unreachable_after = std::chrono::milliseconds(c.auto_remove_unreachable_after_ms);
  s.find_dead_members = c.aws_asg_find_dead_members;
  s.member_removal.grace = std::chrono::milliseconds(c.discovery_aws_asg_removal_grace_ms);
  // Rounds often enough to act within a fraction of the grace, never more than every 5 s.
  s.member_removal.interval = std::clamp(s.member_removal.grace / 4, std::chrono::milliseconds(250),
                                         std::chrono::milliseconds(5000));
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
  s.wal_dir = c.wal_dir;
  s.max_learners = static_cast<int>(c.max_learners);
  s.pre_vote = c.pre_vote;
  s.driver.catch_up_entries = c.snapshot_catchup_entries;
  s.driver.initial_election_tick_advance = c.initial_election_tick_advance;
  s.driver.warning_apply_duration = std::chrono::nanoseconds(c.warning_apply_duration_ns);
  s.max_txn_ops = c.max_txn_ops;
  // etcd falls back to bcrypt's default cost for one outside [4, 31], with a warning.
  s.bcrypt_cost = c.bcrypt_cost >= 4 && c.bcrypt_cost <= 31 ? static_cast<int>(c.bcrypt_cost) : 10;
  // etcd: a TTL of 0 is the default's 300 s.
  s.auth_token_ttl = std::chrono::seconds(c.auth_token_ttl > 0 ? c.auth_token_ttl : 300);
  s.max_request_bytes = c.max_request_bytes;
  s.quota_backend_bytes = static_cast<uint64_t>(c.quota_backend_bytes);
  s.wal.segment_bytes = c.wal_segment_bytes;
  s.fs = io::PosixFileSystem();
  if (c.unsafe_no_fsync) {
    // etcd's --unsafe-no-fsync: nothing is fsynced, neither the log nor the backend.
    static io::NoSyncFileSystem no_sync(io::PosixFileSystem());
    s.fs = &no_sync;
    s.backend_no_sync = true;
  }
  s.fetch_cluster_info =
      [peer_tls](const std::vector<std::string>& peer_urls) -> Result<server::ClusterInfo> {
    ASSIGN_OR_RETURN(transport::ClusterInfo info,
                     transport::FetchClusterInfo(peer_urls, std::chrono::seconds(5), peer_tls));
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
