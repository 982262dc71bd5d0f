// Accepting connections on listening sockets and serving each on a thread of its own: what the
// peer port (peer_listener.h) and the client port (client_listener.h) have in common. Both
// carry several protocols on one socket and tell them apart by a connection's first bytes, so
// each new connection is "undecided" until its owner has looked at them; at most
// `max_undecided` may be so at once (beyond that new connections are closed at once), so a
// flood of silent connections cannot grow threads without bound.
//
// Threads: one acceptor; one per accepted connection, running the owner's `serve` until it
// returns (for a message stream or a TLS proxy, as long as the connection lives).
#pragma once

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "transport/socket.h"

namespace dolmen::transport {

class Acceptor;

// One accepted connection, as `serve` sees it on its own thread.
class AcceptedConnection {
 public:
  // The socket; -1 once released. The connection's thread may use it freely; Stop() only
  // shuts it down (which wakes blocking reads), never closes it under the thread's feet.
  int fd() const { return fd_; }
  // Which listening socket accepted it (the index given to Acceptor::Start).
  size_t source() const { return source_; }
  // The remote address, "ip:port" (or "unix" for a unix-domain socket), for logs.
  const std::string& remote() const { return remote_; }
  // The IP address of remote() without port or brackets, or "" for a unix-domain socket: what
  // etcd's SAN check compares a client certificate with (tls/identity.h).
  std::string remote_ip() const;

  // Waits at most `timeout_s` for the first byte and returns it without consuming it; false on
  // timeout, close or error. Only one byte: on a unix-domain socket MSG_PEEK returns what has
  // arrived so far even with MSG_WAITALL.
  bool PeekFirstByte(int timeout_s, char* first);
  // Waits at most `timeout_s` for the first `n` bytes and copies them without consuming them;
  // returns how many arrived (fewer on timeout or close).
  size_t PeekPrefix(char* buf, size_t n, int timeout_s);
  // The connection's protocol is known: it no longer counts against max_undecided.
  void Decided();
  // Hands the socket over to a new owner, who closes it. Returns -1 (and keeps the socket, to
  // be closed when serve returns) if the acceptor is stopping.
  int Release();
  // Runs `hand_over` (which gives something of this connection's to another server) unless the
  // acceptor is stopping; false if it was not run. Stop waits for it.
  bool HandOverUnlessStopping(const std::function<void()>& hand_over);

 private:
  friend class Acceptor;
  Acceptor* acceptor_ = nullptr;
  int fd_ = -1;  // written under the acceptor's mutex
  size_t source_ = 0;
  std::string remote_;
  bool decided_ = false;
  std::thread thread_;
  std::atomic<bool> done_{false};
};

class Acceptor {
 public:
  struct Listening {
    ListeningSocket socket;
    size_t source = 0;  // AcceptedConnection::source()
  };
  using Serve = std::function<void(AcceptedConnection&)>;

  explicit Acceptor(int max_undecided) : max_undecided_(max_undecided) {}
  ~Acceptor();  // Stop(); closes sockets never started

  // Takes the sockets (closed, unix files removed, by Stop or the destructor) and starts
  // accepting. `serve` runs once per connection on its own thread; the socket is closed when it
  // returns unless it was released.
  Status Start(std::vector<Listening> listening, Serve serve);
  // Stops accepting and closes the listening sockets; connections already accepted go on.
  // Idempotent.
  void StopAccepting();
  // StopAccepting, then shuts down every connection not released and joins every thread.
  // Idempotent.
  void Stop();

 private:
  friend class AcceptedConnection;
  void AcceptLoop();
  void Run(AcceptedConnection* connection);
  void ReapDoneLocked();

  const int max_undecided_;
  Serve serve_;
  std::vector<Listening> listening_;
  int wake_fd_ = -1;  // eventfd: wakes the acceptor to stop
  std::thread acceptor_;

  std::mutex mu_;
  bool stopping_ = false;           // guarded by mu_: no new connection is handed over
  bool accepting_stopped_ = false;  // guarded by mu_
  std::list<std::unique_ptr<AcceptedConnection>> connections_;  // guarded by mu_
  int undecided_ = 0;                                           // guarded by mu_
};

// SO_RCVTIMEO in whole seconds (0: none).
void SetReceiveTimeout(int fd, int seconds);

}  // namespace dolmen::transport
