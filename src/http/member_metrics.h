#pragma once

// Metrics read from a running member at scrape time, with etcd's names (etcdserver/metrics.go,
// mvcc/metrics.go): has_leader, is_leader, is_learner, proposals committed/applied (the commit
// and applied indexes, as etcd reports them: gauges despite the _total names), the backend
// quota, db sizes (also under etcd 3.4's debugging name), the current revision, and the id/version
// info gauges. Registered by the constructor, removed by the destructor; the server must outlive
// this object.

#include <string>

#include "metrics/metrics.h"
#include "server/server.h"

namespace dolmen::http {

class MemberMetrics {
 public:
  MemberMetrics(server::Server* server, metrics::Registry* registry,
                const std::string& server_version, const std::string& cluster_version);
  ~MemberMetrics();
  MemberMetrics(const MemberMetrics&) = delete;
  MemberMetrics& operator=(const MemberMetrics&) = delete;

 private:
  metrics::Registry* registry_;
};

}  // namespace dolmen::http
