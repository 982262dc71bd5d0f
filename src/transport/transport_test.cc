// Transports on 127.0.0.1 talking to each other: ordering, refusals, reconnects, bounds,
// snapshots next to heartbeats, and the join-time membership fetch.
#include "transport/transport.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "base/crc32c.h"
#include "dolmen/peer.grpc.pb.h"
#include "tls/self_cert.h"
#include "transport/codec.h"
#include "transport/peer_metrics.h"
#include "transport/socket.h"
#include "transport/stream_frame.h"
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

// A message-stream client by hand: connects to `target`, writes the magic and then `bytes`,
// closes its sending side and reads until the receiver closes. Returns the StreamClose the
// receiver sent first, if it sent one.
std::optional<peer::StreamClose> SendRawStream(const std::string& target,
                                               const std::string& bytes) {
  Result<int> fd = ConnectTo(target, std::chrono::seconds(5), -1);
  CHECK(fd.ok()) << fd.status().ToString();
  CHECK(SendAll(*fd, std::string(kStreamMagic) + bytes).ok());
  ::shutdown(*fd, SHUT_WR);
  timeval tv{};
  tv.tv_sec = 10;
  ::setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::optional<peer::StreamClose> close;
  Result<std::string> frame = ReadFrame(*fd, 1 << 20);
  if (frame.ok()) {
    close.emplace();
    CHECK(close->ParseFromString(*frame));
  }
  ::close(*fd);
  return close;
}

std::string Framed(const google::protobuf::MessageLite& message) {
  std::string out;
  AppendFrame(message, &out);
  return out;
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
  auto diagnose = [&] {
    std::string out;
    for (Node* n : {a.get(), b.get()}) {
      out += "member " + std::to_string(n->id().value()) + ": received " +
             std::to_string(n->handler.monitor.Read([&] { return n->handler.messages.size(); })) +
             ", unreachable reports " +
             std::to_string(n->events.monitor.Read([&] { return n->events.unreachable.size(); })) +
             "; ";
    }
    return out;
  };
  ASSERT_TRUE(
      b->handler.monitor.Await([&] { return b->handler.messages.size() == 2 * kCount; }, 20s))
      << diagnose();
  ASSERT_TRUE(a->handler.monitor.Await([&] { return a->handler.messages.size() == kCount; }, 20s))
      << diagnose();
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
    EXPECT_EQ(a->events.refused[0].second.code(), Code::kRemoved);
    EXPECT_EQ(a->events.refused[0].second.message(), "member 1 has been removed from the cluster");
  });
  EXPECT_EQ(CountFrom(b->handler, kA), 0u);
}

TEST_F(TransportTest, ReconnectsAfterPeerRestarts) {
  auto a = MakeNode(kA, ClusterId(1));
  NodeConfig b_config;
  b_config.id = kB;
  b_config.port = PickPort();
  auto b = std::make_unique<Node>(b_config, dir_);
  ASSERT_TRUE(b->Start().ok());
  a->transport().AddPeer(b->AsPeer());
  a->transport().Send({Msg(MessageType::kHeartbeat, kA, kB, 1)});
  ASSERT_TRUE(b->handler.monitor.Await([&] { return b->handler.messages.size() == 1; }, 10s));

  b.reset();  // stops: the stream breaks
  // Sends to a down peer are dropped and reported, never queued up.
  ASSERT_TRUE(SendUntil(*a, kB, [&] { return a->events.unreachable.count(kB) != 0; }));

  b = std::make_unique<Node>(b_config, dir_);  // same id, same port
  ASSERT_TRUE(b->Start().ok());
  // Raft would keep sending heartbeats; so do we until one gets through the new stream. The
  // backoff is at most 1 s, so 10 s of 50 ms rounds is ample.
  bool delivered = false;
  for (int i = 0; i < 200 && !delivered; ++i) {
    a->transport().Send({Msg(MessageType::kHeartbeat, kA, kB, 100 + i)});
    delivered = b->handler.monitor.Await([&] { return !b->handler.messages.empty(); }, 50ms);
  }
  ASSERT_TRUE(delivered);
  // And the new stream keeps order as before.
  for (uint64_t i = 1; i <= 1000; ++i) {
    a->transport().Send({Msg(MessageType::kApp, kA, kB, i)});
  }
  ASSERT_TRUE(b->handler.monitor.Await(
      [&] {
        size_t apps = 0;
        for (const raft::Message& m : b->handler.messages) apps += m.type == MessageType::kApp;
        return apps == 1000;
      },
      10s));
  EXPECT_EQ(Indexes(b->handler, kA, MessageType::kApp), Iota(1000));
}

