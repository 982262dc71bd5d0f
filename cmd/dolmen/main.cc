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
    if (parsed.ok()) {
      std::fprintf(stderr,
                   "dolmen: loaded server configuration, other configuration command line flags "
                   "and environment variables will be ignored if provided (path %s)\n",
                   config_file.c_str());
    }
  } else {
    parsed = flags.ApplyEnv(env, &warnings);
  }
  for (const auto& w : warnings) std::fprintf(stderr, "dolmen: warning: %s\n", w.c_str());
  if (!parsed.ok()) {
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
  if (dolmen::Status s = dolmen::embed::Validate(flags, &config); !s.ok()) {
    std::fprintf(stderr, "dolmen: %s\n", s.message().c_str());
    return 2;
  }
  return dolmen::embed::RunMember(config);
}
