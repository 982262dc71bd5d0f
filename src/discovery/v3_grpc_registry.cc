#include "discovery/v3_grpc_registry.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <climits>

#include "base/key_range.h"
#include "discovery/grpc_client_tls.h"
#include "etcdserverpb/rpc.grpc.pb.h"

namespace dolmen::discovery {
namespace {

struct Endpoint {
  std::string target;  // host:port, as gRPC dials it
  bool tls = false;
  std::string text;  // as given, for messages
};

// clientv3's rule: the scheme decides; a bare host:port follows the TLS options.
Result<Endpoint> ParseEndpoint(const std::string& text, bool tls_configured) {
  Endpoint e{text, tls_configured, text};
  const size_t sep = text.find("://");
  if (sep != std::string::npos) {
    const std::string scheme = text.substr(0, sep);
    if (scheme != "http" && scheme != "https") {
      return InvalidArgument("--discovery-endpoints: " + text +
                             ": only http://, https:// or host:port endpoints are supported");
    }
    e.tls = scheme == "https";
    e.target = text.substr(sep + 3);
    while (!e.target.empty() && e.target.back() == '/') e.target.pop_back();
  }
  const size_t colon = e.target.rfind(':');
  if (e.target.empty() || colon == std::string::npos || colon == 0 ||
      colon + 1 == e.target.size() || e.target.find('/') != std::string::npos) {
    return InvalidArgument("--discovery-endpoints: " + text + ": expected host:port");
  }
  return e;
}

Status FromGrpc(const std::string& what, const Endpoint& e, const grpc::Status& s) {
  const std::string message = what + " at " + e.text + ": " + s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Unavailable(message);
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return Status(Code::kFailedPrecondition, message);
    default:
      return Status(Code::kInternal, message);
  }
}

class GrpcRegistry final : public V3Registry {
 public:
  explicit GrpcRegistry(V3ClientOptions options, std::vector<Endpoint> endpoints,
                        std::shared_ptr<grpc::ChannelCredentials> tls)
      : options_(std::move(options)), endpoints_(std::move(endpoints)), tls_(std::move(tls)) {
    const size_t colon = options_.user.find(':');
    if (options_.password.empty() && colon != std::string::npos) {
      options_.password = options_.user.substr(colon + 1);
      options_.user = options_.user.substr(0, colon);
    }
  }

  Result<RegistryRange> Get(const std::string& key, bool prefix) override {
    etcdserverpb::RangeRequest request;
    request.set_key(key);
    if (prefix) request.set_range_end(PrefixRangeEnd(key));
    etcdserverpb::RangeResponse response;
    RETURN_IF_ERROR(Call("get " + key, [&](grpc::ClientContext* ctx) {
      return etcdserverpb::KV::NewStub(channel_)->Range(ctx, request, &response);
    }));
    RegistryRange out;
    out.revision = response.header().revision();
    for (const auto& kv : response.kvs()) {
      out.kvs.push_back(RegistryKv{kv.key(), kv.value(), kv.create_revision()});
    }
    return out;
  }

  Status Put(const std::string& key, const std::string& value) override {
    etcdserverpb::PutRequest request;
    request.set_key(key);
    request.set_value(value);
    etcdserverpb::PutResponse response;
    return Call("put " + key, [&](grpc::ClientContext* ctx) {
      return etcdserverpb::KV::NewStub(channel_)->Put(ctx, request, &response);
    });
  }

  Status WatchPuts(const std::string& prefix, int64_t start_revision,
                   const std::function<bool(const RegistryKv&)>& on_put) override {
    RETURN_IF_ERROR(Connect());
    grpc::ClientContext ctx;
    RETURN_IF_ERROR(Authorize(&ctx));
    auto stream = etcdserverpb::Watch::NewStub(channel_)->Watch(&ctx);
    etcdserverpb::WatchRequest create;
    create.mutable_create_request()->set_key(prefix);
    create.mutable_create_request()->set_range_end(PrefixRangeEnd(prefix));
    create.mutable_create_request()->set_start_revision(start_revision);
    if (!stream->Write(create)) return Finish(stream.get(), "watch " + prefix);
    etcdserverpb::WatchResponse response;
    while (stream->Read(&response)) {
      if (response.canceled()) {
        ctx.TryCancel();
        grpc::Status ended = stream->Finish();
        (void)ended;  // cancelled by us; the reason is the server's answer above
        return Unavailable("watch " + prefix + " at " + Current().text + " was cancelled" +
                           (response.compact_revision() > 0
                                ? " (revision " + std::to_string(start_revision) +
                                      " compacted; now " +
                                      std::to_string(response.compact_revision()) + ")"
                                : ": " + response.cancel_reason()));
      }
      for (const auto& event : response.events()) {
        if (event.type() != mvccpb::Event::PUT) continue;
        const auto& kv = event.kv();
        if (!on_put(RegistryKv{kv.key(), kv.value(), kv.create_revision()})) {
          ctx.TryCancel();
          grpc::Status ended = stream->Finish();
          (void)ended;  // cancelled by us: the watch has what it waited for
          return OkStatus();
        }
      }
    }
    return Finish(stream.get(), "watch " + prefix);
  }

