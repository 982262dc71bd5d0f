#include "server/membership.h"

#include "base/coding.h"

namespace dolmen::server {
namespace {

constexpr std::string_view kMembersBucket = "members";
constexpr std::string_view kRemovedBucket = "members_removed";

std::string IdKey(MemberId id) {
  std::string k;
  coding::PutBigEndian64(&k, id.value());
  return k;
}

}  // namespace

Status Membership::Load(backend::Backend* backend) {
  ASSIGN_OR_RETURN(auto txn, backend->BeginRead());
  std::map<MemberId, internal::Member> members;
  std::set<MemberId> removed;
  Status bad;
  RETURN_IF_ERROR(txn->Scan(kMembersBucket, "", "", [&](std::string_view k, std::string_view v) {
    internal::Member m;
    if (k.size() != 8 || !m.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
      bad = Corruption("backend bucket 'members' holds an unreadable record");
      return false;
    }
    members[MemberId(m.id())] = m;
    return true;
  }));
  RETURN_IF_ERROR(bad);
  RETURN_IF_ERROR(txn->Scan(kRemovedBucket, "", "", [&](std::string_view k, std::string_view) {
    if (k.size() == 8) removed.insert(MemberId(coding::DecodeBigEndian64(k.data())));
    return true;
  }));
  std::lock_guard lock(mu_);
  members_ = std::move(members);
  removed_ = std::move(removed);
  return OkStatus();
}

std::vector<internal::Member> Membership::List() const {
  std::lock_guard lock(mu_);
  std::vector<internal::Member> out;
  for (const auto& [id, m] : members_) out.push_back(m);
  return out;
}

std::optional<internal::Member> Membership::Get(MemberId id) const {
  std::lock_guard lock(mu_);
  auto it = members_.find(id);
  if (it == members_.end()) return std::nullopt;
  return it->second;
}

bool Membership::IsRemoved(MemberId id) const {
  std::lock_guard lock(mu_);
  return removed_.count(id) > 0;
}

size_t Membership::VoterCount() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [id, m] : members_) n += m.is_learner() ? 0 : 1;
  return n;
}

Status Membership::Save(const internal::Member& m, backend::WriteTxn* txn) {
  return txn->Put(kMembersBucket, IdKey(MemberId(m.id())), m.SerializeAsString());
}

Status Membership::Add(const internal::Member& member, backend::WriteTxn* txn) {
  internal::Member m = member;
  {
    std::lock_guard lock(mu_);
    if (removed_.count(MemberId(m.id()))) return OkStatus();  // a removed id never returns
    auto it = members_.find(MemberId(m.id()));
    if (it != members_.end()) {
      // Re-applying the same conf change (replay) or promoting a learner: keep what the
      // member published about itself.
      if (m.name().empty()) m.set_name(it->second.name());
      if (m.client_urls().empty()) *m.mutable_client_urls() = it->second.client_urls();
    }
    members_[MemberId(m.id())] = m;
  }
  return Save(m, txn);
}

Status Membership::Remove(MemberId id, backend::WriteTxn* txn) {
  {
    std::lock_guard lock(mu_);
    members_.erase(id);
    removed_.insert(id);
  }
  RETURN_IF_ERROR(txn->Delete(kMembersBucket, IdKey(id)));
  return txn->Put(kRemovedBucket, IdKey(id), "");
}

Status Membership::Promote(MemberId id, backend::WriteTxn* txn) {
  internal::Member m;
  {
    std::lock_guard lock(mu_);
    auto it = members_.find(id);
    if (it == members_.end()) return OkStatus();
    it->second.set_is_learner(false);
    m = it->second;
  }
  return Save(m, txn);
}

Status Membership::SetAttributes(const internal::MemberAttributes& a, backend::WriteTxn* txn) {
  internal::Member m;
  {
    std::lock_guard lock(mu_);
    auto it = members_.find(MemberId(a.id()));
    if (it == members_.end()) return OkStatus();  // removed meanwhile
    it->second.set_name(a.name());
    *it->second.mutable_client_urls() = a.client_urls();
    m = it->second;
  }
  return Save(m, txn);
}

Status Membership::UpdatePeerUrls(const internal::MemberUpdate& u, backend::WriteTxn* txn) {
  internal::Member m;
  {
    std::lock_guard lock(mu_);
    auto it = members_.find(MemberId(u.id()));
    if (it == members_.end()) return OkStatus();  // removed meanwhile
    *it->second.mutable_peer_urls() = u.peer_urls();
    m = it->second;
  }
  return Save(m, txn);
}

}  // namespace dolmen::server
