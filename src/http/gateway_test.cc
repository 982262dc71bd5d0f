// The gateway's transcoding (gateway_json.h), its route table, and the Gateway against a small
// in-process gRPC server of fake services: what reaches the service (body fields, the
// Authorization header as metadata), how answers and errors come back, and a stream's chunks.
#include "http/gateway.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "http/client_port.h"
#include "http/gateway_json.h"
#include "http/gateway_routes.h"

namespace dolmen::http {
namespace {

TEST(GatewayJson, PrintsAsEtcdsGateway) {
  etcdserverpb::RangeResponse r;
  r.mutable_header()->set_cluster_id(7801232528081817440ull);
  r.mutable_header()->set_revision(2);
  auto* kv = r.add_kvs();
  kv->set_key("foo");
  kv->set_value("bar");
  kv->set_create_revision(2);
  kv->set_mod_revision(2);
  kv->set_version(1);
  r.set_count(1);
  // etcd 3.4's answer to the same range (apart from the ids it leaves out here).
  EXPECT_EQ(gateway::PrintJson(r),
            "{\"header\":{\"cluster_id\":\"7801232528081817440\",\"revision\":\"2\"},"
            "\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\","
            "\"version\":\"1\",\"value\":\"YmFy\"}],\"count\":\"1\"}");
  etcdserverpb::StatusResponse s;
  s.set_dbsize(24576);
  s.set_raftindex(9);
  EXPECT_EQ(gateway::PrintJson(s), "{\"dbSize\":\"24576\",\"raftIndex\":\"9\"}");
  etcdserverpb::LeaseGrantResponse g;
  g.set_id(5);
  g.set_ttl(30);
  EXPECT_EQ(gateway::PrintJson(g), "{\"ID\":\"5\",\"TTL\":\"30\"}");
  etcdserverpb::HashResponse h;
  h.set_hash(2424535185u);  // uint32: a number, as jsonpb writes it
  EXPECT_EQ(gateway::PrintJson(h), "{\"hash\":2424535185}");
  mvccpb::Event e;
  e.set_type(mvccpb::Event::DELETE);
  EXPECT_EQ(gateway::PrintJson(e), "{\"type\":\"DELETE\"}");
}

TEST(GatewayJson, ParsesOrigAndJsonNamesAndIgnoresUnknownFields) {
  etcdserverpb::TxnRequest t;
  ASSERT_TRUE(gateway::ParseJson(
                  R"({"compare":[{"key":"Zm9v","result":"EQUAL","target":"CREATE",
                      "create_revision":"0"}],"success":[{"request_put":{"key":"Zm9v",
                      "value":"YmFy"}}],"unknown":[1,{"x":2}]})",
                  &t)
                  .ok());
  ASSERT_EQ(t.compare_size(), 1);
  EXPECT_EQ(t.compare(0).target(), etcdserverpb::Compare::CREATE);
  EXPECT_EQ(t.success(0).request_put().value(), "bar");
  etcdserverpb::RangeRequest r;
  ASSERT_TRUE(gateway::ParseJson(R"({"key":"Zm9v","rangeEnd":"Zm9w","limit":5})", &r).ok());
  EXPECT_EQ(r.range_end(), "fop");
  EXPECT_EQ(r.limit(), 5);
  etcdserverpb::RangeRequest empty;
  EXPECT_TRUE(gateway::ParseJson(" \n", &empty).ok());  // no body: the empty request
}

TEST(GatewayJson, RefusesMalformedAndMistypedBodies) {
  etcdserverpb::RangeRequest r;
  for (const char* bad : {"{", R"({"key":5})", R"({"limit":"abc"})", "[1]", "nonsense"}) {
    Status s = gateway::ParseJson(bad, &r);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad;
    EXPECT_FALSE(s.message().empty()) << bad;
  }
}

