#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tls/connection.h"
#include "tls/context.h"
#include "tls/identity.h"
#include "tls/refusal_probe.h"
#include "tls/self_cert.h"

namespace dolmen::tls {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/dolmen-tls-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

Options ServerOptions(const SelfCertFiles& files) {
  Options o;
  o.cert_file = files.cert_file;
  o.key_file = files.key_file;
  return o;
}

TEST(SelfCertTest, MadeOnceThenReused) {
  TempDir dir;
  std::vector<std::string> logs;
  auto log = [&](const std::string& line) { logs.push_back(line); };
  Result<SelfCertFiles> first = EnsureSelfCert(dir.path() + "/client", {"127.0.0.1"}, 1, log);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_NE(logs[0].find("(none yet)"), std::string::npos) << logs[0];
  EXPECT_EQ(std::filesystem::status(first->key_file).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  Result<SelfCertFiles> again = EnsureSelfCert(dir.path() + "/client", {"127.0.0.1"}, 1, log);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(logs.size(), 1u) << "a usable pair was replaced";
  EXPECT_TRUE(NewServerContext(ServerOptions(*again)).ok());
  EXPECT_EQ(EnsureSelfCert(dir.path() + "/x", {}, 0, log).status().message(),
            "selfSignedCertValidity is invalid,it should be greater than 0");
  EXPECT_EQ(EnsureSelfCert(dir.path() + "/x", {}, 101, log).status().message(),
            "selfSignedCertValidity 101 is too large: at most 100 (years)");
  EXPECT_TRUE(EnsureSelfCert(dir.path() + "/y", {"127.0.0.1"}, 100, log).ok());
}

TEST(SelfCertTest, UnparsableFilesAreReplaced) {
  TempDir dir;
  const std::string sub = dir.path() + "/peer";
  std::filesystem::create_directories(sub);
  std::ofstream(sub + "/cert.pem") << "not a certificate";
  std::ofstream(sub + "/key.pem") << "not a key";
  std::vector<std::string> logs;
  Result<SelfCertFiles> files =
      EnsureSelfCert(sub, {"localhost"}, 1, [&](const std::string& l) { logs.push_back(l); });
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_NE(logs[0].find("do not parse"), std::string::npos) << logs[0];
}

TEST(ReloadingContextTest, KeepsTheOldContextUntilNewFilesLoad) {
  TempDir dir;
  Result<SelfCertFiles> files = EnsureSelfCert(dir.path() + "/a", {"127.0.0.1"}, 1, nullptr);
  ASSERT_TRUE(files.ok());
  std::vector<std::string> logs;
  auto context = ReloadingContext::New(ReloadingContext::Kind::kServer, ServerOptions(*files),
                                       false, [&](const std::string& l) { logs.push_back(l); });
  ASSERT_TRUE(context.ok()) << context.status().ToString();
  SslCtxPtr first = (*context)->Current();
  EXPECT_EQ((*context)->Current(), first) << "rebuilt without a change";

  // A half-written certificate: the old context stays, and the failure is logged once.
  std::ofstream(files->cert_file, std::ios::trunc) << "-----BEGIN CERTIFICATE-----\n";
  EXPECT_EQ((*context)->Current(), first);
  EXPECT_EQ((*context)->Current(), first);
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_NE(logs[0].find("keeping the previous ones"), std::string::npos) << logs[0];

  // A whole new pair, renamed into place: the next connection gets a new context.
  Result<SelfCertFiles> other = EnsureSelfCert(dir.path() + "/b", {"127.0.0.1"}, 1, nullptr);
  ASSERT_TRUE(other.ok());
  std::filesystem::rename(other->key_file, files->key_file);
  std::filesystem::rename(other->cert_file, files->cert_file);
  SslCtxPtr renewed = (*context)->Current();
  EXPECT_NE(renewed, first);
  EXPECT_EQ((*context)->Current(), renewed);
}

// The auto-TLS renewal while serving (embed/tls_config.cc): the refresh runs before the files
// are looked at, so a pair it renews in place is used by that very connection, and it runs at
// most once per period however many connections arrive.
TEST(ReloadingContextTest, RefreshRunsAtMostOncePerPeriodAndItsRenewalIsUsedAtOnce) {
  TempDir dir;
  Result<SelfCertFiles> files = EnsureSelfCert(dir.path() + "/a", {"127.0.0.1"}, 1, nullptr);
  ASSERT_TRUE(files.ok());
  auto context =
      ReloadingContext::New(ReloadingContext::Kind::kServer, ServerOptions(*files), false, nullptr);
  ASSERT_TRUE(context.ok()) << context.status().ToString();
  SslCtxPtr first = (*context)->Current();
  int refreshes = 0;
  (*context)->SetRefresh(
      [&] {
        ++refreshes;
        Result<SelfCertFiles> renewed =
            EnsureSelfCert(dir.path() + "/b", {"127.0.0.1"}, 1, nullptr);
        ASSERT_TRUE(renewed.ok());
        std::filesystem::rename(renewed->key_file, files->key_file);
        std::filesystem::rename(renewed->cert_file, files->cert_file);
      },
      std::chrono::hours(1));
  SslCtxPtr after = (*context)->Current();
  EXPECT_EQ(refreshes, 1);
  EXPECT_NE(after, first) << "the renewed pair was not used by the connection that renewed it";
  EXPECT_EQ((*context)->Current(), after);
  EXPECT_EQ(refreshes, 1) << "refreshed again within the period";
}

TEST(ValidateTest, TheDialingPairComesWholeAndReplacesTheServersWhenDialing) {
  Options o;
  o.cert_file = "/s.pem";
  o.key_file = "/s.key";
  o.client_cert_file = "/c.pem";
  EXPECT_EQ(Validate(o).message(),
            "ClientKeyFile and ClientCertFile must both be present or both absent: key: , cert: "
            "/c.pem]");
  o.client_key_file = "/c.key";
  EXPECT_TRUE(Validate(o).ok());
  EXPECT_EQ(o.Dialing().cert_file, "/c.pem");
  EXPECT_EQ(o.Dialing().key_file, "/c.key");
  o.client_cert_file.clear();
  o.client_key_file.clear();
  EXPECT_EQ(o.Dialing().cert_file, "/s.pem");
}

TEST(ServerConnectionTest, ProxiesLargeStreamsBothWays) {
  TempDir dir;
  Result<SelfCertFiles> files = EnsureSelfCert(dir.path() + "/s", {"127.0.0.1"}, 1, nullptr);
  ASSERT_TRUE(files.ok());
  Result<SslCtxPtr> server_ctx = NewServerContext(ServerOptions(*files));
  Result<SslCtxPtr> client_ctx = NewClientContext(Options{}, /*skip_verify=*/true);
  ASSERT_TRUE(server_ctx.ok() && client_ctx.ok());
  int wire[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, wire), 0);
  Result<std::pair<int, int>> plain = NewSocketPair();
  ASSERT_TRUE(plain.ok());

  // The server side: handshake, then proxy to plain->first until the client closes.
  std::thread server([&] {
    auto connection = ServerConnection::Accept(*server_ctx, wire[0], 5000);
    ASSERT_TRUE(connection.ok()) << connection.status().ToString();
    char prefix[4];
    EXPECT_EQ((*connection)->Peek(prefix, sizeof(prefix), 5000), 4u);
    EXPECT_EQ(std::string(prefix, 4), "PRI ");
    (*connection)->ProxyTo(plain->first);
    ::close(plain->first);
  });
  // The plaintext server: echoes everything back.
  std::thread echo([&] {
    char buf[8192];
    while (true) {
      ssize_t n = ::read(plain->second, buf, sizeof(buf));
      if (n <= 0) break;
      for (ssize_t off = 0; off < n;) {
        ssize_t w = ::send(plain->second, buf + off, n - off, MSG_NOSIGNAL);
        if (w <= 0) return;
        off += w;
      }
    }
    ::close(plain->second);
  });

  SSL* ssl = SSL_new(client_ctx->get());
  SSL_set_fd(ssl, wire[1]);
  ASSERT_EQ(SSL_connect(ssl), 1) << LastSslError();
  // 4 MiB, far beyond every buffer on the way. One SSL object must not be read and written
  // by two threads at once, so one thread does both on a non-blocking socket, and
  // back-pressure cannot deadlock the test itself.
  std::string sent(4 << 20, '\0');
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>(i * 7 + 1);
  std::memcpy(sent.data(), "PRI ", 4);
  std::string received;
  ASSERT_EQ(::fcntl(wire[1], F_SETFL, ::fcntl(wire[1], F_GETFL) | O_NONBLOCK), 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  size_t off = 0;
  while (received.size() < sent.size() && std::chrono::steady_clock::now() < deadline) {
    short events = 0;
    if (off < sent.size()) {
      // A write that could not finish is retried with the same pointer and length.
      int n = SSL_write(ssl, sent.data() + off,
                        static_cast<int>(std::min<size_t>(65536, sent.size() - off)));
      if (n > 0) {
        off += static_cast<size_t>(n);
      } else {
        int error = SSL_get_error(ssl, n);
        ASSERT_TRUE(error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ)
            << LastSslError();
        events |= error == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
      }
    }
    char buf[16384];
    int n = SSL_read(ssl, buf, sizeof(buf));
    if (n > 0) {
      received.append(buf, static_cast<size_t>(n));
      continue;
    }
    int error = SSL_get_error(ssl, n);
    ASSERT_TRUE(error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE)
        << "the echo ended early: " << LastSslError();
    events |= error == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
    pollfd p{wire[1], events, 0};
    ASSERT_GE(::poll(&p, 1, 1000), 0);
  }
  EXPECT_TRUE(received == sent) << "echoed " << received.size() << " of " << sent.size();
  SSL_shutdown(ssl);
  ::shutdown(wire[1], SHUT_RDWR);
  server.join();
  echo.join();
  SSL_free(ssl);
  ::close(wire[0]);
  ::close(wire[1]);
}

TEST(ServerConnectionTest, RefusedHandshakeSaysWhy) {
  TempDir dir;
  Result<SelfCertFiles> files = EnsureSelfCert(dir.path() + "/s", {"127.0.0.1"}, 1, nullptr);
  ASSERT_TRUE(files.ok());
  Options o = ServerOptions(*files);
  o.client_cert_auth = true;  // and the client below has no certificate
  Result<SslCtxPtr> server_ctx = NewServerContext(o);
  Result<SslCtxPtr> client_ctx = NewClientContext(Options{}, true);
  ASSERT_TRUE(server_ctx.ok() && client_ctx.ok());
  int wire[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, wire), 0);
  std::thread client([&] {
    SSL* ssl = SSL_new(client_ctx->get());
    SSL_set_fd(ssl, wire[1]);
    SSL_connect(ssl);
    char c;
    SSL_read(ssl, &c, 1);  // TLS 1.3: the refusal arrives after the client's Finished
    SSL_free(ssl);
    ::shutdown(wire[1], SHUT_RDWR);
  });
  auto connection = ServerConnection::Accept(*server_ctx, wire[0], 5000);
  client.join();
  ASSERT_FALSE(connection.ok());
  EXPECT_NE(connection.status().message().find("peer did not return a certificate"),
            std::string::npos)
      << connection.status().message();
  ::close(wire[0]);
  ::close(wire[1]);
}

// Both ends of one handshake on a socketpair: the server's result and the client's.
struct Handshakes {
  Status server;
  Status client;
};

Handshakes HandshakeOverSocketPair(const SslCtxPtr& server_ctx, const SslCtxPtr& client_ctx,
                                   const std::string& host) {
  int wire[2];
  Handshakes out;
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, wire) != 0) {
    out.server = out.client = Internal("socketpair failed");
    return out;
  }
  std::thread client([&] {
    auto c = ClientConnection::Connect(client_ctx, wire[1], host, 5000, -1);
    out.client = c.status();
    if (c.ok()) {
      char byte;  // TLS 1.3: a refusal arrives after the client's Finished
      (*c)->ReadFull(&byte, 1, 2000).IgnoreError();
    }
    ::shutdown(wire[1], SHUT_RDWR);
  });
  {
    auto accepted = ServerConnection::Accept(server_ctx, wire[0], 5000);
    out.server = accepted.status();
  }
  ::shutdown(wire[0], SHUT_RDWR);  // ends the client's wait
  client.join();
  ::close(wire[0]);
  ::close(wire[1]);
  return out;
}

