// Transports on 127.0.0.1 talking to each other: ordering, refusals, reconnects, bounds,
// snapshots next to heartbeats, and the join-time membership fetch.
#include "transport/transport.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <thread>

#include "base/crc32c.h"
#include "transport/test_util.h"

namespace dolmen::transport {
namespace {

using namespace testing;  // NOLINT: test helpers
using raft::MessageType;

constexpr MemberId kA{1};
constexpr MemberId kB{2};
constexpr MemberId kC{3};

// Messages of one type from one sender, in arrival order, as their index values.
std::vector<uint64_t> Indexes(RecordingHandler& h, MemberId from, MessageType type) {
  return h.monitor.Read([&] {
    std::vector<uint64_t> out;
    for (const raft::Message& m : h.messages) {
      if (m.from == from && m.type == type) out.push_back(m.index.value());
    }
    return out;
  });
}

size_t CountFrom(RecordingHandler& h, MemberId from) {
  return h.monitor.Read([&] {
    size_t n = 0;
    for (const raft::Message& m : h.messages) n += m.from == from;
    return n;
  });
}

std::vector<uint64_t> Iota(uint64_t n) {
  std::vector<uint64_t> v(n);
  for (uint64_t i = 0; i < n; ++i) v[i] = i + 1;
  return v;
}

class TransportTest : public ::testing::Test {
 protected:
  std::unique_ptr<Node> MakeNode(MemberId id, ClusterId cluster = ClusterId(1),
                                 std::function<void(Options*)> tweak = nullptr) {
    NodeConfig config;
    config.cluster_id = cluster;
    config.id = id;
    config.port = PickPort();
    config.tweak = std::move(tweak);
    auto node = std::make_unique<Node>(config, dir_);
    Status started = node->Start();
    EXPECT_TRUE(started.ok()) << started.ToString();
    return node;
  }

  TempDir dir_;
};

TEST_F(TransportTest, TwoTransportsExchangeThousandsOfMessagesInOrder) {
  // The test sends faster than any Raft owner would; room for all of it, so nothing drops.
  auto roomy = [](Options* o) { o->max_queued_messages_per_peer = 1 << 15; };
  auto a = MakeNode(kA, ClusterId(1), roomy);
  auto b = MakeNode(kB, ClusterId(1), roomy);
  a->transport().AddPeer(b->AsPeer());
  b->transport().AddPeer(a->AsPeer());

  constexpr uint64_t kCount = 5000;
  // Appends with entries (the data queue) and heartbeats (the control queue), interleaved, in
  // Send calls of varying size as the Raft owner would make them.
  uint64_t next = 1;
  while (next <= kCount) {
    std::vector<raft::Message> batch, replies;
    for (int i = 0; i < 7 && next <= kCount; ++i, ++next) {
      raft::Message app = Msg(MessageType::kApp, kA, kB, next);
      app.entries.push_back(raft::Entry{Term(1), Index(next), raft::EntryType::kNormal,
                                        std::string(next % 300, 'x')});
      batch.push_back(std::move(app));
      batch.push_back(Msg(MessageType::kHeartbeat, kA, kB, next));
      replies.push_back(Msg(MessageType::kAppResp, kB, kA, next));
    }
    a->transport().Send(std::move(batch));
    b->transport().Send(std::move(replies));
  }
  ASSERT_TRUE(
      b->handler.monitor.Await([&] { return b->handler.messages.size() == 2 * kCount; }, 20s));
  ASSERT_TRUE(a->handler.monitor.Await([&] { return a->handler.messages.size() == kCount; }, 20s));
  EXPECT_EQ(Indexes(b->handler, kA, MessageType::kApp), Iota(kCount));
  EXPECT_EQ(Indexes(b->handler, kA, MessageType::kHeartbeat), Iota(kCount));
  EXPECT_EQ(Indexes(a->handler, kB, MessageType::kAppResp), Iota(kCount));
  b->handler.monitor.Read([&] {
    for (const raft::Message& m : b->handler.messages) {
      if (m.type != MessageType::kApp) continue;
      EXPECT_EQ(m.entries.size(), 1u);
      EXPECT_EQ(m.entries[0].data.size(), m.index.value() % 300);
    }
    // Batching: far fewer deliveries than messages.
    EXPECT_LT(b->handler.on_messages_calls, 2 * kCount);
  });
  a->events.monitor.Read([&] {
    EXPECT_TRUE(a->events.refused.empty());
    EXPECT_TRUE(a->events.unreachable.empty());
  });
}

TEST_F(TransportTest, ThreeTransportsAllToAllInOrderPerPeer) {
  std::vector<std::unique_ptr<Node>> nodes;
  for (MemberId id : {kA, kB, kC}) nodes.push_back(MakeNode(id));
  for (auto& from : nodes) {
    for (auto& to : nodes) {
      if (from != to) from->transport().AddPeer(to->AsPeer());
    }
  }
  constexpr uint64_t kCount = 2000;
  for (uint64_t i = 1; i <= kCount; ++i) {
    for (auto& from : nodes) {
      std::vector<raft::Message> out;
      for (auto& to : nodes) {
        if (from != to) out.push_back(Msg(MessageType::kApp, from->id(), to->id(), i));
      }
      from->transport().Send(std::move(out));
    }
  }
  for (auto& to : nodes) {
    ASSERT_TRUE(
        to->handler.monitor.Await([&] { return to->handler.messages.size() == 2 * kCount; }, 20s))
        << "member " << to->id();
    for (auto& from : nodes) {
      if (from == to) continue;
      EXPECT_EQ(Indexes(to->handler, from->id(), MessageType::kApp), Iota(kCount));
    }
  }
}

// Sends a heartbeat from `from` to `to` each time `until` is still false, waiting for events in
// between; a refusal shows on the write after the one the peer refused.
template <typename P>
bool SendUntil(Node& from, MemberId to, P until, int max_rounds = 200) {
  for (int i = 0; i < max_rounds; ++i) {
    from.transport().Send({Msg(MessageType::kHeartbeat, from.id(), to, i + 1)});
    if (from.events.monitor.Await(until, 50ms)) return true;
  }
  return false;
}

TEST_F(TransportTest, PeerFromAnotherClusterIsRefused) {
  auto a = MakeNode(kA, ClusterId(0xa1));
  auto b = MakeNode(kB, ClusterId(0xb2));
  a->transport().AddPeer(b->AsPeer());
  ASSERT_TRUE(SendUntil(*a, kB, [&] { return !a->events.refused.empty(); }));
  a->events.monitor.Read([&] {
    EXPECT_EQ(a->events.refused[0].first, kB);
    EXPECT_EQ(a->events.refused[0].second.code(), Code::kFailedPrecondition);
    EXPECT_EQ(a->events.refused[0].second.message(),
              "dolmen: peer 1 is in cluster a1, this member is in cluster b2");
  });
  EXPECT_EQ(CountFrom(b->handler, kA), 0u);
}

TEST_F(TransportTest, RemovedMemberIsRefusedAndTold) {
  auto a = MakeNode(kA);
  auto b = MakeNode(kB);
  b->handler.SetRemoved(kA);
  a->transport().AddPeer(b->AsPeer());
  ASSERT_TRUE(SendUntil(*a, kB, [&] { return !a->events.refused.empty(); }));
  a->events.monitor.Read([&] {
    EXPECT_EQ(a->events.refused[0].second.code(), Code::kStopped);
    EXPECT_EQ(a->events.refused[0].second.message(), "member 1 has been removed from the cluster");
  });
  EXPECT_EQ(CountFrom(b->handler, kA), 0u);
}

}  // namespace
}  // namespace dolmen::transport
