// Dead-member removal (issue 17 item 5; docs/membership.md): on the leader only, every round it
// asks which members look dead (DeadMemberRemover::Deps::find_dead: under --discovery-aws-asg,
// members whose instance is terminated or gone from the group; with
// --auto-remove-unreachable-after, voters the leader has not heard from), remembers since when
// each has, and removes at most one per round as removal_rule.h allows. Every verdict is logged
// with its reason when it changes; an error from find_dead (AWS throttling, a network error) is
// logged and the next round comes later, doubling up to max_backoff.
//
// Runs on its own thread from Server::Start to Server::Stop; Round is also called directly by
// tests with a ManualClock.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "base/status.h"
#include "server/periodic_thread.h"
#include "server/removal_rule.h"

namespace dolmen::server {

struct DeadMemberRemoverOptions {
  std::chrono::milliseconds interval{5000};  // between two rounds while all goes well
  std::chrono::milliseconds grace{5 * 60 * 1000};
  // A voter the leader heard from within this long is healthy (the min-quorum rule's count).
  std::chrono::milliseconds health_window{1000};
  std::chrono::milliseconds max_backoff{60 * 1000};
};

class DeadMemberRemover {
 public:
  struct Member {
    MemberId id;
    std::string name;  // empty until it has started
    std::vector<std::string> peer_urls;
    bool is_learner = false;
  };
  struct Deps {
    const Clock* clock = nullptr;
    MemberId self;
    std::function<bool()> is_leader;
    std::function<std::vector<Member>()> members;
    std::function<std::map<MemberId, std::chrono::steady_clock::time_point>()> last_heard;
    // Which of `members` look dead now, with why ("instance i-0b is Terminated"). Blocking,
    // bounded by the caller; an error means "do not know" and removes nothing.
    std::function<Result<std::map<MemberId, std::string>>(const std::vector<Member>& members)>
        find_dead;
    // Blocking, bounded: MemberRemove's path (its own checks apply too).
    std::function<Status(MemberId id)> remove;
    std::function<void(const std::string&)> log;   // decisions
    std::function<void(const std::string&)> warn;  // refusals and errors
  };

  DeadMemberRemover(DeadMemberRemoverOptions options, Deps deps);
  ~DeadMemberRemover();  // Stop
  DeadMemberRemover(const DeadMemberRemover&) = delete;
  DeadMemberRemover& operator=(const DeadMemberRemover&) = delete;

  void Start();
  void Stop();
  // One look; removes at most one member. Returns how long to wait before the next round.
  std::chrono::milliseconds Round();

 private:
  std::vector<RemovalCandidateView> Views(const std::vector<Member>& members,
                                          const std::map<MemberId, std::string>& dead) const;
  void LogVerdicts(const RemovalPlan& plan);

  DeadMemberRemoverOptions options_;
  Deps deps_;
  // Thread of Round: since when each member has looked dead, and the last verdict logged.
  std::map<MemberId, std::chrono::steady_clock::time_point> dead_since_;
  std::map<MemberId, RemovalVerdict::Kind> last_verdict_;
  std::chrono::milliseconds backoff_{0};
  PeriodicThread thread_;  // last: stopped (joined) before the state above goes
};

}  // namespace dolmen::server
