// dolmen: an etcd v3 member. Flags are etcd's; see `dolmen --help`.
#include <absl/synchronization/mutex.h>

#include <cstdio>
#include <string>
#include <vector>

#include "api/maintenance_service.h"
#include "embed/config.h"
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
  dolmen::Status parsed = flags.Parse(argc, argv, env, &warnings);
  for (const auto& w : warnings) std::fprintf(stderr, "dolmen: warning: %s\n", w.c_str());
  if (!parsed.ok()) {
    std::fprintf(stderr, "dolmen: %s\nRun 'dolmen --help' for the flags.\n",
                 parsed.message().c_str());
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