X509* LoadCert(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  X509* cert = f == nullptr ? nullptr : PEM_read_X509(f, nullptr, nullptr, nullptr);
  if (f != nullptr) std::fclose(f);
  return cert;
}

// A self-signed certificate is its own CA: with it as the trusted CA file on both sides, the
// chain verifies, and what is left to refuse is the identity.
TEST(PeerIdentityTest, AllowedCnAndHostAreCheckedInTheHandshake) {
  TempDir dir;
  Result<SelfCertFiles> files = EnsureSelfCert(dir.path() + "/p", {"127.0.0.1"}, 1, nullptr);
  ASSERT_TRUE(files.ok());
  Options o = ServerOptions(*files);
  o.trusted_ca_file = files->cert_file;
  o.client_cert_auth = true;
  Result<SslCtxPtr> server_ctx = NewServerContext(o);
  Result<SslCtxPtr> client_ctx = NewClientContext(o, false);
  ASSERT_TRUE(server_ctx.ok() && client_ctx.ok()) << server_ctx.status().ToString();
  Handshakes ok = HandshakeOverSocketPair(*server_ctx, *client_ctx, "127.0.0.1");
  EXPECT_TRUE(ok.server.ok()) << ok.server.ToString();
  EXPECT_TRUE(ok.client.ok()) << ok.client.ToString();

  // The dialing side checks the URL's host against the server's SANs.
  Handshakes wrong_host = HandshakeOverSocketPair(*server_ctx, *client_ctx, "127.0.0.9");
  EXPECT_FALSE(wrong_host.client.ok());
  EXPECT_NE(wrong_host.client.message().find("IP address mismatch"), std::string::npos)
      << wrong_host.client.message();

  // An allowed CN the certificate (subject O=dolmen, no CN) does not have: refused by the
  // accepting side, which says why.
  o.allowed_cn = "member";
  Result<SslCtxPtr> strict_ctx = NewServerContext(o);
  ASSERT_TRUE(strict_ctx.ok());
  Handshakes refused = HandshakeOverSocketPair(*strict_ctx, *client_ctx, "127.0.0.1");
  EXPECT_EQ(refused.server.message(),
            "TLS handshake failed: certificate CN \"\" is not the allowed CN \"member\" "
            "(--peer-cert-allowed-cn)");
}

