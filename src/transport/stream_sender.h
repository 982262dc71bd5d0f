// The sending half of one peer's message stream: a bounded queue that Enqueue fills without
// blocking, drained into envelopes on a long-lived TCP connection (stream_frame.h).
//
// Writes happen on the thread that enqueues (the member's driver): when nothing is pending,
// Enqueue encodes one envelope's worth and hands it to the kernel with a non-blocking send, so
// no thread hand-off sits between Raft producing a message and its bytes leaving. What the
// socket does not take at once waits in a buffer that the connection thread flushes when the
// socket is writable again (and then encodes what queued meanwhile). The connection thread
// also opens the connection, watches it for the receiver's refusal or close, and waits out
// failures; while the stream is healthy and keeping up it sleeps in poll.
//
// Two queues, one bound. Appends and proposals (which carry entries and can be large) go to
// the data queue; everything else (heartbeats, votes, responses) to the control queue. Every
// envelope takes all queued control messages first, then data up to max_batch_bytes, so a
// heartbeat waits behind at most the one envelope already being written. Order is kept within
// each queue; Raft needs no order between them (a heartbeat's commit is capped by the
// follower's match index, so it never overtakes the entries it refers to).
//
// Round trips: every kProbeInterval the connection thread adds an envelope with a probe (no
// messages) behind whatever is pending, and times the receiver's echo into
// etcd_network_peer_round_trip_time_seconds{To}. One probe is in flight at a time, so a
// receiver that never answers (one that predates probes) gets one per connection. Because the
// probe queues behind unsent bytes, a backed-up stream shows as a long round trip, which is
// what etcd's alert on the metric is after.
//
// Failure: a failed write or a closed connection drops everything queued (Raft retries), the
// peer is reported unreachable (and, if the receiver said why it closed, refused), and the
// connection thread waits a backoff (doubling from min_backoff to max_backoff, reset by a
// successful write) before it connects again, trying the peer's next URL. Messages sent during
// the backoff are dropped and reported, so the queue never holds stale traffic for a peer that
// is down.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "dolmen/peer.pb.h"
#include "metrics/metrics.h"
#include "raft/message.h"
#include "tls/connection.h"
#include "transport/notifier.h"
#include "transport/peer_tls.h"
#include "transport/transport.h"
#include "transport/url.h"

namespace dolmen::transport {

class StreamSender {
 public:
  // `targets` are the peer's URLs as dial targets; https ones are spoken over TLS with `tls`'s
  // client context. With none (the peer has no URL we can dial) every message is dropped and
  // the peer reported unreachable.
  StreamSender(const Options& options, MemberId peer, std::vector<DialTarget> targets,
               Notifier* notifier, std::shared_ptr<const PeerTls> tls);
  ~StreamSender();  // Stop()

  void Start();
  // Cancels the stream in flight and joins the connection thread. Idempotent.
  void Stop();

  // Thread-safe, never blocks on the network (it may write to an idle stream, which hands the
  // bytes to the kernel). Drops (and reports the peer unreachable) when the queue is full or
  // the peer is in backoff. One call's messages travel together when the stream is idle.
  void Enqueue(std::vector<raft::Message> messages);
  // The peer's URLs changed: the current stream is closed and the next one uses `targets`.
  void UpdateTargets(std::vector<DialTarget> targets);
  // The peer just opened a stream to us, so it is up: a backoff in progress ends now and the
  // next stream starts on a fresh connection (a restarted member hears from the leader at once
  // instead of after up to max_backoff).
  void PeerIsBack();

