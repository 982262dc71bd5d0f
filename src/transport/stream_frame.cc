#include "transport/stream_frame.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "base/coding.h"

namespace dolmen::transport {

void AppendFrame(const google::protobuf::MessageLite& message, std::string* out) {
  const size_t size = message.ByteSizeLong();
  coding::PutFixed32(out, static_cast<uint32_t>(size));
  const size_t start = out->size();
  out->resize(start + size);
  message.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(out->data() + start));
}

Status ReadFull(int fd, char* out, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t got = ::recv(fd, out + done, n - done, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return Unavailable(std::string("connection broken: ") + std::strerror(errno));
    if (got == 0) return Unavailable(done == 0 ? "closed" : "connection closed inside a frame");
    done += static_cast<size_t>(got);
  }
  return OkStatus();
}

Result<std::string> ReadFrame(int fd, size_t max_bytes) {
  return ReadFrame([fd](char* out, size_t n) { return ReadFull(fd, out, n); }, max_bytes);
}

Result<std::string> ReadFrame(const ReadFullFn& read_full, size_t max_bytes) {
  char header[kFrameHeaderBytes];
  RETURN_IF_ERROR(read_full(header, sizeof(header)));
  const uint32_t length = coding::DecodeFixed32(header);
  if (length > max_bytes) {
    return InvalidArgument("frame of " + std::to_string(length) + " bytes, over the limit of " +
                           std::to_string(max_bytes));
  }
  std::string body(length, '\0');
  Status s = read_full(body.data(), length);
  if (!s.ok()) {
    return s.message() == "closed" ? Unavailable("connection closed inside a frame") : s;
  }
  return body;
}

Status SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Unavailable(std::string("send: ") + std::strerror(errno));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return OkStatus();
}

}  // namespace dolmen::transport