TEST(GatewayJson, SplitsAStreamBodyIntoValues) {
  std::vector<std::string_view> v;
  ASSERT_TRUE(gateway::SplitJsonValues(R"( {"a":"}{"} {"b":[{}]}
{"c":"\"}"})",
                                       &v)
                  .ok());
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0], R"({"a":"}{"})");
  EXPECT_EQ(v[1], R"({"b":[{}]})");
  EXPECT_EQ(v[2], R"({"c":"\"}"})");
  v.clear();
  Status cut = gateway::SplitJsonValues(R"({"a":1} {"b":)", &v);
  EXPECT_EQ(cut.message(), "unexpected EOF");
  EXPECT_EQ(v.size(), 1u);
}

TEST(GatewayJson, ErrorsAsGrpcGatewayWritesThem) {
  EXPECT_EQ(gateway::ErrorBody(3, "etcdserver: key is not provided"),
            "{\"error\":\"etcdserver: key is not provided\",\"message\":\"etcdserver: key is not "
            "provided\",\"code\":3}");
  EXPECT_EQ(gateway::ErrorBody(2, "\"leader\" <x>"),
            "{\"error\":\"\\\"leader\\\" \\u003cx\\u003e\",\"message\":\"\\\"leader\\\" "
            "\\u003cx\\u003e\",\"code\":2}");
  EXPECT_EQ(gateway::StreamErrorChunk(14, "etcdserver: no leader"),
            "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no "
            "leader\",\"http_status\":\"Service Unavailable\"}}");
  EXPECT_EQ(gateway::HttpStatusFromGrpcCode(5), 404);
  EXPECT_EQ(gateway::HttpStatusFromGrpcCode(9), 412);
  EXPECT_EQ(gateway::HttpStatusFromGrpcCode(12), 501);
  EXPECT_EQ(gateway::HttpStatusFromGrpcCode(16), 401);
  EXPECT_EQ(gateway::HttpStatusFromGrpcCode(8), 429);
}

TEST(GatewayRoutes, EveryRouteNamesCompiledTypesAndOneKind) {
  size_t n = 0;
  const gateway::Route* routes = gateway::AllRoutes(&n);
  EXPECT_EQ(n, 48u);
  for (size_t i = 0; i < n; ++i) {
    const auto* request = routes[i].request_type();
    const auto* response = routes[i].response_type();
    // The method's own types, as its service declares them.
    const auto* pool = google::protobuf::DescriptorPool::generated_pool();
    std::string method = routes[i].method;  // "/pkg.Service/Method"
    const size_t slash = method.rfind('/');
    const auto* service = pool->FindServiceByName(method.substr(1, slash - 1));
    ASSERT_NE(service, nullptr) << routes[i].path;
    const auto* m = service->FindMethodByName(method.substr(slash + 1));
    ASSERT_NE(m, nullptr) << routes[i].path;
    EXPECT_EQ(m->input_type(), request) << routes[i].path;
    EXPECT_EQ(m->output_type(), response) << routes[i].path;
    EXPECT_EQ(m->server_streaming(), routes[i].kind != gateway::CallKind::kUnary) << routes[i].path;
  }
  EXPECT_EQ(std::string(gateway::FindRoute("/v3/maintenance/hash")->method),
            "/etcdserverpb.Maintenance/Hash");  // not HashKV: etcd's first registration wins
  EXPECT_EQ(gateway::FindRoute("/v3/kv/range/"), nullptr);
  EXPECT_EQ(GatewayPath("/v3beta/kv/put"), "/v3/kv/put");
  EXPECT_EQ(GatewayPath("/v3alpha/watch"), "/v3/watch");
  EXPECT_EQ(GatewayPath("/health"), "/health");
}

