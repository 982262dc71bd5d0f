#include "transport/codec.h"

#include <string>

namespace dolmen::transport {
namespace {

// Both directions in one table so they cannot drift apart.
struct TypePair {
  raft::MessageType raft;
  peer::MessageType wire;
};
constexpr TypePair kTypes[] = {
    {raft::MessageType::kProp, peer::MESSAGE_TYPE_PROP},
    {raft::MessageType::kApp, peer::MESSAGE_TYPE_APP},
    {raft::MessageType::kAppResp, peer::MESSAGE_TYPE_APP_RESP},
    {raft::MessageType::kVote, peer::MESSAGE_TYPE_VOTE},
    {raft::MessageType::kVoteResp, peer::MESSAGE_TYPE_VOTE_RESP},
    {raft::MessageType::kPreVote, peer::MESSAGE_TYPE_PRE_VOTE},
    {raft::MessageType::kPreVoteResp, peer::MESSAGE_TYPE_PRE_VOTE_RESP},
    {raft::MessageType::kSnap, peer::MESSAGE_TYPE_SNAP},
    {raft::MessageType::kHeartbeat, peer::MESSAGE_TYPE_HEARTBEAT},
    {raft::MessageType::kHeartbeatResp, peer::MESSAGE_TYPE_HEARTBEAT_RESP},
    {raft::MessageType::kTransferLeader, peer::MESSAGE_TYPE_TRANSFER_LEADER},
    {raft::MessageType::kTimeoutNow, peer::MESSAGE_TYPE_TIMEOUT_NOW},
    {raft::MessageType::kReadIndex, peer::MESSAGE_TYPE_READ_INDEX},
    {raft::MessageType::kReadIndexResp, peer::MESSAGE_TYPE_READ_INDEX_RESP},
};

peer::MessageType ToWire(raft::MessageType type) {
  for (const TypePair& p : kTypes) {
    if (p.raft == type) return p.wire;
  }
  // Local messages never reach the transport: Transport::Send checks that first.
  CHECK(false) << "local raft message type " << MessageTypeName(type) << " cannot be encoded";
  return peer::MESSAGE_TYPE_UNSPECIFIED;
}

Result<raft::MessageType> FromWire(int wire) {
  for (const TypePair& p : kTypes) {
    if (static_cast<int>(p.wire) == wire) return p.raft;
  }
  return InvalidArgument("unknown raft message type " + std::to_string(wire));
}

void EncodeIds(const std::vector<MemberId>& ids, google::protobuf::RepeatedField<uint64_t>* out) {
  out->Reserve(static_cast<int>(ids.size()));
  for (MemberId id : ids) out->Add(id.value());
}

std::vector<MemberId> DecodeIds(const google::protobuf::RepeatedField<uint64_t>& in) {
  std::vector<MemberId> ids;
  ids.reserve(in.size());
  for (uint64_t v : in) ids.emplace_back(v);
  return ids;
}

void EncodeSnapshot(const raft::Snapshot& s, peer::Snapshot* out) {
  peer::SnapshotMetadata* m = out->mutable_metadata();
  m->set_index(s.metadata.index.value());
  m->set_term(s.metadata.term.value());
  const raft::ConfState& cs = s.metadata.conf_state;
  peer::ConfState* wcs = m->mutable_conf_state();
  EncodeIds(cs.voters, wcs->mutable_voters());
  EncodeIds(cs.learners, wcs->mutable_learners());
  EncodeIds(cs.voters_outgoing, wcs->mutable_voters_outgoing());
  EncodeIds(cs.learners_next, wcs->mutable_learners_next());
  wcs->set_auto_leave(cs.auto_leave);
  out->set_data(s.data);
}

raft::Snapshot DecodeSnapshot(const peer::Snapshot& in) {
  raft::Snapshot s;
  const peer::SnapshotMetadata& m = in.metadata();
  s.metadata.index = Index(m.index());
  s.metadata.term = Term(m.term());
  const peer::ConfState& wcs = m.conf_state();
  s.metadata.conf_state.voters = DecodeIds(wcs.voters());
  s.metadata.conf_state.learners = DecodeIds(wcs.learners());
  s.metadata.conf_state.voters_outgoing = DecodeIds(wcs.voters_outgoing());
  s.metadata.conf_state.learners_next = DecodeIds(wcs.learners_next());
  s.metadata.conf_state.auto_leave = wcs.auto_leave();
  s.data = in.data();
  return s;
}

}  // namespace

void EncodeMessage(const raft::Message& m, peer::Message* out) {
  out->set_type(ToWire(m.type));
  out->set_to(m.to.value());
  out->set_from(m.from.value());
  out->set_term(m.term.value());
  out->set_log_term(m.log_term.value());
  out->set_index(m.index.value());
  out->mutable_entries()->Reserve(static_cast<int>(m.entries.size()));
  for (const raft::Entry& e : m.entries) {
    peer::Entry* we = out->add_entries();
    we->set_term(e.term.value());
    we->set_index(e.index.value());
    we->set_type(e.type == raft::EntryType::kConfChange ? peer::ENTRY_TYPE_CONF_CHANGE
                                                        : peer::ENTRY_TYPE_NORMAL);
    we->set_data(e.data);
  }
  out->set_commit(m.commit.value());
  if (m.snapshot.has_value()) EncodeSnapshot(*m.snapshot, out->mutable_snapshot());
  out->set_reject(m.reject);
  out->set_reject_hint(m.reject_hint.value());
  out->set_context(m.context);
  out->set_transferee(m.transferee.value());
}

Result<raft::Message> DecodeMessage(const peer::Message& in) {
  raft::Message m;
  ASSIGN_OR_RETURN(m.type, FromWire(in.type()));
  m.to = MemberId(in.to());
  m.from = MemberId(in.from());
  m.term = Term(in.term());
  m.log_term = Term(in.log_term());
  m.index = Index(in.index());
  m.entries.reserve(in.entries_size());
  for (const peer::Entry& we : in.entries()) {
    raft::Entry e;
    e.term = Term(we.term());
    e.index = Index(we.index());
    switch (we.type()) {
      case peer::ENTRY_TYPE_NORMAL:
        e.type = raft::EntryType::kNormal;
        break;
      case peer::ENTRY_TYPE_CONF_CHANGE:
        e.type = raft::EntryType::kConfChange;
        break;
      default:
        return InvalidArgument("unknown raft entry type " + std::to_string(we.type()));
    }
    e.data = we.data();
    m.entries.push_back(std::move(e));
  }
  m.commit = Index(in.commit());
  if (in.has_snapshot()) m.snapshot = DecodeSnapshot(in.snapshot());
  m.reject = in.reject();
  m.reject_hint = Index(in.reject_hint());
  m.context = in.context();
  m.transferee = MemberId(in.transferee());
  return m;
}

void EncodeMemberInfo(const Handler::MemberInfo& member, peer::MemberInfo* out) {
  out->set_id(member.id.value());
  out->set_name(member.name);
  for (const std::string& u : member.peer_urls) out->add_peer_urls(u);
  for (const std::string& u : member.client_urls) out->add_client_urls(u);
  out->set_is_learner(member.is_learner);
}

Handler::MemberInfo DecodeMemberInfo(const peer::MemberInfo& in) {
  Handler::MemberInfo member;
  member.id = MemberId(in.id());
  member.name = in.name();
  member.peer_urls.assign(in.peer_urls().begin(), in.peer_urls().end());
  member.client_urls.assign(in.client_urls().begin(), in.client_urls().end());
  member.is_learner = in.is_learner();
  return member;
}

size_t ApproxEncodedBytes(const raft::Message& m) {
  // ~11 bytes per varint field and tag; exactness does not matter, only that big payloads count.
  constexpr size_t kFixed = 128;
  constexpr size_t kPerEntry = 32;
  size_t n = kFixed + m.context.size();
  for (const raft::Entry& e : m.entries) n += kPerEntry + e.data.size();
  if (m.snapshot.has_value()) {
    const raft::ConfState& cs = m.snapshot->metadata.conf_state;
    n += kFixed + m.snapshot->data.size() +
         11 * (cs.voters.size() + cs.learners.size() + cs.voters_outgoing.size() +
               cs.learners_next.size());
  }
  return n;
}

}  // namespace dolmen::transport
