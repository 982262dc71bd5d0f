// dolmen: an etcd v3 member. Flags are etcd's; see `dolmen --help`.
#include <absl/synchronization/mutex.h>

#include <cstdio>
#include <string>
#include <vector>

#include "api/maintenance_service.h"
#include "embed/config.h"
#include "embed/config_file.h"
#include "embed/flag_set.h"
#include "embed/member.h"
#include "embed/version.h"
#include "log/log.h"
#include "log/outputs.h"

extern char** environ;

int main(int argc, char** argv) {
  // Debian's Abseil is built with Mutex deadlock detection on: every lock gRPC takes then
  // updates a global lock graph (2-3% of a busy member's CPU in perf). It is a debugging aid.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  dolmen::embed::Config config;
  dolmen::embed::FlagSet flags;
  dolmen::embed::RegisterFlags(&flags, &config);

  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  std::vector<std::string> warnings;
  dolmen::Status parsed = flags.ParseArgs(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "dolmen: %s\nRun 'dolmen --help' for the flags.\n",
                 parsed.message().c_str());
    return 2;
  }
  // etcd 3.4 (etcdmain/config.go parse): ETCD_CONFIG_FILE is read on its own, before any
  // other variable, because a config file makes every other flag and ETCD_* be ignored.
  std::string config_file = config.config_file;
  for (const auto& kv : env) {
    if (config_file.empty() && kv.rfind("ETCD_CONFIG_FILE=", 0) == 0) config_file = kv.substr(17);
  }
  if (!config.show_help && !config.show_version && !config_file.empty()) {
    config = dolmen::embed::Config{};
    flags = dolmen::embed::FlagSet{};
    dolmen::embed::RegisterFlags(&flags, &config);
    parsed = dolmen::embed::LoadConfigFile(config_file, &flags, &warnings);
  } else {
    parsed = flags.ApplyEnv(env, &warnings);
  }
  // Until logging is configured (it is configured by these very flags), what goes wrong is a
  // usage error, printed as plain text as Go's flag package prints etcd's.
  if (!parsed.ok()) {
    for (const auto& w : warnings) std::fprintf(stderr, "dolmen: warning: %s\n", w.c_str());
    std::fprintf(stderr, "dolmen: %s\n", parsed.message().c_str());
    return 2;
  }
  if (config.show_help) {
    std::printf(
        "Usage:\n\n  dolmen [flags]\n    Start a Dolmen (etcd v3 compatible) member.\n\n"
        "Flags (each also settable as ETCD_<NAME>, e.g. ETCD_DATA_DIR):\n%s",
        flags.Usage().c_str());
    return 0;
  }
  if (config.show_version) {
    std::printf("dolmen Version: %s\netcd API Version: %s\n", dolmen::kDolmenVersion,
                dolmen::api::kEtcdApiVersion);
    return 0;
  }
  // From here on, every line goes through the logger (docs/logging.md).
  dolmen::log::Options log_options;
  log_options.logger = config.logger;
  log_options.level = config.log_level;
  log_options.outputs = config.log_outputs;
  if (dolmen::Status s = dolmen::log::Configure(log_options); !s.ok()) {
    std::fprintf(stderr, "dolmen: %s\n", s.message().c_str());
    return 2;
  }
  if (!config_file.empty()) {
    // etcd's words (etcdmain/config.go).
    dolmen::log::Info(
        "loaded server configuration, other configuration command line flags and environment "
        "variables will be ignored if provided",
        {{"path", config_file}});
  }
  for (const auto& w : warnings) dolmen::log::Warn(w);
  if (dolmen::Status s = dolmen::embed::Validate(flags, &config); !s.ok()) {
    // etcd logs a refused configuration as "failed to verify flags" with the reason.
    dolmen::log::Error("failed to verify flags", {{"error", s.message()}});
    return 2;
  }
  return dolmen::embed::RunMember(config);
}
