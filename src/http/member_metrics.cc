#include "http/member_metrics.h"

#include "log/log.h"
#include "server/quota.h"

namespace dolmen::http {
namespace {

// "3.5.0" -> "3.5": etcd labels etcd_cluster_version with major.minor.
std::string MajorMinor(const std::string& version) {
  const size_t first = version.find('.');
  const size_t second = version.find('.', first == std::string::npos ? 0 : first + 1);
  return second == std::string::npos ? version : version.substr(0, second);
}

}  // namespace

MemberMetrics::MemberMetrics(server::Server* s, metrics::Registry* registry,
                             const std::string& server_version, const std::string& cluster_version)
    : registry_(registry) {
  const void* owner = this;
  auto& r = *registry;
  r.AddGaugeFunc(
      "etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.",
      [s] { return s->leader() == MemberId(0) ? 0.0 : 1.0; }, owner);
  r.AddGaugeFunc(
      "etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.",
      [s] { return s->leader() == s->member_id() ? 1.0 : 0.0; }, owner);
  r.AddGaugeFunc(
      "etcd_server_is_learner", "Whether or not this member is a learner. 1 if is, 0 otherwise.",
      [s] {
        auto self = s->membership().Get(s->member_id());
        return self && self->is_learner() ? 1.0 : 0.0;
      },
      owner);
  r.AddGaugeFunc(
      "etcd_server_proposals_committed_total", "The total number of consensus proposals committed.",
      [s] { return static_cast<double>(s->commit_index().value()); }, owner);
  r.AddGaugeFunc(
      "etcd_server_proposals_applied_total", "The total number of consensus proposals applied.",
      [s] { return static_cast<double>(s->applied_index().value()); }, owner);
  r.AddGaugeFunc(
      "etcd_server_quota_backend_bytes", "Current backend storage quota size in bytes.",
      [s] {
        const uint64_t q = s->config().quota_backend_bytes;
        return static_cast<double>(q == 0 ? server::kDefaultQuotaBytes : q);
      },
      owner);
  r.AddGaugeFunc(
      "etcd_mvcc_db_total_size_in_bytes",
      "Total size of the underlying database physically allocated in bytes.",
      [s] { return static_cast<double>(s->backend_size_bytes()); }, owner);
  // etcd 3.4's older name for the same value (mvcc/metrics.go; removed in 3.5): the dashboard
  // of etcd 3.4's mixin (Documentation/etcd-mixin) plots it.
  r.AddGaugeFunc(
      "etcd_debugging_mvcc_db_total_size_in_bytes",
      "Total size of the underlying database physically allocated in bytes.",
      [s] { return static_cast<double>(s->backend_size_bytes()); }, owner);
  r.AddGaugeFunc(
      "etcd_mvcc_db_total_size_in_use_in_bytes",
      "Total size of the underlying database logically in use in bytes.",
      [s] { return static_cast<double>(s->backend_size_in_use_bytes()); }, owner);
  r.AddGaugeFunc(
      "etcd_debugging_mvcc_current_revision", "The current revision of store.",
      [s] { return static_cast<double>(s->current_revision().value()); }, owner);
  const std::string id = log::Hex(s->member_id().value());
  r.AddCollector(
      "etcd_server_id",
      "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
      metrics::Type::kGauge,
      [id] {
        return std::vector<metrics::Sample>{{{{"server_id", id}}, 1}};
      },
      owner);
  r.AddCollector(
      "etcd_server_version",
      "Which version is running. 1 for 'server_version' label with current version.",
      metrics::Type::kGauge,
      [server_version] {
        return std::vector<metrics::Sample>{{{{"server_version", server_version}}, 1}};
      },
      owner);
  const std::string cluster = MajorMinor(cluster_version);
  r.AddCollector(
      "etcd_cluster_version",
      "Which version is running. 1 for 'cluster_version' label with current cluster version",
      metrics::Type::kGauge,
      [cluster] {
        return std::vector<metrics::Sample>{{{{"cluster_version", cluster}}, 1}};
      },
      owner);
}

MemberMetrics::~MemberMetrics() { registry_->RemoveCollectors(this); }

}  // namespace dolmen::http
