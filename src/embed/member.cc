#include "embed/member.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <signal.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "api/auth_service.h"
#include "api/cluster_service.h"
#include "api/election_service.h"
#include "api/kv_service.h"
#include "api/lease_service.h"
#include "api/lock_service.h"
#include "api/maintenance_service.h"
#include "api/not_implemented.h"
#include "api/request_size.h"
#include "api/require_leader.h"
#include "api/slow_request_log.h"
#include "api/watch_service.h"
#include "embed/asg_bootstrap.h"
#include "embed/client_urls.h"
#include "embed/member_http.h"
#include "embed/peer_link.h"
#include "embed/removed_member.h"
#include "embed/srv_bootstrap.h"
#include "embed/systemd.h"
#include "embed/tls_config.h"
#include "embed/v3_bootstrap.h"
#include "embed/version.h"
#include "embed/watch_metrics.h"
#include "log/log.h"
#include "transport/client_listener.h"
#include "watch/hub.h"

namespace dolmen::embed {
namespace {

constexpr auto kShutdownGrace = std::chrono::seconds(5);
// A shutdown still running this long after it began ends the process: a stop that hangs (an RPC
// whose reply never comes) must not keep systemd's Restart= or a container runtime from acting.
constexpr auto kShutdownLimit = std::chrono::seconds(20);

// What the systemd helpers (embed/systemd.h) report: why the member is not ready yet, the
// watchdog stopping and resuming. All of it is worth an operator's attention.
void LogNotice(const std::string& line) { log::Warn(line); }

// Why the member stops by itself (a signal from outside leaves it kNone). The first reason wins.
// A removal is the cluster's decision, not a failure: like etcd, the process then exits 0, so
// supervisors (systemd, container restart policies) do not treat it as a crash.
enum class SelfStop { kNone, kRemoved, kFatal };

class SelfStopper {
 public:
  void Stop(SelfStop why) {
    SelfStop none = SelfStop::kNone;
    if (reason_.compare_exchange_strong(none, why)) kill(getpid(), SIGUSR1);
  }
  SelfStop reason() const { return reason_.load(); }
  int exit_code() const { return reason() == SelfStop::kRemoved ? 0 : 1; }

