#include "discovery/srv_lookup.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>
#include <random>

namespace dolmen::discovery {
namespace {

// A resolver state of our own (res_ninit), so a lookup never shares _res with another thread.
class ResolverState {
 public:
  ResolverState() { std::memset(&state_, 0, sizeof(state_)); }
  ~ResolverState() {
    if (initialized_) res_nclose(&state_);
  }
  bool Init() { return initialized_ = res_ninit(&state_) == 0; }
  res_state get() { return &state_; }

  // "127.0.0.1:53": the first name server, for error messages as Go writes them.
  std::string FirstServer() const {
    if (state_.nscount <= 0) return "127.0.0.1:53";
    const sockaddr_in& a = state_.nsaddr_list[0];
    char ip[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &a.sin_addr, ip, sizeof(ip));
    return std::string(ip) + ":" + std::to_string(ntohs(a.sin_port));
  }

 private:
  struct __res_state state_;  // "struct": a function of the same name hides the type
  bool initialized_ = false;
};

// Why res_nsearch failed (-1). It fails on any rcode but NOERROR and on an empty answer, and
// leaves the response it read, if any, in `answer`: its header tells which failure it was (Go's
// words). With no response at all (timed out, refused) the buffer holds no response header.
Status QueryFailure(const std::vector<uint8_t>& answer) {
  const bool is_response = (answer[2] & 0x80) != 0;
  if (!is_response) {
    return Unavailable("no answer from the name server (timed out or connection refused)");
  }
  const int rcode = answer[3] & 0x0f;
  if (rcode == ns_r_noerror || rcode == ns_r_nxdomain) return NotFound("no such host");
  return Unavailable("server misbehaving");
}

class SeededFromDevice final : public Random {
 public:
  SeededFromDevice() : gen_(std::random_device{}()) {}
  uint64_t Next() override { return gen_(); }

 private:
  std::mt19937_64 gen_;
};

}  // namespace

Result<std::vector<SrvRecord>> LookupSrv(const std::string& service, const std::string& proto,
                                         const std::string& domain) {
  const std::string name = "_" + service + "._" + proto + "." + domain;
  ResolverState resolver;
  if (!resolver.Init()) {
    return Unavailable("lookup " + name + ": cannot read the resolver configuration");
  }
  const std::string where = "lookup " + name + " on " + resolver.FirstServer() + ": ";
  std::vector<uint8_t> answer(NS_MAXMSG);
  // res_nsearch, not res_nquery: like Go's resolver, it also tries resolv.conf's search
  // domains (after the name as given, which has at least `ndots` dots here).
  int size = res_nsearch(resolver.get(), name.c_str(), ns_c_in, ns_t_srv, answer.data(),
                         static_cast<int>(answer.size()));
  Result<std::vector<SrvRecord>> records =
      size > 0 ? ParseSrvAnswer(answer.data(), std::min<size_t>(size, answer.size()))
               : Result<std::vector<SrvRecord>>(QueryFailure(answer));
  if (!records.ok()) return Status(records.status().code(), where + records.status().message());
  SeededFromDevice random;
  OrderSrvRecords(&records.value(), &random);
  return records;
}

Result<std::string> ResolveTcpAddr(const std::string& host, const std::string& port) {
  const bool want_v6 = !host.empty() && host.front() == '[';
  std::string bare = want_v6 ? host.substr(1, host.size() - (host.back() == ']' ? 2 : 1)) : host;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(bare.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    return NotFound("lookup " + bare + ": " +
                    (rc == EAI_NONAME || rc == EAI_NODATA ? "no such host" : gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> list(found, freeaddrinfo);
  // Go's choice: the first address of the wanted family, else the first of any.
  const addrinfo* chosen = found;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if (a->ai_family == (want_v6 ? AF_INET6 : AF_INET)) {
      chosen = a;
      break;
    }
  }
  char ip[INET6_ADDRSTRLEN] = "";
  if (chosen->ai_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(chosen->ai_addr)->sin_addr, ip,
              sizeof(ip));
    return std::string(ip) + ":" + port;
  }
  if (chosen->ai_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(chosen->ai_addr)->sin6_addr, ip,
              sizeof(ip));
    return "[" + std::string(ip) + "]:" + port;
  }
  return NotFound("lookup " + bare + ": no IP address");
}

}  // namespace dolmen::discovery
