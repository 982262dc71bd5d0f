// What each kind of client URL carries (ClientTraffic, etcd 3.5's --listen-client-http-urls):
// HTTP/1 and HTTP/2 connections to a gRPC+HTTP, a gRPC-only and an HTTP-only URL, on unix-domain
// sockets in a temporary directory.
#include "transport/client_listener.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace dolmen::transport {
namespace {

constexpr char kHttpAnswer[] = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
constexpr char kHttp1Request[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
// HTTP/2's client preface and an empty SETTINGS frame: gRPC answers with its SETTINGS.
constexpr char kHttp2Preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
constexpr size_t kHttp2PrefaceBytes = sizeof(kHttp2Preface) - 1;

// Sends `request` to the unix socket at `path` and returns every byte answered until the server
// closes (at most 5 s; a reset counts as a close).
std::string Exchange(const std::string& path, std::string_view request) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << path;
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  std::string answer;
  char buf[4096];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
    // gRPC keeps an HTTP/2 connection open: its first frame is enough.
    if (answer.size() >= 9 && !answer.starts_with("HTTP/")) break;
  }
  ::close(fd);
  return answer;
}

class ClientListenerTrafficTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/dolmen-client-listener-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    // gRPC needs one service (the generic one answers UNIMPLEMENTED) and answers the preface.
    grpc::ServerBuilder builder;
    builder.RegisterCallbackGenericService(&generic_);
    grpc_ = builder.BuildAndStart();
    ASSERT_NE(grpc_, nullptr);
    listener_ = std::make_unique<ClientListener>(std::vector<ClientUrl>{
        {"unix://both", "unix:" + Path("both"), false, ClientTraffic::kGrpcAndHttp},
        {"unix://grpc", "unix:" + Path("grpc"), false, ClientTraffic::kGrpcOnly},
        {"unix://http", "unix:" + Path("http"), false, ClientTraffic::kHttpOnly},
    });
    listener_->SetHttpHandler([](int fd, const ConnectionInfo&) {
      char buf[1024];
      (void)::recv(fd, buf, sizeof(buf), 0);
      (void)::send(fd, kHttpAnswer, sizeof(kHttpAnswer) - 1, MSG_NOSIGNAL);
      ::close(fd);
    });
    ASSERT_TRUE(listener_->Bind().ok());
    ASSERT_TRUE(listener_->Start(grpc_.get()).ok());
  }
  void TearDown() override {
    if (listener_) listener_->Stop();
    if (grpc_) grpc_->Shutdown();
    std::filesystem::remove_all(dir_);
  }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
  grpc::CallbackGenericService generic_;
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<ClientListener> listener_;
};

TEST_F(ClientListenerTrafficTest, GrpcAndHttpUrlServesBoth) {
  EXPECT_EQ(Exchange(Path("both"), kHttp1Request), kHttpAnswer);
  const std::string h2 = Exchange(Path("both"), {kHttp2Preface, kHttp2PrefaceBytes});
  ASSERT_GE(h2.size(), 9u) << "gRPC did not answer the preface";
  EXPECT_EQ(h2[3], 4) << "gRPC's first frame is its SETTINGS";
}

TEST_F(ClientListenerTrafficTest, GrpcOnlyUrlClosesHttp1Unanswered) {
  EXPECT_EQ(Exchange(Path("grpc"), kHttp1Request), "");
  const std::string h2 = Exchange(Path("grpc"), {kHttp2Preface, kHttp2PrefaceBytes});
  ASSERT_GE(h2.size(), 9u) << "gRPC did not answer the preface";
  EXPECT_EQ(h2[3], 4);
}

TEST_F(ClientListenerTrafficTest, HttpOnlyUrlClosesHttp2Unanswered) {
  EXPECT_EQ(Exchange(Path("http"), kHttp1Request), kHttpAnswer);
  EXPECT_EQ(Exchange(Path("http"), {kHttp2Preface, kHttp2PrefaceBytes}), "");
}

TEST(ClientUrlTest, ServesFollowsTheTraffic) {
  ClientUrl both{"u", "t", false, ClientTraffic::kGrpcAndHttp};
  ClientUrl grpc_only{"u", "t", false, ClientTraffic::kGrpcOnly};
  ClientUrl http_only{"u", "t", false, ClientTraffic::kHttpOnly};
  EXPECT_TRUE(both.serves_grpc() && both.serves_http());
  EXPECT_TRUE(grpc_only.serves_grpc() && !grpc_only.serves_http());
  EXPECT_TRUE(!http_only.serves_grpc() && http_only.serves_http());
}

}  // namespace
}  // namespace dolmen::transport