// A restarted member must hear from the leader at once, not after the leader's reconnect
// backoff runs out: its own stream to us says it is back.
TEST_F(TransportTest, PeerStreamingToUsEndsOurBackoffTowardsIt) {
  auto a = MakeNode(kA, ClusterId(1), [](Options* o) {
    o->min_backoff = 30s;  // far beyond what the test waits
    o->max_backoff = 30s;
  });
  NodeConfig b_config;
  b_config.id = kB;
  b_config.port = PickPort();
  a->transport().AddPeer(Peer{kB, {LoopbackUrl(b_config.port)}});
  // b is not up: a's stream fails and a enters its 30 s backoff.
  ASSERT_TRUE(SendUntil(*a, kB, [&] { return a->events.unreachable.count(kB) != 0; }));

  auto b = std::make_unique<Node>(b_config, dir_);
  ASSERT_TRUE(b->Start().ok());
  // b only adds a as a peer and sends nothing (a restarted follower has nothing to say until
  // the leader speaks): its stream's greeting is what tells a that b is back.
  b->transport().AddPeer(a->AsPeer());
  // a's messages reach b within seconds (Raft would be sending heartbeats meanwhile).
  const auto start = std::chrono::steady_clock::now();
  bool delivered = false;
  for (int i = 0; i < 100 && !delivered; ++i) {
    a->transport().Send({Msg(MessageType::kHeartbeat, kA, kB, 100 + i)});
    delivered = b->handler.monitor.Await([&] { return !b->handler.messages.empty(); }, 50ms);
  }
  ASSERT_TRUE(delivered) << "a still waits out its backoff";
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

// The sender probes the stream's round trip about once a second and records it under the
// peer's id, as etcd_network_peer_round_trip_time_seconds{To}; probes deliver no messages.
TEST_F(TransportTest, ProbesTimeTheRoundTrip) {
  // Ids of their own: metrics are process-wide, and other tests talk to kB.
  constexpr MemberId kProber{0x7001};
  constexpr MemberId kProbed{0x7002};
  auto a = MakeNode(kProber);
  auto b = MakeNode(kProbed);
  a->transport().AddPeer(b->AsPeer());
  a->transport().Send({Msg(MessageType::kHeartbeat, kProber, kProbed, 1)});
  ASSERT_TRUE(b->handler.monitor.Await([&] { return b->handler.messages.size() == 1; }, 10s));

  const metrics::Histogram& rtt = PeerRoundTripTime(kProbed);
  // The first probe leaves at once, the next a second later: two within 10 s, polled.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (rtt.Read().cumulative.back() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  const metrics::Histogram::Snapshot seen = rtt.Read();
  ASSERT_GE(seen.cumulative.back(), 2u);
  EXPECT_GT(seen.sum, 0.0);
  EXPECT_LT(seen.sum / static_cast<double>(seen.cumulative.back()), 1.0);  // loopback
  EXPECT_EQ(rtt.bounds().size(), 16u);  // etcd's 0.1 ms x 2^0..15
  EXPECT_DOUBLE_EQ(rtt.bounds().front(), 0.0001);
  b->handler.monitor.Read([&] { EXPECT_EQ(b->handler.messages.size(), 1u); });
  a->events.monitor.Read([&] {
    EXPECT_TRUE(a->events.unreachable.empty());
    EXPECT_TRUE(a->events.refused.empty());
  });
}

TEST_F(TransportTest, FullQueueDropsAndReportsUnreachable) {
  constexpr size_t kQueue = 8;
  auto a = MakeNode(kA, ClusterId(1), [](Options* o) { o->max_queued_messages_per_peer = kQueue; });
  auto b = MakeNode(kB);
  a->transport().AddPeer(b->AsPeer());
  // A stuck receiver: gRPC flow control fills, the sender's Write blocks, the queue fills.
  b->handler.SetBlocked(true);
  const std::string payload(256 << 10, 'p');
  size_t sent = 0;
  for (; sent < 2000; ++sent) {
    raft::Message m = Msg(MessageType::kApp, kA, kB, sent + 1);
    m.entries.push_back(raft::Entry{Term(1), Index(sent + 1), raft::EntryType::kNormal, payload});
    a->transport().Send({std::move(m)});
    if (a->events.monitor.Read([&] { return a->events.unreachable.count(kB) != 0; })) break;
  }
  ASSERT_TRUE(a->events.monitor.Await([&] { return a->events.unreachable.count(kB) != 0; }, 10s))
      << "sent " << sent << " messages of 256 KiB without a drop";
  b->handler.SetBlocked(false);
  // A marker behind everything that was queued (same queue, FIFO): once it is in, whatever was
  // not dropped has arrived. It may itself be dropped while the queue drains, so resend.
  constexpr uint64_t kMarker = 1'000'000;
  bool marked = false;
  for (int i = 0; i < 200 && !marked; ++i) {
    a->transport().Send({Msg(MessageType::kApp, kA, kB, kMarker)});
    marked = b->handler.monitor.Await(
        [&] {
          for (const raft::Message& m : b->handler.messages) {
            if (m.index.value() == kMarker) return true;
          }
          return false;
        },
        50ms);
  }
  ASSERT_TRUE(marked);
  std::vector<uint64_t> got = Indexes(b->handler, kA, MessageType::kApp);
  got.erase(std::remove(got.begin(), got.end(), kMarker), got.end());
  // Some were dropped, the rest arrived once each and in order.
  EXPECT_LT(got.size(), sent + 1);
  EXPECT_GT(got.size(), 0u);
  EXPECT_TRUE(std::adjacent_find(got.begin(), got.end(), std::greater_equal<uint64_t>()) ==
              got.end());
  // The stream is still usable after the stall.
  a->transport().Send({Msg(MessageType::kHeartbeat, kA, kB, 1)});
  EXPECT_TRUE(b->handler.monitor.Await(
      [&] {
        for (const raft::Message& m : b->handler.messages) {
          if (m.type == MessageType::kHeartbeat) return true;
        }
        return false;
      },
      10s));
}

std::string WriteRandomFile(const std::string& path, size_t bytes, uint32_t* crc) {
  std::mt19937_64 rng(42);
  std::string block(1 << 20, '\0');
  std::ofstream out(path, std::ios::binary);
  *crc = 0;
  for (size_t done = 0; done < bytes; done += block.size()) {
    for (size_t i = 0; i + 8 <= block.size(); i += 8) {
      uint64_t v = rng();
      std::memcpy(&block[i], &v, 8);
    }
    size_t n = std::min(block.size(), bytes - done);
    out.write(block.data(), static_cast<std::streamsize>(n));
    *crc = crc32c::Extend(*crc, block.data(), n);
  }
  return path;
}

uint32_t FileCrc(const std::string& path, size_t* size) {
  std::ifstream in(path, std::ios::binary);
  std::string block(1 << 20, '\0');
  uint32_t crc = 0;
  *size = 0;
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    size_t n = static_cast<size_t>(in.gcount());
    crc = crc32c::Extend(crc, block.data(), n);
    *size += n;
  }
  return crc;
}

raft::Message SnapMessage(MemberId from, MemberId to) {
  raft::Message m = Msg(MessageType::kSnap, from, to, 0);
  raft::Snapshot snap;
  snap.metadata.index = Index(777);
  snap.metadata.term = Term(3);
  snap.metadata.conf_state.voters = {kA, kB, kC};
  snap.data = "membership";
  m.snapshot = snap;
  return m;
}

TEST_F(TransportTest, LargeSnapshotStreamsWhileHeartbeatsKeepFlowing) {
  auto a = MakeNode(kA);
  auto b = MakeNode(kB);
  a->transport().AddPeer(b->AsPeer());
  b->transport().AddPeer(a->AsPeer());
  constexpr size_t kBytes = 64 << 20;
  uint32_t crc = 0;
  std::string db = WriteRandomFile(dir_.path() + "/leader-copy.db", kBytes, &crc);

  // Warm up the message stream so its connection exists before the snapshot starts.
  a->transport().Send({Msg(MessageType::kHeartbeat, kA, kB, 0)});
  ASSERT_TRUE(b->handler.monitor.Await([&] { return !b->handler.messages.empty(); }, 10s));

  a->transport().SendSnapshot(SnapMessage(kA, kB), db);
  // Ping-pong heartbeats until the snapshot lands: each waits for the one before it, so every
  // one that completes before OnSnapshot is a heartbeat delivered during the transfer.
  int during = 0;
  auto longest = std::chrono::steady_clock::duration::zero();
  for (uint64_t i = 1; i <= 100000; ++i) {
    if (b->handler.monitor.Read([&] { return !b->handler.snapshots.empty(); })) break;
    auto sent_at = std::chrono::steady_clock::now();
    a->transport().Send({Msg(MessageType::kHeartbeat, kA, kB, i)});
    ASSERT_TRUE(
        b->handler.monitor.Await([&] { return b->handler.messages.back().index.value() == i; }, 5s))
        << "heartbeat " << i << " stalled behind the snapshot";
    longest = std::max(longest, std::chrono::steady_clock::now() - sent_at);
    if (b->handler.monitor.Read([&] { return b->handler.snapshots.empty(); })) ++during;
  }
  ASSERT_TRUE(b->handler.monitor.Await([&] { return !b->handler.snapshots.empty(); }, 60s));
  EXPECT_GT(during, 0) << "no heartbeat arrived while the snapshot was in flight";
  // No bound on `longest` beyond the 5 s per heartbeat above: on a loaded machine (parallel
  // ctest, sanitizers) scheduling alone reaches hundreds of ms. Idle, it is about 10 ms.

  RecordingHandler::ReceivedSnapshot got =
      b->handler.monitor.Read([&] { return b->handler.snapshots[0]; });
  EXPECT_EQ(got.message, SnapMessage(kA, kB));
  EXPECT_EQ(got.db_path.rfind(dir_.path(), 0), 0u) << got.db_path;
  size_t size = 0;
  EXPECT_EQ(FileCrc(got.db_path, &size), crc);
  EXPECT_EQ(size, kBytes);
  ASSERT_TRUE(a->events.monitor.Await([&] { return !a->events.snapshot_status.empty(); }, 10s));
  a->events.monitor.Read(
      [&] { EXPECT_EQ(a->events.snapshot_status[0], std::make_pair(kB, true)); });
  std::printf("heartbeats during a 64 MiB snapshot: %d, longest round %lld us\n", during,
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::microseconds>(longest).count()));
}

