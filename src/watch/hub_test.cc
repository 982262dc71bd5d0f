// The hub on a real mvcc::Store (memory backend), written to the way the driver does: one
// writer thread ends each WriteTxn and then hands its events to Notify. Time is a ManualClock
// the tests move; no test sleeps to wait for the hub: they await a condition with a deadline
// (kWait), or use a progress request as a barrier for the worker (Consumer::Barrier).
#include "watch/hub.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "backend/memory_backend.h"

namespace dolmen::watch {
namespace {

using namespace std::chrono_literals;
constexpr auto kWait = 20s;  // bound on every wait; the happy path takes milliseconds

class WatchHubTest : public ::testing::Test {
 protected:
  WatchHubTest() : backend_(backend::NewMemoryBackend()) {
    auto opened = mvcc::Store::Open(backend_.get());
    CHECK(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }
  ~WatchHubTest() override {
    if (release_) release_();  // a test that failed with a read held at its gate
    if (hub_) hub_->Stop();
  }

  void StartHub(HubOptions options = {}) {
    hub_ = std::make_unique<Hub>(store_.get(), &clock_, options);
    hub_->Start();
  }
  // The same on another view of the store (a slow or failing one), which the fixture keeps
  // until the hub has stopped (its catch-up thread reads it to the end).
  template <typename H>
  H* StartHubOn(std::unique_ptr<H> history, HubOptions options = {}) {
    H* raw = history.get();
    history_ = std::move(history);
    hub_ = std::make_unique<Hub>(raw, &clock_, options);
    hub_->Start();
    return raw;
  }
  // Moves the member's time and tells the hub.
  void Advance(std::chrono::nanoseconds d) {
    clock_.Advance(d);
    hub_->Wake();
  }

  // As the driver: write, publish, then notify.
  int64_t Put(const std::string& key, const std::string& value) {
    auto txn = store_->BeginWrite();
    CHECK(txn->Put(key, value, LeaseId(0)).ok());
    int64_t rev = txn->End().value();
    hub_->Notify(txn->Events(), Revision(rev));
    return rev;
  }
  int64_t Delete(const std::string& key) {
    auto txn = store_->BeginWrite();
    CHECK(txn->DeleteRange(key, "").ok());
    int64_t rev = txn->End().value();
    hub_->Notify(txn->Events(), Revision(rev));
    return rev;
  }
  // `n` revisions, each putting h/a and h/b with 1000-byte values: a long history to catch up.
  void PutPairs(int n) {
    const std::string value(1000, 'v');
    for (int i = 0; i < n; ++i) {
      auto txn = store_->BeginWrite();
      CHECK(txn->Put("h/a", value, LeaseId(0)).ok());
      CHECK(txn->Put("h/b", value, LeaseId(0)).ok());
      hub_->Notify(txn->Events(), txn->End());
    }
  }
  // One revision with several changes.
  int64_t PutMany(const std::vector<std::string>& keys) {
    auto txn = store_->BeginWrite();
    for (const auto& k : keys) CHECK(txn->Put(k, "v", LeaseId(0)).ok());
    int64_t rev = txn->End().value();
    hub_->Notify(txn->Events(), Revision(rev));
    return rev;
  }

  ManualClock clock_;  // declared first: the hub's threads read it until the hub stops
  std::unique_ptr<backend::Backend> backend_;
  std::unique_ptr<mvcc::Store> store_;
  std::unique_ptr<History> history_;  // StartHubOn's; outlives the hub
  std::function<void()> release_;     // lets a held store read go before the hub stops
  std::unique_ptr<Hub> hub_;
};

// A stream consumer: pops what the hub queued, waking on the hub's callback.
class Consumer {
 public:
  explicit Consumer(Hub* hub) : hub_(hub) {
    stream_ = hub->OpenStream([this] {
      std::lock_guard<std::mutex> l(mu_);
      woken_ = true;
      cv_.notify_all();
    });
  }
  ~Consumer() { hub_->CloseStream(stream_); }
  Stream* stream() { return stream_.get(); }

  // Pops until `done(all responses so far)` holds; false on timeout.
  template <typename Pred>
  bool PopUntil(Pred done) {
    auto deadline = std::chrono::steady_clock::now() + kWait;
    for (;;) {
      while (auto r = stream_->Pop()) got.push_back(std::move(*r));
      if (done(got)) return true;
      std::unique_lock<std::mutex> l(mu_);
      if (!cv_.wait_until(l, deadline, [this] { return woken_; })) return false;
      woken_ = false;
    }
  }
  // A barrier for the hub's worker: requests progress and pops until the answer (every
  // watcher of the stream must be synced), again until the answer's revision reaches
  // `through` (the worker has delivered every batch through it). The worker reads the clock
  // under its lock after the request is registered, so any tick due at the clock's time when
  // this was called has been queued before the answer. False on timeout.
  bool Barrier(int64_t through = 0) {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < deadline) {
      const size_t seen = got.size();
      hub_->RequestProgress(stream_.get());
      size_t answer = 0;
      bool answered = PopUntil([seen, &answer](const std::vector<Response>& all) {
        for (size_t i = seen; i < all.size(); ++i) {
          if (all[i].watch_id == kNoWatchId && !all[i].created) {
            answer = i;
            return true;
          }
        }
        return false;
      });
      if (!answered) return false;
      if (got[answer].revision.value() >= through) return true;
    }
    return false;
  }
  // Every event of watcher `id`, in arrival order.
  std::vector<mvcc::Event> EventsOf(int64_t id) const {
    std::vector<mvcc::Event> out;
    for (const auto& r : got) {
      if (r.watch_id != id) continue;
      for (const auto& e : r.events) out.push_back(*e);
    }
    return out;
  }

  std::vector<Response> got;

