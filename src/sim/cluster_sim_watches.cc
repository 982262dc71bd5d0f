// Watchers in the run (cluster_sim_run.h, sim_watchers.h): up to four at a time during the
// chaos, each on a random member, following every key, one key or a range, from the next
// revision, a recent past one, or revision 1 (often compacted by then). After every step each
// member's hub delivers what it has (Hub::RunPending: the worker's and the catch-up thread's
// work on this thread), a progress request asks it what it claims to have sent, and every
// response is checked. A watcher whose member went down watches again on another member from
// the revision after the last it was sure of; one cancelled as compacted, from the compact
// revision.
#include <string>
#include <utility>
#include <vector>

#include "sim/cluster_sim_run.h"

namespace dolmen::sim {
namespace {

constexpr size_t kMaxWatches = 4;        // at once
constexpr size_t kMaxWatchesPerRun = 8;  // created, not counting re-creations

}  // namespace

void ClusterSim::Watches() {
  if (!o_.watches || !o_.step_checks || phase_ == Phase::kDone) return;
  if (phase_ == Phase::kChaos && now_ >= next_watch_at_) {
    next_watch_at_ = now_ + 100 + random_.Uniform(400);
    const std::optional<size_t> node = RandomUpNode();
    if (node && watches_.size() < kMaxWatchesPerRun) {
      size_t open = 0;
      for (const SimWatch& w : watches_) open += w.stream != nullptr;
      if (open < kMaxWatches) {
        SimWatch w;
        w.id = static_cast<int>(watches_.size()) + 1;
        switch (random_.Uniform(3)) {
          case 0:
            w.key = "k";
            w.range_end = "l";  // every key of the load
            break;
          case 1:
            w.key = "k" + std::to_string(random_.Uniform(o_.keys));
            break;
          default:
            w.key = "k1";
            w.range_end = "k3";
            break;
        }
        w.range = watch::MakeKeyRange(w.key, w.range_end).value();
        const int64_t current = nodes_[*node].member->store().CurrentRevision().value();
        switch (random_.Uniform(5)) {
          case 0:
            w.next = 1;  // the whole history, or the compaction error
            break;
          case 1:
          case 2:
            w.next = std::max<int64_t>(1, current - static_cast<int64_t>(random_.Uniform(30)));
            break;
          default:
            w.next = current + 1;
            break;
        }
        watches_.push_back(std::move(w));
        OpenWatch(watches_.back(), *node);
      }
    }
  }
  // Watchers without a stream (their member went down, or compacted) watch again.
  for (SimWatch& w : watches_) {
    if (w.stream != nullptr) continue;
    if (const std::optional<size_t> node = RandomUpNode()) OpenWatch(w, *node);
  }
}

void ClusterSim::OpenWatch(SimWatch& w, size_t node) {
  SimMember& m = *nodes_[node].member;
  w.node = node;
  w.incarnation = m.incarnation();
  w.created = false;
  w.stream = m.services().hub().OpenStream([] {});
  watch::WatchOptions options;
  options.key = w.key;
  options.range_end = w.range_end;
  options.start_revision = Revision(w.next);
  m.services().hub().Watch(w.stream.get(), options);
  nodes_[node].watch_pumped = UINT64_MAX;  // deliver and check at this step's end
  ++result_.watches;
  Trace("open " + w.Describe());
}

void ClusterSim::PumpWatches(bool force) {
  if (!o_.watches) return;
  // A member that went down took its streams with it: the client watches again elsewhere.
  for (SimWatch& w : watches_) {
    if (w.stream == nullptr) continue;
    const SimMember& m = *nodes_[w.node].member;
    if (!m.up() || m.incarnation() != w.incarnation) {
      w.stream.reset();
      ++result_.watch_restarts;
    }
  }
  for (size_t i = 0; i < nodes_.size() && result_.ok; ++i) {
    Node& n = nodes_[i];
    if (!n.member->up()) continue;
    const uint64_t applied = std::max(n.member->core().applied_index().value(),
                                      n.member->store().ConsistentIndex().value());
    if (!force && applied == n.watch_pumped) continue;
    n.watch_pumped = applied;
    PumpWatchesOn(i);
  }
}

void ClusterSim::PumpWatchesOn(size_t node) {
  SimMember& m = *nodes_[node].member;
  watch::Hub& hub = m.services().hub();
  bool any = false;
  for (SimWatch& w : watches_) {
    if (w.stream == nullptr || w.node != node) continue;
    hub.RequestProgress(w.stream.get());
    any = true;
  }
  if (!any) return;
  hub.RunPending();
  const int64_t compacted = m.store().CompactRevision().value();
  for (SimWatch& w : watches_) {
    if (w.stream == nullptr || w.node != node) continue;
    std::shared_ptr<watch::Stream> stream = w.stream;
    for (std::optional<watch::Response> r = stream->Pop(); r; r = stream->Pop()) {
      bool compaction_cancel = false;
      if (auto violation = CheckWatchResponse(w, *r, compacted, revisions_, &result_.watch_events,
                                              &compaction_cancel)) {
        return Fail(*violation);
      }
      if (compaction_cancel) {
        ++result_.watch_compacted;
        Trace("compacted: " + w.Describe());
        hub.CloseStream(stream);
        break;
      }
    }
  }
}

// Once healed: every watcher has caught up with the final revision, and what the members'
// observers reported matches the final leader's store history (what catch-up reads).
void ClusterSim::FinalWatchChecks(const std::vector<Node*>& members) {
  SimMember& leader = *nodes_[final_leader_].member;
  const int64_t current = leader.store().CurrentRevision().value();
  // Above the compact revision: compaction removed the deletes at it (sim_watchers.cc).
  const int64_t from = std::max<int64_t>(leader.store().CompactRevision().value() + 1, 2);
  Result<mvcc::Store::EventsResult> history =
      leader.store().Events(Revision(from), Revision(current), SIZE_MAX);
  if (!history.ok()) return Fail("reading the store's history: " + history.status().ToString());
  RevisionLog stored;
  if (auto differs = stored.Applied(leader.id(), history->events)) return Fail(*differs);
  for (int64_t rev = from; rev <= current; ++rev) {
    const std::vector<mvcc::Event>* applied = revisions_.At(rev);
    const std::vector<mvcc::Event>* in_store = stored.At(rev);
    if (applied == nullptr || in_store == nullptr || *applied != *in_store) {
      return Fail("the members' applied observers and member " +
                  std::to_string(leader.id().value()) + "'s store differ at revision " +
                  std::to_string(rev) + ": applied " +
                  (applied ? DescribeEvents(*applied) : std::string("nothing")) + ", stored " +
                  (in_store ? DescribeEvents(*in_store) : std::string("nothing")));
    }
  }
  // A member removed without learning it stays up but behind for good: its watchers' clients
  // go to a member of the cluster.
  std::vector<bool> member(nodes_.size(), false);
  for (Node* n : members) member[static_cast<size_t>(n - nodes_.data())] = true;
  for (SimWatch& w : watches_) {
    if (w.stream != nullptr && !member[w.node]) {
      nodes_[w.node].member->services().hub().CloseStream(w.stream);
      w.stream.reset();
    }
    if (w.stream == nullptr) OpenWatch(w, final_leader_);
  }
  for (int round = 0; round < 3 && result_.ok; ++round) {
    for (Node* n : members) PumpWatchesOn(static_cast<size_t>(n - nodes_.data()));
    for (SimWatch& w : watches_) {
      if (w.stream == nullptr) OpenWatch(w, final_leader_);
    }
  }
  for (const SimWatch& w : watches_) {
    if (!result_.ok) return;
    if (w.next != current + 1) {
      watch::Hub& hub = nodes_[w.node].member->services().hub();
      return Fail(w.Describe() + " did not catch up with the final revision " +
                  std::to_string(current) +
                  " (its member's hub: " + std::to_string(hub.synced_count()) + " synced, " +
                  std::to_string(hub.unsynced_count()) + " unsynced watchers, store at " +
                  std::to_string(nodes_[w.node].member->store().CurrentRevision().value()) + ")");
    }
  }
}

}  // namespace dolmen::sim