 private:
  // The connection thread: connects, serves the connection until it ends (or stop /
  // retarget), then reports and backs off.
  void Run();
  // Connects to the current target and queues the greeting: the magic, then an envelope
  // without messages, so the peer learns at once that we are up (and ends its own reconnect
  // backoff towards us, see PeerIsBack) before we have anything to send. -1 if stopping, if
  // there is no target, or the connection failed (*failure says why).
  int Connect(Status* failure);
  // Watches the connection: flushes pending bytes when writable, reads the receiver's
  // StreamClose or end of stream. Returns the refusal the receiver gave, if any.
  Status Serve(int fd);
  // Queues a probe envelope if none is in flight (connection thread).
  void SendProbe();
  // Times every complete pong frame at the front of *in and removes it; stops at anything
  // else (a StreamClose that ends the stream stays for RefusalIn).
  void TakePongs(std::string* in);
  // Appends bytes the receiver sent to *in and takes its pongs. Returns what to end Serve with
  // (a refusal, or too much that is not a pong), nullopt to keep serving.
  std::optional<Status> Received(std::string* in, const char* data, size_t n);
  // Reports the failure, drops what is queued and waits out the backoff.
  void OnFailure(Status refusal);

  // Sends pending bytes, then envelopes of queued messages, until the socket would block or
  // nothing is left. Messages too large for any envelope are dropped (*oversized set).
  void PumpLocked(bool* oversized) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Encodes the next envelope's worth of queued messages into pending_. False if none.
  bool EncodeNextLocked(bool* oversized) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropQueuedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One non-blocking write of the connection's bytes (plaintext or TLS): > 0 sent, -1 the socket
  // would block (tls_want_ says for what), 0 the connection failed.
  ssize_t SendSomeLocked(const char* data, size_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A TLS connection that failed, logged once per reason (every retry would repeat it).
  void LogTlsFailure(const DialTarget& target, const Status& why);

  const Options options_;
  const MemberId peer_;
  metrics::Counter* const sent_bytes_;     // etcd_network_peer_sent_bytes_total{To=peer_}
  metrics::Counter* const sent_failures_;  // ..._sent_failures_total: messages dropped
  metrics::Histogram* const round_trip_;   // etcd_network_peer_round_trip_time_seconds{To}
  Notifier* const notifier_;
  const std::shared_ptr<const PeerTls> tls_;
  int wake_fd_ = -1;  // eventfd: wakes the connection thread (stop, retarget, pending bytes)

  // Guards the members marked ABSL_GUARDED_BY(mu_).
  base::Mutex mu_;
  base::CondVar cv_;  // the backoff wait
  std::deque<raft::Message> control_ ABSL_GUARDED_BY(mu_);
  std::deque<raft::Message> data_ ABSL_GUARDED_BY(mu_);
  std::vector<DialTarget> targets_ ABSL_GUARDED_BY(mu_);
  size_t target_index_ ABSL_GUARDED_BY(mu_) = 0;
  bool retarget_ ABSL_GUARDED_BY(mu_) = false;   // close the stream, reopen with targets_
  bool accepting_ ABSL_GUARDED_BY(mu_) = true;   // false during backoff
  bool peer_back_ ABSL_GUARDED_BY(mu_) = false;  // PeerIsBack during a backoff
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::chrono::milliseconds backoff_ ABSL_GUARDED_BY(mu_);
  int fd_ ABSL_GUARDED_BY(mu_) = -1;  // the open connection, if any
  std::unique_ptr<tls::ClientConnection> tls_conn_ ABSL_GUARDED_BY(mu_);  // on fd_, for https
  short tls_want_ ABSL_GUARDED_BY(mu_) = 0;       // what a blocked TLS call waits for
  std::string last_tls_failure_;                  // connection thread only: the last one logged
  bool broken_ ABSL_GUARDED_BY(mu_) = false;      // a write failed; no more writes
  std::string pending_ ABSL_GUARDED_BY(mu_);      // encoded bytes the socket has not taken
  size_t pending_sent_ ABSL_GUARDED_BY(mu_) = 0;  // how many of them it has
  peer::Envelope envelope_ ABSL_GUARDED_BY(mu_);  // reused for encoding
  // Connection thread only: the steady-clock nanoseconds the probe in flight carries (0: none),
  // and when the next one is due.
  uint64_t probe_in_flight_nanos_ = 0;
  std::chrono::steady_clock::time_point next_probe_;

  std::thread thread_;
};

}  // namespace dolmen::transport
