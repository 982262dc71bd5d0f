// Proposals per second through an in-memory 3-node cluster, following the Ready contract on
// every node (persist to MemoryStorage, send, apply, advance). Each iteration proposes `batch`
// entries, then pumps Readies and messages until all are applied. BM_ProposeEach calls
// Propose per entry (one append message per entry per follower); BM_ProposeBatched hands the
// batch to ProposeBatch (one append for all). No I/O: this measures the consensus core's own
// cost per proposal.
#include <benchmark/benchmark.h>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/check.h"
#include "raft/memory_storage.h"
#include "raft/raw_node.h"

namespace dolmen::raft {
namespace {

class BenchCluster {
 public:
  explicit BenchCluster(int n) {
    ConfState cs;
    for (int i = 1; i <= n; ++i) cs.voters.push_back(MemberId(i));
    for (int i = 1; i <= n; ++i) {
      Node& node = nodes_[MemberId(i)];
      node.storage = std::make_unique<MemoryStorage>(cs);
      Config c;
      c.id = MemberId(i);
      c.storage = node.storage.get();
      c.random_seed = 1;
      auto rn = RawNode::Create(c);
      CHECK(rn.ok()) << rn.status().ToString();
      node.raw = std::move(*rn);
    }
    CHECK(nodes_.at(MemberId(1)).raw->Campaign().ok());
    Pump();
    CHECK(nodes_.at(MemberId(1)).raw->raft().role() == Role::kLeader);
  }

  RawNode& leader() { return *nodes_.at(MemberId(1)).raw; }
  uint64_t applied(MemberId id) const { return nodes_.at(id).applied; }

  // Handles Readies and delivers messages until the cluster is quiet.
  void Pump() {
    for (;;) {
      bool moved = false;
      for (auto& [id, n] : nodes_) {
        if (!n.raw->HasReady()) continue;
        moved = true;
        Ready rd = n.raw->GetReady();
        CHECK(n.storage->Append(rd.entries).ok());
        if (rd.hard_state) n.storage->SetHardState(*rd.hard_state);
        for (Message& m : rd.messages) queue_.push_back(std::move(m));
        n.applied += rd.committed_entries.size();
        if (!rd.committed_entries.empty()) last_applied_[id] = rd.committed_entries.back().index;
        n.raw->Advance(rd);
      }
      while (!queue_.empty()) {
        moved = true;
        Message m = std::move(queue_.front());
        queue_.pop_front();
        CHECK(nodes_.at(m.to).raw->Step(m).ok());
      }
      if (!moved) return;
    }
  }

  // Keeps memory bounded over long runs: compact every node's log behind its applied index.
  void MaybeCompact() {
    for (auto& [id, n] : nodes_) {
      const Index applied = last_applied_[id];
      if (applied.value() < n.storage->FirstIndex().value() + 50000) continue;
      CHECK(n.storage->Compact(applied).ok());
    }
  }

 private:
  struct Node {
    std::unique_ptr<MemoryStorage> storage;
    std::unique_ptr<RawNode> raw;
    uint64_t applied = 0;
  };
  std::map<MemberId, Node> nodes_;
  std::map<MemberId, Index> last_applied_;
  std::deque<Message> queue_;
};

void RunProposals(benchmark::State& state, bool batched) {
  const int batch = static_cast<int>(state.range(0));
  const std::string payload(static_cast<size_t>(state.range(1)), 'x');
  BenchCluster cluster(3);
  for (auto _ : state) {
    if (batched) {
      CHECK(cluster.leader().ProposeBatch(std::vector<std::string>(batch, payload)).ok());
    } else {
      for (int i = 0; i < batch; ++i) CHECK(cluster.leader().Propose(payload).ok());
    }
    cluster.Pump();
    cluster.MaybeCompact();
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetBytesProcessed(state.iterations() * batch * state.range(1));
  // Every proposal must have been applied everywhere, or the numbers above mean nothing.
  const uint64_t want = static_cast<uint64_t>(state.iterations() * batch);
  for (uint64_t id = 1; id <= 3; ++id) {
    if (cluster.applied(MemberId(id)) < want) state.SkipWithError("a proposal was not applied");
  }
}

void BM_ProposeEach(benchmark::State& state) { RunProposals(state, /*batched=*/false); }
void BM_ProposeBatched(benchmark::State& state) { RunProposals(state, /*batched=*/true); }

BENCHMARK(BM_ProposeEach)->ArgNames({"batch", "bytes"})->Args({1, 128})->Args({256, 128});
BENCHMARK(BM_ProposeBatched)
    ->ArgNames({"batch", "bytes"})
    ->Args({16, 128})
    ->Args({256, 128})
    ->Args({1024, 128})
    ->Args({256, 1024});

}  // namespace
}  // namespace dolmen::raft

BENCHMARK_MAIN();
