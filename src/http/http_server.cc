#include "http/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace dolmen::http {

bool Request::HasQuery(const std::string& key) const {
  return std::any_of(query.begin(), query.end(), [&](const auto& kv) { return kv.first == key; });
}

std::vector<std::string> Request::QueryValues(const std::string& key) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : query) {
    if (k == key) out.push_back(v);
  }
  return out;
}

std::string Request::Header(const std::string& lower_case_name) const {
  auto it = headers.find(lower_case_name);
  return it == headers.end() ? "" : it->second;
}

Response Response::Error(int status, const std::string& text) {
  Response r;
  r.status = status;
  r.headers = {{"Content-Type", "text/plain; charset=utf-8"},
               {"X-Content-Type-Options", "nosniff"}};
  r.body = text + "\n";
  return r;
}

namespace {

// What one connection's current request has gathered between libmicrohttpd's calls.
struct PendingRequest {
  Request request;
  bool too_large = false;
};

MHD_Result CollectHeader(void* cls, MHD_ValueKind, const char* key, const char* value) {
  auto* r = static_cast<Request*>(cls);
  std::string name(key);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  r->headers[name] = value == nullptr ? "" : value;
  return MHD_YES;
}

MHD_Result CollectQuery(void* cls, MHD_ValueKind, const char* key, const char* value) {
  static_cast<Request*>(cls)->query.emplace_back(key, value == nullptr ? "" : value);
  return MHD_YES;
}

// A chunked body: `pending` first, then what the stream reads, handed to libmicrohttpd in
// pieces of at most its buffer's size. While a stream is sent the connection has no idle
// timeout (a watch may see no event for long, and libmicrohttpd counts the time spent waiting
// in Read as idle); the server's timeout is set again once the body is complete.
struct ChunkedBody {
  std::string pending;
  size_t offset = 0;
  std::shared_ptr<BodyStream> stream;  // null: `pending` is all
  bool ended = false;
  MHD_Connection* connection = nullptr;
  unsigned idle_timeout_seconds = 0;

  static ssize_t Read(void* cls, uint64_t, char* buf, size_t max) {
    auto* self = static_cast<ChunkedBody*>(cls);
    while (true) {
      if (self->offset < self->pending.size()) {
        const size_t n = std::min(max, self->pending.size() - self->offset);
        std::memcpy(buf, self->pending.data() + self->offset, n);
        self->offset += n;
        return static_cast<ssize_t>(n);
      }
      self->pending.clear();
      self->offset = 0;
      if (self->ended || self->stream == nullptr) {
        if (self->stream != nullptr) {
          MHD_set_connection_option(self->connection, MHD_CONNECTION_OPTION_TIMEOUT,
                                    self->idle_timeout_seconds);
        }
        return MHD_CONTENT_READER_END_OF_STREAM;
      }
      switch (self->stream->Read(&self->pending)) {
        case BodyStream::Next::kMore:
          break;
        case BodyStream::Next::kEnd:
          self->ended = true;
          break;
        case BodyStream::Next::kAbort:
          return MHD_CONTENT_READER_END_WITH_ERROR;
      }
    }
  }
  static void Free(void* cls) { delete static_cast<ChunkedBody*>(cls); }
};

MHD_Response* NewResponse(MHD_Connection* connection, const Response& r,
                          unsigned idle_timeout_seconds) {
  if (r.stream == nullptr && r.footers.empty()) {
    return MHD_create_response_from_buffer(r.body.size(), const_cast<char*>(r.body.data()),
                                           MHD_RESPMEM_MUST_COPY);
  }
  if (r.stream != nullptr) {
    MHD_set_connection_option(connection, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
  }
  auto* body = new ChunkedBody{r.body, 0, r.stream, false, connection, idle_timeout_seconds};
  MHD_Response* response = MHD_create_response_from_callback(
      MHD_SIZE_UNKNOWN, 16 * 1024, &ChunkedBody::Read, body, &ChunkedBody::Free);
  if (response == nullptr) {
    delete body;
    return nullptr;
  }
  for (const auto& [name, value] : r.footers) {
    MHD_add_response_footer(response, name.c_str(), value.c_str());
  }
  return response;
}

MHD_Result Send(MHD_Connection* connection, const Response& r, unsigned idle_timeout_seconds = 0) {
  MHD_Response* response = NewResponse(connection, r, idle_timeout_seconds);
  if (response == nullptr) return MHD_NO;
  for (const auto& [name, value] : r.headers) {
    MHD_add_response_header(response, name.c_str(), value.c_str());
  }
  MHD_Result queued = MHD_queue_response(connection, static_cast<unsigned>(r.status), response);
  MHD_destroy_response(response);
  return queued;
}

std::string PeerIp(MHD_Connection* connection) {
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (info == nullptr || info->client_addr == nullptr) return "";
  char text[INET6_ADDRSTRLEN] = "";
  const sockaddr* a = info->client_addr;
  if (a->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(a)->sin_addr, text, sizeof text);
  } else if (a->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(a)->sin6_addr, text, sizeof text);
  }
  return text;
}

void RequestCompleted(void*, MHD_Connection*, void** con_cls, MHD_RequestTerminationCode) {
  delete static_cast<PendingRequest*>(*con_cls);
  *con_cls = nullptr;
}

}  // namespace

