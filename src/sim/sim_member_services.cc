#include "sim/sim_member_services.h"

#include <utility>

#include "base/check.h"
#include "server/lease_apply.h"

namespace dolmen::sim {

// The broken rule's clock: the simulator's, `ahead` later.
class MemberServices::AheadClock final : public Clock {
 public:
  AheadClock(const Clock* base, std::chrono::milliseconds ahead) : base_(base), ahead_(ahead) {}
  std::chrono::steady_clock::time_point Now() const override { return base_->Now() + ahead_; }

 private:
  const Clock* const base_;
  const std::chrono::milliseconds ahead_;
};

MemberServices::MemberServices(MemberId self, MemberServicesOptions options,
                               backend::Backend* backend, mvcc::Store* store)
    : self_(self), options_(std::move(options)), backend_(backend), store_(store) {}

MemberServices::~MemberServices() {
  // The hub reads the store; the checker calls back into this object.
  hub_.reset();
  expiry_.reset();
}

Result<std::unique_ptr<MemberServices>> MemberServices::Open(
    MemberId self, const server::DriverOptions& driver, MemberServicesOptions options,
    backend::Backend* backend, mvcc::Store* store, server::Applier* applier) {
  CHECK(options.clock != nullptr) << "the member's services need the simulator's clock";
  std::unique_ptr<MemberServices> s(new MemberServices(self, std::move(options), backend, store));
  // Server::OpenLeases.
  lease::LessorOptions lessor;
  lessor.min_ttl_seconds = server::MinLeaseTtlSeconds(driver);
  s->lessor_ = std::make_unique<lease::Lessor>(lessor);
  RETURN_IF_ERROR(s->ReloadLeases());
  applier->set_leases(s->lessor_.get(), s->options_.clock);
  server::LeaseExpiryOptions expiry = s->options_.lease_expiry;
  expiry.promote_extension = server::PromoteExtension(driver);
  s->expiry_clock_ = std::make_unique<AheadClock>(s->options_.clock, s->options_.lease_clock_ahead);
  MemberServices* raw = s.get();
  s->expiry_ = std::make_unique<server::LeaseExpiryChecker>(
      s->lessor_.get(), s->expiry_clock_.get(), expiry,
      [raw] { return raw->is_leader_ && raw->is_leader_(); },
      [raw](LeaseId id) { raw->proposed_.push_back(id); });
  // The watch service's hub on this member's store; its threads never start.
  s->hub_ = std::make_unique<watch::Hub>(store, s->options_.clock);
  return s;
}

server::MemberCore::Observers MemberServices::Observers(std::function<bool()> is_leader) {
  is_leader_ = std::move(is_leader);
  server::MemberCore::Observers o;
  o.applied = [this](std::vector<mvcc::Event> events, Revision revision) {
    if (options_.applied_tap) options_.applied_tap(self_, events, revision);
    ++batches_;
    if (options_.drop_watch_batch_every != 0 && batches_ % options_.drop_watch_batch_every == 0) {
      return;  // the broken rule: this batch never reaches the watchers
    }
    hub_->Notify(std::move(events), revision);
  };
  o.restored = [this](Revision revision) { hub_->Restore(revision); };
  // Server::Start's leader observer.
  o.leader = [this](MemberId) { expiry_->FollowLeadership(); };
  return o;
}

Status MemberServices::ReloadLeases() {
  return server::LoadLeases(lessor_.get(), backend_, store_);
}

std::vector<LeaseId> MemberServices::ExpireLeases() {
  proposed_.clear();
  expiry_->RunOnce();
  return std::exchange(proposed_, {});
}

Result<int64_t> MemberServices::RenewHere(LeaseId id, MemberId leader) {
  // Server::LeaderOnly.
  if (is_leader_ && is_leader_()) {
    expiry_->FollowLeadership();
    if (lessor_->primary()) return lessor_->Renew(id, options_.clock->Now());
  }
  if (leader.value() == 0) return Status(Code::kNoLeader, "no leader");
  return Status(Code::kNotLeader, "not leader");
}

}  // namespace dolmen::sim