TEST_F(TransportTest, SnapshotToDownOrUnknownPeerFails) {
  auto a = MakeNode(kA);
  uint32_t crc = 0;
  std::string db = WriteRandomFile(dir_.path() + "/small.db", 3 << 20, &crc);
  a->transport().AddPeer(Peer{kB, {LoopbackUrl(PickPort())}});  // nobody listens there
  a->transport().SendSnapshot(SnapMessage(kA, kB), db);
  a->transport().SendSnapshot(SnapMessage(kA, kC), db);  // not a peer
  ASSERT_TRUE(a->events.monitor.Await([&] { return a->events.snapshot_status.size() == 2; }, 10s));
  a->events.monitor.Read([&] {
    for (const auto& [peer, ok] : a->events.snapshot_status) EXPECT_FALSE(ok) << peer;
  });
}

TEST_F(TransportTest, SnapshotFromAnotherClusterIsRefused) {
  auto a = MakeNode(kA, ClusterId(5));
  auto b = MakeNode(kB, ClusterId(6));
  uint32_t crc = 0;
  std::string db = WriteRandomFile(dir_.path() + "/small.db", 1 << 20, &crc);
  a->transport().AddPeer(b->AsPeer());
  a->transport().SendSnapshot(SnapMessage(kA, kB), db);
  ASSERT_TRUE(a->events.monitor.Await(
      [&] { return !a->events.snapshot_status.empty() && !a->events.refused.empty(); }, 10s));
  a->events.monitor.Read([&] {
    EXPECT_FALSE(a->events.snapshot_status[0].second);
    EXPECT_EQ(a->events.refused[0].second.message(),
              "dolmen: peer 1 is in cluster 5, this member is in cluster 6");
  });
  b->handler.monitor.Read([&] { EXPECT_TRUE(b->handler.snapshots.empty()); });
}

TEST_F(TransportTest, FetchClusterInfoAsksPeersInTurn) {
  auto b = MakeNode(kB, ClusterId(0xc1));
  std::vector<Handler::MemberInfo> members = {
      {kB, "b", {b->url()}, {"http://127.0.0.1:2379"}, false},
      {kC, "c", {"http://127.0.0.1:1"}, {}, true},
  };
  b->handler.SetMembers(members);
  const std::string down = LoopbackUrl(PickPort());
  Result<ClusterInfo> info = FetchClusterInfo({down, b->url()}, 5s);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->cluster_id, ClusterId(0xc1));
  EXPECT_EQ(info->members, members);

  Result<ClusterInfo> none = FetchClusterInfo({down}, 5s);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Code::kUnavailable);
  EXPECT_NE(none.status().message().find(down), std::string::npos) << none.status().message();
  EXPECT_FALSE(FetchClusterInfo({}, 100ms).ok());
  // https is dialed over TLS (here: nobody listens).
  EXPECT_EQ(FetchClusterInfo({"https://127.0.0.1:1"}, 100ms).status().code(), Code::kUnavailable);
}

// Forwarded requests reach the peer's handler, and its answer (value or error code and text)
// comes back; a peer that cannot be reached, is unknown or refuses us is kUnavailable.
TEST_F(TransportTest, ForwardedRenewalBatchCarriesEachLeasesAnswer) {
  auto a = MakeNode(kA);
  auto b = MakeNode(kB);
  auto older = MakeNode(kC);  // serves single renewals only, as a member of an earlier version
  std::mutex mu;              // the handler runs on a transport thread
  std::vector<std::vector<int64_t>> served;
  auto served_copy = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return served;
  };
  b->handler.on_lease_renew_batch =
      [&](const std::vector<int64_t>& ids) -> Result<std::vector<Result<int64_t>>> {
    {
      std::lock_guard<std::mutex> lock(mu);
      served.push_back(ids);
    }
    if (ids.front() == 43) return Status(Code::kNotLeader, "not leader");
    std::vector<Result<int64_t>> out;
    for (int64_t id : ids) {
      if (id == 42) {
        out.emplace_back(int64_t{7});
      } else {
        out.emplace_back(Status(Code::kLeaseNotFound, "requested lease not found"));
      }
    }
    return out;
  };
  older->handler.on_lease_renew = [](int64_t) -> Result<int64_t> { return int64_t{5}; };
  a->transport().AddPeer(b->AsPeer());
  a->transport().AddPeer(older->AsPeer());
  auto deadline = [] { return std::chrono::steady_clock::now() + 5s; };

  Result<std::vector<Result<int64_t>>> renewed =
      a->transport().ForwardLeaseRenewBatch(kB, {42, 1, 42}, deadline());
  ASSERT_TRUE(renewed.ok()) << renewed.status().ToString();
  ASSERT_EQ(renewed->size(), 3u);
  ASSERT_TRUE((*renewed)[0].ok());
  EXPECT_EQ(*(*renewed)[0], 7);
  EXPECT_EQ((*renewed)[1].status().code(), Code::kLeaseNotFound);
  EXPECT_EQ((*renewed)[1].status().message(), "requested lease not found");
  ASSERT_TRUE((*renewed)[2].ok());
  EXPECT_EQ(*(*renewed)[2], 7);
  // The whole batch refused.
  EXPECT_EQ(a->transport().ForwardLeaseRenewBatch(kB, {43, 42}, deadline()).status().code(),
            Code::kNotLeader);
  ASSERT_EQ(served_copy().size(), 2u);
  EXPECT_EQ(served_copy()[0], (std::vector<int64_t>{42, 1, 42}));
  // Beyond the bound: refused before it is sent.
  std::vector<int64_t> too_many(kMaxLeaseRenewBatch + 1, 42);
  EXPECT_EQ(a->transport().ForwardLeaseRenewBatch(kB, too_many, deadline()).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(served_copy().size(), 2u);
  // A peer without the call: kUnimplemented, so the caller falls back to single renewals.
  EXPECT_EQ(a->transport().ForwardLeaseRenewBatch(kC, {42}, deadline()).status().code(),
            Code::kUnimplemented);
  Result<int64_t> single = a->transport().ForwardLeaseRenew(kC, 42, deadline());
  ASSERT_TRUE(single.ok()) << single.status().ToString();
  EXPECT_EQ(*single, 5);
}

