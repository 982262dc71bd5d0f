// Connects a member's driver to the peer transport, both ways: Raft messages out through the
// transport, messages in from it to the driver; membership changes become peer-list changes;
// a peer's refusal (another cluster, or we were removed) reaches the operator and, for a
// removal, stops the member as etcd does.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/server.h"
#include "transport/transport.h"

namespace dolmen::embed {

class PeerLink final : public server::PeerSender,
                       public server::LeaderClient,
                       public server::PeerHasher,
                       public transport::Handler {
 public:
  // `on_removed` is called (from a transport thread) when a peer says we were removed.
  PeerLink(server::Server* server, std::function<void(const Status&)> on_removed)
      : server_(server), on_removed_(std::move(on_removed)) {}

  // Creates and starts the transport on `options.listen_urls`, and connects it to the server.
  Status Start(transport::Options options);
  void Stop();

  // server::PeerSender (driver thread).
  void Send(std::vector<raft::Message> messages) override;
  void SendSnapshot(raft::Message message) override;
  void SetPeers(const std::vector<internal::Member>& members) override;

  // transport::Handler (transport threads).
  void OnMessages(std::vector<raft::Message> messages) override;
  void OnSnapshot(raft::Message message, std::string db_path) override;
  std::vector<MemberInfo> Members() override;
  bool IsRemoved(MemberId from) override;
  // Forwarded requests this member answers as the leader.
  Result<int64_t> ServeLeaseRenew(int64_t lease_id, Deadline deadline) override;
  Result<std::vector<Result<int64_t>>> ServeLeaseRenewBatch(const std::vector<int64_t>& lease_ids,
                                                            Deadline deadline) override;
  Result<LeaseTtl> ServeLeaseTimeToLive(int64_t lease_id, bool keys, Deadline deadline) override;
  Result<std::vector<MemberInfo>> ServePromoteMember(MemberId learner, Deadline deadline) override;
  // A peer's corruption check asks for our hash.
  Result<HashKv> ServeHashKv(int64_t revision) override;

  // server::PeerHasher (the corruption checks): a peer's hash.
  Result<server::KvHash> PeerHashKv(MemberId peer, Revision revision,
                                    server::Deadline deadline) override;

  // server::LeaderClient (the server's forwarding threads): requests sent to the leader.
  Result<int64_t> LeaseRenew(MemberId leader, LeaseId id, server::Deadline deadline) override;
  // One peer request; a leader of an earlier version that lacks it is asked lease by lease.
  Result<std::vector<Result<int64_t>>> LeaseRenewBatch(MemberId leader,
                                                       const std::vector<LeaseId>& ids,
                                                       server::Deadline deadline) override;
  Result<etcdserverpb::LeaseTimeToLiveResponse> LeaseTimeToLive(
      MemberId leader, const etcdserverpb::LeaseTimeToLiveRequest& r,
      server::Deadline deadline) override;
  Result<std::vector<internal::Member>> MemberPromote(MemberId leader, MemberId learner,
                                                      server::Deadline deadline) override;

 private:
  // Writes the backend image for each queued kSnap message off the driver thread (a copy of a
  // large backend takes a while; Raft must keep ticking), then hands it to the transport.
  void RunImageWriter();
  void SnapshotSent(MemberId to, bool ok);

  server::Server* server_;
  std::function<void(const Status&)> on_removed_;
  std::unique_ptr<transport::Transport> transport_;
  std::vector<MemberId> known_;  // peers handed to the transport; driver thread
  // The last refusal logged per peer, so a peer that keeps refusing (this member retries with
  // backoff) is logged once per reason. The transport's notifier thread only.
  std::map<MemberId, std::string> logged_refusals_;

  std::mutex image_mu_;
  std::condition_variable image_cv_;
  std::deque<raft::Message> images_to_write_;         // guarded by image_mu_
  std::map<MemberId, std::string> images_in_flight_;  // guarded by image_mu_
  bool image_writer_stopping_ = false;                // guarded by image_mu_
  std::thread image_writer_;
};

}  // namespace dolmen::embed