// libmicrohttpd's access handler, called several times per request: first with the headers,
// then once per body chunk, then with no data when the body is complete.
struct Dispatch {
  static MHD_Result Call(void* cls, MHD_Connection* connection, const char* url, const char* method,
                         const char*, const char* upload_data, size_t* upload_data_size,
                         void** con_cls) {
    auto* server = static_cast<HttpServer*>(cls);
    auto* pending = static_cast<PendingRequest*>(*con_cls);
    if (pending == nullptr) {
      pending = new PendingRequest();
      pending->request.method = method;
      pending->request.path = url;
      const MHD_ConnectionInfo* info =
          MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
      if (info != nullptr) pending->request.fd = info->connect_fd;
      pending->request.peer_ip = PeerIp(connection);
      MHD_get_connection_values(connection, MHD_HEADER_KIND, CollectHeader, &pending->request);
      MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, CollectQuery, &pending->request);
      *con_cls = pending;
      return MHD_YES;
    }
    if (*upload_data_size != 0) {
      if (pending->request.body.size() + *upload_data_size > server->options_.max_body_bytes) {
        pending->too_large = true;  // keep reading (and dropping) so the answer can be sent
      } else {
        pending->request.body.append(upload_data, *upload_data_size);
      }
      *upload_data_size = 0;
      return MHD_YES;
    }
    if (pending->too_large) {
      return Send(connection, Response::Error(413, "Request Entity Too Large"));
    }
    return Send(connection, server->handler_(pending->request),
                server->options_.idle_timeout_seconds);
  }
};

HttpServer::HttpServer(Handler handler, Options options)
    : handler_(std::move(handler)), options_(options) {}

HttpServer::~HttpServer() { Stop(); }

MHD_Daemon* HttpServer::StartDaemon(int listen_fd) {
  unsigned flags =
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC;
  if (listen_fd < 0) flags |= MHD_USE_NO_LISTEN_SOCKET;
  // The port argument is unused: the socket is ours (MHD_OPTION_LISTEN_SOCKET) or there is none.
  return MHD_start_daemon(
      flags, 0, nullptr, nullptr, &Dispatch::Call, this, MHD_OPTION_CONNECTION_LIMIT,
      options_.max_connections, MHD_OPTION_CONNECTION_TIMEOUT, options_.idle_timeout_seconds,
      MHD_OPTION_NOTIFY_COMPLETED, &RequestCompleted, nullptr,
      listen_fd >= 0 ? MHD_OPTION_LISTEN_SOCKET : MHD_OPTION_END, listen_fd, MHD_OPTION_END);
}

Status HttpServer::Listen(const std::string& host, const std::string& port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string address = host + ":" + port;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
      rc != 0) {
    return Status(Code::kInvalidArgument,
                  "http: cannot resolve " + address + ": " + gai_strerror(rc));
  }
  int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  std::string error;
  if (fd < 0) {
    error = std::strerror(errno);
  } else {
    // SO_REUSEADDR (not SO_REUSEPORT): a restart can bind while old connections linger in
    // TIME_WAIT, but a second member cannot share the port.
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, found->ai_addr, found->ai_addrlen) != 0 || listen(fd, 128) != 0) {
      error = std::strerror(errno);
    }
  }
  freeaddrinfo(found);
  if (!error.empty()) {
    if (fd >= 0) close(fd);
    error[0] = static_cast<char>(std::tolower(error[0]));  // Go's wording: "address already in use"
    return Status(Code::kUnavailable, "http: listen tcp " + address + ": bind: " + error);
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  const int bound_port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  MHD_Daemon* daemon = StartDaemon(fd);
  if (daemon == nullptr) {
    close(fd);
    return Status(Code::kInternal, "http: cannot start serving " + address);
  }
  std::lock_guard lock(mu_);
  daemons_.push_back(daemon);
  ports_.push_back(bound_port);
  return OkStatus();
}

Status HttpServer::AdoptConnection(int fd, const sockaddr* peer, socklen_t peer_len) {
  std::unique_lock lock(mu_);
  if (stopped_) {
    close(fd);
    return Status(Code::kUnavailable, "http: stopped");
  }
  if (adopter_ == nullptr) adopter_ = StartDaemon(-1);
  if (adopter_ == nullptr) {
    close(fd);
    return Status(Code::kInternal, "http: cannot start serving adopted connections");
  }
  MHD_Daemon* daemon = adopter_;
  lock.unlock();
  // libmicrohttpd closes the socket itself when adding fails.
  if (MHD_add_connection(daemon, fd, peer, peer_len) != MHD_YES) {
    return Status(Code::kUnavailable, "http: cannot serve the connection (too many?)");
  }
  return OkStatus();
}

std::vector<int> HttpServer::ports() const {
  std::lock_guard lock(const_cast<std::mutex&>(mu_));
  return ports_;
}

void HttpServer::Stop() {
  std::vector<MHD_Daemon*> daemons;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    daemons.swap(daemons_);
    if (adopter_ != nullptr) daemons.push_back(adopter_);
    adopter_ = nullptr;
  }
  for (MHD_Daemon* d : daemons) MHD_stop_daemon(d);  // closes the listening socket too
}

}  // namespace dolmen::http