TEST_F(TransportTest, ForwardedRequestsCarryAnswersAndErrors) {
  auto a = MakeNode(kA);
  auto b = MakeNode(kB);
  std::atomic<int> calls{0};
  b->handler.on_lease_renew = [&](int64_t id) -> Result<int64_t> {
    ++calls;
    if (id == 42) return int64_t{7};
    if (id == 43) return Status(Code::kNotLeader, "not leader");
    if (id == 44) return Status(Code::kInternal, "disk on fire");
    return Status(Code::kLeaseNotFound, "requested lease not found");
  };
  b->handler.on_lease_ttl = [&](int64_t id, bool keys) -> Result<Handler::LeaseTtl> {
    Handler::LeaseTtl ttl{id, 10, {}};
    if (keys) ttl.keys = {"k1", std::string("k\0\xff", 3)};
    return ttl;
  };
  std::vector<Handler::MemberInfo> members = {{kA, "a", {a->url()}, {}, false},
                                              {kB, "b", {b->url()}, {}, false}};
  b->handler.on_promote = [&](MemberId learner) -> Result<std::vector<Handler::MemberInfo>> {
    if (learner == kA) return members;
    return Status(Code::kFailedPrecondition,
                  "can only promote a learner member which is in sync with leader");
  };
  a->transport().AddPeer(b->AsPeer());
  auto deadline = [] { return std::chrono::steady_clock::now() + 5s; };

  Result<int64_t> renewed = a->transport().ForwardLeaseRenew(kB, 42, deadline());
  ASSERT_TRUE(renewed.ok()) << renewed.status().ToString();
  EXPECT_EQ(*renewed, 7);
  EXPECT_EQ(a->transport().ForwardLeaseRenew(kB, 43, deadline()).status().code(), Code::kNotLeader);
  Status missing = a->transport().ForwardLeaseRenew(kB, 1, deadline()).status();
  EXPECT_EQ(missing.code(), Code::kLeaseNotFound);
  EXPECT_EQ(missing.message(), "requested lease not found");
  Status other = a->transport().ForwardLeaseRenew(kB, 44, deadline()).status();
  EXPECT_EQ(other.code(), Code::kInternal);
  EXPECT_EQ(other.message(), "disk on fire");

  Result<Handler::LeaseTtl> ttl = a->transport().ForwardLeaseTimeToLive(kB, 9, true, deadline());
  ASSERT_TRUE(ttl.ok()) << ttl.status().ToString();
  EXPECT_EQ(*ttl, (Handler::LeaseTtl{9, 10, {"k1", std::string("k\0\xff", 3)}}));
  EXPECT_TRUE(a->transport().ForwardLeaseTimeToLive(kB, 9, false, deadline())->keys.empty());

  Result<std::vector<Handler::MemberInfo>> promoted =
      a->transport().ForwardPromoteMember(kB, kA, deadline());
  ASSERT_TRUE(promoted.ok()) << promoted.status().ToString();
  EXPECT_EQ(*promoted, members);
  Status not_ready = a->transport().ForwardPromoteMember(kB, kC, deadline()).status();
  EXPECT_EQ(not_ready.code(), Code::kFailedPrecondition);
  EXPECT_EQ(not_ready.message(), "can only promote a learner member which is in sync with leader");

  // Unknown peer, a peer that is down, a peer of another cluster: unreachable, handler untouched.
  EXPECT_EQ(a->transport().ForwardLeaseRenew(kC, 42, deadline()).status().code(),
            Code::kUnavailable);
  int before = calls.load();
  auto other_cluster = MakeNode(kC, ClusterId(0xee));
  other_cluster->handler.on_lease_renew = [&](int64_t) -> Result<int64_t> {
    ++calls;
    return int64_t{1};
  };
  a->transport().AddPeer(other_cluster->AsPeer());
  EXPECT_EQ(a->transport().ForwardLeaseRenew(kC, 42, deadline()).status().code(),
            Code::kUnavailable);
  EXPECT_EQ(calls.load(), before);
  b->Stop();
  auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(a->transport().ForwardLeaseRenew(kB, 42, deadline()).status().code(),
            Code::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 4s) << "a down peer fails fast";
  // A deadline already passed is not a call.
  EXPECT_EQ(
      a->transport().ForwardLeaseRenew(kB, 42, std::chrono::steady_clock::now()).status().code(),
      Code::kDeadlineExceeded);
}

// Peer.HashKV (the corruption checks): any member answers; its hash and revisions travel, and
// so do "compacted" and "future revision"; a peer of another cluster is not asked.
TEST_F(TransportTest, HashKvCarriesTheHashAndTheRevisionErrors) {
  auto a = MakeNode(kA);
  auto b = MakeNode(kB);
  std::atomic<int> calls{0};
  b->handler.on_hash_kv = [&](int64_t revision) -> Result<Handler::HashKv> {
    ++calls;
    if (revision == 3)
      return Status(Code::kCompacted, "mvcc: required revision has been compacted");
    if (revision > 100) {
      return Status(Code::kFutureRevision, "mvcc: required revision is a future revision");
    }
    return Handler::HashKv{kB, 0xdeadbeef, 5, revision, 100};
  };
  a->transport().AddPeer(b->AsPeer());
  auto deadline = [] { return std::chrono::steady_clock::now() + 5s; };

  Result<Handler::HashKv> hash = a->transport().PeerHashKv(kB, 42, deadline());
  ASSERT_TRUE(hash.ok()) << hash.status().ToString();
  EXPECT_EQ(*hash, (Handler::HashKv{kB, 0xdeadbeef, 5, 42, 100}));
  Status compacted = a->transport().PeerHashKv(kB, 3, deadline()).status();
  EXPECT_EQ(compacted.code(), Code::kCompacted);
  EXPECT_EQ(compacted.message(), "mvcc: required revision has been compacted");
  EXPECT_EQ(a->transport().PeerHashKv(kB, 101, deadline()).status().code(), Code::kFutureRevision);
  EXPECT_EQ(calls.load(), 3);

  // A member that serves no hashes (the Handler default) says so.
  auto c = MakeNode(kC);
  a->transport().AddPeer(c->AsPeer());
  EXPECT_EQ(a->transport().PeerHashKv(kC, 1, deadline()).status().code(), Code::kInternal);

  // Another cluster's member is refused before its handler runs.
  auto d = MakeNode(MemberId(0xd), ClusterId(0xee));
  d->handler.on_hash_kv = [&](int64_t) -> Result<Handler::HashKv> {
    ++calls;
    return Handler::HashKv{};
  };
  a->transport().AddPeer(d->AsPeer());
  EXPECT_EQ(a->transport().PeerHashKv(MemberId(0xd), 1, deadline()).status().code(),
            Code::kUnavailable);
  EXPECT_EQ(calls.load(), 3);
}

