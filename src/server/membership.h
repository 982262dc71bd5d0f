// The cluster's members as the replicated log defines them: added and removed by conf-change
// entries, named by each member's published attributes. Persisted in the backend bucket
// "members" in the same backend txn as the batch that changed it, so it is always consistent
// with the applied index. Reads are thread-safe; changes come from the apply thread only.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "backend/backend.h"
#include "base/ids.h"
#include "base/status.h"
#include "dolmen/internal.pb.h"

namespace dolmen::server {

class Membership {
 public:
  // Loads the members recorded in the backend (none on a fresh one).
  Status Load(backend::Backend* backend);

  std::vector<internal::Member> List() const;  // by id
  std::optional<internal::Member> Get(MemberId id) const;
  bool IsRemoved(MemberId id) const;
  size_t VoterCount() const;

  // Apply thread. Each writes the change into `txn` (the batch's backend txn).
  Status Add(const internal::Member& member, backend::WriteTxn* txn);
  Status Remove(MemberId id, backend::WriteTxn* txn);
  Status Promote(MemberId id, backend::WriteTxn* txn);
  Status SetAttributes(const internal::MemberAttributes& attributes, backend::WriteTxn* txn);
  Status UpdatePeerUrls(const internal::MemberUpdate& update, backend::WriteTxn* txn);

 private:
  Status Save(const internal::Member& m, backend::WriteTxn* txn);

  mutable std::mutex mu_;
  std::map<MemberId, internal::Member> members_;  // guarded by mu_
  std::set<MemberId> removed_;                    // guarded by mu_
};

}  // namespace dolmen::server