 private:
  Hub* hub_;
  std::shared_ptr<Stream> stream_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
};

auto HasEvents(int64_t id, size_t n) {
  return [id, n](const std::vector<Response>& got) {
    size_t count = 0;
    for (const auto& r : got) {
      if (r.watch_id == id) count += r.events.size();
    }
    return count >= n;
  };
}

WatchOptions Key(std::string key, int64_t id = 0) {
  WatchOptions o;
  o.key = std::move(key);
  o.watch_id = id;
  return o;
}

WatchOptions Prefix(std::string prefix, int64_t start = 0, int64_t id = 0) {
  WatchOptions o;
  o.key = prefix;
  o.range_end = prefix;
  o.range_end.back()++;
  o.start_revision = Revision(start);
  o.watch_id = id;
  return o;
}

// Each revision's events in one response; a response's revision is its last event's.
void ExpectRevisionsWhole(const std::vector<Response>& got) {
  std::map<int64_t, size_t> response_of;  // revision -> index of the response carrying it
  for (size_t i = 0; i < got.size(); ++i) {
    for (const auto& e : got[i].events) {
      auto [it, inserted] = response_of.emplace(e->kv.mod_revision.value(), i);
      EXPECT_EQ(it->second, i) << "revision " << e->kv.mod_revision.value() << " split";
    }
    if (!got[i].events.empty()) {
      EXPECT_EQ(got[i].revision, got[i].events.back()->kv.mod_revision);
    }
  }
}

TEST_F(WatchHubTest, CreatedFirstThenEventsInOrderRevisionsWhole) {
  StartHub();
  Consumer c(hub_.get());
  hub_->Watch(c.stream(), Prefix("k/"));
  ASSERT_TRUE(c.PopUntil([](const auto& got) { return !got.empty(); }));
  EXPECT_TRUE(c.got[0].created);
  EXPECT_EQ(c.got[0].watch_id, 0);  // etcd's first server-assigned id
  EXPECT_EQ(c.got[0].revision, Revision(1));
  Put("k/a", "1");
  Put("other", "x");
  int64_t both = PutMany({"k/b", "k/c"});
  Delete("k/a");
  ASSERT_TRUE(c.PopUntil(HasEvents(0, 4)));
  ExpectRevisionsWhole(c.got);
  auto evs = c.EventsOf(0);
  ASSERT_EQ(evs.size(), 4u);
  EXPECT_EQ(evs[0].kv.key, "k/a");
  EXPECT_EQ(evs[1].kv.key, "k/b");
  EXPECT_EQ(evs[1].kv.mod_revision, Revision(both));
  EXPECT_EQ(evs[2].kv.key, "k/c");
  EXPECT_EQ(evs[2].kv.mod_revision, Revision(both));
  EXPECT_EQ(evs[3].type, mvcc::Event::Type::kDelete);
  EXPECT_EQ(evs[3].kv.mod_revision, Revision(both + 1));
}

// The counts /metrics reads (embed/watch_metrics.h): watchers, and responses waiting for their
// consumer on any stream (the watch queue depth).
TEST_F(WatchHubTest, CountsWatchersAndQueuedResponses) {
  StartHub();
  Consumer c(hub_.get());
  EXPECT_EQ(hub_->queued_responses(), 0u);
  hub_->Watch(c.stream(), Key("a"));
  // Watch queues the created response before it returns.
  EXPECT_TRUE(c.stream()->HasQueued());
  EXPECT_EQ(hub_->queued_responses(), 1u);  // the created response, not taken yet
  EXPECT_EQ(hub_->synced_count() + hub_->unsynced_count(), 1u);
  ASSERT_TRUE(c.PopUntil([](const auto& got) { return !got.empty(); }));
  EXPECT_EQ(hub_->queued_responses(), 0u);
}

// While the consumer does not take them, a watcher's pending revisions join one response (up
// to max_coalesced_bytes); a stream-wide progress response is never overtaken; a response the
// consumer took is never extended.
TEST_F(WatchHubTest, PendingRevisionsOfAWatcherAreCoalesced) {
  HubOptions options;
  options.max_coalesced_bytes = 2000;  // 20 events of 100 bytes (48 + key 2 + value 50)
  StartHub(options);
  Consumer c(hub_.get());
  hub_->Watch(c.stream(), Key("k1"));
  hub_->Watch(c.stream(), Key("k2"));
  ASSERT_TRUE(c.PopUntil([](const auto& got) { return got.size() >= 2; }));
  const std::string value(50, 'v');
  // The consumer is not popping: 50 revisions for each watcher, interleaved.
  int64_t last = 0;
  for (int i = 0; i < 50; ++i) {
    Put("k1", value);
    last = Put("k2", value);
  }
  // Wait, without popping c, until the hub has queued them all: a progress request on another
  // stream is answered with the revision the worker has delivered through.
  Consumer probe(hub_.get());
  for (int attempt = 0; attempt < 1000; ++attempt) {
    size_t seen = probe.got.size();
    hub_->RequestProgress(probe.stream());
    ASSERT_TRUE(probe.PopUntil([seen](const auto& got) { return got.size() > seen; }));
    if (probe.got.back().revision == Revision(last)) break;
  }
  ASSERT_EQ(probe.got.back().revision, Revision(last));
  // Now a stream-wide progress response on c: later events must not join responses before it.
  hub_->RequestProgress(c.stream());
  ASSERT_TRUE(c.PopUntil([](const auto& got) { return got.back().watch_id == kNoWatchId; }));
  const Response progress = c.got.back();
  EXPECT_EQ(progress.revision, Revision(last));
  int64_t after = Put("k1", value);
  ASSERT_TRUE(c.PopUntil(HasEvents(0, 51)));
  ExpectRevisionsWhole(c.got);
  size_t responses_k1 = 0;
  bool seen_progress = false;
  for (const auto& r : c.got) {
    if (r.watch_id == kNoWatchId) seen_progress = true;
    if (r.watch_id != 0 || r.events.empty()) continue;
    ++responses_k1;
    EXPECT_LE(r.events.size(), 20u);  // the byte bound
    for (const auto& e : r.events) {
      // Nothing after the progress response's revision was put before it.
      EXPECT_EQ(e->kv.mod_revision.value() > progress.revision.value(), seen_progress);
    }
  }
  // 50 pending revisions in responses of at most 20, then the one after the progress response.
  EXPECT_EQ(responses_k1, 4u);
  EXPECT_EQ(c.EventsOf(0).back().kv.mod_revision, Revision(after));
  auto k2 = c.EventsOf(1);
  ASSERT_EQ(k2.size(), 50u);
  for (size_t i = 0; i < k2.size(); ++i) EXPECT_EQ(k2[i].kv.mod_revision.value(), 3 + 2 * i);
}

TEST_F(WatchHubTest, PastStartRevisionReplaysHistoryThenFollows) {
  StartHub();
  int64_t first = Put("a", "1");
  Put("a", "2");
  Consumer c(hub_.get());
  WatchOptions o = Key("a");
  o.start_revision = Revision(first);
  hub_->Watch(c.stream(), o);
  ASSERT_TRUE(c.PopUntil(HasEvents(0, 2)));
  Put("a", "3");
  ASSERT_TRUE(c.PopUntil(HasEvents(0, 3)));
  auto evs = c.EventsOf(0);
  ASSERT_EQ(evs.size(), 3u);
  EXPECT_EQ(evs[0].kv.value, "1");
  EXPECT_EQ(evs[1].kv.value, "2");
  EXPECT_EQ(evs[2].kv.value, "3");
}

TEST_F(WatchHubTest, FutureStartRevisionWaits) {
  StartHub();
  Consumer c(hub_.get());
  WatchOptions o = Key("a");
  o.start_revision = Revision(4);
  hub_->Watch(c.stream(), o);
  Put("a", "rev2");
  Put("a", "rev3");
  Put("a", "rev4");
  ASSERT_TRUE(c.PopUntil(HasEvents(0, 1)));
  auto evs = c.EventsOf(0);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].kv.value, "rev4");
}

