// The auto-compaction policies and their runner on a ManualClock: every wait advances the
// clock instead of sleeping, so hours of etcd's schedule run in microseconds.
#include "server/auto_compaction.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "server/auto_compactor.h"

namespace dolmen::server {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;

struct Compaction {
  nanoseconds at;  // since the start
  int64_t revision;
  bool operator==(const Compaction&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Compaction& c) {
  return os << "{" << GoDurationString(c.at) << ", rev " << c.revision << "}";
}

// A store whose revision grows by one every round, a leader flag, and a compaction that
// answers at once with `outcome`. Runs `rounds` rounds of the compactor.
class FakeMember {
 public:
  explicit FakeMember(AutoCompactionOptions options) : options_(options) {}

  std::vector<Compaction> Run(int rounds) {
    AutoCompactor::Deps deps;
    deps.clock = &clock_;
    deps.is_leader = [this] { return leader_; };
    deps.current_revision = [this] { return Revision(revision_); };
    deps.compact = [this](Revision r, std::function<void(Status)> done) {
      attempts_.push_back({clock_.Now() - start_, r.value()});
      done(outcome_);
    };
    deps.log = [this](const std::string& line) { log_.push_back(line); };
    deps.wait = [this, &rounds](nanoseconds d) {
      if (rounds-- == 0) return false;
      clock_.Advance(d);
      ++revision_;
      if (between_rounds_) between_rounds_();
      return true;
    };
    AutoCompactor compactor(NewCompactionPolicy(options_, clock_.Now()), std::move(deps));
    compactor.Run();
    return attempts_;
  }

