#include "transport/codec.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace dolmen::transport {
namespace {

constexpr raft::MessageType kNetworkTypes[] = {
    raft::MessageType::kProp,           raft::MessageType::kApp,
    raft::MessageType::kAppResp,        raft::MessageType::kVote,
    raft::MessageType::kVoteResp,       raft::MessageType::kPreVote,
    raft::MessageType::kPreVoteResp,    raft::MessageType::kSnap,
    raft::MessageType::kHeartbeat,      raft::MessageType::kHeartbeatResp,
    raft::MessageType::kTransferLeader, raft::MessageType::kTimeoutNow,
    raft::MessageType::kReadIndex,      raft::MessageType::kReadIndexResp,
};

class RandomMessages {
 public:
  explicit RandomMessages(uint64_t seed) : rng_(seed) {}

  raft::Message Next() {
    raft::Message m;
    m.type = kNetworkTypes[Below(std::size(kNetworkTypes))];
    m.to = MemberId(Wide());
    m.from = MemberId(Wide());
    m.term = Term(Wide());
    m.log_term = Term(Wide());
    m.index = Index(Wide());
    size_t entries = Below(4) == 0 ? Below(20) : 0;
    for (size_t i = 0; i < entries; ++i) {
      m.entries.push_back(raft::Entry{
          Term(Wide()), Index(Wide()),
          Below(2) ? raft::EntryType::kConfChange : raft::EntryType::kNormal, Bytes(200)});
    }
    m.commit = Index(Wide());
    if (Below(5) == 0) {
      raft::Snapshot s;
      s.metadata.index = Index(Wide());
      s.metadata.term = Term(Wide());
      s.metadata.conf_state.voters = Ids();
      s.metadata.conf_state.learners = Ids();
      s.metadata.conf_state.voters_outgoing = Ids();
      s.metadata.conf_state.learners_next = Ids();
      s.metadata.conf_state.auto_leave = Below(2);
      s.data = Bytes(1000);
      m.snapshot = std::move(s);
    }
    m.reject = Below(2);
    m.reject_hint = Index(Wide());
    m.context = Bytes(40);
    m.transferee = MemberId(Wide());
    return m;
  }

  std::string Bytes(size_t max_len) {
    std::string s(Below(max_len + 1), '\0');
    for (char& c : s) c = static_cast<char>(Below(256));
    return s;
  }
  size_t Below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

 private:
  // Mostly small values, sometimes the extremes: varint boundaries are where codecs break.
  uint64_t Wide() {
    switch (Below(4)) {
      case 0:
        return 0;
      case 1:
        return Below(1000);
      case 2:
        return UINT64_MAX - Below(3);
      default:
        return rng_();
    }
  }
  std::vector<MemberId> Ids() {
    std::vector<MemberId> ids(Below(6));
    for (MemberId& id : ids) id = MemberId(Wide());
    return ids;
  }

  std::mt19937_64 rng_;
};

TEST(TransportCodec, RandomMessagesRoundTripThroughBytes) {
  RandomMessages gen(20261124);
  for (int i = 0; i < 5000; ++i) {
    raft::Message m = gen.Next();
    peer::Message wire;
    EncodeMessage(m, &wire);
    peer::Message parsed;
    ASSERT_TRUE(parsed.ParseFromString(wire.SerializeAsString()));
    Result<raft::Message> back = DecodeMessage(parsed);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ASSERT_EQ(*back, m) << "message " << i << " type " << MessageTypeName(m.type);
  }
}

TEST(TransportCodec, EmptySnapshotKeepsPresence) {
  raft::Message m;
  m.type = raft::MessageType::kSnap;
  m.snapshot = raft::Snapshot{};
  peer::Message wire;
  EncodeMessage(m, &wire);
  Result<raft::Message> back = DecodeMessage(wire);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->snapshot.has_value());

  m.snapshot.reset();
  wire.Clear();
  EncodeMessage(m, &wire);
  back = DecodeMessage(wire);
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->snapshot.has_value());
}

TEST(TransportCodec, RefusesUnknownAndLocalTypes) {
  peer::Message wire;
  wire.set_type(peer::MESSAGE_TYPE_UNSPECIFIED);
  EXPECT_EQ(DecodeMessage(wire).status().message(), "unknown raft message type 0");
  wire.set_type(static_cast<peer::MessageType>(99));
  EXPECT_EQ(DecodeMessage(wire).status().message(), "unknown raft message type 99");

  wire.set_type(peer::MESSAGE_TYPE_APP);
  wire.add_entries()->set_type(static_cast<peer::EntryType>(7));
  EXPECT_EQ(DecodeMessage(wire).status().message(), "unknown raft entry type 7");
}

// Random bytes parsed as a message must decode or fail cleanly, never crash.
TEST(TransportCodec, GarbageNeverCrashes) {
  RandomMessages gen(7);
  int parsed_count = 0;
  for (int i = 0; i < 20000; ++i) {
    peer::Message wire;
    if (!wire.ParseFromString(gen.Bytes(64))) continue;
    ++parsed_count;
    Result<raft::Message> m = DecodeMessage(wire);
    if (m.ok()) {
      EXPECT_FALSE(raft::IsLocalMessage(m->type));
    }
  }
  EXPECT_GT(parsed_count, 0);
}

TEST(TransportCodec, MemberInfoRoundTrips) {
  Handler::MemberInfo m{MemberId(0x8e9e05c52164694d),
                        "infra1",
                        {"http://127.0.0.1:2380", "http://10.0.0.1:2380"},
                        {"http://127.0.0.1:2379"},
                        true};
  peer::MemberInfo wire;
  EncodeMemberInfo(m, &wire);
  EXPECT_EQ(DecodeMemberInfo(wire), m);
}

TEST(TransportCodec, ApproxBytesCountsPayload) {
  raft::Message m;
  m.type = raft::MessageType::kApp;
  m.entries.resize(3);
  for (raft::Entry& e : m.entries) e.data.assign(1000, 'x');
  peer::Message wire;
  EncodeMessage(m, &wire);
  EXPECT_GE(ApproxEncodedBytes(m), wire.ByteSizeLong());
  EXPECT_LE(ApproxEncodedBytes(m), wire.ByteSizeLong() + 512);
}

}  // namespace
}  // namespace dolmen::transport