TEST_F(WatchHubTest, FiltersAndOptionsCarried) {
  StartHub();
  Consumer c(hub_.get());
  WatchOptions no_put = Key("a", 10);
  no_put.filter_put = true;
  no_put.prev_kv = true;
  WatchOptions no_delete = Key("a", 11);
  no_delete.filter_delete = true;
  no_delete.fragment = true;
  hub_->Watch(c.stream(), no_put);
  hub_->Watch(c.stream(), no_delete);
  Put("a", "1");
  Delete("a");
  Put("a", "2");
  ASSERT_TRUE(c.PopUntil(HasEvents(10, 1)));
  ASSERT_TRUE(c.PopUntil(HasEvents(11, 2)));
  auto deletes = c.EventsOf(10);
  ASSERT_EQ(deletes.size(), 1u);
  EXPECT_EQ(deletes[0].type, mvcc::Event::Type::kDelete);
  auto puts = c.EventsOf(11);
  ASSERT_EQ(puts.size(), 2u);
  EXPECT_EQ(puts[1].kv.value, "2");
  for (const auto& r : c.got) {
    if (r.watch_id == 10 && !r.events.empty()) {
      EXPECT_TRUE(r.prev_kv && !r.fragment);
    }
    if (r.watch_id == 11 && !r.events.empty()) {
      EXPECT_TRUE(!r.prev_kv && r.fragment);
    }
  }
}

TEST_F(WatchHubTest, IdsDuplicatesEmptyRangeAndCancel) {
  StartHub();
  Consumer c(hub_.get());
  hub_->Watch(c.stream(), Key("a", 1));  // client-chosen 1
  hub_->Watch(c.stream(), Key("a"));     // auto: 0
  hub_->Watch(c.stream(), Key("a"));     // auto: skips 1, gets 2
  hub_->Watch(c.stream(), Key("a", 2));  // duplicate
  WatchOptions empty = Key("b");
  empty.range_end = "a";
  hub_->Watch(c.stream(), empty);
  hub_->Cancel(c.stream(), 0);
  hub_->Cancel(c.stream(), 99);  // unknown: ignored
  ASSERT_TRUE(c.PopUntil([](const auto& got) { return got.size() >= 6; }));
  EXPECT_EQ(c.got[0].watch_id, 1);
  EXPECT_EQ(c.got[1].watch_id, 0);
  EXPECT_EQ(c.got[2].watch_id, 2);
  EXPECT_TRUE(c.got[3].created && c.got[3].canceled);
  EXPECT_EQ(c.got[3].watch_id, -1);
  EXPECT_EQ(c.got[3].cancel_reason, "mvcc: duplicate watch ID provided on the WatchStream");
  EXPECT_TRUE(c.got[4].created && c.got[4].canceled);
  EXPECT_EQ(c.got[4].cancel_reason, "mvcc: watcher range is empty");
  EXPECT_TRUE(c.got[5].canceled && !c.got[5].created);
  EXPECT_EQ(c.got[5].watch_id, 0);
  Put("a", "x");
  ASSERT_TRUE(c.PopUntil(HasEvents(2, 1)));
  ASSERT_TRUE(c.PopUntil(HasEvents(1, 1)));
  EXPECT_TRUE(c.EventsOf(0).empty());  // canceled before the put
}

