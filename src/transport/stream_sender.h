// The sending half of one peer's message stream: a bounded queue that Enqueue fills without
// blocking, drained into envelopes on a long-lived gRPC client stream.
//
// Writes start on the thread that enqueues (the member's driver) when the stream is idle, and
// continue from gRPC's write-completion callback while messages keep queueing: no thread
// hand-off sits between Raft producing a message and its bytes leaving (gRPC's callback API
// writes inline when the connection is free). A connection thread only opens streams and waits
// out failures; it sleeps while the stream is healthy.
//
// Two queues, one bound. Appends and proposals (which carry entries and can be large) go to
// the data queue; everything else (heartbeats, votes, responses) to the control queue. Every
// envelope takes all queued control messages first, then data up to max_batch_bytes, so a
// heartbeat waits behind at most the one envelope already being written. Order is kept within
// each queue; Raft needs no order between them (a heartbeat's commit is capped by the
// follower's match index, so it never overtakes the entries it refers to).
//
// Failure: a failed write drops everything queued (Raft retries), the peer is reported
// unreachable, and the connection thread waits a backoff (doubling from min_backoff to
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
  // Cancels the stream in flight and joins the connection thread. Idempotent.
  void Stop();

  // Thread-safe, never blocks on the network (it may write to an idle stream, which hands the
  // bytes to the kernel). Drops (and reports the peer unreachable) when the queue is full or
  // the peer is in backoff. One call's messages travel together when the stream is idle.
  void Enqueue(std::vector<raft::Message> messages);
  // The peer's URLs changed: the current stream is closed and the next one uses `targets`.
  void UpdateTargets(std::vector<std::string> targets);
  // The peer just opened a stream to us, so it is up: a backoff in progress ends now and the
  // next stream starts on a fresh connection (a restarted member hears from the leader at once
  // instead of after up to max_backoff).
  void PeerIsBack();

 private:
  class Call;  // one Peer.Stream call: a gRPC write reactor

  // The connection thread: opens a stream, waits for it to end (or for stop / retarget), then
  // reports and backs off.
  void Run();
  // Opens a stream to the current target, its first write an envelope without messages: the
  // peer learns at once that we are up (and ends its own reconnect backoff towards us, see
  // PeerIsBack), before we have anything to send. False if stopping or there is no target.
  bool Open();
  // Asks the current call to end (cancel; release our hold once no write is in flight).
  void CloseCall();
  // Waits for the current call's OnDone, deletes it and returns the peer's refusal, if the
  // stream ended with one; OK otherwise.
  Status AwaitCallDone();
  // Reports the failure, drops what is queued and waits out the backoff.
  void OnFailure(Status refusal);

  // Reactor callbacks (any thread, also inline inside a write started by Enqueue).
  void OnWriteDone(bool ok);
  void OnCallDone(const grpc::Status& status);

  // If the stream is up and idle and messages are queued: fills the call's envelope, marks a
  // write in flight and returns the call, whose write the caller starts after unlocking.
  // Messages too large for any envelope are dropped (*oversized set).
  Call* TakeWriteLocked(bool* oversized);
  // Releases the call's hold (so OnDone can run) once: returns true if the caller must now call
  // RemoveHold, outside mu_.
  bool ReleaseHoldLocked();
  void NewEnvelopeLocked();
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
  std::chrono::milliseconds backoff_;  // guarded by mu_
  // The open call, if any; created and deleted only by the connection thread, deleted only
  // after its OnDone. Its state below is guarded by mu_.
  std::unique_ptr<Call> call_;
  bool writing_ = false;        // a write is in flight (or about to start) on call_
  bool broken_ = false;         // call_ is ending: no new writes
  bool hold_released_ = false;  // our hold on call_ is gone
  bool call_done_ = false;      // call_'s OnDone ran; call_status_ is its status
  grpc::Status call_status_;

  // Connection thread only.
  std::shared_ptr<grpc::Channel> channel_;
  std::string channel_target_;
  std::unique_ptr<peer::Peer::Stub> stub_;
  std::thread thread_;
};

}  // namespace dolmen::transport
