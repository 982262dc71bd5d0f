// Plain stream sockets for the message stream and the peer port: resolving targets, listening,
// connecting with a bound wait, and the socket options a long-lived peer connection needs.
//
// A target is "host:port" (TCP; an IPv6 host in brackets) or "unix:path" (a unix-domain socket,
// the path relative to the working directory unless it starts with '/'), as url.h makes them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "base/status.h"

namespace dolmen::transport {

// A listening socket. For a unix-domain socket also the file bind made, and which file it is
// (device and inode), so that closing removes that file and never one another process put at
// the same path since.
struct ListeningSocket {
  int fd = -1;
  std::string unix_path;  // empty for TCP
  dev_t dev = 0;
  ino_t ino = 0;
};

// Listening sockets for a target: for TCP one per address the host resolves to ("localhost" may
// give two), and fails unless every address could be bound. For a unix socket one; a socket file
// already at the path is removed first only if nobody accepts connections on it (left by a
// process that died): a live one is "in use", and a file that is not a socket is never removed.
// (etcd removes whatever is at the path, and so takes the socket of a member that still runs.)
// `reuse_port` sets SO_REUSEPORT on TCP sockets (etcd's --socket-reuse-port).
Result<std::vector<ListeningSocket>> ListenOn(const std::string& target, bool reuse_port = false);

// Closes the socket; for a unix socket first removes its file, if the file at the path is still
// the one bind made.
void CloseListening(const ListeningSocket& socket);

// Connects to a target, trying each address it resolves to, waiting at most `timeout`. Returns
// early with kCancelled once `wake_fd` (an eventfd, or -1) is readable. The socket is blocking
// and tuned (TuneStreamSocket).
Result<int> ConnectTo(const std::string& target, std::chrono::milliseconds timeout, int wake_fd);

// For TCP: TCP_NODELAY (each envelope leaves at once), keepalive and a user timeout, so that a
// peer that vanished without closing the connection fails it within seconds, as gRPC's
// keepalive pings did. A unix socket needs none of them (no Nagle; the kernel ends the
// connection as soon as the peer process is gone) and is left as it is.
void TuneStreamSocket(int fd);

// Reads an eventfd to zero (after poll said it is readable).
void DrainEventFd(int fd);
void SignalEventFd(int fd);

}  // namespace dolmen::transport
