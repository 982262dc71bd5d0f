// What a dolmen process adds around its member core, for one simulated member: the lessor with
// the leader's expiry checker (Server's lease glue, src/server/server_lease.cc), and the watch
// hub the watch service serves from (embed/member.cc feeds it). Wired to the core's observers
// as the server wires them: `leader` promotes or demotes the lessor before any entry of the new
// term applies, `applied` notifies the hub, `restored` sends its watchers back to the store.
//
// The real classes, driven on the simulator's one thread and virtual clock: the lessor takes
// time as an argument; the expiry checker's thread is never started (the simulator calls its
// RunOnce every check interval); the hub's threads are never started (Hub::RunPending does
// their work when the simulator asks). Rebuilt at every start of the member, dropped at a
// crash, like everything else in the process.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "base/clock.h"
#include "base/ids.h"
#include "lease/lessor.h"
#include "mvcc/store.h"
#include "server/applier.h"
#include "server/driver_options.h"
#include "server/lease_expiry.h"
#include "server/member_core.h"
#include "watch/hub.h"

namespace dolmen::sim {

struct MemberServicesOptions {
  const Clock* clock = nullptr;  // the simulator's virtual clock; required
  server::LeaseExpiryOptions lease_expiry;
  // Sees every applied batch before the hub does (the simulator's record of what each revision
  // changed).
  std::function<void(MemberId, const std::vector<mvcc::Event>&, Revision)> applied_tap;
  // Broken rules the simulator must catch (cluster_sim.h): the leader's expiry checks read a
  // clock this far ahead, so leases are revoked early; one applied batch in
  // `drop_watch_batch_every` never reaches the hub (0: none), so watchers miss its events.
  std::chrono::milliseconds lease_clock_ahead{0};
  uint64_t drop_watch_batch_every = 0;
};

class MemberServices {
 public:
  // `backend`, `store` and `applier` belong to the same process and outlive this. The lessor is
  // loaded from the backend and the store, and handed to the applier, before any apply.
  static Result<std::unique_ptr<MemberServices>> Open(MemberId self,
                                                      const server::DriverOptions& driver,
                                                      MemberServicesOptions options,
                                                      backend::Backend* backend, mvcc::Store* store,
                                                      server::Applier* applier);
  ~MemberServices();
  MemberServices(const MemberServices&) = delete;
  MemberServices& operator=(const MemberServices&) = delete;

  // The core's observers; `is_leader` reads the core (Server::IsLeader).
  server::MemberCore::Observers Observers(std::function<bool()> is_leader);
  // After a snapshot from the leader replaced the store (Server::InstallSnapshot).
  Status ReloadLeases();

  // One round of the leader's expiry checker (LeaseExpiryChecker::RunOnce): the leases whose
  // revoke it proposes now, to be proposed as Server's expiry callback does.
  std::vector<LeaseId> ExpireLeases();
  // A keep-alive arriving at this member as the leader (Server::LeaseRenewHere): promotes the
  // lessor first if elected moments ago; kNotLeader/kNoLeader otherwise.
  Result<int64_t> RenewHere(LeaseId id, MemberId leader);

  lease::Lessor& lessor() { return *lessor_; }
  watch::Hub& hub() { return *hub_; }

 private:
  class AheadClock;
  MemberServices(MemberId self, MemberServicesOptions options, backend::Backend* backend,
                 mvcc::Store* store);

  const MemberId self_;
  const MemberServicesOptions options_;
  backend::Backend* const backend_;
  mvcc::Store* const store_;
  std::unique_ptr<AheadClock> expiry_clock_;
  std::unique_ptr<lease::Lessor> lessor_;
  std::function<bool()> is_leader_;
  std::unique_ptr<server::LeaseExpiryChecker> expiry_;
  std::vector<LeaseId> proposed_;  // ExpireLeases' round, from the checker's callback
  std::unique_ptr<watch::Hub> hub_;
  uint64_t batches_ = 0;
};

}  // namespace dolmen::sim
