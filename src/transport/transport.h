// The peer transport: carries Raft messages and snapshot files between the members of one
// cluster. The server owns one Transport; the Raft owner thread hands it outgoing messages and
// never waits on the network. Received messages arrive through Handler on transport threads.
// See docs/transport.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "raft/message.h"
#include "tls/options.h"

namespace dolmen::transport {

// The most leases one forwarded renewal batch may carry (peer.proto, LeaseRenewBatchRequest).
inline constexpr size_t kMaxLeaseRenewBatch = 4096;

struct Peer {
  MemberId id;
  std::vector<std::string> urls;  // peer URLs, e.g. "http://127.0.0.1:2380"; the first is tried
                                  // first, the others after a failure
};

// Implemented by the server. Every method is called from transport threads, possibly from
// several at once (one per sending peer), and must not block for long: a blocked handler stops
// the stream it was called from, and so the sender's queue fills and drops.
class Handler {
 public:
  virtual ~Handler() = default;

  // One received envelope: messages from one peer, in the order that peer queued them (per
  // class, see docs/transport.md). Calls for different peers run concurrently; so, briefly, may
  // two for the same peer while a broken stream is replaced by a new one.
  virtual void OnMessages(std::vector<raft::Message> messages) = 0;

  // A kSnap message whose state-machine image (the backend file) has been fully received and
  // checksummed into `db_path`, a file under Options::snapshot_dir that the server now owns
  // (installs, moves or deletes). The server installs it, then steps the message.
  virtual void OnSnapshot(raft::Message message, std::string db_path) = 0;

  struct MemberInfo {
    MemberId id;
    std::string name;
    std::vector<std::string> peer_urls;
    std::vector<std::string> client_urls;
    bool is_learner = false;

    bool operator==(const MemberInfo&) const = default;
  };
  // Cluster membership as this member knows it, for a joining member (FetchClusterInfo).
  virtual std::vector<MemberInfo> Members() = 0;

  // Whether `from` has been removed from the cluster: its messages are refused, and it is told
  // so (its on_refused sees Code::kRemoved).
  virtual bool IsRemoved(MemberId from) = 0;

  // Requests a follower forwards to the leader (docs/transport.md, "Forwarding to the
  // leader"), answered here as the leader. Called on a transport thread once the sender was
  // admitted; each may block until answered, never past `deadline`. A member that does not
  // lead answers Code::kNotLeader, and the follower looks for the leader again. Other codes
  // that travel: kLeaseNotFound, kNotFound, kFailedPrecondition, kTimeout, kStopped (anything
  // else arrives as kInternal with its message).
  struct LeaseTtl {
    int64_t ttl_seconds = 0;  // remaining, whole seconds
    int64_t granted_ttl_seconds = 0;
    std::vector<std::string> keys;  // attached keys in byte order, if asked for

    bool operator==(const LeaseTtl&) const = default;
  };
  using Deadline = std::chrono::steady_clock::time_point;
  // Renews a lease; returns its TTL.
  virtual Result<int64_t> ServeLeaseRenew(int64_t lease_id, Deadline deadline);
  // Renews each lease of a batch (at most kMaxLeaseRenewBatch): the batch fails as a whole
  // (e.g. kNotLeader: none renewed), or each lease has its TTL or its own failure
  // (kLeaseNotFound), in order.
  virtual Result<std::vector<Result<int64_t>>> ServeLeaseRenewBatch(
      const std::vector<int64_t>& lease_ids, Deadline deadline);
  virtual Result<LeaseTtl> ServeLeaseTimeToLive(int64_t lease_id, bool keys, Deadline deadline);
  // Promotes a learner; returns the membership after it.
  virtual Result<std::vector<MemberInfo>> ServePromoteMember(MemberId learner, Deadline deadline);

  // A peer's corruption check asks for this member's HashKV at `revision` (0: current),
  // answered by this member whether it leads or not (docs/corruption.md). Must not block for
  // long (it hashes the store). Codes: kCompacted, kFutureRevision.
  struct HashKv {
    MemberId member;  // who answered
    uint32_t hash = 0;
    int64_t compact_revision = 0;
    int64_t hash_revision = 0;
    int64_t revision = 0;  // the member's current revision

    bool operator==(const HashKv&) const = default;
  };
  virtual Result<HashKv> ServeHashKv(int64_t revision);
};

// TLS on https and unixs peer URLs (docs/tls.md). The same certificate serves the peer port
// and is presented when dialing peers, as etcd does.
struct TlsOptions {
  // --peer-cert-file, --peer-key-file, --peer-trusted-ca-file, --peer-client-cert-auth,
  // --peer-crl-file, --peer-cert-allowed-cn / --peer-cert-allowed-hostname, and the shared
  // --cipher-suites and --tls-min/max-version. No certificate: https listen URLs are refused.
  tls::Options files;
  // --peer-auto-tls: peers' certificates (self-signed like ours) are not verified when dialing.
  bool skip_verify = false;
  // etcd's check of a connecting peer's certificate SANs against its address;
  // --experimental-peer-skip-client-san-verification turns it off.
  bool check_client_san = true;
  // Runs before the files are looked at for a new connection, at most once an hour (auto-TLS
  // renews its certificate in place here). May be empty.
  std::function<void()> refresh;
};

struct Options {
  ClusterId cluster_id;
  MemberId self;
  std::vector<std::string> listen_urls;  // --listen-peer-urls: http, https, unix, unixs
  TlsOptions tls;
  std::string snapshot_dir;  // where received snapshot files go; must exist
  // Per peer, both send queues together. A full queue drops the message (Raft retries) and
  // reports the peer unreachable.
  size_t max_queued_messages_per_peer = 4096;
  // An envelope holds messages up to this many bytes (at least one message).
  size_t max_batch_bytes = 1 << 20;
  // The largest envelope a receiver accepts, and so the largest single message (a message
  // bigger than this is dropped by the sender and the peer reported unreachable).
  size_t max_envelope_bytes = 64 << 20;
  // Snapshot files travel in chunks of this size.
  size_t snapshot_chunk_bytes = 1 << 20;
  // Reconnect backoff after a failed stream: doubles from min to max, reset by a success.
  std::chrono::milliseconds min_backoff{50};
  std::chrono::milliseconds max_backoff{1000};
};

class Transport {
 public:
  virtual ~Transport() = default;

