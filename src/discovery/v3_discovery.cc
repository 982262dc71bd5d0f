#include "discovery/v3_discovery.h"

#include <algorithm>
#include <charconv>

#include "log/log.h"

namespace dolmen::discovery {
namespace {

constexpr char kRegistryPrefix[] = "/_etcd/registry/";

std::string Trim(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const size_t last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

// One registry session: etcd's discovery struct, with its count of failures in a row.
class Session {
 public:
  Session(const V3JoinRequest& request, V3Registry* registry, const V3RetryPolicy& policy,
          const std::function<void(std::chrono::milliseconds)>& sleep,
          const std::function<void(const std::string&)>& log)
      : request_(request), registry_(registry), policy_(policy), sleep_(sleep), log_(log) {}

  struct Check {
    V3Registrations registrations;
    size_t size = 0;
    int64_t revision = 0;
  };

  Result<std::string> Join() {
    ASSIGN_OR_RETURN(Check before, CheckCluster());
    RETURN_IF_ERROR(RefuseIfFull(before));
    RETURN_IF_ERROR(Register());
    ASSIGN_OR_RETURN(Check now, CheckCluster());
    RETURN_IF_ERROR(RefuseIfFull(now));
    while (now.registrations.size() < now.size) {
      RETURN_IF_ERROR(WaitPeers(&now));
    }
    if (!now.registrations.AmongFirst(SelfKey(), now.size)) {
      // Registered after the cluster filled up (several members registered at once).
      return Status(Code::kFailedPrecondition, kV3FullCluster);
    }
    return now.registrations.InitialCluster(now.size);
  }

 private:
  std::string SelfKey() const { return V3MemberKey(request_.token, request_.member_id); }

  // Backs off before the next attempt; an error once the retries are used up, or at once for
  // an answer that asking again cannot change (size missing or bad, a refused login).
  Status Backoff(const std::string& step, const Status& why) {
    if (why.code() == Code::kNotFound || why.code() == Code::kInvalidArgument ||
        why.code() == Code::kFailedPrecondition) {
      return why;
    }
    if (retries_ >= policy_.max_retries) {
      return Unavailable("discovery: too many retries (last: " + why.message() + ")");
    }
    ++retries_;
    const int exponent = static_cast<int>(std::min<uint64_t>(retries_, policy_.max_exponent));
    const auto wait = policy_.base * (int64_t{1} << exponent);
    log_("v3 discovery: " + step + " failed: " + why.message() + "; retrying in " +
         std::to_string(wait.count()) + " ms");
    sleep_(wait);
    return OkStatus();
  }

  Result<size_t> ClusterSize() {
    const std::string key = V3SizeKey(request_.token);
    ASSIGN_OR_RETURN(RegistryRange range, registry_->Get(key, false));
    if (range.kvs.empty()) return Status(Code::kNotFound, kV3SizeNotFound);
    const std::string& text = range.kvs.front().value;
    int64_t size = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), size);
    if (ec != std::errc() || end != text.data() + text.size() || size <= 0) {
      return InvalidArgument(kV3BadSizeKey);
    }
    return static_cast<size_t>(size);
  }

  Result<Check> CheckCluster() {
    while (true) {
      auto size = ClusterSize();
      if (!size.ok()) {
        RETURN_IF_ERROR(Backoff("reading the cluster size", size.status()));
        continue;
      }
      auto range = registry_->Get(V3MembersPrefix(request_.token), true);
      if (!range.ok()) {
        RETURN_IF_ERROR(Backoff("reading the registered members", range.status()));
        continue;
      }
      retries_ = 0;
      Check check{V3Registrations(request_.token), *size, range->revision};
      for (const RegistryKv& kv : range->kvs) AddLogged(&check.registrations, kv);
      return check;
    }
  }

  void AddLogged(V3Registrations* registrations, const RegistryKv& kv) {
    Status added = registrations->Add(kv);
    log_(added.ok() ? "v3 discovery: found peer " + Trim(kv.key) + " = " + Trim(kv.value)
                    : "v3 discovery: skipped " + Trim(kv.key) + " = " + Trim(kv.value) + ": " +
                          added.message());
  }