// https peer URLs: every path (message stream, snapshot, GetMembers, forwarding) over TLS with
// client certificates required; a client without one cannot even get the membership.
TEST_F(TransportTest, EverythingTravelsOverTlsWithClientCertificates) {
  Result<tls::SelfCertFiles> pki =
      tls::EnsureSelfCert(dir_.path() + "/pki", {"127.0.0.1"}, 1, nullptr);
  ASSERT_TRUE(pki.ok()) << pki.status().ToString();
  TlsOptions peer_tls;
  peer_tls.files.cert_file = pki->cert_file;
  peer_tls.files.key_file = pki->key_file;
  peer_tls.files.trusted_ca_file = pki->cert_file;  // self-signed: its own CA
  peer_tls.files.client_cert_auth = true;
  auto make = [&](MemberId id) {
    NodeConfig config;
    config.id = id;
    config.url = "https://127.0.0.1:" + std::to_string(PickPort());
    config.tweak = [&](Options* o) { o->tls = peer_tls; };
    auto node = std::make_unique<Node>(config, dir_);
    Status started = node->Start();
    EXPECT_TRUE(started.ok()) << started.ToString();
    return node;
  };
  auto a = make(kA);
  auto b = make(kB);
  b->handler.on_lease_renew = [](int64_t id) -> Result<int64_t> { return id + 1; };
  a->transport().AddPeer(b->AsPeer());
  b->transport().AddPeer(a->AsPeer());

  constexpr uint64_t kCount = 300;
  for (uint64_t i = 1; i <= kCount; ++i) {
    a->transport().Send({Msg(MessageType::kApp, kA, kB, i)});
    b->transport().Send({Msg(MessageType::kAppResp, kB, kA, i)});
  }
  EXPECT_TRUE(b->handler.monitor.Await([&] { return b->handler.messages.size() == kCount; }, 20s));
  EXPECT_TRUE(a->handler.monitor.Await([&] { return a->handler.messages.size() == kCount; }, 20s));
  EXPECT_EQ(Indexes(b->handler, kA, MessageType::kApp), Iota(kCount));

  uint32_t crc = 0;
  std::string db = WriteRandomFile(dir_.path() + "/tls-snapshot.db", 2 << 20, &crc);
  a->transport().SendSnapshot(SnapMessage(kA, kB), db);
  ASSERT_TRUE(b->handler.monitor.Await([&] { return !b->handler.snapshots.empty(); }, 20s));
  size_t size = 0;
  EXPECT_EQ(
      FileCrc(b->handler.monitor.Read([&] { return b->handler.snapshots[0].db_path; }), &size),
      crc);

  std::vector<Handler::MemberInfo> members = {{kB, "b", {b->url()}, {}, false}};
  b->handler.SetMembers(members);
  Result<ClusterInfo> info = FetchClusterInfo({b->url()}, 5s, peer_tls);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->members, members);
  Result<int64_t> renewed =
      a->transport().ForwardLeaseRenew(kB, 41, std::chrono::steady_clock::now() + 5s);
  ASSERT_TRUE(renewed.ok()) << renewed.status().ToString();
  EXPECT_EQ(*renewed, 42);

  // Without a client certificate: refused in the handshake.
  TlsOptions anonymous;
  anonymous.files.trusted_ca_file = pki->cert_file;
  EXPECT_FALSE(FetchClusterInfo({b->url()}, 2s, anonymous).ok());
  // Plaintext to a TLS port: refused too.
  EXPECT_FALSE(FetchClusterInfo({"http://" + b->url().substr(8)}, 2s).ok());
}

TEST_F(TransportTest, TakenPortIsAClearError) {
  auto a = MakeNode(kA);
  Options options;
  options.cluster_id = ClusterId(1);
  options.self = kB;
  options.listen_urls = {a->url()};
  options.snapshot_dir = dir_.path();
  RecordingHandler handler;
  auto t = NewGrpcTransport(options, &handler);
  ASSERT_TRUE(t.ok());
  Status started = (*t)->Start();
  EXPECT_EQ(started.code(), Code::kUnavailable);
  EXPECT_EQ(started.message(), "cannot listen for peers on " + a->url() +
                                   ": address in use, not permitted, or not local");
  EXPECT_FALSE(NewGrpcTransport(options, nullptr).ok());

  options.listen_urls = {LoopbackUrl(PickPort())};
  options.snapshot_dir = dir_.path() + "/missing";
  auto no_dir = NewGrpcTransport(options, &handler);
  ASSERT_TRUE(no_dir.ok());
  EXPECT_EQ((*no_dir)->Start().message(),
            "snapshot dir " + options.snapshot_dir + " is not a directory");
  options.listen_urls = {"ftp://x:1"};
  EXPECT_FALSE(NewGrpcTransport(options, &handler).ok());
}

TEST_F(TransportTest, UpdatePeerMovesTheStream) {
  auto a = MakeNode(kA);
  auto b = MakeNode(kB);
  a->transport().AddPeer(Peer{kB, {LoopbackUrl(PickPort())}});  // wrong address
  ASSERT_TRUE(SendUntil(*a, kB, [&] { return a->events.unreachable.count(kB) != 0; }));
  a->transport().UpdatePeer(b->AsPeer());
  bool delivered = false;
  for (int i = 0; i < 200 && !delivered; ++i) {
    a->transport().Send({Msg(MessageType::kHeartbeat, kA, kB, i + 1)});
    delivered = b->handler.monitor.Await([&] { return !b->handler.messages.empty(); }, 50ms);
  }
  EXPECT_TRUE(delivered);
  // Removing the peer stops delivery without blocking; Send to it is then a no-op.
  a->transport().RemovePeer(kB);
  a->transport().Send({Msg(MessageType::kHeartbeat, kA, kB, 9999)});
}

TEST_F(TransportTest, PeerWithoutUsableUrlIsUnreachable) {
  auto a = MakeNode(kA);
  a->transport().AddPeer(Peer{kB, {"https://127.0.0.1:1"}});
  EXPECT_TRUE(SendUntil(*a, kB, [&] { return a->events.unreachable.count(kB) != 0; }));
}

