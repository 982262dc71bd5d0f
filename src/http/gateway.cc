#include "http/gateway.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/impl/codegen/proto_utils.h>  // SerializationTraits for protobuf::Message
#include <grpcpp/support/client_callback.h>
#include <poll.h>

#include <cctype>
#include <deque>
#include <future>
#include <optional>
#include <vector>

#include "http/gateway_json.h"

namespace dolmen::http {
namespace {

using google::protobuf::Message;
using Stub = grpc::TemplatedGenericStub<Message, Message>;

std::unique_ptr<Message> NewMessage(const google::protobuf::Descriptor* (*type)()) {
  const google::protobuf::Descriptor* descriptor = type();
  const Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(descriptor);
  return std::unique_ptr<Message>(prototype->New());
}

// True once the client closed its end of the connection (or it broke).
bool ClientGone(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLRDHUP, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

Response JsonResponse(int status, std::string body) {
  Response r;
  r.status = status;
  r.headers = {{"Content-Type", "application/json"}};
  r.body = std::move(body);
  return r;
}

// grpc-gateway's DefaultHTTPError after a gRPC call: Go's gRPC server sends content-type as a
// trailer of a failed call, and the gateway forwards it as an HTTP trailer.
Response CallError(const grpc::Status& status) {
  Response r = JsonResponse(gateway::HttpStatusFromGrpcCode(status.error_code()),
                            gateway::ErrorBody(status.error_code(), status.error_message()));
  r.headers.emplace_back("Trailer", "Grpc-Trailer-Content-Type");
  r.footers = {{"Grpc-Trailer-Content-Type", "application/grpc"}};
  return r;
}

// The same shape for an error found before any call (a body that does not parse).
Response RequestError(int grpc_code, const std::string& message) {
  return JsonResponse(gateway::HttpStatusFromGrpcCode(grpc_code),
                      gateway::ErrorBody(grpc_code, message));
}

// Go's gRPC server sends content-type as header metadata, which grpc-gateway forwards.
void AddServerMetadata(Response* r) {
  r->headers.emplace_back("Grpc-Metadata-Content-Type", "application/grpc");
}

// grpc-gateway's timeoutDecode: digits and one unit letter.
std::optional<std::chrono::nanoseconds> DecodeTimeout(const std::string& text) {
  if (text.size() < 2 || text.size() > 20) return std::nullopt;
  int64_t n = 0;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
    n = n * 10 + (text[i] - '0');
  }
  switch (text.back()) {
    case 'H':
      return std::chrono::hours(n);
    case 'M':
      return std::chrono::minutes(n);
    case 'S':
      return std::chrono::seconds(n);
    case 'm':
      return std::chrono::milliseconds(n);
    case 'u':
      return std::chrono::microseconds(n);
    case 'n':
      return std::chrono::nanoseconds(n);
    default:
      return std::nullopt;
  }
}

bool ValidMetadataKey(const std::string& key) {
  if (key.empty() || key.rfind("grpc-", 0) == 0) return false;  // gRPC's own, not the client's
  for (char c : key) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return key != "content-type" && key != "te" && key != "user-agent";
}

bool ValidMetadataValue(const std::string& value) {
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// grpc-gateway's AnnotateContext: the Authorization header as `authorization` metadata (where
// etcd's auth reads a token), `Grpc-Metadata-<name>` headers as `<name>`, the Host as
// x-forwarded-host, the client's address as x-forwarded-for (after the header's own list), and
// Grpc-Timeout as the deadline. A bad timeout is refused as there.
std::optional<Response> Annotate(const Request& request, grpc::ClientContext* context) {
  for (const auto& [name, value] : request.headers) {  // names are lower case
    if (name == "authorization" && ValidMetadataValue(value)) {
      context->AddMetadata("authorization", value);
    }
    const std::string prefix = "grpc-metadata-";
    if (name.rfind(prefix, 0) == 0) {
      const std::string key = name.substr(prefix.size());
      // Binary (-bin) values are base64 on HTTP and stay so here: not decoded (docs/http.md).
      if (ValidMetadataKey(key) && ValidMetadataValue(value)) context->AddMetadata(key, value);
    }
  }
  const std::string host = request.Header("x-forwarded-host").empty()
                               ? request.Header("host")
                               : request.Header("x-forwarded-host");
  if (!host.empty() && ValidMetadataValue(host)) context->AddMetadata("x-forwarded-host", host);
  if (!request.peer_ip.empty()) {
    const std::string forwarded = request.Header("x-forwarded-for");
    const std::string chain =
        forwarded.empty() ? request.peer_ip : forwarded + ", " + request.peer_ip;
    if (ValidMetadataValue(chain)) context->AddMetadata("x-forwarded-for", chain);
  }
  const std::string timeout = request.Header("grpc-timeout");
  if (!timeout.empty()) {
    auto d = DecodeTimeout(timeout);
    if (!d) return RequestError(3, "invalid grpc-timeout: " + timeout);
    context->set_deadline(std::chrono::system_clock::now() + *d);
  }
  return std::nullopt;
}

// A unary call in flight, cancellable by Shutdown.
class UnaryCall final : public Gateway::Call {
 public:
  void Cancel() override { context.TryCancel(); }
  grpc::ClientContext context;
};

// One streaming call: the gRPC side reads responses into a bounded queue; the HTTP side
// (Read, on the connection's thread) takes them out as JSON chunks. Kept alive by gRPC until
// OnDone and by the HTTP response until it is sent or dropped, whichever is later.
class StreamCall final : public grpc::ClientBidiReactor<Message, Message>,
                         public Gateway::Call,
                         public BodyStream {
 public:
  StreamCall(const gateway::Route& route, std::vector<std::unique_ptr<Message>> requests, int fd,
             const GatewayOptions& options)
      : route_(route), requests_(std::move(requests)), fd_(fd), options_(options) {}

  // Starts the call; `self` keeps this alive until gRPC is done with it.
  void Start(Stub* stub, std::shared_ptr<StreamCall> self) {
    self_ = std::move(self);
    stub->PrepareBidiStreamingCall(&context, route_.method, grpc::StubOptions(), this);
    // Held until reading has ended for good, so a paused read (queue full) can be resumed
    // from the HTTP thread without the call completing under it.
    AddHold();
    WriteNext();
    incoming_ = NewMessage(route_.response_type);
    StartRead(incoming_.get());
    StartCall();
  }

  // Waits for the first response or the end. False if the client left or the gateway stops
  // (the call is cancelled). `stopping` takes the gateway's lock, which Shutdown holds while
  // it cancels calls (taking ours): it is called without ours held.
  bool WaitFirst(const std::function<bool()>& stopping) {
    std::unique_lock l(mu_);
    while (queue_.empty() && !finished_) {
      if (cv_.wait_for(l, options_.hangup_check_interval) == std::cv_status::timeout) {
        l.unlock();
        if (stopping() || ClientGone(fd_)) {
          Cancel();
          return false;
        }
        l.lock();
      }
    }
    return true;
  }

  // After WaitFirst: the stream failed before its first response.
  std::optional<grpc::Status> FailedAtOnce() {
    std::lock_guard l(mu_);
    if (queue_.empty() && finished_ && !status_.ok()) return status_;
    return std::nullopt;
  }

  Next Read(std::string* out) override {
    std::unique_lock l(mu_);
    while (true) {
      if (!queue_.empty()) {
        std::unique_ptr<Message> message = std::move(queue_.front());
        queue_.pop_front();
        const bool resume = read_paused_;
        read_paused_ = false;
        l.unlock();
        if (resume) StartRead(incoming_.get());
        *out += gateway::StreamResultChunk(*message);
        *out += '\n';
        return Next::kMore;
      }
      if (finished_) {
        if (!status_.ok() && !aborted_) {
          *out += gateway::StreamErrorChunk(status_.error_code(), status_.error_message());
        }
        return aborted_ ? Next::kAbort : Next::kEnd;
      }
      if (cv_.wait_for(l, options_.hangup_check_interval) == std::cv_status::timeout &&
          queue_.empty() && !finished_ && ClientGone(fd_)) {
        l.unlock();
        Cancel();
        return Next::kAbort;
      }
    }
  }

  void Cancel() override {
    bool resume;
    {
      std::lock_guard l(mu_);
      aborted_ = true;
      resume = read_paused_;
      read_paused_ = false;
    }
    context.TryCancel();
    // A paused read is started so that it fails and reading ends (the hold is released).
    if (resume) StartRead(incoming_.get());
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return;  // the call ended; OnReadDone sees it too
    WriteNext();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      RemoveHold();  // no more reads: gRPC may finish the call
      return;
    }
    bool more;
    {
      std::lock_guard l(mu_);
      queue_.push_back(std::move(incoming_));
      incoming_ = NewMessage(route_.response_type);
      more = queue_.size() < options_.stream_queue_messages || aborted_;
      if (!more) read_paused_ = true;  // Read resumes once the client took one
      cv_.notify_all();
    }
    if (more) StartRead(incoming_.get());
  }

  void OnDone(const grpc::Status& status) override {
    std::shared_ptr<StreamCall> self = std::move(self_);  // released last
    std::lock_guard l(mu_);
    finished_ = true;
    status_ = status;
    cv_.notify_all();
  }

  grpc::ClientContext context;

 private:
  // Called from Start and from OnWriteDone only, so one write at a time.
  void WriteNext() {
    if (next_request_ < requests_.size()) {
      StartWrite(requests_[next_request_++].get());
    } else if (!writes_done_) {
      writes_done_ = true;
      StartWritesDone();  // as the gateway closes its send side at the body's end
    }
  }

  const gateway::Route& route_;
  std::vector<std::unique_ptr<Message>> requests_;
  size_t next_request_ = 0;
  bool writes_done_ = false;
  const int fd_;
  const GatewayOptions options_;
  std::shared_ptr<StreamCall> self_;
  std::unique_ptr<Message> incoming_;  // the read in flight (gRPC's until OnReadDone)

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Message>> queue_;  // guarded by mu_
  bool read_paused_ = false;                    // guarded by mu_
  bool finished_ = false;                       // guarded by mu_
  bool aborted_ = false;                        // guarded by mu_
  grpc::Status status_;                         // guarded by mu_
};

// What the HTTP response holds of a stream: drops the stream (cancelling it if still open)
// when the response is done with, and unregisters it from the gateway.
class StreamBody final : public BodyStream {
 public:
  StreamBody(std::shared_ptr<StreamCall> call, std::function<void()> unregister)
      : call_(std::move(call)), unregister_(std::move(unregister)) {}
  ~StreamBody() override {
    call_->Cancel();
    unregister_();
  }
  Next Read(std::string* out) override { return call_->Read(out); }

