#pragma once

// The checks behind /health, /livez and /readyz, as etcd 3.5.13 (the API dolmen reports) runs
// them (etcd: server/etcdserver/api/etcdhttp/health.go). docs/http.md has the details.

#include <chrono>
#include <set>
#include <string>

#include "server/server.h"

namespace dolmen::http {

struct HealthOptions {
  // How long a test read may take before the member counts as unhealthy. etcd 3.4 gives its
  // QGET one second; etcd 3.5 gives /health's Range the request timeout (7 s by default) and
  // /readyz's none, which would let a probe hang for as long as quorum is lost. One second
  // keeps "unhealthy within 2 s of losing quorum" true while a loaded member still answers.
  std::chrono::milliseconds read_timeout{1000};
};

class HealthChecks {
 public:
  HealthChecks(server::Server* server, HealthOptions options = {});

  struct Result {
    bool ok = true;
    std::string reason;  // etcd's reason text when !ok
  };
  // /health: alarms not in `excluded_alarms` ("NOSPACE", "CORRUPT"), then a leader (skipped
  // when serializable), then a Range (keys_only, limit 1; serializable or linearizable).
  Result Health(const std::set<std::string>& excluded_alarms, bool serializable);
  // The named checks of /livez and /readyz: "data_corruption", "serializable_read",
  // "linearizable_read". Returns the error text on failure.
  Result RunCheck(const std::string& name);

 private:
  Result Read(bool serializable);

  server::Server* server_;
  HealthOptions options_;
};

}  // namespace dolmen::http