TEST(PeerIdentityTest, SanCheckOfTheRemoteAddress) {
  TempDir dir;
  Result<SelfCertFiles> files =
      EnsureSelfCert(dir.path() + "/p", {"127.0.0.1", "127.0.0.2"}, 1, nullptr);
  ASSERT_TRUE(files.ok());
  X509* cert = LoadCert(files->cert_file);
  ASSERT_NE(cert, nullptr);
  EXPECT_TRUE(CheckSanCoversAddress(cert, "127.0.0.2").ok());
  EXPECT_EQ(CheckSanCoversAddress(cert, "127.0.0.3").message(),
            "certificate is valid for 127.0.0.1, 127.0.0.2, not 127.0.0.3 (the address the "
            "connection comes from; etcd's SAN check)");
  EXPECT_TRUE(NamesHost(cert, "127.0.0.1"));
  EXPECT_FALSE(NamesHost(cert, "localhost"));
  EXPECT_TRUE(CheckAllowedIdentity(cert, "", "127.0.0.2").ok());
  EXPECT_FALSE(CheckAllowedIdentity(cert, "", "127.0.0.7").ok());
  X509_free(cert);
}

}  // namespace
}  // namespace dolmen::tls

namespace dolmen::tls {
namespace {

// A TLS server on 127.0.0.1 (a port the kernel picks) that accepts one connection, handshakes
// with `ctx`, and on success holds the connection until the client closes it.
class OneShotServer {
 public:
  explicit OneShotServer(SslCtxPtr ctx) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), length) != 0 || ::listen(fd_, 1) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
      return;
    }
    port_ = std::to_string(ntohs(addr.sin_port));
    thread_ = std::thread([this, ctx = std::move(ctx)] {
      const int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) return;
      auto accepted = ServerConnection::Accept(ctx, conn, 5000);
      if (accepted.ok()) {
        char byte;
        (*accepted)->ReadFull(&byte, 1, 5000).IgnoreError();  // until the client closes
      }
      ::close(conn);
    });
  }
  ~OneShotServer() {
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  const std::string& port() const { return port_; }

 private:
  int fd_ = -1;
  std::string port_;
  std::thread thread_;
};