 private:
  std::shared_ptr<StreamCall> call_;
  std::function<void()> unregister_;
};

// A chunked body with nothing after the response's own `body`.
class EndedBody final : public BodyStream {
 public:
  Next Read(std::string*) override { return Next::kEnd; }
};

}  // namespace

Gateway::Gateway(GatewayOptions options) : options_(options) {}

void Gateway::Connect(std::shared_ptr<grpc::Channel> channel) { channel_ = std::move(channel); }

Gateway::~Gateway() { Shutdown(); }

bool Gateway::Register(Call* call) {
  std::lock_guard l(mu_);
  if (stopping_) return false;
  calls_.insert(call);
  return true;
}

void Gateway::Unregister(Call* call) {
  std::lock_guard l(mu_);
  calls_.erase(call);
}

void Gateway::Shutdown() {
  std::lock_guard l(mu_);
  stopping_ = true;
  for (Call* c : calls_) c->Cancel();
}

Response Gateway::Serve(const Request& request, const std::string& path) {
  const gateway::Route* route = gateway::FindRoute(path);
  // grpc-gateway's ServeMux: an unknown path is http.Error's 404; a known one with another
  // method 405.
  if (route == nullptr) return Response::Error(404, "Not Found");
  if (request.method != "POST") return Response::Error(405, "Method Not Allowed");
  if (channel_ == nullptr)
    return CallError(grpc::Status(grpc::StatusCode::UNAVAILABLE, "not serving yet"));
  return route->kind == gateway::CallKind::kUnary ? Unary(*route, request)
                                                  : Stream(*route, request);
}

Response Gateway::Unary(const gateway::Route& route, const Request& request) {
  std::unique_ptr<Message> in = NewMessage(route.request_type);
  std::unique_ptr<Message> out = NewMessage(route.response_type);
  if (Status s = gateway::ParseJson(request.body, in.get()); !s.ok()) {
    return RequestError(3, s.message());  // codes.InvalidArgument, as the generated handlers
  }
  UnaryCall call;
  if (auto refused = Annotate(request, &call.context)) return *refused;
  if (!Register(&call)) return CallError(grpc::Status(grpc::StatusCode::UNAVAILABLE, "stopping"));
  std::promise<grpc::Status> answered;
  std::future<grpc::Status> answer = answered.get_future();
  Stub stub(channel_);
  stub.UnaryCall(&call.context, route.method, grpc::StubOptions(), in.get(), out.get(),
                 [&answered](grpc::Status s) { answered.set_value(std::move(s)); });
  // The call's buffers live on this stack: wait for its answer, cancelling it if the client
  // hangs up meanwhile (a Lock may wait for long), as grpc-gateway cancels on CloseNotify.
  bool cancelled = false;
  while (answer.wait_for(options_.hangup_check_interval) != std::future_status::ready) {
    if (!cancelled && ClientGone(request.fd)) {
      call.Cancel();
      cancelled = true;
    }
  }
  Unregister(&call);
  const grpc::Status status = answer.get();
  if (!status.ok()) return CallError(status);
  Response r = JsonResponse(200, gateway::PrintJson(*out));
  AddServerMetadata(&r);
  return r;
}

Response Gateway::Stream(const gateway::Route& route, const Request& request) {
  std::vector<std::unique_ptr<Message>> requests;
  if (route.kind == gateway::CallKind::kServerStream) {
    requests.push_back(NewMessage(route.request_type));
    if (Status s = gateway::ParseJson(request.body, requests.back().get()); !s.ok()) {
      return RequestError(3, s.message());
    }
  } else {
    // Each JSON value in the body is one request on the stream. The first one failing to
    // decode fails the call with the decoder's plain error, which grpc-gateway reports as
    // UNKNOWN (500); a later one ends the requests there, as its send loop does.
    std::vector<std::string_view> values;
    Status split = gateway::SplitJsonValues(request.body, &values);
    for (size_t i = 0; i < values.size(); ++i) {
      auto m = NewMessage(route.request_type);
      Status s = gateway::ParseJson(values[i], m.get());
      if (!s.ok()) {
        if (i == 0) return RequestError(2, s.message());
        break;
      }
      requests.push_back(std::move(m));
    }
    if (!split.ok() && values.empty()) return RequestError(2, split.message());
  }
  auto call = std::make_shared<StreamCall>(route, std::move(requests), request.fd, options_);
  if (auto refused = Annotate(request, &call->context)) return *refused;
  if (!Register(call.get())) {
    return CallError(grpc::Status(grpc::StatusCode::UNAVAILABLE, "stopping"));
  }
  Stub stub(channel_);
  call->Start(&stub, call);
  auto body = std::make_shared<StreamBody>(call, [this, c = call.get()] { Unregister(c); });
  const bool answered = call->WaitFirst([this] {
    std::lock_guard l(mu_);
    return stopping_;
  });
  Response r;
  r.headers = {{"Content-Type", "application/json"}};
  if (!answered) {
    r.status = 408;  // nobody reads it: the client left or the member stops
    return r;
  }
  if (auto failed = call->FailedAtOnce()) {
    // ForwardResponseStream: no response yet, so the error's status code, then its chunk
    // (still chunked, as the gateway set Transfer-Encoding before the first receive).
    r.status = gateway::HttpStatusFromGrpcCode(failed->error_code());
    r.body = gateway::StreamErrorChunk(failed->error_code(), failed->error_message());
    r.stream = std::make_shared<EndedBody>();
    return r;
  }
  AddServerMetadata(&r);
  r.stream = std::move(body);
  return r;
}

}  // namespace dolmen::http
