// Server: a first start's membership from --initial-cluster (Bootstrap) or from the running
// cluster it joins (Join).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <utility>

#include "base/coding.h"
#include "log/log.h"
#include "raft/conf_change.h"
#include "server/auth_checks.h"
#include "server/member_id.h"
#include "server/raft_log_start.h"
#include "server/request_checks.h"
#include "server/server.h"

namespace dolmen::server {
namespace {

std::string JoinUrls(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

// Go's %q of a string list, as etcd prints one: ["a" "b"].
std::string QuotedList(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? " \"" : "\"") + v[i] + "\"";
  return out + "]";
}

// What etcd's netutil.URLStringsEqual reports for two sorted lists that differ (no names are
// resolved here: both sides are compared as written).
std::string UrlListDifference(const std::vector<std::string>& advertised,
                              const std::vector<std::string>& initial) {
  if (advertised.size() != initial.size()) {
    return "len(" + QuotedList(advertised) + ") != len(" + QuotedList(initial) + ")";
  }
  for (size_t i = 0; i < advertised.size(); ++i) {
    if (advertised[i] != initial[i]) {
      return "resolved urls: \"" + advertised[i] + "\" != \"" + initial[i] + "\"";
    }
  }
  return "";
}

// One line on which flag to change. The common case (the lab's command) differs only in the
// scheme: the member would listen for one and be dialled with the other.
std::string AdvertiseMismatchHint(const std::string& name,
                                  const std::vector<std::string>& advertised,
                                  const std::vector<std::string>& initial) {
  auto without_scheme = [](const std::string& url) {
    size_t sep = url.find("://");
    return sep == std::string::npos ? url : url.substr(sep);
  };
  bool only_scheme = advertised.size() == initial.size();
  for (size_t i = 0; only_scheme && i < advertised.size(); ++i) {
    only_scheme = without_scheme(advertised[i]) == without_scheme(initial[i]);
  }
  if (only_scheme) {
    return "the two differ only in the scheme: make --initial-advertise-peer-urls (and "
           "--listen-peer-urls) say " +
           JoinUrls(initial) + ", or --initial-cluster say " + name + "=" + JoinUrls(advertised) +
           "; both must name the same URLs";
  }
  return "make --initial-advertise-peer-urls list exactly the URLs --initial-cluster gives " +
         name + " (" + JoinUrls(initial) + "), or change --initial-cluster";
}

}  // namespace

Status Server::Join() {
  if (!config_.fetch_cluster_info) {
    return Unimplemented("joining a running cluster needs the peer transport");
  }
  std::vector<std::string> mine = config_.peer_urls;
  std::sort(mine.begin(), mine.end());
  std::vector<std::string> others;
  for (const auto& m : config_.initial_cluster) {
    std::vector<std::string> urls = m.peer_urls;
    std::sort(urls.begin(), urls.end());
    if (m.name == config_.name || urls == mine) continue;
    others.insert(others.end(), m.peer_urls.begin(), m.peer_urls.end());
  }
  if (others.empty()) {
    return InvalidArgument(
        "--initial-cluster-state existing needs the other members in --initial-cluster");
  }
  auto info = config_.fetch_cluster_info(others);
  if (!info.ok()) {
    return Unavailable("cannot fetch the cluster's members from " + JoinUrls(others) + ": " +
                       info.status().message());
  }
  const internal::Member* self = nullptr;
  for (const auto& m : info->members) {
    std::vector<std::string> urls(m.peer_urls().begin(), m.peer_urls().end());
    std::sort(urls.begin(), urls.end());
    if (urls == mine) self = &m;
  }
  if (self == nullptr) {
    return Status(Code::kFailedPrecondition,
                  "no member of the cluster has the peer URLs " + JoinUrls(config_.peer_urls) +
                      "; add this member first with 'etcdctl member add'");
  }
  member_id_ = MemberId(self->id());
  cluster_id_ = info->cluster_id;
  // The log (or a snapshot) from the leader brings the membership; knowing the members now
  // lets the transport answer the leader before that arrives.
  ASSIGN_OR_RETURN(backend::WriteTxn * txn, store_->BatchTxn());
  for (const auto& m : info->members) RETURN_IF_ERROR(membership_->Add(m, txn));
  return store_->Commit(Index(0));
}

Status Server::Bootstrap(std::vector<raft::Entry>* entries, raft::HardState* hs) {
  if (config_.initial_cluster_existing) return Join();
  // Ids as etcd derives them, so the same flags name the same members.
  std::vector<internal::Member> members;
  std::vector<MemberId> ids;
  const InitialMember* self = nullptr;
  for (const auto& m : config_.initial_cluster) {
    internal::Member rec;
    rec.set_id(ComputeMemberId(m.peer_urls, config_.cluster_token).value());
    rec.set_name(m.name);
    for (const auto& u : m.peer_urls) rec.add_peer_urls(u);
    if (m.name == config_.name) self = &m;
    ids.push_back(MemberId(rec.id()));
    members.push_back(std::move(rec));
  }
  if (self == nullptr) {
    return InvalidArgument("couldn't find local name \"" + config_.name +
                           "\" in the initial cluster configuration");
  }
  std::vector<std::string> mine = self->peer_urls, advertised = config_.peer_urls;
  std::sort(mine.begin(), mine.end());
  std::sort(advertised.begin(), advertised.end());
  if (!advertised.empty() && mine != advertised) {
    return InvalidArgument("--initial-cluster has " + config_.name + "=" +
                           JoinUrls(self->peer_urls) + " but missing from " +
                           "--initial-advertise-peer-urls=" + JoinUrls(advertised) + " (" +
                           UrlListDifference(advertised, mine) + ")\n" +
                           AdvertiseMismatchHint(config_.name, advertised, mine));
  }
  member_id_ = ComputeMemberId(self->peer_urls, config_.cluster_token);
  cluster_id_ = ComputeClusterId(ids);
  BootstrapEntries(std::move(members), entries, hs);
  return OkStatus();
}

}  // namespace dolmen::server
