#include "embed/answered_flags.h"

#include <charconv>

#include "embed/config.h"

namespace dolmen::embed {
namespace {

using Kind = AnsweredFlag::Kind;

AnsweredFlag NoEffect(std::string name, Kind kind, std::string default_text, std::string reason,
                      std::string valid_values = "") {
  return AnsweredFlag{std::move(name),   kind, std::move(default_text), false, "",
                      std::move(reason), "",   std::move(valid_values)};
}

AnsweredFlag Refused(std::string name, Kind kind, std::string default_text, std::string harmless,
                     std::string reason, std::string instead = "") {
  return AnsweredFlag{std::move(name),         kind,
                      std::move(default_text), true,
                      std::move(harmless),     std::move(reason),
                      std::move(instead),      ""};
}

const char kNoTracing[] =
    "it is read only with --experimental-enable-distributed-tracing, which dolmen refuses";
const char kNoProxy[] = "it is read only in v2 proxy mode (--proxy), which dolmen refuses";
const char kNoRaftHttp[] =
    "dolmen's peer transport is a plain TCP stream with its own reconnects (docs/transport.md), "
    "not etcd's rafthttp, and sets no such timeouts";
const char kNoLeaseCheckpoint[] =
    "lease checkpointing is not implemented: a new leader gives every lease its full TTL again "
    "(docs/lease.md)";

std::vector<AnsweredFlag> MakeTable() {
  std::vector<AnsweredFlag> t = {
      NoEffect("max-snapshots", Kind::kUint, "5",
               "dolmen writes no etcd-style .snap files: a checkpoint is a marker in the WAL, "
               "and a snapshot image received from the leader is deleted once installed"),
      NoEffect("max-wals", Kind::kUint, "5",
               "dolmen deletes each WAL segment as soon as a checkpoint covers it (every "
               "--snapshot-count entries and every 5 s), so no old segments pile up to count"),
      NoEffect("backend-bbolt-freelist-type", Kind::kText, "map",
               "the backend is LMDB, which keeps its own free list; there is no bbolt freelist "
               "to choose"),
      NoEffect("raft-read-timeout", Kind::kDuration, "5s", kNoRaftHttp),
      NoEffect("raft-write-timeout", Kind::kDuration, "5s", kNoRaftHttp),
      NoEffect("socket-reuse-address", Kind::kBool, "false",
               "dolmen's listeners always set SO_REUSEADDR, so a restarted member binds while "
               "old connections sit in TIME_WAIT"),
      NoEffect("enable-v2", Kind::kBool, "false",
               "the v2 API is not served (etcd 3.6 removed it); v2 requests get 404"),
      NoEffect("v2-deprecation", Kind::kText, "not-yet",
               "dolmen has no v2 store, so every deprecation phase already holds",
               "not-yet,write-only,write-only-drop-data,gone"),
      NoEffect("experimental-distributed-tracing-address", Kind::kText, "localhost:4317",
               kNoTracing),
      NoEffect("experimental-distributed-tracing-service-name", Kind::kText, "etcd", kNoTracing),
      NoEffect("experimental-distributed-tracing-instance-id", Kind::kText, "", kNoTracing),
      NoEffect("experimental-distributed-tracing-sampling-rate", Kind::kInt, "0", kNoTracing),
      NoEffect("proxy-failure-wait", Kind::kUint, "5000", kNoProxy),
      NoEffect("proxy-refresh-interval", Kind::kUint, "30000", kNoProxy),
      NoEffect("proxy-dial-timeout", Kind::kUint, "1000", kNoProxy),
      NoEffect("proxy-write-timeout", Kind::kUint, "5000", kNoProxy),
      NoEffect("proxy-read-timeout", Kind::kUint, "0", kNoProxy),
      NoEffect("experimental-compaction-batch-limit", Kind::kInt, "1000",
               "dolmen compacts in the apply thread in fixed chunks (docs/mvcc.md), not in a "
               "background loop of batches"),
      NoEffect("experimental-compaction-sleep-interval", Kind::kDuration, "10ms",
               "dolmen compacts in the apply thread in fixed chunks (docs/mvcc.md), with no "
               "background loop to pause"),
      NoEffect("experimental-downgrade-check-time", Kind::kDuration, "5s",
               "dolmen does not implement downgrades (the Downgrade RPC answers Unimplemented), "
               "so there is no downgrade status to check"),
      NoEffect("experimental-txn-mode-write-with-shared-buffer", Kind::kBool, "true",
               "it is a bbolt read-buffer optimisation; dolmen's write txns read LMDB's own "
               "transaction"),
      Refused("experimental-enable-distributed-tracing", Kind::kBool, "false", "false",
              "OpenTelemetry tracing is not built in (Debian 12 packages no OpenTelemetry C++ "
              "SDK)"),
      Refused("proxy", Kind::kText, "off", "off",
              "the v2 proxy is not provided (etcd 3.6 removed it)",
              "point clients at the members, or run etcd's grpc-proxy"),
      Refused("client-cert-allowed-hostname", Kind::kText, "", "",
              "checking a client certificate's hostname is not implemented",
              "--client-cert-auth with a CA that issues only the client certificates you allow"),
      NoEffect("enable-pprof", Kind::kBool, "false",
               "Go's pprof profiler has no counterpart in a C++ server (perf against the "
               "member's pid does that job); etcd's sample config file turns it on"),
      Refused("log-format", Kind::kText, "json", "json",
              "only etcd's default JSON lines are written (docs/logging.md)"),
      Refused("enable-log-rotation", Kind::kBool, "false", "false", "log rotation is not built in",
              "--log-outputs=systemd/journal, or logrotate with copytruncate"),
      NoEffect("log-rotation-config-json", Kind::kText,
               "{\"maxsize\": 100, \"maxage\": 0, \"maxbackups\": 0, \"localtime\": false, "
               "\"compress\": false}",
               "it is read only with --enable-log-rotation, which dolmen refuses"),
      Refused("discovery", Kind::kText, "", "",
              "discovery through a discovery service (etcd's v2 discovery URL) is not "
              "implemented",
              "--discovery-token with --discovery-endpoints (etcd 3.6's v3 discovery), "
              "--discovery-srv (DNS SRV) or --initial-cluster"),
      Refused("discovery-proxy", Kind::kText, "", "",
              "it is read only with --discovery, which dolmen refuses"),
      NoEffect("discovery-fallback", Kind::kText, "proxy",
               "it says what to do when --discovery fails, and dolmen refuses --discovery",
               "exit,proxy"),
      Refused("experimental-enable-v2v3", Kind::kText, "", "",
              "the v2 API is not served (etcd 3.6 removed it)"),
      Refused("experimental-enable-lease-checkpoint", Kind::kBool, "false", "false",
              kNoLeaseCheckpoint),
      Refused("experimental-enable-lease-checkpoint-persist", Kind::kBool, "false", "false",
              kNoLeaseCheckpoint),
      Refused("experimental-memory-mlock", Kind::kBool, "false", "false",
              "locking the backend in RAM is not implemented (LMDB maps its whole map size, 8 "
              "GiB of address space by default, not only the data file)"),
      Refused("experimental-bootstrap-defrag-threshold-megabytes", Kind::kUint, "0", "0",
              "defragmentation at start-up is not implemented",
              "run 'etcdctl defrag' against the member once it serves"),
      Refused("experimental-stop-grpc-service-on-defrag", Kind::kBool, "false", "false",
              "dolmen serves no gRPC health service to mark NOT_SERVING during a "
              "defragmentation"),
  };
  // etcd's own list of long-gone flags it accepts and ignores (etcdmain/config.go "ignored").
  for (const char* name :
       {"cluster-active-size", "cluster-remove-delay", "cluster-sync-interval", "config", "force",
        "max-result-buffer", "max-retry-attempts", "peer-heartbeat-interval",
        "peer-election-timeout", "retry-interval", "snapshot", "v", "vv"}) {
    t.push_back(NoEffect(name, Kind::kIgnored, "",
                         "etcd itself ignores it: a flag of etcd 0.4 kept so old command lines "
                         "still start"));
  }
  return t;
}

template <typename T>
Status CheckNumber(const std::string& v) {
  T parsed{};
  return ParseNumber(v, &parsed);
}

// Checks `value` for the flag's kind and returns the form compared with its harmless value.
Result<std::string> Canonical(const AnsweredFlag& f, const std::string& value) {
  switch (f.kind) {
    case Kind::kBool: {
      bool b = false;
      RETURN_IF_ERROR(ParseGoBool(value, &b));
      return std::string(b ? "true" : "false");
    }
    case Kind::kUint:
      RETURN_IF_ERROR(CheckNumber<uint64_t>(value));
      return value;
    case Kind::kInt:
      RETURN_IF_ERROR(CheckNumber<int64_t>(value));
      return value;
    case Kind::kDuration: {
      ASSIGN_OR_RETURN(int64_t ns, ParseGoDurationNs(value));
      return std::to_string(ns);
    }
    case Kind::kText:
      if (!f.valid_values.empty() &&
          ("," + f.valid_values + ",").find("," + value + ",") == std::string::npos) {
        return InvalidArgument("valid values include " + f.valid_values);
      }
      return value;
    case Kind::kIgnored:
      return value;
  }
  return value;
}

}  // namespace

const std::vector<AnsweredFlag>& AnsweredFlags() {
  static const std::vector<AnsweredFlag> table = MakeTable();
  return table;
}

const AnsweredFlag* FindAnsweredFlag(const std::string& name) {
  for (const auto& f : AnsweredFlags()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string RefusalMessage(const AnsweredFlag& f) {
  std::string line = "--" + f.name + " is not supported by dolmen: " + f.reason;
  if (!f.instead.empty()) line += "; instead, " + f.instead;
  return line;
}

void RegisterAnsweredFlags(FlagSet* flags, std::map<std::string, std::string>* values) {
  for (const AnsweredFlag& f : AnsweredFlags()) {
    std::string help = f.refused ? "Not supported by dolmen: " + f.reason + "."
                                 : "Accepted with no effect: " + f.reason + ".";
    auto set = [&f, values](const std::string& v) -> Status {
      ASSIGN_OR_RETURN(std::string canonical, Canonical(f, v));
      (*values)[f.name] = canonical;
      return OkStatus();
    };
    if (f.kind == Kind::kBool || f.kind == Kind::kIgnored) {
      flags->AddBoolSetter(f.name, f.default_text == "true", std::move(help), set);
    } else {
      flags->Add(f.name, f.default_text, std::move(help), set);
    }
  }
}

Status CheckAnsweredFlags(const FlagSet& flags, const std::map<std::string, std::string>& values) {
  for (const AnsweredFlag& f : AnsweredFlags()) {
    if (!f.refused || !flags.WasSet(f.name)) continue;
    auto it = values.find(f.name);
    if (it == values.end() || it->second == f.harmless) continue;
    return InvalidArgument(RefusalMessage(f));
  }
  return OkStatus();
}

std::vector<std::string> NoEffectNotes(const FlagSet& flags) {
  std::vector<std::string> notes;
  for (const AnsweredFlag& f : AnsweredFlags()) {
    if (f.refused || !flags.WasSet(f.name)) continue;
    notes.push_back("--" + f.name + " is accepted with no effect: " + f.reason);
  }
  return notes;
}

}  // namespace dolmen::embed