// What a confused or hostile client could send straight to the peer port: each is refused with
// a reason, and the member keeps serving.
TEST_F(TransportTest, MalformedEnvelopesAreRefusedNotFatal) {
  auto b = MakeNode(kB);
  const std::string target = b->url().substr(7);
  auto send = [&](const peer::Envelope& envelope) {
    return SendRawStream(target, Framed(envelope));
  };
  auto expect_close = [](const std::optional<peer::StreamClose>& close,
                         peer::StreamClose::Reason reason, const std::string& message) {
    ASSERT_TRUE(close.has_value()) << "closed without a reason";
    EXPECT_EQ(close->reason(), reason);
    if (!message.empty()) {
      EXPECT_EQ(close->message(), message);
    }
  };
  peer::Envelope good;
  good.mutable_header()->set_cluster_id(1);
  good.mutable_header()->set_from(kA.value());
  good.mutable_header()->set_to(kB.value());

  peer::Envelope bad_type = good;
  peer::Message* m = bad_type.add_messages();
  m->set_type(static_cast<peer::MessageType>(99));
  m->set_from(kA.value());
  m->set_to(kB.value());
  expect_close(send(bad_type), peer::StreamClose::REASON_MALFORMED,
               "dolmen: unknown raft message type 99");

  peer::Envelope spoofed = good;
  m = spoofed.add_messages();
  m->set_type(peer::MESSAGE_TYPE_HEARTBEAT);
  m->set_from(kC.value());
  m->set_to(kB.value());
  expect_close(send(spoofed), peer::StreamClose::REASON_MALFORMED,
               "dolmen: message from 3 to 2 in an envelope from 1 to 2");

  peer::Envelope snap = good;
  m = snap.add_messages();
  m->set_type(peer::MESSAGE_TYPE_SNAP);
  m->set_from(kA.value());
  m->set_to(kB.value());
  expect_close(send(snap), peer::StreamClose::REASON_MALFORMED, "");

  peer::Envelope anonymous = good;
  anonymous.mutable_header()->set_from(0);
  expect_close(send(anonymous), peer::StreamClose::REASON_MALFORMED,
               "dolmen: envelope without a sender");

  peer::Envelope misaddressed = good;
  misaddressed.mutable_header()->set_to(kC.value());
  expect_close(send(misaddressed), peer::StreamClose::REASON_REFUSED,
               "dolmen: peer 1 sent to member 3, this is member 2");

  // Bytes that are no envelope, and a length beyond any envelope, are refused before a byte
  // of the body is trusted.
  expect_close(SendRawStream(target, std::string("\x03\x00\x00\x00\xff\xff\xff", 7)),
               peer::StreamClose::REASON_MALFORMED, "dolmen: envelope does not parse");
  expect_close(SendRawStream(target, std::string("\xff\xff\xff\xff", 4)),
               peer::StreamClose::REASON_MALFORMED, "");
  // A connection that ends inside a frame is dropped quietly.
  EXPECT_FALSE(SendRawStream(target, std::string("\x10\x00\x00\x00"
                                                 "abc",
                                                 7))
                   .has_value());

  // gRPC clients share the port: their connections are told apart by their first bytes.
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto stub = peer::Peer::NewStub(channel);
  grpc::Status s;
  // A snapshot stream that lies about its size or checksum leaves no file behind.
  {
    grpc::ClientContext context;
    peer::SnapshotAck ack;
    auto writer = stub->Snapshot(&context, &ack);
    peer::SnapshotChunk chunk;
    *chunk.mutable_begin()->mutable_header() = good.header();
    raft::Message snap_message = Msg(MessageType::kSnap, kA, kB, 0);
    snap_message.snapshot = raft::Snapshot{};
    EncodeMessage(snap_message, chunk.mutable_begin()->mutable_message());
    chunk.mutable_begin()->set_size_bytes(4);
    writer->Write(chunk);
    chunk.Clear();
    chunk.set_data("12345");
    writer->Write(chunk);
    writer->WritesDone();
    s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(s.error_message(), "dolmen: snapshot: chunk of 5 bytes past the announced size 4");
  }
  {
    grpc::ClientContext context;
    peer::SnapshotAck ack;
    auto writer = stub->Snapshot(&context, &ack);
    peer::SnapshotChunk chunk;
    *chunk.mutable_begin()->mutable_header() = good.header();
    raft::Message snap_message = Msg(MessageType::kSnap, kA, kB, 0);
    snap_message.snapshot = raft::Snapshot{};
    EncodeMessage(snap_message, chunk.mutable_begin()->mutable_message());
    chunk.mutable_begin()->set_size_bytes(4);
    writer->Write(chunk);
    chunk.Clear();
    chunk.set_data("1234");
    writer->Write(chunk);
    chunk.Clear();
    chunk.mutable_end()->set_crc32c(crc32c::Value("1234") ^ 1);
    writer->Write(chunk);
    writer->WritesDone();
    s = writer->Finish();
    EXPECT_EQ(s.error_message(), "dolmen: snapshot: checksum mismatch");
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir_.path()));

  // Still serving.
  peer::Envelope fine = good;
  m = fine.add_messages();
  m->set_type(peer::MESSAGE_TYPE_HEARTBEAT);
  m->set_from(kA.value());
  m->set_to(kB.value());
  EXPECT_FALSE(send(fine).has_value());
  EXPECT_EQ(CountFrom(b->handler, kA), 1u);
}

// Connections that never say which protocol they speak hold no one up: streams and gRPC calls
// are served meanwhile, a flood of them is cut off at 64 instead of growing threads, and Stop
// does not wait for them.
TEST_F(TransportTest, SilentConnectionsDoNotBlockThePeerPort) {
  auto a = MakeNode(kA);
  auto b = MakeNode(kB);
  const std::string target = b->url().substr(7);
  Result<int> silent = ConnectTo(target, std::chrono::seconds(5), -1);
  ASSERT_TRUE(silent.ok()) << silent.status().ToString();
  a->transport().AddPeer(b->AsPeer());
  a->transport().Send({Msg(MessageType::kHeartbeat, kA, kB, 1)});
  EXPECT_TRUE(b->handler.monitor.Await([&] { return !b->handler.messages.empty(); }, 10s));
  Result<ClusterInfo> info = FetchClusterInfo({b->url()}, std::chrono::seconds(5));
  EXPECT_TRUE(info.ok()) << info.status().ToString();

  // The flood: 63 more silent connections fill the undecided slots; the next is closed.
  std::vector<int> flood{*silent};
  for (int i = 0; i < 63; ++i) {
    Result<int> fd = ConnectTo(target, std::chrono::seconds(5), -1);
    ASSERT_TRUE(fd.ok()) << fd.status().ToString();
    flood.push_back(*fd);
  }
  Result<int> extra = ConnectTo(target, std::chrono::seconds(5), -1);
  ASSERT_TRUE(extra.ok()) << extra.status().ToString();
  timeval tv{};
  tv.tv_sec = 10;
  ::setsockopt(*extra, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char byte;
  EXPECT_EQ(::recv(*extra, &byte, 1, 0), 0) << "the 65th silent connection stays open";
  ::close(*extra);
  // The stream that was already open still delivers.
  a->transport().Send({Msg(MessageType::kHeartbeat, kA, kB, 2)});
  EXPECT_TRUE(
      b->handler.monitor.Await([&] { return b->handler.messages.back().index.value() == 2; }, 10s));
  // Once they are gone, new connections are served again.
  for (int fd : flood) ::close(fd);
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    served = FetchClusterInfo({b->url()}, std::chrono::milliseconds(500)).ok();
  }
  EXPECT_TRUE(served);

  Result<int> last = ConnectTo(target, std::chrono::seconds(5), -1);
  ASSERT_TRUE(last.ok());
  auto started = std::chrono::steady_clock::now();
  b->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  ::close(*last);
}

