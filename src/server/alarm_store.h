// etcd's alarm store: the alarms raised in the cluster (a member out of space: NOSPACE; a
// corrupt member: CORRUPT). Alarms change only by applying an AlarmRequest log entry, so every
// member holds the same set; they persist in backend bucket "alarm" (docs/maintenance.md), in
// the apply batch's backend txn, and are loaded at start.
//
// Threads: Activate/Deactivate on the apply thread; Get and Active on any thread.
#pragma once

#include <mutex>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "base/ids.h"
#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"

namespace dolmen::server {

class AlarmStore {
 public:
  static constexpr std::string_view kBucket = "alarm";

  // Replaces what is in memory with the bucket's contents. kCorruption if a key does not
  // decode as an AlarmMember.
  Status Load(backend::Backend* backend);

  // etcd's Activate: the alarm of `type` raised by `member`; returns it (also when it was
  // already active).
  Result<etcdserverpb::AlarmMember> Activate(MemberId member, etcdserverpb::AlarmType type,
                                             backend::WriteTxn* txn);
  // etcd's Deactivate: the alarm removed, or nullopt if it was not active.
  Result<std::optional<etcdserverpb::AlarmMember>> Deactivate(MemberId member,
                                                              etcdserverpb::AlarmType type,
                                                              backend::WriteTxn* txn);
  // The active alarms of `type` (NONE: all), ordered by type, then member id.
  std::vector<etcdserverpb::AlarmMember> Get(etcdserverpb::AlarmType type) const;
  bool Active(etcdserverpb::AlarmType type) const;

 private:
  mutable std::mutex mu_;
  std::set<std::pair<int, uint64_t>> alarms_;  // (type, member); guarded by mu_
};

}  // namespace dolmen::server
