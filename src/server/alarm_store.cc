#include "server/alarm_store.h"

namespace dolmen::server {
namespace {

// The bucket's key, as etcd's: the AlarmMember message itself (value empty).
std::string AlarmKey(MemberId member, int type) {
  etcdserverpb::AlarmMember m;
  m.set_memberid(member.value());
  m.set_alarm(static_cast<etcdserverpb::AlarmType>(type));
  return m.SerializeAsString();
}

etcdserverpb::AlarmMember ToMember(const std::pair<int, uint64_t>& alarm) {
  etcdserverpb::AlarmMember m;
  m.set_alarm(static_cast<etcdserverpb::AlarmType>(alarm.first));
  m.set_memberid(alarm.second);
  return m;
}

}  // namespace

Status AlarmStore::Load(backend::Backend* backend) {
  ASSIGN_OR_RETURN(auto txn, backend->BeginRead());
  std::set<std::pair<int, uint64_t>> loaded;
  Status error;
  RETURN_IF_ERROR(txn->Scan(kBucket, "", "", [&](std::string_view key, std::string_view) {
    etcdserverpb::AlarmMember m;
    if (!m.ParseFromArray(key.data(), static_cast<int>(key.size()))) {
      error = Corruption("alarm bucket: a key is not an AlarmMember (" +
                         std::to_string(key.size()) + " bytes)");
      return false;
    }
    loaded.emplace(static_cast<int>(m.alarm()), m.memberid());
    return true;
  }));
  RETURN_IF_ERROR(error);
  std::lock_guard lock(mu_);
  alarms_ = std::move(loaded);
  return OkStatus();
}

Result<etcdserverpb::AlarmMember> AlarmStore::Activate(MemberId member,
                                                       etcdserverpb::AlarmType type,
                                                       backend::WriteTxn* txn) {
  std::pair<int, uint64_t> alarm{static_cast<int>(type), member.value()};
  {
    std::lock_guard lock(mu_);
    if (alarms_.contains(alarm)) return ToMember(alarm);
  }
  RETURN_IF_ERROR(txn->Put(kBucket, AlarmKey(member, alarm.first), ""));
  std::lock_guard lock(mu_);
  alarms_.insert(alarm);
  return ToMember(alarm);
}

Result<std::optional<etcdserverpb::AlarmMember>> AlarmStore::Deactivate(
    MemberId member, etcdserverpb::AlarmType type, backend::WriteTxn* txn) {
  std::pair<int, uint64_t> alarm{static_cast<int>(type), member.value()};
  {
    std::lock_guard lock(mu_);
    if (!alarms_.contains(alarm)) return std::optional<etcdserverpb::AlarmMember>();
  }
  RETURN_IF_ERROR(txn->Delete(kBucket, AlarmKey(member, alarm.first)));
  std::lock_guard lock(mu_);
  alarms_.erase(alarm);
  return std::optional<etcdserverpb::AlarmMember>(ToMember(alarm));
}

std::vector<etcdserverpb::AlarmMember> AlarmStore::Get(etcdserverpb::AlarmType type) const {
  std::lock_guard lock(mu_);
  std::vector<etcdserverpb::AlarmMember> out;
  for (const auto& alarm : alarms_) {
    if (type == etcdserverpb::NONE || alarm.first == static_cast<int>(type)) {
      out.push_back(ToMember(alarm));
    }
  }
  return out;
}

bool AlarmStore::Active(etcdserverpb::AlarmType type) const {
  std::lock_guard lock(mu_);
  auto it = alarms_.lower_bound({static_cast<int>(type), 0});
  return it != alarms_.end() && it->first == static_cast<int>(type);
}

}  // namespace dolmen::server
