// The member core as a state machine (issue 18 item 1): events in, effects out, no thread, no
// clock, no sleep. Each test builds a member on an in-memory file system and backend, feeds it
// turns with a time the test chooses, and looks at what came out: callers answered, messages
// sent, entries in the WAL and the store. Peers, where a test needs them, are plain Raft nodes
// (raft::RawNode on memory storage) that follow the Ready contract.
//
// Seeded: DOLMEN_CORE_SEED=<n> replays a run (the seed is printed on failure).
#include "server/member_core.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "backend/memory_backend.h"
#include "io/memory_file_system.h"
#include "raft/memory_storage.h"
#include "raft/raw_node.h"
#include "server/applier.h"
#include "server/membership.h"
#include "server/persist_request.h"
#include "wal/wal.h"

namespace dolmen::server {
namespace {

using std::chrono::milliseconds;

uint64_t SeedFromEnv() {
  const char* s = std::getenv("DOLMEN_CORE_SEED");
  return s != nullptr ? std::strtoull(s, nullptr, 10) : 20261207;
}

std::string ReplayHint(uint64_t seed) {
  return "seed " + std::to_string(seed) + "; replay: DOLMEN_CORE_SEED=" + std::to_string(seed) +
         " build/src/server/dolmen_member_core_test --gtest_filter=" +
         ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name() + "." +
         ::testing::UnitTest::GetInstance()->current_test_info()->name();
}

std::string PutRequest(uint64_t id, const std::string& key, const std::string& value) {
  internal::InternalRequest r;
  r.set_id(id);
  r.mutable_put()->set_key(key);
  r.mutable_put()->set_value(value);
  return r.SerializeAsString();
}

// Records what the core sends, with what its own storage held at that moment: the Ready
// contract says which messages may leave before the entries and vote they speak of are durable.
class RecordingPeers final : public PeerSender {
 public:
  struct Sent {
    raft::Message message;
    Index persisted_last;       // the core's storage (written after the WAL fsync) at send time
    raft::HardState persisted;  // likewise its hard state
  };
  explicit RecordingPeers(const raft::MemoryStorage* storage) : storage_(storage) {}

  void Send(std::vector<raft::Message> messages) override {
    for (auto& m : messages) Record(std::move(m));
  }
  void SendSnapshot(raft::Message message) override { Record(std::move(message)); }
  void SetPeers(const std::vector<internal::Member>&) override {}

  std::vector<Sent> TakeSent() { return std::exchange(sent_, {}); }

 private:
  void Record(raft::Message m) {
    auto initial = storage_->GetInitialState();
    sent_.push_back(Sent{std::move(m), storage_->LastIndex(), initial->hard_state});
  }
  const raft::MemoryStorage* storage_;
  std::vector<Sent> sent_;
};

// Plain Raft nodes standing in for the other members; they never tick, so the core's clock alone
// decides who campaigns.
class PeerNodes {
 public:
  PeerNodes(const raft::ConfState& cs, const std::vector<MemberId>& ids) {
    for (MemberId id : ids) {
      Peer& p = peers_[id];
      p.storage = std::make_unique<raft::MemoryStorage>(cs);
      raft::Config c;
      c.id = id;
      c.storage = p.storage.get();
      c.random_seed = id.value();
      auto node = raft::RawNode::Create(c);
      CHECK(node.ok()) << node.status().ToString();
      p.node = std::move(*node);
    }
  }
  raft::RawNode& node(MemberId id) { return *peers_.at(id).node; }

  // Delivers messages to the peers and runs their Readys; returns what they sent to `core_id`.
  // `drop` (may be null) eats messages to the peers.
  std::vector<raft::Message> Exchange(std::vector<raft::Message> in, MemberId core_id) {
    std::vector<raft::Message> to_core;
    std::deque<raft::Message> queue(in.begin(), in.end());
    for (int rounds = 0; rounds < 1000; ++rounds) {
      while (!queue.empty()) {
        raft::Message m = std::move(queue.front());
        queue.pop_front();
        auto it = peers_.find(m.to);
        if (it != peers_.end()) (void)it->second.node->Step(m);
      }
      bool moved = false;
      for (auto& [id, p] : peers_) {
        if (!p.node->HasReady()) continue;
        moved = true;
        raft::Ready rd = p.node->GetReady();
        if (rd.snapshot) CHECK(p.storage->ApplySnapshot(*rd.snapshot).ok());
        if (!rd.entries.empty()) CHECK(p.storage->Append(rd.entries).ok());
        if (rd.hard_state) p.storage->SetHardState(*rd.hard_state);
        for (auto& m : rd.messages) {
          if (m.to == core_id) {
            to_core.push_back(std::move(m));
          } else {
            queue.push_back(std::move(m));
          }
        }
        p.node->Advance(rd);
      }
      if (!moved && queue.empty()) break;
    }
    return to_core;
  }

