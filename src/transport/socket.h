// Plain TCP sockets for the message stream: resolving "host:port" targets, listening,
// connecting with a bound wait, and the socket options a long-lived peer connection needs.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "base/status.h"

namespace dolmen::transport {

// Listening sockets for a "host:port" target (an IPv6 host in brackets), one per address the
// host resolves to ("localhost" may give two). Fails unless every address could be bound.
Result<std::vector<int>> ListenOn(const std::string& target);

// Connects to a "host:port" target, trying each address it resolves to, waiting at most
// `timeout`. Returns early with kCancelled once `wake_fd` (an eventfd, or -1) is readable. The
// socket is blocking and tuned (TuneStreamSocket).
Result<int> ConnectTo(const std::string& target, std::chrono::milliseconds timeout, int wake_fd);

// TCP_NODELAY (each envelope leaves at once), keepalive and a user timeout, so that a peer
// that vanished without closing the connection fails it within seconds, as gRPC's keepalive
// pings did.
void TuneStreamSocket(int fd);

// Reads an eventfd to zero (after poll said it is readable).
void DrainEventFd(int fd);
void SignalEventFd(int fd);

}  // namespace dolmen::transport