// Range answers with the request's key and the caller's authorization metadata as a kv; Put
// fails with the key as the message, under the code named by the value.
class FakeKv final : public etcdserverpb::KV::CallbackService {
  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* ctx,
                                  const etcdserverpb::RangeRequest* request,
                                  etcdserverpb::RangeResponse* response) override {
    auto* kv = response->add_kvs();
    kv->set_key(request->key());
    auto auth = ctx->client_metadata().find("authorization");
    if (auth != ctx->client_metadata().end()) {
      kv->set_value(std::string(auth->second.data(), auth->second.size()));
    }
    auto forwarded = ctx->client_metadata().find("x-forwarded-for");
    if (forwarded != ctx->client_metadata().end()) {
      auto* f = response->add_kvs();
      f->set_key("x-forwarded-for");
      f->set_value(std::string(forwarded->second.data(), forwarded->second.size()));
    }
    response->set_count(request->limit());
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx,
                                const etcdserverpb::PutRequest* request,
                                etcdserverpb::PutResponse*) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(
        grpc::Status(static_cast<grpc::StatusCode>(std::stoi(request->value())), request->key()));
    return reactor;
  }
};

// Watch: one response per create request (watch_id = its start_revision), then `extra` more.
class FakeWatch final : public etcdserverpb::Watch::CallbackService {
 public:
  int extra = 0;
  grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>* Watch(
      grpc::CallbackServerContext*) override {
    class Reactor final
        : public grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse> {
     public:
      explicit Reactor(int extra) : left_(extra) { StartRead(&request_); }
      void OnReadDone(bool ok) override {
        if (!ok) return WriteMore();  // the client's requests are all in
        ids_.push_back(request_.create_request().start_revision());
        StartRead(&request_);
      }
      void OnWriteDone(bool ok) override {
        if (!ok) return Finish(grpc::Status::CANCELLED);
        WriteMore();
      }
      void OnDone() override { delete this; }

     private:
      void WriteMore() {
        response_.Clear();
        if (next_ < ids_.size()) {
          response_.set_watch_id(ids_[next_++]);
          response_.set_created(true);
        } else if (left_ > 0) {
          --left_;
          response_.add_events()->mutable_kv()->set_key("k" + std::to_string(left_));
        } else {
          return Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: no leader"));
        }
        StartWrite(&response_);
      }
      etcdserverpb::WatchRequest request_;
      etcdserverpb::WatchResponse response_;
      std::vector<int64_t> ids_;
      size_t next_ = 0;
      int left_;
    };
    return new Reactor(extra);
  }
};

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&kv_);
    builder.RegisterService(&watch_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    gateway_ = std::make_unique<Gateway>();
    gateway_->Connect(server_->InProcessChannel(grpc::ChannelArguments()));
  }
  void TearDown() override {
    gateway_->Shutdown();
    server_->Shutdown();
  }
  Response Post(const std::string& path, const std::string& body,
                std::map<std::string, std::string> headers = {}, std::string peer_ip = "") {
    Request r;
    r.peer_ip = std::move(peer_ip);
    r.method = "POST";
    r.path = path;
    r.body = body;
    r.headers = std::move(headers);
    return gateway_->Serve(r, path);
  }
  // The whole body of a response, its stream read to the end.
  static std::string ReadAll(const Response& r) {
    std::string out = r.body;
    if (r.stream == nullptr) return out;
    for (int i = 0; i < 1000; ++i) {  // bounded: the fakes end their streams
      if (r.stream->Read(&out) != BodyStream::Next::kMore) return out;
    }
    ADD_FAILURE() << "stream did not end";
    return out;
  }
  static std::string HeaderOf(const Response& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return "";
  }

  FakeKv kv_;
  FakeWatch watch_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Gateway> gateway_;
};