 private:
  struct Peer {
    std::unique_ptr<raft::MemoryStorage> storage;
    std::unique_ptr<raft::RawNode> node;
  };
  std::map<MemberId, Peer> peers_;
};

// One member's core on fakes: memory file system (WAL), memory backend (store), Raft storage.
class CoreMember {
 public:
  CoreMember(MemberId self, const std::vector<MemberId>& voters, DriverOptions options,
             uint64_t seed)
      : self_(self),
        options_(options),
        fs_(io::NewMemoryFileSystem()),
        backend_(backend::NewMemoryBackend()) {
    for (MemberId v : voters) conf_.voters.push_back(v);
    auto store = mvcc::Store::Open(backend_.get());
    CHECK(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    applier_ = std::make_unique<Applier>(store_.get());
    auto wal = wal::Wal::Create(fs_.get(), "/member/wal", "meta", wal::Options{});
    CHECK(wal.ok()) << wal.status().ToString();
    wal_ = std::move(*wal);
    storage_ = std::make_unique<raft::MemoryStorage>(conf_);
    peers_ = std::make_unique<RecordingPeers>(storage_.get());
    raft::Config rc;
    rc.id = self;
    rc.election_ticks = options.election_ticks;
    rc.heartbeat_ticks = 1;
    rc.storage = storage_.get();
    rc.random_seed = seed;
    auto node = raft::RawNode::Create(rc);
    CHECK(node.ok()) << node.status().ToString();
    MemberCore::Deps deps;
    deps.wal = wal_.get();
    deps.store = store_.get();
    deps.applier = applier_.get();
    deps.membership = &membership_;
    deps.storage = storage_.get();
    deps.peers = peers_.get();
    core_ = std::make_unique<MemberCore>(std::move(deps), std::move(*node), self, options);
    core_->Start(now_);
  }

  MemberCore& core() { return *core_; }
  RecordingPeers& peers() { return *peers_; }
  raft::MemoryStorage& storage() { return *storage_; }
  mvcc::Store& store() { return *store_; }
  TimePoint now() const { return now_; }
  const raft::ConfState& conf() const { return conf_; }

  // One turn at now() + `advance`; the test fails if the core says the member must stop. Then,
  // as the driver does, each WAL write the core asks for is performed at once and reported in
  // a turn of its own, unless the test holds the writes (hold_writes) to complete them itself.
  void Turn(InboxBatch events = {}, milliseconds advance = milliseconds(0)) {
    now_ += advance;
    dolmen::Status s = core_->Turn(std::move(events), now_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    if (hold_writes_) return;
    for (int i = 0; i < 100; ++i) {
      const PersistRequest* write = core_->TakePersistRequest();
      if (write == nullptr) return;
      InboxBatch done;
      done.persisted = WalPersisted{Persist(*wal_, *write)};
      s = core_->Turn(std::move(done), now_);
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    FAIL() << "100 WAL writes in a row after one turn";
  }
  void hold_writes(bool hold) { hold_writes_ = hold; }
  wal::Wal& wal() { return *wal_; }
  // The write the core asks for, performed and reported (with `status` if it is not OK).
  void CompleteWrite(const PersistRequest& write, dolmen::Status status = OkStatus()) {
    if (status.ok()) status = Persist(*wal_, write);
    InboxBatch done;
    done.persisted = WalPersisted{status};
    dolmen::Status s = core_->Turn(std::move(done), now_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  // A turn one tick later.
  void Tick(InboxBatch events = {}) { Turn(std::move(events), options_.tick_interval); }

  Proposal Put(uint64_t id, const std::string& key, std::vector<ApplyResult>* answers,
               milliseconds timeout = milliseconds(7000)) {
    return Proposal{id, PutRequest(id, key, "v" + std::to_string(id)),
                    [answers](ApplyResult r) { answers->push_back(std::move(r)); }, now_ + timeout};
  }
  // With writes held: a put of `key` proposed in a turn of its own, which ends with its WAL
  // write asked for and not done.
  void ProposeWithWritesHeld(uint64_t id, const std::string& key,
                             std::vector<ApplyResult>* answers) {
    hold_writes(true);
    InboxBatch events;
    events.proposals.push_back(Put(id, key, answers));
    Turn(std::move(events));
  }
  Waiter Read(std::vector<dolmen::Status>* answers, milliseconds timeout = milliseconds(7000)) {
    return Waiter{[answers](dolmen::Status s) { answers->push_back(std::move(s)); },
                  now_ + timeout};
  }

 private:
  const MemberId self_;
  const DriverOptions options_;
  raft::ConfState conf_;
  TimePoint now_{std::chrono::hours(1)};
  std::unique_ptr<io::MemoryFileSystem> fs_;
  std::unique_ptr<backend::Backend> backend_;
  std::unique_ptr<mvcc::Store> store_;
  std::unique_ptr<Applier> applier_;
  Membership membership_;
  std::unique_ptr<wal::Wal> wal_;
  std::unique_ptr<raft::MemoryStorage> storage_;
  std::unique_ptr<RecordingPeers> peers_;
  std::unique_ptr<MemberCore> core_;
  bool hold_writes_ = false;
};

// Delivers what the core sent to the peers (recording it in `log` when given); the events of
// the core's next turn are their answers.
InboxBatch Deliver(CoreMember& m, PeerNodes& peers,
                   std::vector<RecordingPeers::Sent>* log = nullptr) {
  std::vector<raft::Message> out;
  for (auto& s : m.peers().TakeSent()) {
    if (log != nullptr) log->push_back(s);
    out.push_back(std::move(s.message));
  }
  InboxBatch events;
  events.messages = peers.Exchange(std::move(out), MemberId(1));
  return events;
}

// Runs turns, one tick apart, exchanging messages with the peers, until `done` or a bound.
template <typename Done>
bool RunUntil(CoreMember& m, PeerNodes& peers, Done done, int max_ticks = 200) {
  for (int i = 0; i < max_ticks && !done(); ++i) {
    InboxBatch events = Deliver(m, peers);
    // A turn without advancing time when there is traffic; a tick when there is none.
    if (events.messages.empty()) {
      m.Tick();
    } else {
      m.Turn(std::move(events));
    }
  }
  return done();
}

const MemberId kSelf(1);

DriverOptions Options() {
  DriverOptions o;
  o.tick_interval = milliseconds(100);
  o.election_ticks = 10;
  return o;
}

TEST(MemberCoreTest, LoneMemberAppliesProposalsInOrderAndAnswersEach) {
  const uint64_t seed = SeedFromEnv();
  SCOPED_TRACE(ReplayHint(seed));
  std::mt19937_64 rng(seed);
  CoreMember m(kSelf, {kSelf}, Options(), seed);
  m.Turn();  // the lone voter elected itself at Start; this turn makes it leader
  ASSERT_EQ(m.core().leader(), kSelf);

  // A random number of proposals per turn, random time between turns: every caller is
  // answered once, in proposal order, each with the next revision.
  std::vector<ApplyResult> answers;
  uint64_t id = 0;
  for (int turn = 0; turn < 20; ++turn) {
    InboxBatch events;
    const int n = static_cast<int>(rng() % 8);
    for (int i = 0; i < n; ++i) {
      ++id;
      events.proposals.push_back(m.Put(id, "k" + std::to_string(id), &answers));
    }
    m.Turn(std::move(events), milliseconds(rng() % 50));
    ASSERT_EQ(answers.size(), id) << "turn " << turn;
  }
  for (size_t i = 0; i < answers.size(); ++i) {
    ASSERT_TRUE(answers[i].status.ok()) << answers[i].status.ToString();
    const auto* put = std::get_if<etcdserverpb::PutResponse>(&answers[i].response);
    ASSERT_NE(put, nullptr);
    EXPECT_EQ(put->header().revision(), static_cast<int64_t>(i) + 2) << "apply order, #" << i;
  }
  EXPECT_EQ(m.store().CurrentRevision().value(), static_cast<int64_t>(id) + 1);
  // Everything applied is in the WAL's mirror.
  EXPECT_GE(m.storage().LastIndex().value(), m.core().applied_index().value());
}

TEST(MemberCoreTest, ProposalWithoutLeaderWaitsAndFailsAtItsDeadlineCarriedByTicks) {
  CoreMember m(kSelf, {kSelf, MemberId(2), MemberId(3)}, Options(), 7);
  std::vector<ApplyResult> answers;
  InboxBatch events;
  events.proposals.push_back(m.Put(1, "k", &answers, milliseconds(1000)));
  m.Turn(std::move(events));
  EXPECT_TRUE(answers.empty()) << "no leader: the proposal waits";
  EXPECT_EQ(m.core().held().proposals, 1u);
  // Time passes in ticks only; no peer answers, so there is never a leader.
  for (int i = 0; i < 9; ++i) m.Tick();
  EXPECT_TRUE(answers.empty()) << "900 ms: before the deadline";
  m.Tick();
  ASSERT_EQ(answers.size(), 1u) << "1000 ms: at the deadline";
  EXPECT_EQ(answers[0].status.code(), Code::kNoLeader) << answers[0].status.ToString();
  EXPECT_EQ(m.core().held().proposals, 0u);
}

TEST(MemberCoreTest, FullWaitingListRefusesAtOnceWithTooManyRequests) {
  DriverOptions o = Options();
  o.max_pending = 2;
  CoreMember m(kSelf, {kSelf, MemberId(2), MemberId(3)}, o, 7);
  std::vector<ApplyResult> answers;
  InboxBatch events;
  for (uint64_t id = 1; id <= 3; ++id) events.proposals.push_back(m.Put(id, "k", &answers));
  m.Turn(std::move(events));
  ASSERT_EQ(answers.size(), 1u) << "the third is refused, the first two wait";
  EXPECT_EQ(answers[0].status.code(), Code::kTooManyRequests);
  EXPECT_EQ(answers[0].status.message(), "too many requests");
  EXPECT_EQ(m.core().held().proposals, 2u);
}

TEST(MemberCoreTest, FullReadBarrierRefusesAtOnce) {
  DriverOptions o = Options();
  o.max_pending_reads = 1;
  CoreMember m(kSelf, {kSelf, MemberId(2), MemberId(3)}, o, 7);
  std::vector<dolmen::Status> reads;
  InboxBatch events;
  events.reads.push_back(m.Read(&reads));
  events.reads.push_back(m.Read(&reads));
  m.Turn(std::move(events));
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0].code(), Code::kTooManyRequests);
}

TEST(MemberCoreTest, ReadIsAnsweredOnlyOnceTheLeaderConfirmedItsBarrier) {
  const uint64_t seed = SeedFromEnv();
  SCOPED_TRACE(ReplayHint(seed));
  CoreMember m(kSelf, {kSelf, MemberId(2), MemberId(3)}, Options(), seed);
  PeerNodes peers(m.conf(), {MemberId(2), MemberId(3)});
  ASSERT_TRUE(RunUntil(m, peers, [&] { return m.core().leader() == kSelf; }))
      << "the core, the only member whose clock runs, is elected";
  // Settle: the leader's first entry committed and applied.
  ASSERT_TRUE(
      RunUntil(m, peers, [&] { return m.core().applied_index() == m.storage().LastIndex(); }));

  std::vector<dolmen::Status> reads;
  InboxBatch events;
  events.reads.push_back(m.Read(&reads));
  m.Turn(std::move(events));
  EXPECT_TRUE(reads.empty()) << "a leader must hear a quorum's heartbeat answers first";
  std::vector<raft::Message> heartbeats;
  for (auto& s : m.peers().TakeSent()) {
    if (s.message.type == raft::MessageType::kHeartbeat && !s.message.context.empty()) {
      heartbeats.push_back(std::move(s.message));
    }
  }
  ASSERT_EQ(heartbeats.size(), 2u) << "one heartbeat with the read's context to each follower";
  // Answers lost: still no read. Time passes, but less than the request timeout.
  m.Tick();
  EXPECT_TRUE(reads.empty());
  // One follower's answer makes a quorum of two with the leader.
  InboxBatch answer;
  answer.messages = peers.Exchange({heartbeats[0]}, kSelf);
  ASSERT_FALSE(answer.messages.empty());
  m.Turn(std::move(answer));
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_TRUE(reads[0].ok()) << reads[0].ToString();
}

TEST(MemberCoreTest, LeaderAnswersAProposalOnlyOnceAQuorumHoldsIt) {
  const uint64_t seed = SeedFromEnv();
  SCOPED_TRACE(ReplayHint(seed));
  CoreMember m(kSelf, {kSelf, MemberId(2), MemberId(3)}, Options(), seed);
  PeerNodes peers(m.conf(), {MemberId(2), MemberId(3)});
  ASSERT_TRUE(RunUntil(m, peers, [&] { return m.core().leader() == kSelf; }));
  ASSERT_TRUE(
      RunUntil(m, peers, [&] { return m.core().applied_index() == m.storage().LastIndex(); }));
  (void)m.peers().TakeSent();

  std::vector<ApplyResult> answers;
  Index persisted_when_answered;
  InboxBatch events;
  Proposal p = m.Put(1, "k", &answers);
  p.done = [&](ApplyResult r) {
    persisted_when_answered = m.storage().LastIndex();
    answers.push_back(std::move(r));
  };
  events.proposals.push_back(std::move(p));
  m.Turn(std::move(events));
  EXPECT_TRUE(answers.empty()) << "the leader's own copy is not a quorum of three";
  std::vector<raft::Message> appends;
  for (auto& s : m.peers().TakeSent()) {
    if (s.message.type == raft::MessageType::kApp && !s.message.entries.empty()) {
      appends.push_back(std::move(s.message));
    }
  }
  ASSERT_EQ(appends.size(), 2u) << "the entry goes to both followers";
  const Index entry = appends[0].entries.back().index;
  // One follower's acknowledgement commits it (two of three); the caller hears once it is
  // applied, and by then the leader's WAL holds it too.
  InboxBatch acks;
  acks.messages = peers.Exchange({appends[0]}, kSelf);
  m.Turn(std::move(acks));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_TRUE(answers[0].status.ok()) << answers[0].status.ToString();
  EXPECT_GE(persisted_when_answered, entry);
  EXPECT_GE(m.core().applied_index(), entry);
}

TEST(MemberCoreTest, FollowerAcknowledgesOnlyWhatItsWalHolds) {
  const uint64_t seed = SeedFromEnv();
  SCOPED_TRACE(ReplayHint(seed));
  CoreMember m(kSelf, {kSelf, MemberId(2), MemberId(3)}, Options(), seed);
  PeerNodes peers(m.conf(), {MemberId(2), MemberId(3)});
  // Member 2 campaigns; the core votes and then follows it.
  ASSERT_TRUE(peers.node(MemberId(2)).Campaign().ok());
  std::vector<RecordingPeers::Sent> sent;
  for (int round = 0; round < 50 && m.core().leader() != MemberId(2); ++round) {
    m.Turn(Deliver(m, peers, &sent));
  }
  ASSERT_EQ(m.core().leader(), MemberId(2));
  // The leader proposes a few writes; they reach the core and its answers go back.
  for (uint64_t id = 1; id <= 5; ++id) {
    ASSERT_TRUE(peers.node(MemberId(2)).Propose(PutRequest(id, "k", "v")).ok());
  }
  for (int round = 0; round < 50; ++round) {
    InboxBatch events = Deliver(m, peers, &sent);
    if (events.messages.empty()) break;
    m.Turn(std::move(events));
  }
  EXPECT_GE(m.core().applied_index().value(), 6u) << "the leader's empty entry and 5 writes";
  int acks = 0;
  int votes = 0;
  for (const auto& s : sent) {
    // Raft's rule for a follower: an append is acknowledged, and a vote given, only once the
    // entries and the vote are durable (the core's storage is written after the WAL fsync).
    if (s.message.type == raft::MessageType::kAppResp && !s.message.reject) {
      ++acks;
      EXPECT_LE(s.message.index.value(), s.persisted_last.value());
    }
    if (s.message.type == raft::MessageType::kVoteResp && !s.message.reject) {
      ++votes;
      EXPECT_EQ(s.persisted.vote, s.message.to) << "vote sent before it was durable";
      EXPECT_EQ(s.persisted.term, s.message.term);
    }
  }
  EXPECT_GT(acks, 0);
  EXPECT_EQ(votes, 1);
}

TEST(MemberCoreTest, StopFailsEverythingPendingExactlyOnce) {
  CoreMember m(kSelf, {kSelf, MemberId(2), MemberId(3)}, Options(), 7);
  std::vector<ApplyResult> proposals;
  std::vector<dolmen::Status> others;
  auto status_done = [&others](dolmen::Status s) { others.push_back(std::move(s)); };
  InboxBatch events;
  events.proposals.push_back(m.Put(1, "a", &proposals));
  events.reads.push_back(m.Read(&others));
  raft::ConfChange cc;
  cc.type = raft::ConfChangeType::kAddLearner;
  cc.node_id = MemberId(4);
  events.conf_changes.push_back(ConfProposal{cc, status_done, m.now() + milliseconds(7000)});
  m.Turn(std::move(events));
  ASSERT_TRUE(proposals.empty());
  ASSERT_TRUE(others.empty());
  // Never taken by a turn: answered by the stop too.
  InboxBatch rest;
  rest.proposals.push_back(m.Put(2, "b", &proposals));
  rest.tasks.push_back(status_done);
  rest.reads.push_back(m.Read(&others));

  m.core().FailAll(dolmen::Status(Code::kStopped, "server stopped"), std::move(rest));
  ASSERT_EQ(proposals.size(), 2u);
  for (const auto& p : proposals) EXPECT_EQ(p.status.code(), Code::kStopped);
  ASSERT_EQ(others.size(), 4u) << "a read, a conf change, a task, a read";
  for (const auto& s : others) EXPECT_EQ(s.code(), Code::kStopped);
  const Backlog held = m.core().held();
  EXPECT_EQ(held.proposals + held.reads + held.conf_changes, 0u);
  // A second stop finds nothing to answer.
  m.core().FailAll(dolmen::Status(Code::kStopped, "server stopped"), {});
  EXPECT_EQ(proposals.size(), 2u);
  EXPECT_EQ(others.size(), 4u);
}

TEST(MemberCoreTest, TasksRunAfterTheTurnWithTheBatchCommitted) {
  CoreMember m(kSelf, {kSelf}, Options(), 7);
  m.Turn();
  std::vector<ApplyResult> answers;
  std::optional<int64_t> revision_seen;
  InboxBatch events;
  events.proposals.push_back(m.Put(1, "k", &answers));
  events.tasks.push_back([&](dolmen::Status s) {
    ASSERT_TRUE(s.ok());
    ASSERT_EQ(answers.size(), 1u) << "the task runs after the proposal queued before it";
    revision_seen = m.store().CurrentRevision().value();
  });
  m.Turn(std::move(events));
  ASSERT_TRUE(revision_seen.has_value());
  EXPECT_EQ(*revision_seen, 2);
  EXPECT_EQ(m.store().ConsistentIndex(), m.core().applied_index())
      << "the backend holds every applied entry when a task runs";
}

TEST(MemberCoreTest, CheckpointAsksForASyncBesideTheLoopAndFinishesWhenItIsDone) {
  DriverOptions o = Options();
  o.checkpoint_entries = 3;
  CoreMember m(kSelf, {kSelf}, o, 7);
  const uint64_t initial_snapshot = m.storage().GetSnapshot()->metadata.index.value();
  m.Turn();
  std::vector<ApplyResult> answers;
  InboxBatch events;
  for (uint64_t id = 1; id <= 3; ++id) events.proposals.push_back(m.Put(id, "k", &answers));
  m.Turn(std::move(events));
  ASSERT_EQ(answers.size(), 3u);
  std::optional<uint64_t> sync = m.core().TakeSyncRequest();
  ASSERT_TRUE(sync.has_value()) << "three entries applied: a checkpoint is due";
  EXPECT_EQ(*sync, m.core().applied_index().value());
  EXPECT_FALSE(m.core().TakeSyncRequest().has_value()) << "asked once";
  // Until the sync is reported done the log is kept, and no second sync is asked for.
  InboxBatch more;
  for (uint64_t id = 4; id <= 6; ++id) more.proposals.push_back(m.Put(id, "k", &answers));
  m.Turn(std::move(more));
  EXPECT_FALSE(m.core().TakeSyncRequest().has_value()) << "one sync at a time";
  EXPECT_EQ(m.storage().GetSnapshot()->metadata.index.value(), initial_snapshot);
  InboxBatch done;
  done.synced.push_back(SyncDone{*sync, OkStatus()});
  m.Turn(std::move(done));
  EXPECT_EQ(m.storage().GetSnapshot()->metadata.index.value(), *sync)
      << "the snapshot marker is recorded at the synced index";
}

TEST(MemberCoreTest, FailedCheckpointSyncStopsTheMember) {
  DriverOptions o = Options();
  o.checkpoint_entries = 1;
  CoreMember m(kSelf, {kSelf}, o, 7);
  m.Turn();
  std::vector<ApplyResult> answers;
  InboxBatch events;
  events.proposals.push_back(m.Put(1, "k", &answers));
  m.Turn(std::move(events));
  std::optional<uint64_t> sync = m.core().TakeSyncRequest();
  ASSERT_TRUE(sync.has_value());
  InboxBatch done;
  done.synced.push_back(SyncDone{*sync, dolmen::Status(Code::kIoError, "fsync failed")});
  dolmen::Status s = m.core().Turn(std::move(done), m.now());
  EXPECT_EQ(s.code(), Code::kIoError) << "a failed fsync is never retried over lost pages";
}

TEST(MemberCoreTest, NextWakeIsTheNextTickOrBatchCommit) {
  DriverOptions o = Options();
  o.backend_commit_interval = milliseconds(30);
  CoreMember m(kSelf, {kSelf}, o, 7);
  const TimePoint start = m.now();
  m.Turn();  // elected: the leader's first entry is applied, its batch due in 30 ms
  EXPECT_EQ(m.core().NextWake(), start + o.backend_commit_interval);
  m.Turn({}, o.backend_commit_interval);
  EXPECT_EQ(m.core().NextWake(), start + o.tick_interval) << "nothing uncommitted: next tick";
  std::vector<ApplyResult> answers;
  InboxBatch events;
  events.proposals.push_back(m.Put(1, "k", &answers));
  m.Turn(std::move(events));
  EXPECT_EQ(m.core().NextWake(), m.now() + o.backend_commit_interval)
      << "an uncommitted batch is due before the tick";
  m.Turn({}, o.backend_commit_interval);
  EXPECT_EQ(m.store().ConsistentIndex(), m.core().applied_index()) << "committed when due";
}

// The Ready's WAL write is an effect (persist_request.h): until the shell reports it durable,
// nothing that depends on it happens, and what arrives meanwhile is kept.
TEST(MemberCoreTest, NothingIsAppliedOrAnsweredBeforeWalPersistedAndEventsMeanwhileAreKept) {
  CoreMember m(kSelf, {kSelf}, Options(), 7);
  m.Turn();  // elected
  m.hold_writes(true);
  const Index applied = m.core().applied_index();
  const Index stored = m.storage().LastIndex();
  std::vector<ApplyResult> answers;
  std::vector<dolmen::Status> reads;
  std::vector<dolmen::Status> tasks;
  InboxBatch first;
  first.proposals.push_back(m.Put(1, "a", &answers));
  m.Turn(std::move(first));
  const PersistRequest* write = m.core().TakePersistRequest();
  ASSERT_NE(write, nullptr) << "the proposal's entry must be written";
  EXPECT_EQ(m.core().TakePersistRequest(), nullptr) << "handed out once";
  ASSERT_EQ(write->entries.size(), 1u);
  EXPECT_TRUE(write->sync) << "an entry is durable before it counts";
  EXPECT_EQ(m.storage().LastIndex(), stored) << "Raft's storage mirrors only what is durable";

  // More events while the write is outstanding: a proposal, a read, a task, a tick.
  InboxBatch meanwhile;
  meanwhile.proposals.push_back(m.Put(2, "b", &answers));
  meanwhile.reads.push_back(m.Read(&reads));
  meanwhile.tasks.push_back([&tasks](dolmen::Status s) { tasks.push_back(s); });
  m.Tick(std::move(meanwhile));
  EXPECT_EQ(m.core().TakePersistRequest(), nullptr) << "one write outstanding at a time";
  EXPECT_TRUE(m.core().persist_outstanding());
  EXPECT_TRUE(answers.empty());
  EXPECT_TRUE(reads.empty());
  EXPECT_TRUE(tasks.empty()) << "a task waits for the write before it";
  EXPECT_EQ(m.core().applied_index(), applied);

  // Durable: the first entry is applied and answered; the rest follow, each after its write.
  m.CompleteWrite(*write);
  EXPECT_EQ(m.storage().LastIndex().value(), stored.value() + 1);
  for (int i = 0; i < 10; ++i) {
    const PersistRequest* next = m.core().TakePersistRequest();
    if (next == nullptr) break;
    m.CompleteWrite(*next);
  }
  EXPECT_FALSE(m.core().persist_outstanding());
  ASSERT_EQ(answers.size(), 2u) << "neither proposal was lost";
  EXPECT_TRUE(answers[0].status.ok() && answers[1].status.ok());
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_TRUE(reads[0].ok()) << reads[0].ToString();
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(m.store().CurrentRevision().value(), 3);
}

TEST(MemberCoreTest, LeaderSendsItsAppendsBeforeItsWriteButAppliesOnlyAfterIt) {
  CoreMember m(kSelf, {kSelf, MemberId(2), MemberId(3)}, Options(), 7);
  PeerNodes peers(m.conf(), {MemberId(2), MemberId(3)});
  ASSERT_TRUE(RunUntil(m, peers, [&] { return m.core().leader() == kSelf; }));
  ASSERT_TRUE(
      RunUntil(m, peers, [&] { return m.core().applied_index() >= m.core().commit_index(); }));
  const Index applied = m.core().applied_index();
  std::vector<ApplyResult> answers;
  m.ProposeWithWritesHeld(1, "k", &answers);
  const PersistRequest* write = m.core().TakePersistRequest();
  ASSERT_NE(write, nullptr);
  ASSERT_FALSE(write->entries.empty());
  const Index entry = write->entries.back().index;
  // The appends left before the leader's own write (thesis section 10.2.1) ...
  std::vector<raft::Message> appends;
  for (auto& sent : m.peers().TakeSent()) {
    if (sent.message.type == raft::MessageType::kApp && !sent.message.entries.empty()) {
      appends.push_back(sent.message);
    }
  }
  ASSERT_EQ(appends.size(), 2u);
  // ... and both followers hold the entry, a quorum without the leader's copy: still nothing is
  // applied or answered here until the leader's own write is reported.
  InboxBatch acks;
  acks.messages = peers.Exchange(appends, kSelf);
  ASSERT_FALSE(acks.messages.empty());
  m.Turn(std::move(acks));
  EXPECT_TRUE(answers.empty());
  EXPECT_EQ(m.core().applied_index(), applied);
  m.CompleteWrite(*write);
  for (int i = 0; i < 10; ++i) {
    const PersistRequest* next = m.core().TakePersistRequest();
    if (next == nullptr) break;
    m.CompleteWrite(*next);
  }
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_TRUE(answers[0].status.ok()) << answers[0].status.ToString();
  EXPECT_GE(m.core().applied_index(), entry);
}

TEST(MemberCoreTest, FollowerAcknowledgesNothingBeforeWalPersisted) {
  CoreMember m(kSelf, {kSelf, MemberId(2), MemberId(3)}, Options(), 7);
  PeerNodes peers(m.conf(), {MemberId(2), MemberId(3)});
  ASSERT_TRUE(peers.node(MemberId(2)).Campaign().ok());
  for (int round = 0; round < 50 && m.core().leader() != MemberId(2); ++round) {
    m.Turn(Deliver(m, peers));
  }
  ASSERT_EQ(m.core().leader(), MemberId(2));
  for (int round = 0; round < 50; ++round) {
    InboxBatch events = Deliver(m, peers);
    if (events.messages.empty()) break;
    m.Turn(std::move(events));
  }
  m.hold_writes(true);
  ASSERT_TRUE(peers.node(MemberId(2)).Propose(PutRequest(1, "k", "v")).ok());
  InboxBatch append = Deliver(m, peers);
  ASSERT_FALSE(append.messages.empty());
  m.Turn(std::move(append));
  const PersistRequest* write = m.core().TakePersistRequest();
  ASSERT_NE(write, nullptr);
  ASSERT_FALSE(write->entries.empty());
  const Index entry = write->entries.back().index;
  auto acknowledged = [&m](Index at_least) {
    bool acked = false;
    for (const auto& sent : m.peers().TakeSent()) {
      acked |= sent.message.type == raft::MessageType::kAppResp && !sent.message.reject &&
               sent.message.index >= at_least;
    }
    return acked;
  };
  EXPECT_FALSE(acknowledged(entry)) << "acknowledged before the write was durable";
  // The leader's heartbeats and ticks while the write is outstanding do not release it either.
  for (int i = 0; i < 3; ++i) {
    m.Tick(Deliver(m, peers));
    EXPECT_FALSE(acknowledged(entry)) << "tick " << i;
  }
  m.CompleteWrite(*write);
  EXPECT_TRUE(acknowledged(entry)) << "the acknowledgement leaves once the write is durable";
}

TEST(MemberCoreTest, FailedWalWriteStopsTheMemberBeforeAnythingDependsOnIt) {
  CoreMember m(kSelf, {kSelf}, Options(), 7);
  m.Turn();
  const Index applied = m.core().applied_index();
  std::vector<ApplyResult> answers;
  m.ProposeWithWritesHeld(1, "k", &answers);
  ASSERT_NE(m.core().TakePersistRequest(), nullptr);
  InboxBatch failed;
  failed.persisted = WalPersisted{dolmen::Status(Code::kIoError, "fdatasync: injected")};
  dolmen::Status s = m.core().Turn(std::move(failed), m.now());
  EXPECT_EQ(s.code(), Code::kIoError) << "a failed write stops the member";
  EXPECT_TRUE(answers.empty());
  EXPECT_EQ(m.core().applied_index(), applied);
  m.core().FailAll(dolmen::Status(Code::kStopped, "server stopped"), {});
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status.code(), Code::kStopped);
}

// The shell's two halves: the write starts (buffered), the fdatasync makes it durable.
TEST(PersistRequestTest, OnlyTheSyncedWriteSurvivesACrash) {
  auto fs = io::NewMemoryFileSystem();
  auto wal = wal::Wal::Create(fs.get(), "/wal", "meta", wal::Options{});
  ASSERT_TRUE(wal.ok()) << wal.status().ToString();
  raft::HardState hs;
  hs.term = Term(1);
  PersistRequest write;
  write.entries.push_back(raft::Entry{Term(1), Index(1), raft::EntryType::kNormal, "a"});
  write.hard_state = hs;
  write.sync = true;
  ASSERT_TRUE(Persist(**wal, write).ok());
  PersistRequest started;
  started.entries.push_back(raft::Entry{Term(1), Index(2), raft::EntryType::kNormal, "b"});
  started.sync = true;
  ASSERT_TRUE(StartPersist(**wal, started).ok());
  wal->reset();
  fs->Crash(io::CrashOptions{});
  auto opened = wal::Wal::Open(fs.get(), "/wal", wal::Options{});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  const wal::Recovered& r = opened->second;
  ASSERT_EQ(r.entries.size(), 1u) << "the started write was never synced";
  EXPECT_EQ(r.entries[0].index, Index(1));
  EXPECT_EQ(r.hard_state.term, Term(1));
}

}  // namespace
}  // namespace dolmen::server