 private:
  std::atomic<SelfStop> reason_{SelfStop::kNone};
};

// From Arm() on, ends the process with `exit_code` unless Disarm() comes within `limit`.
class ShutdownDeadline {
 public:
  ~ShutdownDeadline() { Disarm(); }
  void Arm(std::chrono::seconds limit, int exit_code) {
    thread_ = std::thread([this, limit, exit_code] {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, limit, [this] { return disarmed_; })) return;
      log::Error("shutdown did not finish in time, exiting", {{"limit", limit}});
      log::Flush();
      std::fflush(nullptr);
      std::_Exit(exit_code);
    });
  }
  void Disarm() {
    {
      std::lock_guard lock(mu_);
      disarmed_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool disarmed_ = false;
  std::thread thread_;
};

// Test-only hook (tests/systemd/notify_test.py): with DOLMEN_TEST_STALL_DRIVER_AFTER_MS=N, the
// driver loop is blocked N ms after READY=1 by a task run through its inbox that waits until
// shutdown, so a test can watch the watchdog stop pinging a loop that is really stuck (a SIGSTOP
// would stop the pinger as well). Never set it outside tests: the member stops serving.
class TestDriverStall {
 public:
  ~TestDriverStall() { Release(); }
  void MaybeStart(server::Driver* driver) {
    const char* env = std::getenv("DOLMEN_TEST_STALL_DRIVER_AFTER_MS");
    if (env == nullptr || *env == '\0') return;
    const auto after = std::chrono::milliseconds(std::strtoll(env, nullptr, 10));
    log::Warn("test hook DOLMEN_TEST_STALL_DRIVER_AFTER_MS: the driver loop will stall",
              {{"after", after}});
    thread_ = std::thread([this, driver, after] {
      {
        std::unique_lock lock(mu_);
        if (cv_.wait_for(lock, after, [this] { return released_; })) return;
      }
      log::Warn("test hook: stalling the driver loop");
      driver->RunInOrder([this](Status) {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return released_; });
      });
    });
  }
  // Before the member stops: Driver::Stop joins the loop this holds.
  void Release() {
    {
      std::lock_guard lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;  // guarded by mu_
  std::thread thread_;
};

// Takes one of `signals` (blocked in every thread) if one comes within `wait`.
int TakeSignal(const sigset_t& signals, std::chrono::milliseconds wait) {
  timespec timeout{static_cast<time_t>(wait.count() / 1000),
                   static_cast<long>((wait.count() % 1000) * 1000000)};
  int sig = sigtimedwait(&signals, nullptr, &timeout);
  return sig > 0 ? sig : 0;
}

// The systemd watchdog, when the unit has WatchdogSec= (docs/systemd.md): null otherwise.
std::unique_ptr<Watchdog> StartWatchdog(server::Driver* driver) {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return nullptr;
  const auto period = std::chrono::microseconds(usec / 2);
  log::Info("systemd watchdog: WATCHDOG=1 while the driver loop answers",
            {{"interval", std::chrono::duration_cast<std::chrono::milliseconds>(period)}});
  auto dog = std::make_unique<Watchdog>(
      period, [driver](std::function<void(Status)> answer) { driver->RunInOrder(answer); },
      [](const char* state) { sd_notify(0, state); }, LogNotice);
  dog->Start();
  return dog;
}

// etcd's --max-concurrent-streams, --grpc-keepalive-* and --warning-unary-request-duration on
// the client port's gRPC server (etcd: v3rpc/grpc.go, embed/serve.go). `interceptors` are
// installed with the slow-request log (gRPC keeps only the last SetInterceptorCreators list).
void ApplyGrpcTuning(
    const Config& config, grpc::ServerBuilder* builder,
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors) {
  // etcd's default, math.MaxUint32, is "no limit": gRPC's own default.
  if (config.max_concurrent_streams < 4294967295u) {
    builder->AddChannelArgument(
        GRPC_ARG_MAX_CONCURRENT_STREAMS,
        static_cast<int>(std::min<uint64_t>(config.max_concurrent_streams, INT_MAX)));
  }
  // etcd pings each client every interval and drops it if no answer comes within the timeout;
  // both must be positive, as in etcd.
  if (config.grpc_keepalive_interval_ms > 0 && config.grpc_keepalive_timeout_ms > 0) {
    builder->AddChannelArgument(
        GRPC_ARG_KEEPALIVE_TIME_MS,
        static_cast<int>(std::min<int64_t>(config.grpc_keepalive_interval_ms, INT_MAX)));
    builder->AddChannelArgument(
        GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
        static_cast<int>(std::min<int64_t>(config.grpc_keepalive_timeout_ms, INT_MAX)));
  }
  if (config.grpc_keepalive_min_time_explicit) {
    // etcd's enforcement policy, when asked for: a client pinging more often than min-time
    // gets GOAWAY "too_many_pings" after two strikes, as from Go's gRPC server.
    builder->AddChannelArgument(
        GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
        static_cast<int>(std::min<int64_t>(config.grpc_keepalive_min_time_ms, INT_MAX)));
    builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  } else {
    // Clients such as etcdctl ping every few seconds; gRPC's default would answer that with
    // GOAWAY "too_many_pings" and cut long watches.
    builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
    builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  }
  // Keepalive pings flow (both ways) while a connection has no call open too.
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators =
      std::move(interceptors);
  creators.push_back(
      api::NewSlowRequestLog(std::chrono::nanoseconds(config.warning_unary_request_duration_ns)));
  builder->experimental().SetInterceptorCreators(std::move(creators));
}

// For the pieces that report through a plain callback (TLS contexts and handshakes, auto-TLS,
// DNS discovery): what they report is a warning (a refused handshake, a file that failed to
// reload, a certificate that encrypts but does not authenticate) or a step worth seeing.
void LogWarning(const std::string& line) { log::Warn(line); }
void LogStep(const std::string& line) { log::Info(line); }

// https client and metrics URLs: the server context, reloaded as its files change
// (docs/tls.md); null when no such URL is https.
Result<std::shared_ptr<tls::ReloadingContext>> NewLoggedClientTls(const Config& config) {
  ASSIGN_OR_RETURN(std::shared_ptr<tls::ReloadingContext> context,
                   NewClientTlsContext(config, LogWarning));
  if (context == nullptr) return context;
  const tls::Options& o = context->options();
  log::Info("client TLS",
            {{"cert-file", o.cert_file},
             {"client-cert-auth", o.RequiresClientCert()},
             {"trusted-ca-file",
              o.trusted_ca_file.empty() ? std::string("system roots") : o.trusted_ca_file}});
  return context;
}

void LogRemoved(const Status& why) {
  // etcd: "the member has been permanently removed from the cluster".
  log::Warn(
      "the member has been permanently removed from the cluster; its data dir must be removed "
      "before it joins the cluster again",
      {{"error", why.message()}});
}

// Under --discovery-aws-asg a removed member moves its data aside and starts again as a new
// member; a failure on the way stops it like etcd (exit 0 for a removal, 1 if the move failed).
int RejoinAsNewMember(const Config& config) {
  if (Status moved = MoveDataDirAside(config); !moved.ok()) {
    log::Error("cannot rejoin as a new member", {{"error", moved.message()}});
    return 1;
  }
  Status restarted = RestartSelf();
  log::Error("cannot rejoin as a new member", {{"error", restarted.message()}});
  return 1;
}

// One run of the member, until a signal or a self-stop. `*rejoin` is set (to the configuration
// the run used) when the member was removed and must start again as a new one.
int ServeMember(const Config& flags_config, std::optional<Config>* rejoin) {
  // --discovery-srv: the initial cluster from DNS, before anything else (docs/discovery.md).
  Config config = flags_config;
  if (Status s = BootstrapFromSrv(&config, LogStep); !s.ok()) {
    log::Error("error setting up initial cluster: " + s.message());
    return 1;
  }
  // --discovery-aws-asg: the initial cluster from the auto scaling group (docs/discovery.md).
  if (Status s = BootstrapFromAwsAsg(&config, LogStep); !s.ok()) {
    log::Error("error setting up initial cluster: " + s.message());
    return 1;
  }
  // --discovery-token: the initial cluster from the v3 discovery service (docs/discovery.md).
  if (Status s = BootstrapFromV3Discovery(&config, LogStep); !s.ok()) {
    log::Error("discovery failed", {{"discovery-token", config.discovery_token},
                                    {"discovery-endpoints", config.discovery_endpoints},
                                    {"error", s.message()}});
    if (IsDiscoveryTokenUsedUp(s)) {
      log::Warn("do not reuse discovery token; generate a new one to bootstrap a cluster");
    }
    return 1;
  }
  // Signals are taken synchronously by this thread (sigwait); every thread started below
  // inherits the mask, so none of them is interrupted.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);  // raised when the member stops by itself (SelfStopper)
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A write to a connection the client has closed must fail with EPIPE, not end the process:
  // OpenSSL writes TLS records with write(2), which raises SIGPIPE (tls/connection.h).
  signal(SIGPIPE, SIG_IGN);

  for (const auto& warning : config.startup_warnings) log::Warn(warning);
  if (config.bcrypt_cost < 4 || config.bcrypt_cost > 31) {
    // As etcd's auth store says it (the cost used is ServerConfig's, embed/config.cc).
    log::Warn("use default bcrypt cost instead of the invalid given cost",
              {{"min-cost", 4},
               {"max-cost", 31},
               {"default-cost", 10},
               {"given-cost", static_cast<uint64_t>(config.bcrypt_cost)}});
  }
  log::Info("starting dolmen", {{"dolmen-version", kDolmenVersion},
                                {"etcd-api-version", api::kEtcdApiVersion},
                                {"name", config.name},
                                {"data-dir", config.data_dir},
                                {"log-level", config.log_level},
                                {"log-outputs", config.log_outputs}});
  // Peer TLS first: a joining member already dials its peers while the data dir opens.
  Result<transport::TlsOptions> peer_tls = NewPeerTls(config, LogWarning);
  if (!peer_tls.ok()) {
    log::Error("cannot set up peer TLS, refusing to start",
               {{"error", peer_tls.status().message()}});
    return 1;
  }
  auto opened = server::Server::Open(ToServerConfig(config, *peer_tls));
  if (!opened.ok()) {
    log::Error("cannot open the data dir, refusing to start",
               {{"data-dir", config.data_dir}, {"error", opened.status().ToString()}});
    return 1;
  }
  std::unique_ptr<server::Server> member = std::move(opened).value();
  SelfStopper self_stop;
  member->SetFatalHandler([&self_stop](const Status& s) {
    if (s.code() == Code::kRemoved) {
      LogRemoved(s);
      self_stop.Stop(SelfStop::kRemoved);
      return;
    }
    log::Error("fatal storage error, stopping", {{"error", s.ToString()}});
    self_stop.Stop(SelfStop::kFatal);
  });
  // Watchers see every applied batch: the hub must observe from the first apply on.
  watch::HubOptions watch_options;
  watch_options.progress_interval =
      std::chrono::milliseconds(config.watch_progress_notify_interval_ms);
  watch::Hub watch_hub(member->store(), member->clock(), watch_options);
  WatchMetrics watch_metrics(&watch_hub, &metrics::DefaultRegistry());  // docs/http.md
  member->SetApplyObserver([&watch_hub](std::vector<mvcc::Event> events, Revision revision) {
    watch_hub.Notify(std::move(events), revision);
  });
  member->SetRestoreObserver([&watch_hub](Revision revision) { watch_hub.Restore(revision); });
  watch_hub.Start();
  // Peers: the transport listens on --listen-peer-urls and carries Raft messages both ways.
  PeerLink peers(member.get(), [&self_stop](const Status& why) {
    LogRemoved(why);
    self_stop.Stop(SelfStop::kRemoved);
  });
  transport::Options peer_options;
  peer_options.cluster_id = member->cluster_id();
  peer_options.self = member->member_id();
  peer_options.listen_urls = UrlTexts(config.listen_peer);
  peer_options.snapshot_dir = config.data_dir + "/member/snap";
  std::error_code dir_error;
  std::filesystem::create_directories(peer_options.snapshot_dir, dir_error);
  peer_options.tls = *peer_tls;
  if (Status s = peers.Start(peer_options); !s.ok()) {
    log::Error("cannot serve peers, refusing to start",
               {{"listen-peer-urls", config.listen_peer_urls}, {"error", s.message()}});
    member->Stop();
    return 1;
  }
  log::Info("serving peer traffic", {{"listen-peer-urls", UrlTexts(config.listen_peer)},
                                     {"local-member-id", log::Hex(member->member_id().value())},
                                     {"cluster-id", log::Hex(member->cluster_id().value())}});
  // etcd's --experimental-initial-corrupt-check: compare with the peers before serving.
  if (Status s = member->CheckInitialHashKv(); !s.ok()) {
    log::Error("initial corruption check failed, refusing to start", {{"error", s.message()}});
    member->Stop();
    peers.Stop();
    return 1;
  }
  member->Start();
  Result<std::shared_ptr<tls::ReloadingContext>> client_tls = NewLoggedClientTls(config);
  if (!client_tls.ok()) {
    log::Error("cannot serve clients over TLS, refusing to start",
               {{"error", client_tls.status().message()}});
    member->Stop();
    peers.Stop();
    return 1;
  }
  // The HTTP side (docs/http.md): health and metrics on --listen-metrics-urls from now on, so a
  // probe sees a member that is not serving yet; on the client URLs once they serve.
  MemberHttp http(member.get(), config);
  if (Status s = http.ListenMetrics(*client_tls); !s.ok()) {
    log::Error("cannot serve metrics, refusing to start", {{"error", s.message()}});
    member->Stop();
    peers.Stop();
    return 1;
  }
  for (const auto& u : config.listen_metrics) {
    log::Info("serving metrics and health", {{"listen-metrics-url", u.text}, {"tls", u.secure()}});
  }
  // From the start of the driver loop: joining a cluster may take long, and the loop must be
  // healthy meanwhile too.
  std::unique_ptr<Watchdog> watchdog = StartWatchdog(member->driver());
  // Like etcd (ReadyNotify), serve clients only once this member's name and client URLs are in
  // the replicated membership; a signal still stops it while it waits (e.g. without quorum).
  while (!member->WaitPublished(std::chrono::milliseconds(200))) {
    timespec no_wait{0, 0};
    int early = sigtimedwait(&signals, nullptr, &no_wait);
    if (early <= 0) continue;
    log::Info("stopping before serving clients");
    watchdog.reset();  // first, so no WATCHDOG=1 can follow STOPPING=1
    sd_notify(0, "STOPPING=1");
    http.Stop();
    member->Stop();
    peers.Stop();
    if (self_stop.reason() == SelfStop::kRemoved && !config.discovery_aws_asg.empty()) {
      *rejoin = config;  // after every listener and file of this run is closed
      return 0;
    }
    if (self_stop.reason() != SelfStop::kNone) return self_stop.exit_code();
    std::fflush(nullptr);
    signal(early, SIG_DFL);
    pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
    raise(early);
    return 128 + early;
  }

  // Ends streams that require a leader (clientv3's WithRequireLeader) once there is none.
  api::LeaderMonitor leader_monitor(member.get());
  leader_monitor.Start();
  api::KvService kv(member.get());
  api::LeaseService lease(member.get(), &leader_monitor);
  // Lock and Election wait on the watch hub (api/recipes.h), as etcd's recipes watch.
  api::WatchKeyWaiter key_waiter(&watch_hub);
  api::LockService lock(member.get(), &key_waiter);
  api::ElectionService election(member.get(), &key_waiter);
  api::MaintenanceService maintenance(member.get());
  api::ClusterService cluster(member.get());
  api::AuthService auth(member.get());
  api::CatchAllService catch_all;
  api::WatchService watch(member.get(), &watch_hub, &leader_monitor);

  // No listening ports of gRPC's own: our listener owns the client sockets and hands gRPC the
  // HTTP/2 connections (transport/client_listener.h), so HTTP/1 and TLS share the port.
  grpc::ServerBuilder builder;
  // The hard transport cap sits above etcd's limit so that api/ can answer requests between
  // the two with etcd's own message (see api/request_size.h).
  builder.SetMaxReceiveMessageSize(static_cast<int>(
      std::min<uint64_t>(4 * (config.max_request_bytes + api::kGrpcOverheadBytes), INT_MAX)));
  builder.SetMaxSendMessageSize(INT_MAX);
  {
    // grpc_server_* metrics (docs/http.md), alongside the slow-request log.
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> metrics;
    metrics.push_back(http.GrpcMetrics());
    ApplyGrpcTuning(config, &builder, std::move(metrics));
  }
  builder.RegisterService(&kv);
  builder.RegisterService(&lease);
  builder.RegisterService(&lock);
  builder.RegisterService(&election);
  builder.RegisterService(&maintenance);
  builder.RegisterService(&cluster);
  builder.RegisterService(&watch);
  builder.RegisterService(&auth);
  builder.RegisterCallbackGenericService(&catch_all);
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  // The JSON gateway calls these services in-process (docs/http.md); etcd's gateway takes
  // responses of any size.
  if (grpc_server != nullptr) {
    grpc::ChannelArguments gateway_args;
    gateway_args.SetMaxReceiveMessageSize(-1);
    http.ServeGateway(grpc_server->InProcessChannel(gateway_args));
  }
  const std::vector<transport::ClientUrl> client_urls =
      ClientListenerUrls(config.listen_client, config.listen_client_http);
  transport::ClientListener client_listener(client_urls);
  client_listener.SetHttpHandler(http.ClientHandler());
  // A second member on the same port is refused (etcd: "bind: address already in use") unless
  // the operator asks for sharing with etcd's --socket-reuse-port.
  client_listener.SetReusePort(config.socket_reuse_port);
  client_listener.SetTls(*client_tls, LogWarning);
  Status listening = grpc_server != nullptr ? client_listener.Bind()
                                            : Internal("the client gRPC server did not start");
  if (listening.ok()) listening = client_listener.Start(grpc_server.get());
  if (!listening.ok()) {
    log::Error("cannot listen for clients, refusing to start", {{"error", listening.message()}});
    client_listener.Stop();
    http.Stop();
    if (grpc_server) grpc_server->Shutdown();
    watchdog.reset();
    member->Stop();
    peers.Stop();
    return 1;
  }
  for (const auto& u : client_urls) {
    // etcd 3.5's "traffic" field: what this URL carries (--listen-client-http-urls splits them).
    log::Info("serving client traffic",
              {{u.traffic == transport::ClientTraffic::kHttpOnly ? "listen-client-http-url"
                                                                 : "listen-client-url",
                u.text},
               {"tls", u.tls},
               {"traffic", TrafficName(u.traffic)}});
  }

  // READY=1 once this member can serve a linearizable read: a read barrier (Raft ReadIndex,
  // the one Range uses) passed, so a leader with a quorum confirmed it and this member applied
  // everything committed before. Stricter than etcd 3.4, which is ready once published. A
  // signal meanwhile stops the member without READY=1.
  int sig = 0;
  TestDriverStall test_stall;
  const bool ready = WaitUntilLinearizable(
      [&member](std::function<void(Status)> answer) { member->driver()->ReadIndex(answer); },
      [&signals, &sig](std::chrono::milliseconds wait) {
        sig = TakeSignal(signals, wait);
        return sig != 0;
      },
      LogNotice);
  if (ready) {
    log::Info("serving linearizable reads, READY=1");
    sd_notify(0, "READY=1");
    test_stall.MaybeStart(member->driver());
    sigwait(&signals, &sig);
  }
  // The watchdog stops first: a ping sent after STOPPING=1 would be out of order (systemd stops
  // watching at STOPPING=1; a stop has TimeoutStopSec=).
  watchdog.reset();
  sd_notify(0, "STOPPING=1");
  test_stall.Release();
  switch (self_stop.reason()) {
    case SelfStop::kFatal:
      log::Error("shutting down after a fatal error");
      break;
    case SelfStop::kRemoved:
      log::Warn("shutting down: removed from the cluster");
      break;
    case SelfStop::kNone:
      log::Info(sig == SIGINT ? "received SIGINT, shutting down"
                              : "received SIGTERM, shutting down");
      break;
  }
  ShutdownDeadline deadline;
  deadline.Arm(kShutdownLimit,
               self_stop.reason() == SelfStop::kNone ? 128 + sig : self_stop.exit_code());
  // Watch streams never end by themselves: end them first, then in-flight RPCs get a grace
  // period to finish; the member then fails whatever is queued.
  // No new connections; those gRPC has (TLS ones through their proxies) get the grace period.
  client_listener.StopAccepting();
  http.Stop();
  watch.Shutdown();
  grpc_server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  member->Stop();
  peers.Stop();
  grpc_server->Wait();
  client_listener.Stop();
  deadline.Disarm();
  log::Info("stopped");
  if (self_stop.reason() == SelfStop::kRemoved && !config.discovery_aws_asg.empty()) {
    *rejoin = config;  // after every listener and file of this run is closed
    return 0;
  }
  if (self_stop.reason() != SelfStop::kNone) return self_stop.exit_code();
  // Like etcd, die by the signal that stopped us, so a supervisor sees "killed by SIGTERM".
  std::fflush(nullptr);
  signal(sig, SIG_DFL);
  pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
  raise(sig);
  return 128 + sig;
}

}  // namespace

int RunMember(const Config& flags_config) {
  std::optional<Config> rejoin;
  const int code = ServeMember(flags_config, &rejoin);
  return rejoin ? RejoinAsNewMember(*rejoin) : code;
}

}  // namespace dolmen::embed