 private:
  const Endpoint& Current() const { return endpoints_[current_ % endpoints_.size()]; }

  template <typename Stream>
  Status Finish(Stream* stream, const std::string& what) {
    grpc::Status s = stream->Finish();
    if (s.ok()) return Unavailable(what + " at " + Current().text + ": the stream ended");
    Status out = FromGrpc(what, Current(), s);
    if (out.code() == Code::kUnavailable) NextEndpoint();
    return out;
  }

  void NextEndpoint() {
    ++current_;
    channel_.reset();
    token_.clear();
  }

  // A channel to the current endpoint, connected within the dial timeout; else the next
  // endpoint is tried (every one once) before giving up with Unavailable.
  Status Connect() {
    for (size_t tried = 0; tried < endpoints_.size(); ++tried) {
      if (channel_ == nullptr) channel_ = NewChannel(Current());
      if (channel_->WaitForConnected(std::chrono::system_clock::now() + options_.dial_timeout)) {
        return OkStatus();
      }
      last_dial_error_ = "cannot connect to " + Current().text + " within " +
                         std::to_string(options_.dial_timeout.count()) + " ms";
      NextEndpoint();
    }
    return Unavailable(last_dial_error_);
  }

  std::shared_ptr<grpc::Channel> NewChannel(const Endpoint& e) const {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(INT_MAX);
    if (options_.keepalive_time.count() > 0) {
      args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
                  static_cast<int>(std::min<int64_t>(options_.keepalive_time.count(), INT_MAX)));
      args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                  static_cast<int>(std::min<int64_t>(options_.keepalive_timeout.count(), INT_MAX)));
    }
    auto creds = e.tls ? tls_ : grpc::InsecureChannelCredentials();
    return grpc::CreateCustomChannel(e.target, creds, args);
  }

  // etcd's auth: a token from Authenticate, sent as the "token" metadata of every request.
  Status Authorize(grpc::ClientContext* ctx) {
    if (options_.user.empty()) return OkStatus();
    if (token_.empty()) {
      etcdserverpb::AuthenticateRequest request;
      request.set_name(options_.user);
      request.set_password(options_.password);
      etcdserverpb::AuthenticateResponse response;
      grpc::ClientContext auth_ctx;
      auth_ctx.set_deadline(std::chrono::system_clock::now() + options_.request_timeout);
      grpc::Status s =
          etcdserverpb::Auth::NewStub(channel_)->Authenticate(&auth_ctx, request, &response);
      if (!s.ok()) {
        Status out = FromGrpc("authenticate as " + options_.user, Current(), s);
        if (out.code() == Code::kUnavailable) NextEndpoint();
        return out;
      }
      token_ = response.token();
    }
    ctx->AddMetadata("token", token_);
    return OkStatus();
  }

  Status Call(const std::string& what,
              const std::function<grpc::Status(grpc::ClientContext*)>& rpc) {
    RETURN_IF_ERROR(Connect());
    for (int attempt = 0;; ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + options_.request_timeout);
      RETURN_IF_ERROR(Authorize(&ctx));
      grpc::Status s = rpc(&ctx);
      if (s.ok()) return OkStatus();
      // An expired token (etcd's simple tokens last --auth-token-ttl): once more with a new one.
      if (attempt == 0 && !token_.empty() &&
          s.error_message().find("invalid auth token") != std::string::npos) {
        token_.clear();
        continue;
      }
      Status out = FromGrpc(what, Current(), s);
      if (out.code() == Code::kUnavailable) NextEndpoint();
      return out;
    }
  }

  V3ClientOptions options_;
  std::vector<Endpoint> endpoints_;
  std::shared_ptr<grpc::ChannelCredentials> tls_;
  size_t current_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::string token_;
  std::string last_dial_error_;
};

}  // namespace

Result<std::unique_ptr<V3Registry>> NewV3GrpcRegistry(const V3ClientOptions& options) {
  if (options.endpoints.empty()) return InvalidArgument("--discovery-endpoints is empty");
  const bool tls_configured = !options.insecure_transport || options.insecure_skip_tls_verify ||
                              !options.cert_file.empty() || !options.key_file.empty() ||
                              !options.cacert_file.empty();
  std::vector<Endpoint> endpoints;
  bool any_tls = false;
  for (const std::string& text : options.endpoints) {
    ASSIGN_OR_RETURN(Endpoint e, ParseEndpoint(text, tls_configured));
    any_tls |= e.tls;
    endpoints.push_back(std::move(e));
  }
  std::shared_ptr<grpc::ChannelCredentials> tls;
  if (any_tls) {
    // etcd's --discovery-cacert (else the system roots), a client certificate from
    // --discovery-cert/--discovery-key, and --discovery-insecure-skip-tls-verify.
    ASSIGN_OR_RETURN(
        tls, NewGrpcClientCredentials({options.cacert_file, options.cert_file, options.key_file,
                                       options.insecure_skip_tls_verify, "--discovery-cacert",
                                       "--discovery-cert", "--discovery-key"}));
  }
  return std::unique_ptr<V3Registry>(
      std::make_unique<GrpcRegistry>(options, std::move(endpoints), std::move(tls)));
}

}  // namespace dolmen::discovery
