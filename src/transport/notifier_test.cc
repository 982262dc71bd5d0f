#include "transport/notifier.h"

#include <gtest/gtest.h>

#include "transport/test_util.h"
#include "transport/transport.h"

namespace dolmen::transport {
namespace {

using namespace testing;  // NOLINT: test helpers

// Only the callback members matter here.
class CallbacksOnly : public Transport {
 public:
  Status Start() override { return OkStatus(); }
  void Stop() override {}
  void AddPeer(const Peer&) override {}
  void RemovePeer(MemberId) override {}
  void UpdatePeer(const Peer&) override {}
  void Send(std::vector<raft::Message>) override {}
  void SendSnapshot(raft::Message, std::string) override {}
  Result<int64_t> ForwardLeaseRenew(MemberId, int64_t, Handler::Deadline) override {
    return Unavailable("no peers");
  }
  Result<Handler::LeaseTtl> ForwardLeaseTimeToLive(MemberId, int64_t, bool,
                                                   Handler::Deadline) override {
    return Unavailable("no peers");
  }
  Result<std::vector<Handler::MemberInfo>> ForwardPromoteMember(MemberId, MemberId,
                                                                Handler::Deadline) override {
    return Unavailable("no peers");
  }
};

// A flood of drops while the server is slow to take the report turns into a couple of calls,
// not thousands; snapshot statuses and refusals are never coalesced away.
TEST(TransportNotifier, CoalescesUnreachableAndKeepsEverythingElse) {
  CallbacksOnly callbacks;
  Monitor monitor;
  bool release = false;
  int unreachable_calls = 0;
  std::vector<bool> statuses;
  std::vector<std::string> refusals;
  callbacks.on_unreachable = [&](MemberId) {
    monitor.Update([&] { ++unreachable_calls; });
    monitor.Await([&] { return release; }, 10s);
  };
  callbacks.on_snapshot_status = [&](MemberId, bool ok) {
    monitor.Update([&] { statuses.push_back(ok); });
  };
  callbacks.on_refused = [&](MemberId, Status why) {
    monitor.Update([&] { refusals.push_back(why.message()); });
  };
  Notifier notifier(&callbacks);
  notifier.Start();
  notifier.Unreachable(MemberId(2));
  ASSERT_TRUE(monitor.Await([&] { return unreachable_calls == 1; }, 10s));
  for (int i = 0; i < 10000; ++i) notifier.Unreachable(MemberId(2));
  notifier.SnapshotStatus(MemberId(2), true);
  notifier.SnapshotStatus(MemberId(2), false);
  notifier.Refused(MemberId(2), Status(Code::kStopped, "removed"));
  monitor.Update([&] { release = true; });
  ASSERT_TRUE(monitor.Await([&] { return statuses.size() == 2 && refusals.size() == 1; }, 10s));
  notifier.Stop();
  EXPECT_EQ(unreachable_calls, 2);
  EXPECT_EQ(statuses, (std::vector<bool>{true, false}));
  EXPECT_EQ(refusals, (std::vector<std::string>{"removed"}));
}

TEST(TransportNotifier, NothingRunsAfterStop) {
  CallbacksOnly callbacks;
  int calls = 0;
  callbacks.on_unreachable = [&](MemberId) { ++calls; };
  Notifier notifier(&callbacks);
  notifier.Start();
  notifier.Stop();
  notifier.Unreachable(MemberId(2));
  notifier.SnapshotStatus(MemberId(2), true);
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace dolmen::transport