// Stop must not wait on a peer that stopped reading: the blocked write is cancelled.
TEST_F(TransportTest, StopIsPromptWhilePeerIsStuck) {
  auto a = MakeNode(kA, ClusterId(1), [](Options* o) { o->max_queued_messages_per_peer = 8; });
  auto b = MakeNode(kB);
  a->transport().AddPeer(b->AsPeer());
  b->handler.SetBlocked(true);
  const std::string payload(256 << 10, 'p');
  for (uint64_t i = 1; i <= 2000; ++i) {
    raft::Message m = Msg(MessageType::kApp, kA, kB, i);
    m.entries.push_back(raft::Entry{Term(1), Index(i), raft::EntryType::kNormal, payload});
    a->transport().Send({std::move(m)});
    if (a->events.monitor.Read([&] { return a->events.unreachable.count(kB) != 0; })) break;
  }
  ASSERT_TRUE(a->events.monitor.Await([&] { return a->events.unreachable.count(kB) != 0; }, 10s));
  auto start = std::chrono::steady_clock::now();
  a->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  b->handler.SetBlocked(false);
}

// Queued appends do not hold up a heartbeat: it goes out with the next envelope, ahead of the
// appends still queued (which are delivered after it, still in their own order).
TEST_F(TransportTest, HeartbeatOvertakesQueuedAppends) {
  auto a = MakeNode(kA);
  auto b = MakeNode(kB);
  a->transport().AddPeer(b->AsPeer());
  a->transport().Send({Msg(MessageType::kHeartbeat, kA, kB, 0)});
  ASSERT_TRUE(b->handler.monitor.Await([&] { return !b->handler.messages.empty(); }, 10s));
  b->handler.SetBlocked(true);
  constexpr uint64_t kApps = 100;  // 25 MiB: far more than gRPC's flow-control windows buffer
  const std::string payload(256 << 10, 'p');
  for (uint64_t i = 1; i <= kApps; ++i) {
    raft::Message m = Msg(MessageType::kApp, kA, kB, i);
    m.entries.push_back(raft::Entry{Term(1), Index(i), raft::EntryType::kNormal, payload});
    a->transport().Send({std::move(m)});
  }
  a->transport().Send({Msg(MessageType::kHeartbeat, kA, kB, 1)});
  b->handler.SetBlocked(false);
  ASSERT_TRUE(
      b->handler.monitor.Await([&] { return b->handler.messages.size() == kApps + 2; }, 20s));
  b->handler.monitor.Read([&] {
    size_t heartbeat_at = 0, last_app_at = 0;
    for (size_t i = 0; i < b->handler.messages.size(); ++i) {
      const raft::Message& m = b->handler.messages[i];
      if (m.type == MessageType::kHeartbeat && m.index.value() == 1) heartbeat_at = i;
      if (m.type == MessageType::kApp && m.index.value() == kApps) last_app_at = i;
    }
    EXPECT_LT(heartbeat_at, last_app_at);
  });
  EXPECT_EQ(Indexes(b->handler, kA, MessageType::kApp), Iota(kApps));
}

// A single message larger than the receiver accepts is dropped at the sender and reported; the
// stream stays up for the messages after it.
TEST_F(TransportTest, OversizedMessageIsDroppedNotFatal) {
  auto small = [](Options* o) { o->max_envelope_bytes = 16 << 10; };
  auto a = MakeNode(kA, ClusterId(1), small);
  auto b = MakeNode(kB, ClusterId(1), small);
  a->transport().AddPeer(b->AsPeer());
  raft::Message big = Msg(MessageType::kApp, kA, kB, 1);
  big.entries.push_back(
      raft::Entry{Term(1), Index(1), raft::EntryType::kNormal, std::string(64 << 10, 'b')});
  a->transport().Send({std::move(big)});
  a->transport().Send({Msg(MessageType::kApp, kA, kB, 2)});
  ASSERT_TRUE(a->events.monitor.Await([&] { return a->events.unreachable.count(kB) != 0; }, 10s));
  ASSERT_TRUE(b->handler.monitor.Await([&] { return !b->handler.messages.empty(); }, 10s));
  EXPECT_EQ(Indexes(b->handler, kA, MessageType::kApp), std::vector<uint64_t>{2});
}

// Members on unix:// peer URLs, as etcd takes them: the socket is the file "name:port" in the
// working directory, here the test's temp dir. Streams, snapshots (gRPC), membership and
// forwarding all run on them as on TCP.
class UnixTransportTest : public TransportTest {
 protected:
  void SetUp() override {
    std::error_code ec;
    old_cwd_ = std::filesystem::current_path(ec);
    ASSERT_FALSE(ec) << ec.message();
    std::filesystem::current_path(dir_.path(), ec);
    ASSERT_FALSE(ec) << ec.message();
  }
  void TearDown() override { std::filesystem::current_path(old_cwd_); }

  std::unique_ptr<Node> MakeUnixNode(MemberId id, const std::string& url) {
    NodeConfig config;
    config.id = id;
    config.url = url;
    auto node = std::make_unique<Node>(config, dir_);
    Status started = node->Start();
    EXPECT_TRUE(started.ok()) << started.ToString();
    return node;
  }

  // What Start says for a second transport on `url`.
  Status StartOn(MemberId id, const std::string& url) {
    Options options;
    options.cluster_id = ClusterId(1);
    options.self = id;
    options.listen_urls = {url};
    options.snapshot_dir = dir_.path();
    RecordingHandler handler;
    auto t = NewGrpcTransport(options, &handler);
    if (!t.ok()) return t.status();
    return (*t)->Start();
  }

  static bool Exists(const std::string& path) {
    std::error_code ec;
    return std::filesystem::exists(std::filesystem::symlink_status(path, ec));
  }

  std::filesystem::path old_cwd_;
};

