// Runtime reconfiguration (etcd's Cluster service): MemberAdd, MemberRemove, MemberUpdate,
// MemberPromote. Changes to who votes go through Raft conf-change entries, one member at a
// time; a URL change is an ordinary log entry. The checks and their messages are etcd's.
#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <set>

#include "log/log.h"
#include "raft/conf_change.h"
#include "server/conf_change_rules.h"
#include "server/member_id.h"
#include "server/server.h"

namespace dolmen::server {
namespace {

Status MemberNotFound() { return {Code::kNotFound, "member not found"}; }
Status NotEnoughStarted() {
  return {Code::kFailedPrecondition, "re-configuration failed due to not enough started members"};
}

// etcd's check of a member's peer URLs (types.NewURLs): a known scheme, host:port, no path. For
// unix and unixs the socket is the file "host:port" in the working directory, as etcd has it.
bool ValidPeerUrl(const std::string& u) {
  size_t sep = u.find("://");
  if (sep == std::string::npos) return false;
  std::string scheme = u.substr(0, sep);
  std::string rest = u.substr(sep + 3);
  return (scheme == "http" || scheme == "https" || scheme == "unix" || scheme == "unixs") &&
         rest.find(':') != std::string::npos && rest.find('/') == std::string::npos;
}

// Every refused membership request is logged once, with its reason, by the member that was asked
// (a promotion forwarded to the leader is logged where the client asked).
template <typename Response>
Callback<Response> LogRefusal(const char* request, uint64_t member_id, Callback<Response> done) {
  return [request, member_id, done = std::move(done)](Result<Response> result) {
    if (!result.ok()) {
      log::Warn("refused a membership change", {{"request", request},
                                                {"member-id", log::Hex(member_id)},
                                                {"error", result.status().ToString()}});
    }
    done(std::move(result));
  };
}

void FillMember(const internal::Member& m, etcdserverpb::Member* out) {
  out->set_id(m.id());
  out->set_name(m.name());
  for (const auto& u : m.peer_urls()) out->add_peerurls(u);
  for (const auto& u : m.client_urls()) out->add_clienturls(u);
  out->set_islearner(m.is_learner());
}

template <typename Response>
void FillMembers(const Membership& membership, Response* r) {
  for (const auto& m : membership.List()) FillMember(m, r->add_members());
}

}  // namespace

// etcd's strict reconfiguration rule: after the change, the members that have started must
// still form a quorum of the voters.
Status Server::CheckQuorumAfter(int voter_delta, MemberId excluded) const {
  if (!config_.strict_reconfig_check) return OkStatus();
  size_t voters = 0, started = 0;
  for (const auto& m : membership_->List()) {
    if (m.is_learner() || MemberId(m.id()) == excluded) continue;
    ++voters;
    if (!m.name().empty()) ++started;
  }
  size_t after = voters + (voter_delta > 0 ? 1 : 0);
  // etcd lets a lone started member take a second one (how a cluster is restored from one
  // member's backup).
  if (voter_delta > 0 && started == 1 && after == 2) return OkStatus();
  if (started < after / 2 + 1) return NotEnoughStarted();
  return OkStatus();
}

void Server::MemberAdd(const etcdserverpb::MemberAddRequest& r,
                       Callback<etcdserverpb::MemberAddResponse> done) {
  done = LogRefusal("MemberAdd", 0, std::move(done));
  if (r.peerurls().empty())
    return done(Status(Code::kInvalidArgument, "given member URLs are invalid"));
  for (const auto& u : r.peerurls()) {
    if (!ValidPeerUrl(u))
      return done(Status(Code::kInvalidArgument, "given member URLs are invalid"));
    // URL by URL: each is found valid before the next is looked at (which of the two
    // refusals a request gets is unchanged).
    if (Status s = CheckPeerUrlsFree(*membership_, {u}); !s.ok()) return done(s);
  }
  if (r.islearner()) {
    const size_t max_learners = static_cast<size_t>(std::max(config_.max_learners, 1));
    if (Status s = CheckRoomForALearner(*membership_, max_learners); !s.ok()) return done(s);
  } else if (Status s = CheckQuorumAfter(+1, MemberId()); !s.ok()) {
    return done(s);
  }
  // etcd names an added member by its URLs and the time it was added.
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::vector<std::string> urls(r.peerurls().begin(), r.peerurls().end());
  internal::Member member;
  member.set_id(ComputeMemberId(urls, std::to_string(now)).value());
  for (const auto& u : urls) member.add_peer_urls(u);
  member.set_is_learner(r.islearner());
  raft::ConfChange cc;
  cc.type = r.islearner() ? raft::ConfChangeType::kAddLearner : raft::ConfChangeType::kAddNode;
  cc.node_id = MemberId(member.id());
  cc.context = member.SerializeAsString();
  driver_->ProposeConfChange(cc, [this, member, done](Status s) {
    if (!s.ok()) return done(s);
    etcdserverpb::MemberAddResponse out;
    FillHeader(out.mutable_header());
    FillMember(member, out.mutable_member());
    FillMembers(*membership_, &out);
    done(std::move(out));
  });
}

void Server::MemberRemove(const etcdserverpb::MemberRemoveRequest& r,
                          Callback<etcdserverpb::MemberRemoveResponse> done) {
  done = LogRefusal("MemberRemove", r.id(), std::move(done));
  MemberId id(r.id());
  auto member = membership_->Get(id);
  if (!member) return done(MemberNotFound());
  if (!member->is_learner()) {
    if (Status s = CheckQuorumAfter(0, id); !s.ok()) return done(s);
  }
  raft::ConfChange cc;
  cc.type = raft::ConfChangeType::kRemoveNode;
  cc.node_id = id;
  driver_->ProposeConfChange(cc, [this, done](Status s) {
    if (!s.ok()) return done(s);
    etcdserverpb::MemberRemoveResponse out;
    FillHeader(out.mutable_header());
    FillMembers(*membership_, &out);
    done(std::move(out));
  });
}

void Server::MemberUpdate(const etcdserverpb::MemberUpdateRequest& r,
                          Callback<etcdserverpb::MemberUpdateResponse> done) {
  done = LogRefusal("MemberUpdate", r.id(), std::move(done));
  if (!membership_->Get(MemberId(r.id()))) return done(MemberNotFound());
  for (const auto& u : r.peerurls()) {
    if (!ValidPeerUrl(u))
      return done(Status(Code::kInvalidArgument, "given member URLs are invalid"));
  }
  internal::InternalRequest request;
  auto* update = request.mutable_member_update();
  update->set_id(r.id());
  *update->mutable_peer_urls() = r.peerurls();
  Propose(std::move(request), [this, done](ApplyResult result) {
    if (!result.status.ok()) return done(result.status);
    etcdserverpb::MemberUpdateResponse out;
    FillHeader(out.mutable_header());
    FillMembers(*membership_, &out);
    done(std::move(out));
  });
}

void Server::MemberPromote(const etcdserverpb::MemberPromoteRequest& r,
                           Callback<etcdserverpb::MemberPromoteResponse> done) {
  done = LogRefusal("MemberPromote", r.id(), std::move(done));
  // etcd's PromoteMember: try here; only the leader knows whether the learner caught up, so
  // "not leader" sends it to the leader, until a final answer or the request timeout.
  MemberPromoteHere(r, [this, r, done](Result<etcdserverpb::MemberPromoteResponse> here) {
    if (here.ok() || here.status().code() != Code::kNotLeader) return done(std::move(here));
    auto members = std::make_shared<std::vector<internal::Member>>();
    ForwardToLeader(
        [this, r, members](MemberId leader, Deadline deadline) -> Status {
          if (leader != member_id_) {
            auto answer = leader_client_->MemberPromote(leader, MemberId(r.id()), deadline);
            if (answer.ok()) *members = std::move(answer).value();
            return answer.status();
          }
          // Became the leader meanwhile: decide here, waiting for the driver's answer.
          auto promise = std::make_shared<std::promise<Status>>();
          std::future<Status> answer = promise->get_future();
          MemberPromoteHere(r, [promise](Result<etcdserverpb::MemberPromoteResponse> result) {
            promise->set_value(result.status());
          });
          if (answer.wait_until(deadline) != std::future_status::ready) {
            return Status(Code::kTimeout, "request timed out");
          }
          Status s = answer.get();
          if (s.ok()) *members = membership_->List();
          return s;
        },
        // etcd stops at "learner not ready", "member not found", "not a learner".
        [](const Status& s) {
          return s.code() == Code::kFailedPrecondition || s.code() == Code::kNotFound;
        },
        [this, members, done](Status s) {
          if (!s.ok()) return done(s);
          etcdserverpb::MemberPromoteResponse out;
          FillHeader(out.mutable_header());
          for (const auto& m : *members) FillMember(m, out.add_members());
          done(std::move(out));
        });
  });
}

void Server::MemberPromoteHere(const etcdserverpb::MemberPromoteRequest& r,
                               Callback<etcdserverpb::MemberPromoteResponse> done) {
  MemberId id(r.id());
  auto member = membership_->Get(id);
  if (!member) return done(MemberNotFound());
  if (!member->is_learner()) {
    return done(Status(Code::kFailedPrecondition, "can only promote a learner member"));
  }
  driver_->CheckLearnerReady(id, [this, id, member, done](Status ready) {
    if (!ready.ok()) return done(ready);
    raft::ConfChange cc;
    cc.type = raft::ConfChangeType::kAddNode;
    cc.node_id = id;
    internal::Member promoted = *member;
    promoted.set_is_learner(false);
    cc.context = promoted.SerializeAsString();
    driver_->ProposeConfChange(cc, [this, done](Status s) {
      if (!s.ok()) return done(s);
      etcdserverpb::MemberPromoteResponse out;
      FillHeader(out.mutable_header());
      FillMembers(*membership_, &out);
      done(std::move(out));
    });
  });
}

}  // namespace dolmen::server