  // etcd's rule: this member may go on while it is among the first `size` registrations, or
  // while it has not registered and fewer than `size` have.
  Status RefuseIfFull(const Check& check) const {
    const size_t position = check.registrations.PositionOf(SelfKey());
    if (position < check.size) return OkStatus();
    if (position == check.registrations.size() && check.registrations.size() < check.size) {
      return OkStatus();
    }
    return Status(Code::kFailedPrecondition, kV3FullCluster);
  }

  Status Register() {
    while (true) {
      Status put = registry_->Put(SelfKey(), request_.self);
      if (put.ok()) break;
      RETURN_IF_ERROR(Backoff("registering this member", put));
    }
    retries_ = 0;
    log_("v3 discovery: registered this member as " + SelfKey() + " = " + request_.self);
    return OkStatus();
  }

  // Watches from the revision read until `size` members registered; a failed watch reads the
  // registry again (after a back-off) and watches on from there.
  Status WaitPeers(Check* check) {
    log_("v3 discovery: waiting for peers: " + std::to_string(check->registrations.size()) +
         " of " + std::to_string(check->size) + " registered");
    Status watched = registry_->WatchPuts(V3MembersPrefix(request_.token), check->revision + 1,
                                          [&](const RegistryKv& kv) {
                                            AddLogged(&check->registrations, kv);
                                            return check->registrations.size() < check->size;
                                          });
    if (watched.ok()) {
      log_("v3 discovery: all " + std::to_string(check->size) + " members registered");
      return OkStatus();
    }
    RETURN_IF_ERROR(Backoff("watching the registry", watched));
    ASSIGN_OR_RETURN(*check, CheckCluster());
    return OkStatus();
  }

  const V3JoinRequest& request_;
  V3Registry* registry_;
  const V3RetryPolicy& policy_;
  const std::function<void(std::chrono::milliseconds)>& sleep_;
  const std::function<void(const std::string&)>& log_;
  uint64_t retries_ = 0;
};

}  // namespace

std::string V3SizeKey(const std::string& token) {
  return kRegistryPrefix + token + "/_config/size";
}

std::string V3MembersPrefix(const std::string& token) {
  return kRegistryPrefix + token + "/members";
}

std::string V3MemberKey(const std::string& token, uint64_t member_id) {
  return V3MembersPrefix(token) + "/" + log::Hex(member_id);  // Go's types.ID.String()
}

Status V3Registrations::Add(const RegistryKv& kv) {
  const std::string key = Trim(kv.key);
  const std::string value = Trim(kv.value);
  if (key.rfind(V3MembersPrefix(token_), 0) != 0) {
    return InvalidArgument("invalid peer registry key");
  }
  if (value.find('=') == std::string::npos) {
    return InvalidArgument("invalid peer info returned from discovery service");
  }
  if (PositionOf(key) < members_.size()) {
    return InvalidArgument("found duplicate peer from discovery service");
  }
  RegistryKv entry{key, value, kv.create_revision};
  auto at = std::upper_bound(members_.begin(), members_.end(), entry,
                             [](const RegistryKv& a, const RegistryKv& b) {
                               return a.create_revision < b.create_revision;
                             });
  members_.insert(at, std::move(entry));
  return OkStatus();
}

size_t V3Registrations::PositionOf(const std::string& key) const {
  for (size_t i = 0; i < members_.size(); ++i) {
    if (members_[i].key == key) return i;
  }
  return members_.size();
}

bool V3Registrations::AmongFirst(const std::string& key, size_t size) const {
  return PositionOf(key) < std::min(size, members_.size());
}

std::string V3Registrations::InitialCluster(size_t size) const {
  std::string out;
  for (size_t i = 0; i < members_.size() && i < size; ++i) {
    out += (out.empty() ? "" : ",") + members_[i].value;
  }
  return out;
}

Result<std::string> JoinV3Cluster(const V3JoinRequest& request, V3Registry* registry,
                                  const V3RetryPolicy& policy,
                                  const std::function<void(std::chrono::milliseconds)>& sleep,
                                  const std::function<void(const std::string&)>& log) {
  return Session(request, registry, policy, sleep, log).Join();
}

}  // namespace dolmen::discovery