TEST_F(WatchHubTest, CompactedStartRevisionCancelsWithCompactRevision) {
  StartHub();
  for (int i = 0; i < 5; ++i) Put("a", std::to_string(i));  // revisions 2..6
  ASSERT_TRUE(store_->Compact(Revision(4)).ok());
  Consumer c(hub_.get());
  WatchOptions o = Key("a", 7);
  o.start_revision = Revision(3);
  hub_->Watch(c.stream(), o);
  ASSERT_TRUE(c.PopUntil([](const auto& got) { return got.size() >= 2; }));
  EXPECT_TRUE(c.got[0].created);
  EXPECT_FALSE(c.got[0].canceled);
  EXPECT_EQ(c.got[1].watch_id, 7);
  EXPECT_TRUE(c.got[1].canceled);
  EXPECT_EQ(c.got[1].compact_revision, Revision(4));
  EXPECT_TRUE(c.got[1].events.empty());
  // At the compact revision itself history is still there.
  WatchOptions ok = Key("a", 8);
  ok.start_revision = Revision(4);
  hub_->Watch(c.stream(), ok);
  ASSERT_TRUE(c.PopUntil(HasEvents(8, 3)));
  EXPECT_EQ(hub_->unsynced_count(), 0u);
}

TEST_F(WatchHubTest, ProgressRequestAndPeriodicProgress) {
  HubOptions options;
  options.progress_interval = 1min;
  StartHub(options);
  Consumer c(hub_.get());
  WatchOptions o = Key("a", 3);
  o.progress_notify = true;
  hub_->Watch(c.stream(), o);
  int64_t rev = Put("b", "x");
  // Progress requests are answered (watch id -1), soon with the put's revision.
  ASSERT_TRUE(c.Barrier(rev));
  auto periodic = [](const std::vector<Response>& got) {
    size_t n = 0;
    for (const auto& r : got) n += r.watch_id == 3 && !r.created && r.events.empty();
    return n;
  };
  // The first tick, a minute after the start, finds the created response sent in its interval.
  Advance(1min);
  ASSERT_TRUE(c.Barrier());
  EXPECT_EQ(periodic(c.got), 0u);
  // The second finds the watcher idle: a header-only response with its id.
  Advance(59s);
  ASSERT_TRUE(c.Barrier());
  EXPECT_EQ(periodic(c.got), 0u);  // not due yet
  Advance(1s);
  ASSERT_TRUE(c.PopUntil([&](const auto& got) { return periodic(got) == 1; }));
  EXPECT_EQ(c.got.back().revision.value(), rev);
  // An event in the interval: no notification at its end.
  Put("a", "1");
  ASSERT_TRUE(c.PopUntil(HasEvents(3, 1)));
  Advance(1min);
  ASSERT_TRUE(c.Barrier());
  EXPECT_EQ(periodic(c.got), 1u);
}

// etcd's ticker is per stream: creates sent together are all answered before any progress
// notification, and none comes less than an interval after its watcher was created (nor more
// than two). The create falls at a different point of the hub's tick cycle each round.
TEST_F(WatchHubTest, FirstProgressNotificationComesAWholeIntervalAfterTheCreate) {
  HubOptions options;
  options.progress_interval = 1s;
  StartHub(options);
  for (int round = 0; round < 3; ++round) {
    Advance(std::chrono::milliseconds(300 * (round + 1)));
    Consumer c(hub_.get());
    WatchOptions o = Key("idle", 1);
    o.progress_notify = true;
    const auto created_at = clock_.Now();
    hub_->Watch(c.stream(), o);
    auto notified = [&] {
      for (const auto& r : c.got) {
        if (!r.created && r.events.empty() && r.watch_id == 1) return true;
      }
      return false;
    };
    int steps = 0;
    while (!notified() && steps < 40) {
      Advance(100ms);
      ++steps;
      ASSERT_TRUE(c.Barrier()) << "round " << round;
    }
    ASSERT_TRUE(notified()) << "round " << round;
    const auto waited = clock_.Now() - created_at;
    EXPECT_GE(waited, 1s) << "round " << round;
    EXPECT_LE(waited, 2s) << "round " << round;
    EXPECT_TRUE(c.got.front().created);
  }
}

// A consumer that stopped reading does not collect a progress notification per interval: a
// full stream gets none (etcd drops one its full channel refuses).
TEST_F(WatchHubTest, PeriodicProgressSkipsAFullStream) {
  HubOptions options;
  options.progress_interval = 1s;
  options.max_stream_bytes = 4 << 10;
  StartHub(options);
  Consumer c(hub_.get());
  WatchOptions o = Key("idle", 1);
  o.progress_notify = true;
  hub_->Watch(c.stream(), o);
  hub_->Watch(c.stream(), Key("busy", 2));
  const std::string value(1000, 'v');
  int64_t last = 0;
  for (int i = 0; i < 8; ++i) last = Put("busy", value);  // more than the stream holds
  Consumer probe(hub_.get());
  ASSERT_TRUE(probe.Barrier(last));  // the worker has delivered (and filled c's stream)
  const size_t queued = hub_->queued_responses();
  Advance(1s);
  ASSERT_TRUE(probe.Barrier());
  Advance(1s);
  ASSERT_TRUE(probe.Barrier());
  EXPECT_EQ(hub_->queued_responses(), queued);  // both ticks skipped c
  // Once read, the stream gets its notifications again.
  ASSERT_TRUE(c.PopUntil(HasEvents(2, 8)));
  Advance(1s);
  Advance(1s);
  ASSERT_TRUE(c.PopUntil([](const auto& got) {
    for (const auto& r : got) {
      if (r.watch_id == 1 && !r.created && r.events.empty()) return true;
    }
    return false;
  }));
}

