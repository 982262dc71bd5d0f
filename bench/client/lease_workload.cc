#include <condition_variable>
#include <memory>
#include <mutex>

#include "closed_loop.h"
#include "stream_workloads.h"

namespace dolmen::bench {
namespace {

// Shared by every keep-alive stream: the ticket counter bounds the total, and `done` counts
// streams that finished (guarded by mu).
struct LeaseShared {
  int64_t total = 0;
  Clock::time_point deadline;
  std::atomic<int64_t> tickets{0};
  ErrorLog* errors = nullptr;
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
};

// One lease's keep-alive stream: write a keep-alive, read its reply, repeat while tickets
// last, then half-close. One operation in flight at a time, so members need no lock.
class KeepAliveStream : public grpc::ClientBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                                                       etcdserverpb::LeaseKeepAliveResponse> {
 public:
  KeepAliveStream(etcdserverpb::Lease::Stub* stub, int64_t lease_id, LeaseShared* shared,
                  Clock::time_point stream_deadline)
      : stub_(stub), shared_(shared) {
    request_.set_id(lease_id);
    // gRPC deadlines take the system clock.
    ctx_.set_deadline(std::chrono::system_clock::now() + (stream_deadline - Clock::now()));
  }

  void Begin() {
    stub_->async()->LeaseKeepAlive(&ctx_, this);
    StartCall();
    Next();
  }
  std::vector<int64_t>& latencies_ns() { return latencies_ns_; }

  void OnWriteDone(bool ok) override {
    if (ok) StartRead(&response_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone reports why
    if (response_.ttl() <= 0) {
      shared_->errors->Add("keep-alive: lease " + std::to_string(request_.id()) + " not found");
    } else {
      latencies_ns_.push_back(
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_).count());
    }
    Next();
  }
  void OnDone(const grpc::Status& status) override {
    if (!status.ok()) {
      shared_->errors->Add("keep-alive stream: code " + std::to_string(status.error_code()) + ": " +
                           status.error_message());
    } else if (!half_closed_) {
      shared_->errors->Add("keep-alive stream ended early");
    }
    std::lock_guard<std::mutex> lock(shared_->mu);
    ++shared_->done;
    shared_->cv.notify_all();
  }

 private:
  void Next() {
    start_ = Clock::now();
    if (start_ < shared_->deadline && shared_->tickets.fetch_add(1) < shared_->total) {
      StartWrite(&request_);
      return;
    }
    half_closed_ = true;
    StartWritesDone();
  }

  etcdserverpb::Lease::Stub* stub_;
  LeaseShared* shared_;
  grpc::ClientContext ctx_;
  etcdserverpb::LeaseKeepAliveRequest request_;
  etcdserverpb::LeaseKeepAliveResponse response_;
  Clock::time_point start_;
  bool half_closed_ = false;
  std::vector<int64_t> latencies_ns_;
};

Clock::time_point After(double seconds) {
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// Grants one lease per client, synchronously: set-up, not measured. 0 on failure.
int64_t Grant(etcdserverpb::Lease::Stub* stub, const Options& options, ErrorLog* errors) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(options.request_timeout_ms));
  etcdserverpb::LeaseGrantRequest request;
  request.set_ttl(options.lease_ttl_s);
  etcdserverpb::LeaseGrantResponse response;
  grpc::Status status = stub->LeaseGrant(&ctx, request, &response);
  if (!status.ok()) {
    errors->Add("lease grant: code " + std::to_string(status.error_code()) + ": " +
                status.error_message());
    return 0;
  }
  return response.id();
}

void Revoke(etcdserverpb::Lease::Stub* stub, const Options& options, int64_t id) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(options.request_timeout_ms));
  etcdserverpb::LeaseRevokeRequest request;
  request.set_id(id);
  etcdserverpb::LeaseRevokeResponse response;
  (void)stub->LeaseRevoke(&ctx, request, &response);  // best effort: the TTL ends it anyway
}

}  // namespace

void RunLeaseKeepAlive(const Options& options, Connections* conns, Report* report) {
  std::vector<int64_t> leases;
  for (int i = 0; i < options.clients; ++i) {
    int64_t id = Grant(conns->Lease(i), options, &report->errors);
    if (id == 0) return;
    leases.push_back(id);
  }
  LeaseShared shared;
  shared.total = options.total;
  shared.errors = &report->errors;
  shared.deadline = After(options.max_seconds);
  Clock::time_point stream_deadline =
      shared.deadline + std::chrono::milliseconds(options.request_timeout_ms);
  std::vector<std::unique_ptr<KeepAliveStream>> streams;
  for (int i = 0; i < options.clients; ++i) {
    streams.push_back(std::make_unique<KeepAliveStream>(
        conns->Lease(i), leases[static_cast<size_t>(i)], &shared, stream_deadline));
  }
  Clock::time_point begin = Clock::now();
  for (auto& stream : streams) stream->Begin();
  {
    std::unique_lock<std::mutex> lock(shared.mu);
    if (!shared.cv.wait_until(lock, stream_deadline + std::chrono::seconds(5),
                              [&] { return shared.done == options.clients; })) {
      AbandonRun("keep-alive streams still open after the run's deadline");
    }
  }
  Figures& figures = report->requests;
  figures.seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  for (auto& stream : streams) {
    auto& l = stream->latencies_ns();
    figures.latencies_ns.insert(figures.latencies_ns.end(), l.begin(), l.end());
  }
  figures.count = static_cast<int64_t>(figures.latencies_ns.size());
  figures.Finish();
  for (size_t i = 0; i < leases.size(); ++i)
    Revoke(conns->Lease(static_cast<int>(i)), options, leases[i]);
}

}  // namespace dolmen::bench