TEST_F(GatewayTest, UnaryCallCarriesBodyAndAuthorization) {
  Response r = Post("/v3/kv/range", R"({"key":"Zm9v","limit":"7"})",
                    {{"authorization", "tok.1"}, {"host", "h:1"}}, "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(HeaderOf(r, "Content-Type"), "application/json");
  EXPECT_EQ(HeaderOf(r, "Grpc-Metadata-Content-Type"), "application/grpc");
  // "tok.1" in base64: the token reached the service as etcd's auth reads it.
  EXPECT_EQ(r.body, R"({"kvs":[{"key":"Zm9v","value":"dG9rLjE="}],"count":"7"})");
  // The client's address after the X-Forwarded-For list, as grpc-gateway forwards it.
  Response f = Post("/v3/kv/range", "{}", {{"x-forwarded-for", "192.0.2.7"}}, "10.0.0.1");
  EXPECT_EQ(f.body, "{\"kvs\":[{},{\"key\":\"eC1mb3J3YXJkZWQtZm9y\",\"value\":\"" +
                        std::string("MTkyLjAuMi43LCAxMC4wLjAuMQ==") + "\"}]}");
}

TEST_F(GatewayTest, ErrorsKeepCodeAndMessage) {
  Response r = Post("/v3/kv/put", R"({"key":"ZXRjZHNlcnZlcjogbm8gbGVhZGVy","value":"MTQ="})");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, gateway::ErrorBody(14, "etcdserver: no leader"));
  EXPECT_EQ(HeaderOf(r, "Trailer"), "Grpc-Trailer-Content-Type");
  Response bad = Post("/v3/kv/range", "{");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("\"code\":3}"), std::string::npos) << bad.body;
  // Auth is not among the fake's services: UNIMPLEMENTED comes back as 501.
  Response missing = Post("/v3/auth/authenticate", "{}");
  EXPECT_EQ(missing.status, 501);
  EXPECT_EQ(Post("/v3/kv/nope", "{}").status, 404);
  Request get;
  get.method = "GET";
  EXPECT_EQ(gateway_->Serve(get, "/v3/kv/range").status, 405);
  Response timeout = Post("/v3/kv/range", "{}", {{"grpc-timeout", "5x"}});
  EXPECT_EQ(timeout.status, 400);
  EXPECT_EQ(timeout.body, gateway::ErrorBody(3, "invalid grpc-timeout: 5x"));
}

TEST_F(GatewayTest, StreamsResultsThenTheError) {
  watch_.extra = 2;
  Response r =
      Post("/v3/watch", R"({"create_request":{"start_revision":"4"}} {"create_request":{}})");
  EXPECT_EQ(r.status, 200);
  ASSERT_NE(r.stream, nullptr);
  EXPECT_EQ(ReadAll(r),
            "{\"result\":{\"watch_id\":\"4\",\"created\":true}}\n"
            "{\"result\":{\"created\":true}}\n"
            "{\"result\":{\"events\":[{\"kv\":{\"key\":\"azE=\"}}]}}\n"
            "{\"result\":{\"events\":[{\"kv\":{\"key\":\"azA=\"}}]}}\n" +
                gateway::StreamErrorChunk(14, "etcdserver: no leader"));
}

TEST_F(GatewayTest, StreamFailingAtOnceTakesTheErrorsStatus) {
  Response r = Post("/v3/watch", "");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(ReadAll(r), gateway::StreamErrorChunk(14, "etcdserver: no leader"));
  Response bad = Post("/v3/watch", "{");
  EXPECT_EQ(bad.status, 500);  // the decoder's plain error: UNKNOWN, as grpc-gateway
  EXPECT_EQ(bad.body, gateway::ErrorBody(2, "unexpected EOF"));
}

// The queue holds 64 responses: reading pauses when it is full and resumes as the reader
// takes them, and nothing is lost on the way.
TEST_F(GatewayTest, AStreamLongerThanItsQueueArrivesWhole) {
  watch_.extra = 500;  // far more than the queue holds
  Response r = Post("/v3/watch", R"({"create_request":{}})");
  ASSERT_NE(r.stream, nullptr);
  std::string out = ReadAll(r);
  size_t lines = 0;
  for (char c : out) lines += c == '\n';
  EXPECT_EQ(lines, 501u);
}

TEST_F(GatewayTest, RefusesCallsAfterShutdown) {
  gateway_->Shutdown();
  Response r = Post("/v3/kv/range", "{}");
  EXPECT_EQ(r.status, 503);
}

}  // namespace
}  // namespace dolmen::http