  // Binds every listen URL and starts the peer service. Fails with a clear message if a URL is
  // malformed, its port is taken, or snapshot_dir is not a directory. Deletes partial snapshot
  // files (snap-*.db.part) a crash left in snapshot_dir. Call once.
  virtual Status Start() = 0;
  // Stops senders and the server; cancels streams in flight. Idempotent. After Stop returns no
  // Handler method or callback is running or will run. Must not be called from a Handler method
  // or a callback (it waits for them; a callback that does is stopped by a CHECK): hand it to
  // another thread.
  virtual void Stop() = 0;

  // Peers may be added before or after Start. URLs that cannot be dialled (malformed) are
  // skipped; a peer left without any is kept, and messages to it are
  // dropped and reported unreachable. Adding a known peer is a no-op (use UpdatePeer).
  virtual void AddPeer(const Peer& p) = 0;
  virtual void RemovePeer(MemberId id) = 0;
  virtual void UpdatePeer(const Peer& p) = 0;

  // Queues messages for their `to` peers and returns at once; never blocks on the network.
  // Messages to an unknown peer are dropped. kSnap messages must go through SendSnapshot.
  virtual void Send(std::vector<raft::Message> messages) = 0;

  // Streams `db_path` (a consistent copy of the backend, left in place) with the kSnap message on
  // a separate stream and connection, so a large snapshot never stalls heartbeats. Reports the
  // outcome through on_snapshot_status. One snapshot per peer at a time: a second one while the
  // first is in flight fails at once (Raft sends none while one is pending).
  virtual void SendSnapshot(raft::Message message, std::string db_path) = 0;

  // Forwarding to the leader: one request to peer `to`, tried on each of its URLs in turn until
  // one answers, never past `deadline`. Blocks the caller (the server runs these on its own
  // forwarding threads). Fails with kUnavailable when no URL answered (or `to` is not a peer),
  // kDeadlineExceeded when the deadline passed, or the code the peer answered with (see
  // Handler::ServeLeaseRenew).
  virtual Result<int64_t> ForwardLeaseRenew(MemberId to, int64_t lease_id,
                                            Handler::Deadline deadline) = 0;
  // Many renewals in one request (Handler::ServeLeaseRenewBatch), at most kMaxLeaseRenewBatch.
  // kUnimplemented from transports without it, and from a peer that does not serve it (a
  // member of an earlier version): the caller then renews one lease at a time.
  virtual Result<std::vector<Result<int64_t>>> ForwardLeaseRenewBatch(
      MemberId to, const std::vector<int64_t>& lease_ids, Handler::Deadline deadline);
  virtual Result<Handler::LeaseTtl> ForwardLeaseTimeToLive(MemberId to, int64_t lease_id, bool keys,
                                                           Handler::Deadline deadline) = 0;
  virtual Result<std::vector<Handler::MemberInfo>> ForwardPromoteMember(
      MemberId to, MemberId learner, Handler::Deadline deadline) = 0;
  // Asks peer `to` for its HashKV at `revision` (Handler::ServeHashKv), like the forwarded
  // requests: each URL in turn, never past `deadline`, the same failure codes plus
  // kCompacted and kFutureRevision. Transports without it answer kUnimplemented.
  virtual Result<Handler::HashKv> PeerHashKv(MemberId to, int64_t revision,
                                             Handler::Deadline deadline);

  // Set before Start. All three are called from one transport notifier thread, one at a time,
  // never from inside Send or SendSnapshot.
  // A peer could not be reached (a failed stream, or messages dropped). At most one call per
  // peer is pending at a time.
  std::function<void(MemberId)> on_unreachable;
  // A snapshot send finished.
  std::function<void(MemberId, bool ok)> on_snapshot_status;
  // A peer refused us: Code::kFailedPrecondition if we are in another cluster (or talked to
  // the wrong member), Code::kRemoved if we have been removed from the cluster. The message is
  // the peer's, e.g. "member 5 has been removed from the cluster".
  std::function<void(MemberId peer, Status why)> on_refused;
};

Result<std::unique_ptr<Transport>> NewGrpcTransport(const Options& options, Handler* handler);

// For a member joining with --initial-cluster-state existing: asks the peer URLs in turn for the
// cluster's id and members. `timeout` bounds each attempt.
struct ClusterInfo {
  ClusterId cluster_id;
  std::vector<Handler::MemberInfo> members;
};
// https peer URLs are dialed with `tls`.
Result<ClusterInfo> FetchClusterInfo(const std::vector<std::string>& peer_urls,
                                     std::chrono::milliseconds timeout, const TlsOptions& tls = {});

}  // namespace dolmen::transport
