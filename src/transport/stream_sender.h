// The sending half of one peer's message stream: a bounded queue that Send fills without
// blocking, and a thread that drains it into envelopes on a long-lived gRPC client stream.
//
// Two queues, one bound. Appends and proposals (which carry entries and can be large) go to
// the data queue; everything else (heartbeats, votes, responses) to the control queue. Every
// envelope takes all queued control messages first, then data up to max_batch_bytes, so a
// heartbeat waits behind at most the one batch already being written. Order is kept within each
// queue; Raft needs no order between them (a heartbeat's commit is capped by the follower's
// match index, so it never overtakes the entries it refers to).
//
// Failure: a failed stream drops the batch in flight and everything queued (Raft retries), the
// peer is reported unreachable, and the thread waits a backoff (doubling from min_backoff to
// max_backoff, reset by a successful write) before it opens a new stream, trying the peer's next
// URL. Messages sent during the backoff are dropped and reported, so the queue never holds stale
// traffic for a peer that is down.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dolmen/peer.grpc.pb.h"
#include "raft/message.h"
#include "transport/notifier.h"
#include "transport/transport.h"

namespace dolmen::transport {

class StreamSender {
 public:
  // `targets` are gRPC targets ("host:port"). With none (the peer has no URL we can dial) every
  // message is dropped and the peer reported unreachable.
  StreamSender(const Options& options, MemberId peer, std::vector<std::string> targets,
               Notifier* notifier);
  ~StreamSender();  // Stop()

  void Start();
  // Cancels the stream in flight and joins the thread. Idempotent.
  void Stop();

  // Thread-safe, never blocks on the network. Drops (and reports the peer unreachable) when the
  // queue is full or the peer is in backoff.
  void Enqueue(raft::Message message);
  // The peer's URLs changed: the current stream is closed and the next one uses `targets`.
  void UpdateTargets(std::vector<std::string> targets);
  // The peer just opened a stream to us, so it is up: a backoff in progress ends now and the
  // next stream starts on a fresh connection (a restarted member hears from the leader at once
  // instead of after up to max_backoff).
  void PeerIsBack();

 private:
  void Run();
  // Opens a stream to the current target; false if stopping or there is no target.
  bool Open();
  // Writes an envelope without messages first: the peer learns at once that we are up (and
  // ends its own reconnect backoff towards us, see PeerIsBack), before we have anything to
  // send. A restarted follower has nothing to say until the leader speaks. False if the write
  // failed (the stream is over).
  bool Greet();
  // Finishes the stream (cancelling it first if `cancel`) and returns the peer's refusal, if
  // the stream ended with one; OK otherwise.
  Status Close(bool cancel);
  // Encodes and writes one batch: usually one envelope; more if the encoded batch exceeds
  // max_envelope_bytes; a single message over that limit is dropped and reported. False if a
  // write failed (the stream is over).
  bool WriteBatch(std::vector<raft::Message> batch);
  bool Stopping();
  bool TakeRetarget();
  // Waits for messages (or stop / retarget) and takes one envelope's worth.
  std::vector<raft::Message> TakeBatch();
  // Reports the failure, drops what is queued and waits out the backoff.
  void OnFailure(Status refusal);
  void DropQueuedLocked();

  const Options options_;
  const MemberId peer_;
  Notifier* const notifier_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<raft::Message> control_;  // guarded by mu_
  std::deque<raft::Message> data_;     // guarded by mu_
  std::vector<std::string> targets_;   // guarded by mu_
  size_t target_index_ = 0;            // guarded by mu_
  bool retarget_ = false;              // guarded by mu_: close the stream, reopen with targets_
  bool accepting_ = true;              // guarded by mu_: false during backoff
  bool peer_back_ = false;             // guarded by mu_: PeerIsBack during a backoff
  bool stopping_ = false;              // guarded by mu_
  grpc::ClientContext* context_ = nullptr;  // guarded by mu_: the open stream's, for Stop

  // Sender thread only.
  std::shared_ptr<grpc::Channel> channel_;
  std::string channel_target_;
  std::unique_ptr<grpc::ClientContext> owned_context_;
  std::unique_ptr<grpc::ClientWriter<peer::Envelope>> writer_;
  peer::StreamAck ack_;
  std::chrono::milliseconds backoff_;
  std::thread thread_;
};

}  // namespace dolmen::transport
