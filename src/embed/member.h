// Runs one member as a process: opens its storage, serves the gRPC API on the client URLs,
// tells systemd it is ready, and shuts down cleanly on SIGTERM/SIGINT (in-flight requests are
// finished or failed, the backend synced and closed).
#pragma once

#include "embed/config.h"

namespace dolmen::embed {

// Blocks until a signal or a fatal storage error. Returns the process exit code.
// Must be called before any other thread is started (it sets the signal mask).
int RunMember(const Config& config);

}  // namespace dolmen::embed
