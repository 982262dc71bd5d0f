#include "server/learner_promoter.h"

#include <gtest/gtest.h>

#include <set>

namespace dolmen::server {
namespace {

class LearnerPromoterTest : public ::testing::Test {
 protected:
  LearnerPromoterTest() {
    LearnerPromoter::Deps deps;
    deps.clock = &clock_;
    deps.is_leader = [this] { return leader_; };
    deps.learners = [this] { return learners_; };
    deps.check_ready = [this](MemberId id) {
      return in_sync_.count(id.value()) ? OkStatus()
                                        : Status(Code::kFailedPrecondition,
                                                 "can only promote a learner member which is in "
                                                 "sync with leader");
    };
    deps.promote = [this](MemberId id) {
      promoted_.push_back(id.value());
      return promote_result_;
    };
    deps.log = [this](const std::string& line) { logged_.push_back(line); };
    LearnerPromoterOptions options;
    options.interval = std::chrono::milliseconds(1000);
    options.window = std::chrono::milliseconds(5000);
    promoter_ = std::make_unique<LearnerPromoter>(options, std::move(deps));
  }
  // `n` rounds, one second apart.
  void Rounds(int n) {
    for (int i = 0; i < n; ++i) {
      promoter_->Round();
      clock_.Advance(std::chrono::seconds(1));
    }
  }
  bool Logged(const std::string& text) const {
    for (const auto& line : logged_) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }

  ManualClock clock_;
  bool leader_ = true;
  std::vector<LearnerPromoter::Learner> learners_;
  std::set<uint64_t> in_sync_;
  std::vector<uint64_t> promoted_;
  Status promote_result_;
  std::vector<std::string> logged_;
  std::unique_ptr<LearnerPromoter> promoter_;
};

TEST_F(LearnerPromoterTest, PromotesALearnerInSyncForTheWholeWindowAndSaysWhy) {
  learners_ = {{MemberId(0xa1), "m4"}};
  in_sync_ = {0xa1};
  Rounds(5);  // in sync at t = 0..4 s: not yet a whole window
  EXPECT_TRUE(promoted_.empty());
  Rounds(1);  // t = 5 s
  EXPECT_EQ(promoted_, (std::vector<uint64_t>{0xa1}));
  EXPECT_TRUE(Logged("learner m4 (a1) is in sync with the leader")) << logged_.front();
  EXPECT_TRUE(Logged("promoting learner m4 (a1): in sync with the leader for 5000 ms"));
  EXPECT_TRUE(Logged("promoted learner m4 (a1) to a voting member"));
}

TEST_F(LearnerPromoterTest, ALearnerThatFallsBehindStartsItsWindowAgain) {
  learners_ = {{MemberId(0xa1), "m4"}};
  in_sync_ = {0xa1};
  Rounds(4);
  in_sync_.clear();
  Rounds(1);
  EXPECT_TRUE(Logged("is no longer in sync with the leader (can only promote"));
  in_sync_ = {0xa1};
  Rounds(5);
  EXPECT_TRUE(promoted_.empty());
  Rounds(1);
  EXPECT_EQ(promoted_.size(), 1u);
}

TEST_F(LearnerPromoterTest, UnstartedLearnersAndFollowersPromoteNothing) {
  learners_ = {{MemberId(0xa1), ""}};
  in_sync_ = {0xa1};
  Rounds(10);
  EXPECT_TRUE(promoted_.empty());
  learners_ = {{MemberId(0xa1), "m4"}};
  leader_ = false;
  Rounds(10);
  EXPECT_TRUE(promoted_.empty());
  leader_ = true;  // a new leader starts the window afresh
  Rounds(5);
  EXPECT_TRUE(promoted_.empty());
  Rounds(1);
  EXPECT_EQ(promoted_.size(), 1u);
}

TEST_F(LearnerPromoterTest, PromotesOneLearnerPerRound) {
  learners_ = {{MemberId(0xa1), "m4"}, {MemberId(0xb2), "m5"}};
  in_sync_ = {0xa1, 0xb2};
  Rounds(6);
  EXPECT_EQ(promoted_, (std::vector<uint64_t>{0xa1}));
  learners_ = {{MemberId(0xb2), "m5"}};  // m4 is a voter now
  Rounds(1);
  EXPECT_EQ(promoted_, (std::vector<uint64_t>{0xa1, 0xb2}));
}

TEST_F(LearnerPromoterTest, AFailedPromotionIsLoggedAndTriedAgainAfterANewWindow) {
  learners_ = {{MemberId(0xa1), "m4"}};
  in_sync_ = {0xa1};
  promote_result_ = Status(Code::kTimeout, "request timed out");
  Rounds(6);
  EXPECT_TRUE(Logged("promoting learner m4 (a1) failed: request timed out; will try again"));
  promote_result_ = OkStatus();
  Rounds(6);
  EXPECT_EQ(promoted_.size(), 2u);
}

}  // namespace
}  // namespace dolmen::server
