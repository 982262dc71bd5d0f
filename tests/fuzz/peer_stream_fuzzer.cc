// libFuzzer target: the bytes a peer sends on the message stream after its magic, read the way
// the peer listener reads them (ReadFrame on a socket, then the envelope parse and the checks
// of every message in it). Anything can arrive on the peer port: the only allowed outcomes are
// decoded messages or a Status.
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "dolmen/peer.pb.h"
#include "transport/admission.h"
#include "transport/stream_frame.h"

namespace {

// Frames as large as a socketpair's buffer holds, so the whole input is written before reading.
constexpr size_t kMaxInput = 1 << 16;
constexpr size_t kMaxFrame = 1 << 20;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxInput) return 0;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) std::abort();
  int buffer = 4 * kMaxInput;
  setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
  setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  if (!dolmen::transport::SendAll(fds[0], {reinterpret_cast<const char*>(data), size}).ok()) {
    std::abort();
  }
  close(fds[0]);
  dolmen::peer::Envelope envelope;
  while (true) {
    dolmen::Result<std::string> frame = dolmen::transport::ReadFrame(fds[1], kMaxFrame);
    if (!frame.ok() || !envelope.ParseFromString(*frame)) break;
    if (!dolmen::transport::DecodeEnvelope(envelope).ok()) break;
  }
  close(fds[1]);
  return 0;
}