// A consumer that never reads must not slow the writer: Notify only queues.
TEST_F(WatchHubTest, SlowConsumerDoesNotBlockNotifyAndCatchesUpInOrder) {
  HubOptions options;
  options.max_stream_bytes = 16 << 10;  // fills after a few hundred events
  StartHub(options);
  Consumer slow(hub_.get());
  Consumer fast(hub_.get());
  hub_->Watch(slow.stream(), Prefix("k"));
  hub_->Watch(fast.stream(), Prefix("k"));
  ASSERT_TRUE(slow.PopUntil([](const auto& got) { return !got.empty(); }));
  constexpr int kWrites = 5000;
  auto begin = std::chrono::steady_clock::now();
  for (int i = 0; i < kWrites; ++i) Put("k" + std::to_string(i % 10), std::to_string(i));
  auto elapsed = std::chrono::steady_clock::now() - begin;
  EXPECT_LT(elapsed, 10s);  // generous: the point is that it returns at all
  ASSERT_TRUE(fast.PopUntil(HasEvents(0, kWrites)));
  EXPECT_GT(hub_->unsynced_count(), 0u);  // the slow one fell behind
  // ... and what waits for it stays within its stream's bound (plus the push that crossed it).
  EXPECT_LE(slow.stream()->queued_bytes(), options.max_stream_bytes + 1024);
  ASSERT_TRUE(slow.PopUntil(HasEvents(0, kWrites)));
  for (Consumer* c : {&slow, &fast}) {
    auto evs = c->EventsOf(0);
    ASSERT_EQ(evs.size(), static_cast<size_t>(kWrites));
    for (int i = 0; i < kWrites; ++i) {
      ASSERT_EQ(evs[i].kv.value, std::to_string(i));
      ASSERT_EQ(evs[i].kv.mod_revision, Revision(i + 2));
    }
  }
}

// Watchers created at random past revisions while a writer runs and consumers lag: each sees
// exactly the revisions from its start on, in order, across unsynced -> synced hand-offs.
TEST_F(WatchHubTest, NoDuplicateNoSkipAcrossHandoffUnderConcurrentWrites) {
  HubOptions options;
  options.max_stream_bytes = 8 << 10;
  options.catch_up_events = 37;  // many small catch-up rounds
  StartHub(options);
  constexpr int kWrites = 4000;
  std::atomic<int64_t> written{1};
  std::thread writer([&] {
    for (int i = 0; i < kWrites; ++i) {
      written = Put("k" + std::to_string(i % 7), std::to_string(i));
      if (i % 500 == 0) std::this_thread::yield();
    }
  });
  std::vector<std::unique_ptr<Consumer>> consumers;
  std::vector<int64_t> starts;
  for (int s = 0; s < 8; ++s) {
    consumers.push_back(std::make_unique<Consumer>(hub_.get()));
    int64_t now = written.load();
    int64_t start = std::max<int64_t>(2, now - 300 * (s % 3));
    starts.push_back(start);
    hub_->Watch(consumers.back()->stream(), Prefix("k", start));
    // Drain a little, lagging behind.
    consumers.back()->PopUntil([](const auto& got) { return !got.empty(); });
  }
  writer.join();
  const int64_t last = kWrites + 1;
  for (size_t s = 0; s < consumers.size(); ++s) {
    size_t want = static_cast<size_t>(last - starts[s] + 1);
    ASSERT_TRUE(consumers[s]->PopUntil(HasEvents(0, want))) << "consumer " << s;
    auto evs = consumers[s]->EventsOf(0);
    ASSERT_EQ(evs.size(), want) << "consumer " << s;
    for (size_t i = 0; i < evs.size(); ++i) {
      ASSERT_EQ(evs[i].kv.mod_revision.value(), starts[s] + static_cast<int64_t>(i));
    }
  }
}

TEST_F(WatchHubTest, TenThousandWatchersOnOneStreamGetEveryEventInOrder) {
  StartHub();
  Consumer c(hub_.get());
  constexpr int kWatchers = 10000;
  constexpr int kWrites = 20;
  for (int i = 0; i < kWatchers; ++i) {
    // Half single keys, half ranges, all covering key "w".
    if (i % 2 == 0) {
      hub_->Watch(c.stream(), Key("w"));
    } else {
      hub_->Watch(c.stream(), Prefix("w"));
    }
  }
  ASSERT_TRUE(c.PopUntil([](const auto& got) { return got.size() >= kWatchers; }));
  for (int i = 0; i < kWrites; ++i) Put("w", std::to_string(i));
  ASSERT_TRUE(c.PopUntil([](const auto& got) {
    size_t n = 0;
    for (const auto& r : got) n += r.events.size();
    return n >= static_cast<size_t>(kWatchers) * kWrites;
  }));
  std::map<int64_t, std::vector<int64_t>> revs;
  for (const auto& r : c.got) {
    for (const auto& e : r.events) revs[r.watch_id].push_back(e->kv.mod_revision.value());
  }
  ASSERT_EQ(revs.size(), static_cast<size_t>(kWatchers));
  for (const auto& [id, got] : revs) {
    ASSERT_EQ(got.size(), static_cast<size_t>(kWrites)) << "watcher " << id;
    for (int i = 0; i < kWrites; ++i) ASSERT_EQ(got[i], i + 2) << "watcher " << id;
  }
}

// A long history is cut into responses of bounded size, only between revisions.
TEST_F(WatchHubTest, CatchUpResponsesAreBoundedAndKeepRevisionsWhole) {
  HubOptions options;
  options.max_stream_bytes = 8 << 10;  // responses of about 4 KiB
  StartHub(options);
  PutPairs(60);  // revisions 2..61, two 1000-byte values each
  Consumer c(hub_.get());
  hub_->Watch(c.stream(), Prefix("h/", 2));
  ASSERT_TRUE(c.PopUntil(HasEvents(0, 120)));
  int64_t expect = 2;
  size_t responses = 0;
  for (const auto& r : c.got) {
    if (r.events.empty()) continue;
    ++responses;
    ASSERT_EQ(r.events.size() % 2, 0u) << "a revision was split";
    EXPECT_LE(r.events.size(), 8u);
    EXPECT_EQ(r.revision, r.events.back()->kv.mod_revision);
    for (size_t i = 0; i < r.events.size(); i += 2) {
      ASSERT_EQ(r.events[i]->kv.mod_revision.value(), expect);
      ASSERT_EQ(r.events[i + 1]->kv.mod_revision.value(), expect);
      ++expect;
    }
  }
  EXPECT_EQ(expect, 62);
  EXPECT_GT(responses, 10u);
}