  ManualClock clock_;
  const std::chrono::steady_clock::time_point start_ = clock_.Now();
  AutoCompactionOptions options_;
  int64_t revision_ = 100;  // at round k (from 0) the revision sampled is 100 + k
  bool leader_ = true;
  Status outcome_;
  std::function<void()> between_rounds_;
  std::vector<Compaction> attempts_;
  std::vector<std::string> log_;
};

AutoCompactionOptions Periodic(nanoseconds retention) {
  AutoCompactionOptions o;
  o.mode = AutoCompactionMode::kPeriodic;
  o.retention_time = retention;
  return o;
}

AutoCompactionOptions ByRevision(int64_t retention) {
  AutoCompactionOptions o;
  o.mode = AutoCompactionMode::kRevision;
  o.retention_revisions = retention;
  return o;
}

TEST(AutoCompactionOptionsTest, ZeroRetentionIsOff) {
  EXPECT_FALSE(Periodic(nanoseconds(0)).enabled());
  EXPECT_FALSE(ByRevision(0).enabled());
  EXPECT_TRUE(Periodic(seconds(1)).enabled());
  EXPECT_TRUE(ByRevision(1).enabled());
}

// Retention 1h: rounds of 6 minutes; the first compaction after 1h, to the revision sampled at
// the start; then every hour, to the revision sampled 11 rounds (66 minutes) before.
TEST(PeriodicCompactionTest, HourlySamplesTenthsAndCompactsEveryHour) {
  FakeMember m(Periodic(hours(1)));
  auto got = m.Run(30);
  std::vector<Compaction> want = {{minutes(60), 100}, {minutes(120), 109}, {minutes(180), 119}};
  EXPECT_EQ(got, want);
  ASSERT_FALSE(m.log_.empty());
  EXPECT_EQ(m.log_.back(),
            "auto compaction (periodic, retention 1h0m0s) at revision 119: done, took 0s");
}

// Retention above an hour: still sampled every 6 minutes, first compaction after the whole
// retention, then every hour, each to the revision of about the retention ago.
TEST(PeriodicCompactionTest, DailyRetentionCompactsHourlyAfterTheFirstDay) {
  FakeMember m(Periodic(hours(24)));
  auto got = m.Run(260);
  std::vector<Compaction> want = {{hours(24), 100}, {hours(25), 109}, {hours(26), 119}};
  EXPECT_EQ(got, want);
}

// Retention under an hour (etcd 3.4): the interval is the retention itself, sampled in tenths.
TEST(PeriodicCompactionTest, ShortRetentionUsesItselfAsTheInterval) {
  FakeMember m(Periodic(seconds(2)));
  auto got = m.Run(21);
  std::vector<Compaction> want = {{seconds(2), 100}, {seconds(4), 109}};
  EXPECT_EQ(got, want);
}

// A failed compaction is retried the next round (a tenth of the interval later), to the then
// oldest sample; an already compacted revision counts as done.
TEST(PeriodicCompactionTest, FailureRetriesNextRound) {
  FakeMember m(Periodic(hours(1)));
  m.outcome_ = Status(Code::kTimeout, "request timed out");
  m.between_rounds_ = [&m] {
    if (m.attempts_.size() == 2) m.outcome_ = Status(Code::kCompacted, "compacted");
  };
  auto got = m.Run(22);
  std::vector<Compaction> want = {
      {minutes(60), 100}, {minutes(66), 100}, {minutes(72), 101}, {minutes(132), 111}};
  EXPECT_EQ(got, want);
  ASSERT_EQ(m.log_.size(), 4u);
  EXPECT_EQ(m.log_[0],
            "auto compaction (periodic, retention 1h0m0s) at revision 100 failed, retrying in "
            "6m0s: request timed out");
  EXPECT_EQ(m.log_[2],
            "auto compaction (periodic, retention 1h0m0s) at revision 101: done (already "
            "compacted), took 0s");
}

// A follower never compacts but keeps sampling, so a new leader compacts at once to the
// revision of a retention ago.
TEST(PeriodicCompactionTest, OnlyTheLeaderCompacts) {
  FakeMember m(Periodic(hours(1)));
  m.leader_ = false;
  m.between_rounds_ = [&m] {
    if (m.clock_.Now() - m.start_ >= minutes(150)) m.leader_ = true;
  };
  auto got = m.Run(25);
  // Leader from the 25th round's check (150 min): the window then spans 84..150 minutes.
  std::vector<Compaction> want = {{minutes(150), 114}};
  EXPECT_EQ(got, want);
}

// Every 5 minutes: compact to current - retention unless not positive or already done.
TEST(RevisionCompactionTest, CompactsToCurrentMinusRetentionEveryFiveMinutes) {
  FakeMember m(ByRevision(1000));
  m.revision_ = 10;
  m.between_rounds_ = [&m] {
    // Round by round: 11 (nothing to keep), 1500, 1500 (same target), 2600.
    static const int64_t kRevisions[] = {11, 1500, 1500, 2600};
    const auto round = (m.clock_.Now() - m.start_) / minutes(5);
    m.revision_ = kRevisions[round - 1];
  };
  auto got = m.Run(4);
  std::vector<Compaction> want = {{minutes(10), 500}, {minutes(20), 1600}};
  EXPECT_EQ(got, want);
}

TEST(RevisionCompactionTest, FailureRetriesTheSameRevision) {
  FakeMember m(ByRevision(10));
  m.revision_ = 50;
  m.outcome_ = Status(Code::kNoLeader, "no leader");
  m.between_rounds_ = [&m] { m.revision_ = 50; };
  auto got = m.Run(2);
  std::vector<Compaction> want = {{minutes(5), 40}, {minutes(10), 40}};
  EXPECT_EQ(got, want);
}

TEST(RevisionCompactionTest, TestIntervalIsHonoured) {
  AutoCompactionOptions o = ByRevision(5);
  o.revision_check_interval = milliseconds(100);
  FakeMember m(o);
  m.revision_ = 20;
  m.between_rounds_ = [&m] { m.revision_ = 20; };
  auto got = m.Run(1);
  std::vector<Compaction> want = {{milliseconds(100), 15}};
  EXPECT_EQ(got, want);
}

TEST(AutoCompactorTest, StopEndsTheThread) {
  SystemClock clock;
  AutoCompactor::Deps deps;
  deps.clock = &clock;
  deps.is_leader = [] { return false; };
  deps.current_revision = [] { return Revision(1); };
  deps.compact = [](Revision, std::function<void(Status)> done) { done(OkStatus()); };
  deps.log = [](const std::string&) {};
  AutoCompactor compactor(NewCompactionPolicy(Periodic(hours(1)), clock.Now()), deps);
  compactor.Start();
  const auto before = std::chrono::steady_clock::now();
  compactor.Stop();  // the round waits 6 minutes: Stop must cut it short
  EXPECT_LT(std::chrono::steady_clock::now() - before, seconds(10));
}

// A compaction the driver never answers (it is stopping) does not hold Stop up, and its
// answer arriving after Stop, with the compactor gone, is harmless.
TEST(AutoCompactorTest, StopCutsShortACompactionInFlight) {
  ManualClock clock;
  std::mutex mu;
  std::condition_variable cv;
  std::function<void(Status)> answer;  // guarded by mu: the compaction's callback, kept
  AutoCompactor::Deps deps;
  deps.clock = &clock;
  deps.is_leader = [] { return true; };
  deps.current_revision = [] { return Revision(50); };
  deps.compact = [&](Revision, std::function<void(Status)> done) {
    {
      std::lock_guard lock(mu);
      answer = std::move(done);
    }
    cv.notify_all();
  };
  deps.log = [](const std::string&) {};
  deps.on_finished = [](Revision, const Status&) { ADD_FAILURE() << "nothing finished"; };
  {
    AutoCompactor compactor(NewCompactionPolicy(ByRevision(10), clock.Now()), deps);
    compactor.Start();
    clock.Advance(minutes(5));
    compactor.Wake();
    {
      std::unique_lock lock(mu);
      ASSERT_TRUE(cv.wait_for(lock, seconds(20), [&] { return answer != nullptr; }));
    }
    const auto before = std::chrono::steady_clock::now();
    compactor.Stop();
    EXPECT_LT(std::chrono::steady_clock::now() - before, seconds(10));
  }
  std::lock_guard lock(mu);
  answer(OkStatus());
}

// On its own thread the compactor waits on the injected clock, not the real one: each round
// is due once the test has advanced a ManualClock by the interval and woken it, and every
// outcome reaches on_finished (no sleeping, no polling).
TEST(AutoCompactorTest, ThreadFollowsTheInjectedClock) {
  ManualClock clock;
  const auto start = clock.Now();
  std::atomic<int64_t> revision{50};
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Compaction> asked;     // guarded by mu: when and where compact was called
  std::vector<Compaction> finished;  // guarded by mu: what on_finished was told
  AutoCompactor::Deps deps;
  deps.clock = &clock;
  deps.is_leader = [] { return true; };
  deps.current_revision = [&] { return Revision(revision.load()); };
  deps.compact = [&](Revision r, std::function<void(Status)> done) {
    {
      std::lock_guard lock(mu);
      asked.push_back({clock.Now() - start, r.value()});
    }
    done(OkStatus());
  };
  deps.log = [](const std::string&) {};
  deps.on_finished = [&](Revision r, const Status& outcome) {
    EXPECT_TRUE(outcome.ok()) << outcome.ToString();
    {
      std::lock_guard lock(mu);
      finished.push_back({clock.Now() - start, r.value()});
    }
    cv.notify_all();
  };
  AutoCompactor compactor(NewCompactionPolicy(ByRevision(10), clock.Now()), deps);
  compactor.Start();
  auto await_finished = [&](size_t n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, seconds(20), [&] { return finished.size() >= n; });
  };

