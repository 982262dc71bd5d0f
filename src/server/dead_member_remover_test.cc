#include "server/dead_member_remover.h"

#include <gtest/gtest.h>

#include <set>

namespace dolmen::server {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class DeadMemberRemoverTest : public ::testing::Test {
 protected:
  DeadMemberRemoverTest() {
    members_ = {{MemberId(1), "i-1", {}, false},
                {MemberId(2), "i-2", {}, false},
                {MemberId(3), "i-3", {}, false}};
    DeadMemberRemover::Deps deps;
    deps.clock = &clock_;
    deps.self = MemberId(1);
    deps.is_leader = [this] { return leader_; };
    deps.members = [this] { return members_; };
    deps.last_heard = [this] {
      std::map<MemberId, std::chrono::steady_clock::time_point> out;
      for (uint64_t id : alive_) out[MemberId(id)] = clock_.Now();
      return out;
    };
    deps.find_dead = [this](const std::vector<DeadMemberRemover::Member>&)
        -> Result<std::map<MemberId, std::string>> {
      ++asked_;
      if (!aws_error_.ok()) return aws_error_;
      return dead_;
    };
    deps.remove = [this](MemberId id) {
      removed_.push_back(id.value());
      std::erase_if(members_, [id](const auto& m) { return m.id == id; });
      return OkStatus();
    };
    deps.log = [this](const std::string& line) { logged_.push_back(line); };
    deps.warn = [this](const std::string& line) { logged_.push_back("WARN " + line); };
    DeadMemberRemoverOptions options;
    options.interval = milliseconds(1000);
    options.grace = milliseconds(3000);
    options.health_window = milliseconds(1000);
    options.max_backoff = milliseconds(8000);
    remover_ = std::make_unique<DeadMemberRemover>(options, std::move(deps));
  }
  void Rounds(int n) {
    for (int i = 0; i < n; ++i) {
      remover_->Round();
      clock_.Advance(seconds(1));
    }
  }
  int Count(const std::string& text) const {
    int n = 0;
    for (const auto& l : logged_) n += l.find(text) != std::string::npos;
    return n;
  }

  ManualClock clock_;
  bool leader_ = true;
  std::vector<DeadMemberRemover::Member> members_;
  std::set<uint64_t> alive_{2, 3};
  std::map<MemberId, std::string> dead_;
  Status aws_error_;
  int asked_ = 0;
  std::vector<uint64_t> removed_;
  std::vector<std::string> logged_;
  std::unique_ptr<DeadMemberRemover> remover_;
};

TEST_F(DeadMemberRemoverTest, RemovesAfterTheGraceAndLogsEachVerdictOnce) {
  alive_ = {2};
  dead_[MemberId(3)] = "instance i-3 is Terminated";
  Rounds(3);
  EXPECT_TRUE(removed_.empty());
  EXPECT_EQ(Count("removing it once the grace period is over"), 1);
  Rounds(1);
  EXPECT_EQ(removed_, std::vector<uint64_t>{3});
  EXPECT_EQ(Count("instance i-3 is Terminated; removing it: dead for 3000 ms"), 1);
  EXPECT_EQ(Count("removed member 3"), 1);
}

TEST_F(DeadMemberRemoverTest, AMemberThatComesBackStartsItsGraceAgain) {
  alive_ = {2};
  dead_[MemberId(3)] = "unreachable";
  Rounds(2);
  dead_.clear();
  Rounds(1);
  EXPECT_EQ(Count("no longer looks dead"), 1);
  dead_[MemberId(3)] = "unreachable";
  Rounds(3);
  EXPECT_TRUE(removed_.empty());
  Rounds(1);
  EXPECT_EQ(removed_, std::vector<uint64_t>{3});
}

TEST_F(DeadMemberRemoverTest, OnlyTheLeaderAsksAndRemoves) {
  leader_ = false;
  dead_[MemberId(3)] = "instance i-3 is Terminated";
  Rounds(10);
  EXPECT_EQ(asked_, 0);
  EXPECT_TRUE(removed_.empty());
}

TEST_F(DeadMemberRemoverTest, ErrorsRemoveNothingAndBackOff) {
  aws_error_ = Status(Code::kUnavailable, "HTTP 400 Throttling: Rate exceeded");
  EXPECT_EQ(remover_->Round(), milliseconds(1000));
  EXPECT_EQ(remover_->Round(), milliseconds(2000));
  EXPECT_EQ(remover_->Round(), milliseconds(4000));
  EXPECT_EQ(remover_->Round(), milliseconds(8000));
  EXPECT_EQ(remover_->Round(), milliseconds(8000));
  EXPECT_EQ(Count("WARN dead-member removal: cannot tell which members are dead (HTTP 400 "
                  "Throttling: Rate exceeded); nothing is removed; asking again in 8000 ms"),
            2);
  aws_error_ = OkStatus();
  EXPECT_EQ(remover_->Round(), milliseconds(1000));
  EXPECT_TRUE(removed_.empty());
}

TEST_F(DeadMemberRemoverTest, TheQuorumRuleRefusalIsLoggedAsAWarning) {
  // Both other instances terminated; 2 still answers, 3 does not: 3 goes, 2 is refused.
  alive_ = {2};
  dead_[MemberId(2)] = "instance i-2 is Terminating";
  dead_[MemberId(3)] = "instance i-3 is Terminated";
  Rounds(4);
  EXPECT_EQ(removed_, std::vector<uint64_t>{3});
  EXPECT_EQ(Count("WARN dead-member removal: voter i-2 (2): instance i-2 is Terminating; not "
                  "removed: removing it would leave 1 healthy of 2 voters"),
            1);
}

}  // namespace
}  // namespace dolmen::server