// Catch-up and synced delivery filling one stream together never take it past its bound by
// more than one revision, and both watchers still get everything in order.
TEST_F(WatchHubTest, CatchUpAndSyncedDeliveryKeepAStreamWithinItsBound) {
  HubOptions options;
  options.max_stream_bytes = 8 << 10;
  StartHub(options);
  PutPairs(60);  // revisions 2..61, two 1000-byte values each
  Consumer c(hub_.get());
  hub_->Watch(c.stream(), Key("s", 1));                // synced
  hub_->Watch(c.stream(), Prefix("h/", 2, /*id=*/2));  // 60 revisions to catch up
  constexpr size_t kRevisionCost = 64 + 2 * (48 + 3 + 1000);
  constexpr int kWrites = 100;
  std::thread writer([&] {
    for (int i = 0; i < kWrites; ++i) Put("s", std::string(500, 'w'));
  });
  // Pop one response at a time, checking the bound each time.
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  size_t max_seen = 0;
  while (!(HasEvents(1, kWrites)(c.got) && HasEvents(2, 120)(c.got)) &&
         std::chrono::steady_clock::now() < deadline) {
    max_seen = std::max(max_seen, c.stream()->queued_bytes());
    if (auto r = c.stream()->Pop()) {
      c.got.push_back(std::move(*r));
    } else {
      c.PopUntil([n = c.got.size()](const auto& got) { return got.size() > n; });
    }
  }
  writer.join();
  EXPECT_LE(max_seen, options.max_stream_bytes + kRevisionCost);
  auto h = c.EventsOf(2);
  ASSERT_EQ(h.size(), 120u);
  for (size_t i = 0; i < h.size(); ++i) {
    ASSERT_EQ(h[i].kv.mod_revision.value(), 2 + static_cast<int64_t>(i / 2));
  }
  auto sv = c.EventsOf(1);
  ASSERT_EQ(sv.size(), static_cast<size_t>(kWrites));
  for (size_t i = 1; i < sv.size(); ++i)
    ASSERT_GT(sv[i].kv.mod_revision, sv[i - 1].kv.mod_revision);
}

TEST_F(WatchHubTest, ThousandStreamsEachGetTheirEvents) {
  StartHub();
  constexpr int kStreams = 1000;
  std::vector<std::unique_ptr<Consumer>> consumers;
  for (int i = 0; i < kStreams; ++i) {
    consumers.push_back(std::make_unique<Consumer>(hub_.get()));
    hub_->Watch(consumers.back()->stream(), Prefix("s/" + std::to_string(i % 10) + "/"));
    hub_->Watch(consumers.back()->stream(), Key("all", 7));
  }
  for (int i = 0; i < 50; ++i) Put("s/" + std::to_string(i % 10) + "/k", std::to_string(i));
  Put("all", "x");
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(consumers[i]->PopUntil(HasEvents(7, 1))) << "stream " << i;
    auto evs = consumers[i]->EventsOf(0);
    ASSERT_EQ(evs.size(), 5u) << "stream " << i;
    for (size_t j = 0; j < evs.size(); ++j) {
      EXPECT_EQ(evs[j].kv.value, std::to_string(i % 10 + 10 * static_cast<int>(j)));
    }
  }
}

TEST_F(WatchHubTest, InboxOverflowFallsBackToStore) {
  HubOptions options;
  options.max_inbox_events = 4;  // almost every batch overflows while the worker is busy
  StartHub(options);
  Consumer c(hub_.get());
  hub_->Watch(c.stream(), Prefix("k"));
  constexpr int kWrites = 2000;
  for (int i = 0; i < kWrites; ++i) Put("k", std::to_string(i));
  ASSERT_TRUE(c.PopUntil(HasEvents(0, kWrites)));
  auto evs = c.EventsOf(0);
  ASSERT_EQ(evs.size(), static_cast<size_t>(kWrites));
  for (int i = 0; i < kWrites; ++i) ASSERT_EQ(evs[i].kv.mod_revision, Revision(i + 2));
}