  // A second short of the 5 minutes, a Wake finds nothing due: the compaction waits for the
  // last second (asked at 5 minutes, not before).
  clock.Advance(minutes(5) - seconds(1));
  compactor.Wake();
  clock.Advance(seconds(1));
  compactor.Wake();
  ASSERT_TRUE(await_finished(1));
  revision = 70;
  clock.Advance(minutes(5));
  compactor.Wake();
  ASSERT_TRUE(await_finished(2));
  compactor.Stop();

  std::lock_guard lock(mu);
  std::vector<Compaction> want = {{minutes(5), 40}, {minutes(10), 60}};
  EXPECT_EQ(asked, want);
  EXPECT_EQ(finished, want);
}

TEST(GoDurationStringTest, FormatsAsGo) {
  EXPECT_EQ(GoDurationString(hours(1)), "1h0m0s");
  EXPECT_EQ(GoDurationString(minutes(6)), "6m0s");
  EXPECT_EQ(GoDurationString(seconds(2)), "2s");
  EXPECT_EQ(GoDurationString(milliseconds(1500)), "1.5s");
  EXPECT_EQ(GoDurationString(milliseconds(200)), "200ms");
  EXPECT_EQ(GoDurationString(nanoseconds(1500000)), "1.5ms");
  EXPECT_EQ(GoDurationString(hours(24) + seconds(30)), "24h0m30s");
  EXPECT_EQ(GoDurationString(nanoseconds(0)), "0s");
}

}  // namespace
}  // namespace dolmen::server
