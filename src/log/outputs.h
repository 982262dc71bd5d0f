// Where log lines go, and the flags that say so: etcd's --logger, --log-level and --log-outputs
// (etcd 3.5 embed/config_logging.go), on spdlog sinks. The checks and their messages are etcd's.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "log/log.h"

namespace dolmen::log {

// The socket sd_journal_send writes to; `systemd/journal` is refused at start-up without it.
inline constexpr const char* kJournalSocket = "/run/systemd/journal/socket";

struct Options {
  std::string logger = "zap";
  std::string level = "info";
  std::string outputs = "default";  // as given to --log-outputs: a comma-separated list
};

// zap's level names (upper case too; "" is info), else etcd's panic text as an error:
// unrecognized level: "verbose".
Result<Level> ParseLevel(std::string_view text);

// --log-outputs as etcd reads it (flags.UniqueStringsValue): split at commas, duplicates
// dropped, sorted.
std::vector<std::string> SplitOutputs(const std::string& text);

// Checks `outputs` as etcd does and opens them: "default" and "stderr" (standard error),
// "stdout", "systemd/journal" (alone; the journal socket must answer), "/dev/null" (discards
// everything), anything else a file path, created if missing and appended to. Nothing is
// changed when it fails.
Result<std::shared_ptr<Sink>> OpenOutputs(const std::vector<std::string>& outputs);

// Checks every option, then switches logging over: the level and the outputs.
Status Configure(const Options& options);

// Standard error: where lines go until Configure.
std::shared_ptr<Sink> NewStderrSink();

}  // namespace dolmen::log