// With no watcher the hub is not woken per write; a watcher created while writes go on (its
// start is "now", taken from the store) still gets every later revision exactly once, and one
// starting in the past replays the unwatched writes from the store.
TEST_F(WatchHubTest, WritesWithNoWatcherAreSkippedYetWatchersMissNothing) {
  StartHub();
  for (int i = 0; i < 50; ++i) Put("k", "unwatched");
  constexpr int kWrites = 2000;
  std::atomic<int> written{0};
  std::thread writer([&] {
    for (int i = 0; i < kWrites; ++i) {
      Put("k", std::to_string(i));
      written.store(i + 1);
    }
  });
  // Create the watcher halfway through the writes (bounded: the writer never waits for us).
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (written.load() < kWrites / 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  Consumer now(hub_.get());
  hub_->Watch(now.stream(), Key("k"));
  writer.join();
  const int64_t last = store_->CurrentRevision().value();
  ASSERT_TRUE(now.PopUntil([&](const auto& got) {
    return !got.empty() && (got.back().revision.value() == last || got.back().canceled);
  }));
  ASSERT_TRUE(now.got[0].created);
  const int64_t created_at = now.got[0].revision.value();
  auto evs = now.EventsOf(0);
  ASSERT_EQ(evs.size(), static_cast<size_t>(last - created_at));
  for (size_t i = 0; i < evs.size(); ++i) {
    ASSERT_EQ(evs[i].kv.mod_revision, Revision(created_at + 1 + static_cast<int64_t>(i)));
  }

  Consumer past(hub_.get());
  hub_->Watch(past.stream(), Prefix("k", /*start=*/2));
  ASSERT_TRUE(past.PopUntil(HasEvents(0, static_cast<size_t>(last - 1))));
  auto replayed = past.EventsOf(0);
  ASSERT_EQ(replayed.size(), static_cast<size_t>(last - 1));
  EXPECT_EQ(replayed.front().kv.value, "unwatched");
  EXPECT_EQ(replayed.back().kv.mod_revision, Revision(last));
}

// A follower installing the leader's snapshot: the store jumps ahead with no events for the
// jump; Restore makes synced watchers read the missed revisions from the store, in order.
TEST_F(WatchHubTest, RestoreCatchesSyncedWatchersUpFromTheStore) {
  StartHub();
  Consumer c(hub_.get());
  hub_->Watch(c.stream(), Prefix("k/"));
  Put("k/a", "before");
  ASSERT_TRUE(c.PopUntil(HasEvents(0, 1)));

  // The leader's history: the same first revision, then more.
  auto leader_backend = backend::NewMemoryBackend();
  auto leader = mvcc::Store::Open(leader_backend.get());
  ASSERT_TRUE(leader.ok());
  for (const char* v : {"before", "one", "two", "three"}) {
    auto txn = (*leader)->BeginWrite();
    ASSERT_TRUE(txn->Put("k/a", v, LeaseId(0)).ok());
    txn->End();
  }
  ASSERT_TRUE((*leader)->Commit(Index(10)).ok());
  auto image = leader_backend->BeginRead();
  ASSERT_TRUE(image.ok());
  ASSERT_TRUE(store_->Commit(Index(1)).ok());  // the apply path commits every batch
  ASSERT_TRUE(store_->Restore(**image).ok());
  hub_->Restore(store_->CurrentRevision());
  Put("k/a", "after");  // and the log goes on

  ASSERT_TRUE(c.PopUntil(HasEvents(0, 5)));
  auto evs = c.EventsOf(0);
  ASSERT_EQ(evs.size(), 5u);
  std::vector<std::string> values;
  for (size_t i = 0; i < evs.size(); ++i) {
    EXPECT_EQ(evs[i].kv.mod_revision, Revision(static_cast<int64_t>(i) + 2));
    values.push_back(evs[i].kv.value);
  }
  EXPECT_EQ(values, (std::vector<std::string>{"before", "one", "two", "three", "after"}));
}

// The store as catch-up sees it, with a gate: while closed, Events blocks (as a read of a long
// history on a cold disk would) and counts the readers waiting; or it fails on demand.
class GatedHistory final : public History {
 public:
  explicit GatedHistory(const mvcc::Store* store) : store_(store) {}
  Revision CurrentRevision() const override { return store_->CurrentRevision(); }
  Revision CompactRevision() const override { return store_->CompactRevision(); }
  Result<mvcc::Store::EventsResult> Events(Revision from, Revision to,
                                           size_t max_events) const override {
    {
      std::unique_lock<std::mutex> l(mu_);
      ++calls_;
      cv_.notify_all();
      if (fail_) return Status(Code::kUnavailable, "test: read failed");
      ++waiting_;
      cv_.notify_all();
      cv_.wait(l, [this] { return open_; });
      --waiting_;
    }
    return store_->Events(from, to, max_events);
  }
  void Close() { Set(&open_, false); }
  void Open() { Set(&open_, true); }
  void Fail(bool fail) { Set(&fail_, fail); }
  // Waits (bounded) until a reader is blocked at the gate, or `n` reads were attempted.
  bool AwaitWaiting() {
    return Await([this] { return waiting_ > 0; });
  }
  bool AwaitCalls(int n) {
    return Await([this, n] { return calls_ >= n; });
  }
  int waiting() const {
    std::lock_guard<std::mutex> l(mu_);
    return waiting_;
  }

 private:
  void Set(bool* flag, bool v) {
    std::lock_guard<std::mutex> l(mu_);
    *flag = v;
    cv_.notify_all();
  }
  template <typename Pred>
  bool Await(Pred pred) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_until(l, std::chrono::steady_clock::now() + kWait, pred);
  }

  const mvcc::Store* const store_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool open_ = true;
  bool fail_ = false;
  mutable int calls_ = 0;
  mutable int waiting_ = 0;
};