TEST(ProbeTlsRefusalTest, SaysWhichSideRefusedWhichCertificate) {
  TempDir dir;
  Result<SelfCertFiles> files = EnsureSelfCert(dir.path() + "/p", {"127.0.0.1"}, 1, nullptr);
  Result<SelfCertFiles> other = EnsureSelfCert(dir.path() + "/o", {"127.0.0.1"}, 1, nullptr);
  ASSERT_TRUE(files.ok() && other.ok());
  Options o = ServerOptions(*files);
  o.trusted_ca_file = files->cert_file;
  o.client_cert_auth = true;
  Result<SslCtxPtr> client_ctx = NewClientContext(o, false);
  Result<SslCtxPtr> server_ctx = NewServerContext(o);
  o.allowed_cn = "member";  // the certificate has no CN: the server refuses the client's
  Result<SslCtxPtr> strict_ctx = NewServerContext(o);
  Options stranger = ServerOptions(*other);
  stranger.trusted_ca_file = other->cert_file;  // does not trust the server's certificate
  Result<SslCtxPtr> stranger_ctx = NewClientContext(stranger, false);
  ASSERT_TRUE(client_ctx.ok() && server_ctx.ok() && strict_ctx.ok() && stranger_ctx.ok());

  {
    OneShotServer server(*strict_ctx);
    const std::string why = ProbeTlsRefusal(*client_ctx, "127.0.0.1", server.port(), 2000);
    EXPECT_TRUE(why.starts_with("the peer refused this member's certificate (TLS alert: ")) << why;
  }
  {
    OneShotServer server(*server_ctx);
    const std::string why = ProbeTlsRefusal(*stranger_ctx, "127.0.0.1", server.port(), 2000);
    EXPECT_TRUE(why.starts_with("this member refused the peer's certificate: ")) << why;
  }
  {
    OneShotServer server(*server_ctx);  // accepts, then waits for bytes that never come
    EXPECT_EQ(ProbeTlsRefusal(*client_ctx, "127.0.0.1", server.port(), 200), "");
  }
}

}  // namespace
}  // namespace dolmen::tls