TEST_F(UnixTransportTest, StreamsSnapshotsMembershipAndForwardingOnUnixSockets) {
  auto a = MakeUnixNode(kA, "unix://a:2380");
  auto b = MakeUnixNode(kB, "unix://b:2380");
  EXPECT_TRUE(std::filesystem::is_socket("a:2380"));
  EXPECT_TRUE(std::filesystem::is_socket("b:2380"));
  b->handler.on_lease_renew = [](int64_t id) -> Result<int64_t> { return id + 1; };
  a->transport().AddPeer(b->AsPeer());
  b->transport().AddPeer(a->AsPeer());

  // The message stream, both ways, in order.
  constexpr uint64_t kCount = 500;
  for (uint64_t i = 1; i <= kCount; ++i) {
    raft::Message app = Msg(MessageType::kApp, kA, kB, i);
    app.entries.push_back(
        raft::Entry{Term(1), Index(i), raft::EntryType::kNormal, std::string(i % 100, 'x')});
    a->transport().Send({std::move(app)});
    b->transport().Send({Msg(MessageType::kAppResp, kB, kA, i)});
  }
  EXPECT_TRUE(b->handler.monitor.Await([&] { return b->handler.messages.size() == kCount; }, 20s));
  EXPECT_TRUE(a->handler.monitor.Await([&] { return a->handler.messages.size() == kCount; }, 20s));
  EXPECT_EQ(Indexes(b->handler, kA, MessageType::kApp), Iota(kCount));
  EXPECT_EQ(Indexes(a->handler, kB, MessageType::kAppResp), Iota(kCount));

  // A snapshot, on its own gRPC channel to "unix:b:2380".
  uint32_t crc = 0;
  std::string db = WriteRandomFile(dir_.path() + "/unix-snapshot.db", 3 << 20, &crc);
  a->transport().SendSnapshot(SnapMessage(kA, kB), db);
  ASSERT_TRUE(b->handler.monitor.Await([&] { return !b->handler.snapshots.empty(); }, 20s));
  size_t size = 0;
  EXPECT_EQ(
      FileCrc(b->handler.monitor.Read([&] { return b->handler.snapshots[0].db_path; }), &size),
      crc);
  EXPECT_EQ(size, size_t{3} << 20);
  ASSERT_TRUE(a->events.monitor.Await([&] { return !a->events.snapshot_status.empty(); }, 10s));
  a->events.monitor.Read(
      [&] { EXPECT_EQ(a->events.snapshot_status[0], std::make_pair(kB, true)); });

  // GetMembers, past a socket nobody listens on.
  std::vector<Handler::MemberInfo> members = {{kB, "b", {b->url()}, {}, false}};
  b->handler.SetMembers(members);
  Result<ClusterInfo> info = FetchClusterInfo({"unix://nobody:1", b->url()}, 5s);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->members, members);

  // A forwarded request.
  Result<int64_t> renewed =
      a->transport().ForwardLeaseRenew(kB, 41, std::chrono::steady_clock::now() + 5s);
  ASSERT_TRUE(renewed.ok()) << renewed.status().ToString();
  EXPECT_EQ(*renewed, 42);
  a->events.monitor.Read([&] { EXPECT_TRUE(a->events.unreachable.empty()); });

  // Stop removes the socket files.
  a->Stop();
  b->Stop();
  EXPECT_FALSE(Exists("a:2380"));
  EXPECT_FALSE(Exists("b:2380"));
}

TEST_F(UnixTransportTest, SocketFileIsReplacedOnlyWhenStale) {
  // A socket file nobody listens on, as a member killed with SIGKILL leaves it: replaced.
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, "a:1");
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);  // the file stays
  }
  ASSERT_TRUE(std::filesystem::is_socket("a:1"));
  auto a = MakeUnixNode(kA, "unix://a:1");

  // The socket of a member that runs: refused, and left working (etcd would take it over).
  EXPECT_EQ(StartOn(kB, "unix://a:1").message(),
            "cannot listen for peers on unix://a:1: bind a:1: address already in use (a process "
            "listens on it)");
  EXPECT_TRUE(FetchClusterInfo({a->url()}, 5s).ok());

  // A file that is not a socket: refused and kept.
  { std::ofstream("c:1") << "keep me"; }
  EXPECT_EQ(StartOn(kC, "unix://c:1").message(),
            "cannot listen for peers on unix://c:1: bind c:1: a file that is not a socket is in "
            "the way");
  std::ifstream kept("c:1");
  std::string contents((std::istreambuf_iterator<char>(kept)), std::istreambuf_iterator<char>());
  EXPECT_EQ(contents, "keep me");

  // A name longer than a socket address holds.
  const std::string long_url = "unix://" + std::string(120, 'x') + ":1";
  EXPECT_NE(StartOn(kC, long_url).message().find("longer than 107 bytes"), std::string::npos)
      << StartOn(kC, long_url).message();

  // Stop removes the file it made, but not a file put at the path since.
  a->Stop();
  EXPECT_FALSE(Exists("a:1"));
  auto b = MakeUnixNode(kB, "unix://b:1");
  ASSERT_EQ(::unlink("b:1"), 0);
  { std::ofstream("b:1") << "someone else's"; }
  b->Stop();
  EXPECT_TRUE(Exists("b:1"));
}

TEST_F(UnixTransportTest, TlsWithoutCertificateAndPathStyleUrlsAreRefused) {
  EXPECT_EQ(StartOn(kA, "unixs://a:1").message(),
            "cannot listen on TLS for unix:a:1: KeyFile and CertFile are not presented");
  EXPECT_EQ(StartOn(kA, "unix:///tmp/a").message(),
            "peer URL unix:///tmp/a: expected unix://host:port");
  EXPECT_EQ(FetchClusterInfo({"unixs://a:1"}, 100ms).status().code(), Code::kUnavailable);
  // A peer known only by such URLs is kept, and unreachable.
  auto a = MakeUnixNode(kA, "unix://a:1");
  a->transport().AddPeer(Peer{kB, {"unixs://b:1", "unix:///tmp/b"}});
  EXPECT_TRUE(SendUntil(*a, kB, [&] { return a->events.unreachable.count(kB) != 0; }));
}

// On a unix socket a peek returns only the bytes that have arrived, even with MSG_WAITALL: a
// stream whose magic comes in pieces must still be told from gRPC.
TEST_F(UnixTransportTest, MagicArrivingInPiecesIsStillAStream) {
  auto b = MakeUnixNode(kB, "unix://b:1");
  peer::Envelope envelope;
  envelope.mutable_header()->set_cluster_id(1);
  envelope.mutable_header()->set_from(kA.value());
  envelope.mutable_header()->set_to(kB.value());
  EncodeMessage(Msg(MessageType::kHeartbeat, kA, kB, 7), envelope.add_messages());
  const std::string bytes = std::string(kStreamMagic) + Framed(envelope);
  Result<int> fd = ConnectTo("unix:b:1", 5s, -1);
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  // The pauses synchronise nothing (the test passes whatever the timing): they make it likely
  // that the receiver looks at the first bytes before the rest of the magic is there.
  for (auto [from, length] : {std::pair<size_t, size_t>{0, 1}, {1, 4}, {5, std::string::npos}}) {
    ASSERT_TRUE(SendAll(*fd, std::string_view(bytes).substr(from, length)).ok());
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(b->handler.monitor.Await([&] { return !b->handler.messages.empty(); }, 10s));
  EXPECT_EQ(Indexes(b->handler, kA, MessageType::kHeartbeat), std::vector<uint64_t>{7});
  ::close(*fd);
}

}  // namespace
}  // namespace dolmen::transport