// Catch-up reads the store with no hub lock held: while one read is stuck, synced watchers
// still get their events, and creates and cancels on other streams still complete. Released,
// the stuck watcher gets its history and then the writes made meanwhile, each once, in order.
TEST_F(WatchHubTest, SlowCatchUpReadDoesNotBlockSyncedDeliveryOrOtherStreams) {
  GatedHistory& history = *StartHubOn(std::make_unique<GatedHistory>(store_.get()));
  release_ = [&history] { history.Open(); };
  for (int i = 0; i < 5; ++i) Put("h", "old" + std::to_string(i));  // revisions 2..6
  history.Close();
  Consumer slow(hub_.get());
  hub_->Watch(slow.stream(), Prefix("h", /*start=*/2));
  ASSERT_TRUE(history.AwaitWaiting());  // catch-up is inside its read

  Consumer fast(hub_.get());
  hub_->Watch(fast.stream(), Key("f", 5));
  hub_->Watch(fast.stream(), Key("g", 6));
  hub_->Cancel(fast.stream(), 6);
  std::vector<int64_t> written;
  for (int i = 0; i < 20; ++i) {
    written.push_back(Put("f", std::to_string(i)));
    Put("h", "new" + std::to_string(i));  // for the stuck watcher, later
  }
  ASSERT_TRUE(fast.PopUntil(HasEvents(5, 20)));
  EXPECT_EQ(history.waiting(), 1);  // delivered while the read was still stuck
  auto evs = fast.EventsOf(5);
  for (size_t i = 0; i < evs.size(); ++i) EXPECT_EQ(evs[i].kv.mod_revision, Revision(written[i]));
  EXPECT_TRUE(fast.got[2].canceled);  // the cancel was answered meanwhile too
  EXPECT_TRUE(slow.EventsOf(0).empty());
  EXPECT_EQ(hub_->unsynced_count(), 1u);

  history.Open();
  ASSERT_TRUE(slow.PopUntil(HasEvents(0, 25)));
  Put("h", "last");
  ASSERT_TRUE(slow.PopUntil(HasEvents(0, 26)));
  auto got = slow.EventsOf(0);
  ASSERT_EQ(got.size(), 26u);
  std::vector<std::string> values;
  int64_t prev = 0;
  for (const auto& e : got) {
    EXPECT_GT(e.kv.mod_revision.value(), prev);  // in order, none twice
    prev = e.kv.mod_revision.value();
    values.push_back(e.kv.value);
  }
  EXPECT_EQ(values.front(), "old0");
  EXPECT_EQ(values[5], "new0");
  EXPECT_EQ(values[24], "new19");
  EXPECT_EQ(values.back(), "last");
  EXPECT_EQ(hub_->unsynced_count(), 0u);
}

// A failed catch-up read is retried on the hub's clock (catch_up_retry later).
TEST_F(WatchHubTest, FailedCatchUpReadIsRetriedOnTheClock) {
  HubOptions options;
  options.catch_up_retry = 5s;
  GatedHistory& history = *StartHubOn(std::make_unique<GatedHistory>(store_.get()), options);
  release_ = [&history] { history.Open(); };
  Put("k", "1");
  history.Fail(true);
  Consumer c(hub_.get());
  hub_->Watch(c.stream(), Key("k", 0));
  // etcd's start 0 is "now"; this one asks for the past.
  WatchOptions past = Key("k", 1);
  past.start_revision = Revision(2);
  hub_->Watch(c.stream(), past);
  ASSERT_TRUE(history.AwaitCalls(1));
  history.Fail(false);
  Advance(5s);
  ASSERT_TRUE(c.PopUntil(HasEvents(1, 1)));
  EXPECT_EQ(c.EventsOf(1)[0].kv.value, "1");
  EXPECT_EQ(hub_->unsynced_count(), 0u);
}

// The hub holds at most max_watchers; a create beyond it is refused the etcd way (created and
// canceled, with a reason), and room comes back with a cancel.
TEST_F(WatchHubTest, WatchersBeyondTheBoundAreRefused) {
  HubOptions options;
  options.max_watchers = 3;
  StartHub(options);
  Consumer c(hub_.get());
  for (int i = 0; i < 4; ++i) hub_->Watch(c.stream(), Key("k"));
  ASSERT_TRUE(c.PopUntil([](const auto& got) { return got.size() >= 4; }));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(c.got[i].created && !c.got[i].canceled);
  EXPECT_TRUE(c.got[3].created && c.got[3].canceled);
  EXPECT_EQ(c.got[3].watch_id, kNoWatchId);
  EXPECT_EQ(c.got[3].cancel_reason, "watch: too many watchers on this member (limit 3)");
  hub_->Cancel(c.stream(), 0);
  hub_->Watch(c.stream(), Key("k"));
  ASSERT_TRUE(c.PopUntil([](const auto& got) { return got.size() >= 6; }));
  EXPECT_TRUE(c.got[5].created && !c.got[5].canceled);
  EXPECT_EQ(hub_->synced_count(), 3u);
}

}  // namespace
}  // namespace dolmen::watch

namespace dolmen::watch {
namespace {

// A hub whose threads never start (the whole-cluster simulator's): RunPending does their work
// on the calling thread, so a synced watcher gets the notified batch, a watcher with a past
// start catches up from the store, and a progress request is answered, all before it returns.
TEST(WatchHubRunPending, DeliversCatchesUpAndAnswersProgressOnTheCallersThread) {
  ManualClock clock;
  auto backend = backend::NewMemoryBackend();
  auto store = std::move(mvcc::Store::Open(backend.get())).value();
  Hub hub(store.get(), &clock);
  auto put = [&](const std::string& key) {
    auto txn = store->BeginWrite();
    CHECK(txn->Put(key, "v", LeaseId(0)).ok());
    const int64_t rev = txn->End().value();
    hub.Notify(txn->Events(), Revision(rev));
    return rev;
  };
  const int64_t first = put("a");  // before any watcher: read back by catch-up
  auto stream = hub.OpenStream([] {});
  WatchOptions from_start;
  from_start.key = "a";
  from_start.start_revision = Revision(first);
  hub.Watch(stream.get(), from_start);
  const int64_t second = put("a");  // after: delivered once the watcher is synced
  hub.RequestProgress(stream.get());
  hub.RunPending();

  std::vector<Response> got;
  while (auto r = stream->Pop()) got.push_back(std::move(*r));
  std::vector<int64_t> revisions;
  for (const Response& r : got) {
    for (const auto& e : r.events) revisions.push_back(e->kv.mod_revision.value());
  }
  EXPECT_EQ(revisions, (std::vector<int64_t>{first, second}));
  ASSERT_FALSE(got.empty());
  EXPECT_TRUE(got.front().created);
  EXPECT_EQ(got.back().watch_id, kNoWatchId) << "the progress response comes last";
  EXPECT_EQ(got.back().revision.value(), second);
  EXPECT_EQ(hub.synced_count(), 1u);
  EXPECT_EQ(hub.unsynced_count(), 0u);
  hub.CloseStream(stream);
}

}  // namespace
}  // namespace dolmen::watch
