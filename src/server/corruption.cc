// The member's side of corruption detection: the initial check before serving, the leader's
// monitor, the hash a peer asks for, and the CORRUPT alarm. The decisions themselves are in
// corruption_check.cc. See docs/corruption.md.
#include <cstdio>
#include <future>
#include <memory>

#include "log/log.h"
#include "server/server.h"

namespace dolmen::server {
namespace {

// The findings of corruption_check.cc, which words them (and its tests pin them down): a pass
// is news, anything else wants an operator's eye.
void LogCheck(const std::string& line) {
  if (line.rfind("initial corruption checking passed", 0) == 0) {
    log::Info(line);
  } else {
    log::Warn(line);
  }
}

KvHash ToKvHash(const mvcc::Store::HashKvResult& h, Revision current) {
  return KvHash{h.hash, h.compact_revision, h.hash_revision, current};
}

}  // namespace

Result<KvHash> Server::ServeHashKv(Revision revision) const {
  // A revision this member compacted at: the hash it recorded then, as etcd 3.6 answers
  // (the store itself can no longer hash a compacted revision).
  if (revision.value() > 0 && compaction_hashes_) {
    if (auto recorded = compaction_hashes_->At(revision)) {
      recorded->revision = store_->CurrentRevision();
      return *recorded;
    }
  }
  // The current revision first: a hash is never of a revision past it.
  Revision current = store_->CurrentRevision();
  ASSIGN_OR_RETURN(mvcc::Store::HashKvResult h, store_->HashKv(revision));
  return ToKvHash(h, std::max(current, h.hash_revision));
}

Status Server::CheckInitialHashKv() {
  if (!config_.initial_corrupt_check) return OkStatus();
  // etcd checks only a member that had data: a new one has nothing to compare yet.
  if (!restarted_) return OkStatus();
  if (peer_hasher_ == nullptr) return Internal("initial corruption check without a peer hasher");
  const std::string me = MemberHex(member_id_);
  log::Info("starting initial corruption check",
            {{"local-member-id", me}, {"timeout", config_.driver.request_timeout}});
  auto local = store_->HashKv(Revision(0));
  if (!local.ok()) {
    return Status(local.status().code(),
                  me + " failed to fetch hash (" + local.status().message() + ")");
  }
  std::vector<MemberId> peers;
  for (const internal::Member& m : membership_->List()) {
    if (MemberId(m.id()) != member_id_) peers.push_back(MemberId(m.id()));
  }
  KvHash mine = ToKvHash(*local, local->hash_revision);
  std::vector<PeerHash> answers =
      AskPeers(peer_hasher_, peers, mine.hash_revision, config_.driver.request_timeout);
  return InitialCheckVerdict(member_id_, mine, answers, LogCheck);
}

void Server::StartCorruptionMonitor() {
  if (peer_hasher_ == nullptr) return;
  CorruptionMonitorOptions options;
  options.corrupt_check_interval = config_.corrupt_check_interval;
  if (config_.compact_hash_check_enabled) {
    options.compact_hash_check_interval = config_.compact_hash_check_interval;
  }
  options.request_timeout = config_.driver.request_timeout;
  if (options.corrupt_check_interval.count() <= 0 &&
      options.compact_hash_check_interval.count() <= 0) {
    return;
  }
  CorruptionMonitor::Hooks hooks;
  hooks.self = member_id_;
  hooks.is_leader = [this] { return IsLeader(); };
  hooks.peers = [this] {
    std::vector<MemberId> out;
    for (const internal::Member& m : membership_->List()) {
      if (MemberId(m.id()) != member_id_) out.push_back(MemberId(m.id()));
    }
    return out;
  };
  hooks.hasher = peer_hasher_;
  hooks.local_hash = [this]() -> Result<KvHash> {
    Revision current = store_->CurrentRevision();
    ASSIGN_OR_RETURN(mvcc::Store::HashKvResult h, store_->HashKv(Revision(0)));
    return ToKvHash(h, std::max(current, h.hash_revision));
  };
  hooks.read_barrier = [this](std::chrono::milliseconds timeout) -> Status {
    auto done = std::make_shared<std::promise<Status>>();
    std::future<Status> result = done->get_future();
    driver_->ReadIndex([done](Status s) { done->set_value(std::move(s)); });
    if (result.wait_for(timeout) != std::future_status::ready) {
      return Status(Code::kTimeout, "read barrier timed out");
    }
    return result.get();
  };
  hooks.compaction_hashes = compaction_hashes_.get();
  hooks.raise_alarm = [this](MemberId member) { RaiseCorruptAlarm(member); };
  hooks.log = LogCheck;
  corruption_monitor_ = std::make_unique<CorruptionMonitor>(options, std::move(hooks));
  corruption_monitor_->Start();
}

void Server::RaiseCorruptAlarm(MemberId member) {
  for (const auto& m : alarms_->Get(etcdserverpb::CORRUPT)) {
    if (m.memberid() == member.value()) return;  // already raised: nothing to propose
  }
  log::Warn("raising the CORRUPT alarm",
            {{"member-id", MemberHex(member)}, {"whole-cluster", member.value() == 0}});
  internal::InternalRequest request;
  auto* alarm = request.mutable_alarm();
  alarm->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
  alarm->set_memberid(member.value());
  alarm->set_alarm(etcdserverpb::CORRUPT);
  Propose(std::move(request), [member](ApplyResult result) {
    if (!result.status.ok()) {
      log::Error("failed to raise the CORRUPT alarm",
                 {{"member-id", MemberHex(member)}, {"error", result.status.ToString()}});
    }
  });
}

}  // namespace dolmen::server
