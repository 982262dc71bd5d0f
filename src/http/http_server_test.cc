#include "http/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace dolmen::http {
namespace {

// The handler echoes what it parsed, so tests can see the request as the server saw it.
Response Echo(const Request& r) {
  Response out;
  out.headers = {{"Content-Type", "text/plain"}, {"X-Test", "1"}};
  out.body = r.method + " " + r.path;
  for (const auto& [k, v] : r.query) out.body += " q:" + k + "=" + v;
  out.body += " auth:" + r.Header("authorization") + " body:" + r.body;
  out.status = r.path == "/missing" ? 404 : 200;
  return out;
}

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

// Sends `request` on `fd` and reads until the server closes (requests say Connection: close).
std::string Exchange(int fd, const std::string& request) {
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  EXPECT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

std::string Body(const std::string& response) {
  const size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

TEST(HttpServer, ServesGetWithQueryAndHeaders) {
  HttpServer server(Echo);
  ASSERT_TRUE(server.Listen("127.0.0.1", "0").ok());
  ASSERT_EQ(server.ports().size(), 1u);
  const std::string got =
      Exchange(Connect(server.ports()[0]),
               "GET /readyz?verbose&exclude=a&exclude=b%2Cc HTTP/1.1\r\nHost: x\r\n"
               "Authorization: tok\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("X-Test: 1\r\n"), std::string::npos) << got;
  EXPECT_EQ(Body(got), "GET /readyz q:verbose= q:exclude=a q:exclude=b,c auth:tok body:");
}

TEST(HttpServer, CollectsPostBodiesAndStatus) {
  HttpServer server(Echo);
  ASSERT_TRUE(server.Listen("127.0.0.1", "0").ok());
  const std::string got = Exchange(Connect(server.ports()[0]),
                                   "POST /missing HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n"
                                   "Connection: close\r\n\r\n{\"key\":\"a\"}");
  EXPECT_EQ(got.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << got;
  EXPECT_EQ(Body(got), "POST /missing auth: body:{\"key\":\"a\"}");
}

TEST(HttpServer, RefusesBodiesOverTheLimit) {
  Options options;
  options.max_body_bytes = 4;
  HttpServer server(Echo, options);
  ASSERT_TRUE(server.Listen("127.0.0.1", "0").ok());
  const std::string got = Exchange(Connect(server.ports()[0]),
                                   "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
                                   "Connection: close\r\n\r\n0123456789");
  EXPECT_EQ(got.rfind("HTTP/1.1 413", 0), 0u) << got;
}

TEST(HttpServer, ListenReportsAPortInUse) {
  HttpServer first(Echo), second(Echo);
  ASSERT_TRUE(first.Listen("127.0.0.1", "0").ok());
  Status s = second.Listen("127.0.0.1", std::to_string(first.ports()[0]));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("address already in use"), std::string::npos) << s.message();
}

// The client port's listener accepts, peeks at the first bytes and hands HTTP/1.x over.
TEST(HttpServer, AdoptsAConnectionAcceptedElsewhereAfterAPeek) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  socklen_t len = sizeof a;
  getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
  int client = Connect(ntohs(a.sin_port));
  const std::string request = "GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(send(client, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  sockaddr_storage peer{};
  socklen_t peer_len = sizeof peer;
  int accepted = accept(listener, reinterpret_cast<sockaddr*>(&peer), &peer_len);
  ASSERT_GE(accepted, 0);
  char first[4];
  ASSERT_EQ(recv(accepted, first, sizeof first, MSG_PEEK), 4);
  EXPECT_EQ(std::string(first, 4), "GET ");

  HttpServer server(Echo);
  ASSERT_TRUE(server.AdoptConnection(accepted, reinterpret_cast<sockaddr*>(&peer), peer_len).ok());
  const std::string got = Exchange(client, "");
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
  EXPECT_EQ(Body(got), "GET /version auth: body:");
  close(listener);
}

// A body made while it is sent: two pieces with a pause longer than the idle timeout between
// them (a watch with no events for a while must not be cut), as chunks.
class PausingStream final : public BodyStream {
 public:
  Next Read(std::string* out) override {
    if (step_ == 1) std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    *out += step_ == 0 ? "first\n" : "second\n";
    return ++step_ == 2 ? Next::kEnd : Next::kMore;
  }

 private:
  int step_ = 0;
};

TEST(HttpServer, StreamsAChunkedBodyPastTheIdleTimeout) {
  Options options;
  options.idle_timeout_seconds = 1;
  HttpServer server(
      [](const Request&) {
        Response r;
        r.body = "head\n";
        r.stream = std::make_shared<PausingStream>();
        return r;
      },
      options);
  ASSERT_TRUE(server.Listen("127.0.0.1", "0").ok());
  const std::string got = Exchange(Connect(server.ports()[0]),
                                   "POST /w HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(got.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("head\n"), std::string::npos) << got;
  EXPECT_NE(got.find("first\n"), std::string::npos) << got;
  EXPECT_NE(got.find("second\n"), std::string::npos) << got;
  EXPECT_NE(got.find("\r\n0\r\n"), std::string::npos) << got;  // the last chunk
}

// A handler that waits longer than the idle timeout (a gateway Lock waiting for its turn) still
// gets its answer out.
TEST(HttpServer, AnswersAHandlerSlowerThanTheIdleTimeout) {
  Options options;
  options.idle_timeout_seconds = 1;
  HttpServer server(
      [](const Request&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2500));
        Response r;
        r.body = "late";
        return r;
      },
      options);
  ASSERT_TRUE(server.Listen("127.0.0.1", "0").ok());
  const std::string got = Exchange(Connect(server.ports()[0]),
                                   "POST /l HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(Body(got), "late") << got;
}

TEST(HttpServer, SendsFootersAsTrailers) {
  HttpServer server([](const Request&) {
    Response r;
    r.body = "{}";
    r.headers = {{"Trailer", "Grpc-Trailer-Content-Type"}};
    r.footers = {{"Grpc-Trailer-Content-Type", "application/grpc"}};
    return r;
  });
  ASSERT_TRUE(server.Listen("127.0.0.1", "0").ok());
  const std::string got = Exchange(Connect(server.ports()[0]),
                                   "POST /e HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(got.find("\r\n0\r\nGrpc-Trailer-Content-Type: application/grpc\r\n"), std::string::npos)
      << got;
}

}  // namespace
}  // namespace dolmen::http
