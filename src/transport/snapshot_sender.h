// Sends one peer's snapshots: the kSnap message and the backend file it refers to, on a stream
// and a connection of their own (see channel.h) so that a transfer of gigabytes never delays
// that peer's heartbeats. One snapshot at a time per peer: Raft sends no other while one is
// pending, so a second request while busy fails at once.
//
// Stream: begin {header, message, size_bytes}, data chunks of snapshot_chunk_bytes, end
// {crc32c}. The receiver checks the size and the checksum before it hands the file over.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "raft/message.h"
#include "transport/notifier.h"
#include "transport/peer_tls.h"
#include "transport/transport.h"

namespace dolmen::transport {

class SnapshotSender {
 public:
  SnapshotSender(const Options& options, MemberId peer, std::vector<DialTarget> targets,
                 Notifier* notifier, std::shared_ptr<const PeerTls> tls);
  ~SnapshotSender();  // Stop()

  void Start();
  // Cancels a transfer in flight (reported as failed) and joins the thread. Idempotent.
  void Stop();

  // Thread-safe, returns at once; the outcome arrives through on_snapshot_status.
  void Send(raft::Message message, std::string db_path);
  void UpdateTargets(std::vector<DialTarget> targets);

 private:
  struct Job {
    raft::Message message;
    std::string db_path;
  };

  void Run();
  // Streams one job; OK, or why not (a refusal is reported separately through the notifier).
  Status Transfer(const Job& job);

  const Options options_;
  const MemberId peer_;
  Notifier* const notifier_;
  const std::shared_ptr<const PeerTls> tls_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Job> job_;                  // guarded by mu_: waiting or in flight
  bool busy_ = false;                       // guarded by mu_: a job is waiting or in flight
  std::vector<DialTarget> targets_;         // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  grpc::ClientContext* context_ = nullptr;  // guarded by mu_: the transfer's, for Stop
  std::thread thread_;
};

}  // namespace dolmen::transport
