#include "closed_loop.h"

namespace dolmen::bench {

ClosedLoop::ClosedLoop(const Options& options, int64_t total, ErrorLog* errors)
    : options_(options), total_(total), errors_(errors) {}

void ClosedLoop::Run(const std::vector<std::unique_ptr<UnaryClient>>& clients, Figures* figures) {
  slots_.resize(clients.size());
  for (size_t i = 0; i < clients.size(); ++i) {
    slots_[i].client = clients[i].get();
    slots_[i].latencies_ns.reserve(
        static_cast<size_t>(total_ / static_cast<int64_t>(clients.size()) + 1));
  }
  Clock::time_point begin = Clock::now();
  deadline_ = begin + std::chrono::duration_cast<Clock::duration>(
                          std::chrono::duration<double>(options_.max_seconds));
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_ = static_cast<int>(slots_.size());
  }
  for (Slot& slot : slots_) Next(&slot);
  // Requests carry their own deadline, so all are over shortly after the run's deadline.
  Clock::time_point hard =
      deadline_ + std::chrono::milliseconds(options_.request_timeout_ms) + std::chrono::seconds(5);
  std::unique_lock<std::mutex> lock(mu_);
  bool all_done = cv_.wait_until(lock, hard, [this] { return active_ == 0; });
  figures->seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  for (Slot& slot : slots_) {
    figures->latencies_ns.insert(figures->latencies_ns.end(), slot.latencies_ns.begin(),
                                 slot.latencies_ns.end());
  }
  figures->count = static_cast<int64_t>(figures->latencies_ns.size());
  figures->Finish();
  if (!all_done) AbandonRun("requests still in flight after the run's deadline");
}

void ClosedLoop::Next(Slot* slot) {
  Clock::time_point now = Clock::now();
  if (now >= deadline_ || tickets_.fetch_add(1) >= total_) {
    Finished();
    return;
  }
  slot->ctx = std::make_unique<grpc::ClientContext>();
  // gRPC deadlines take the system clock; our measurements use the steady one.
  slot->ctx->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::milliseconds(options_.request_timeout_ms));
  slot->start = now;
  slot->client->Start(slot->ctx.get(),
                      [this, slot](const grpc::Status& status) { OnDone(slot, status); });
}

void ClosedLoop::OnDone(Slot* slot, const grpc::Status& status) {
  if (status.ok()) {
    slot->latencies_ns.push_back(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - slot->start).count());
  } else {
    errors_->Add("code " + std::to_string(status.error_code()) + ": " + status.error_message());
  }
  Next(slot);
}

void ClosedLoop::Finished() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--active_ == 0) cv_.notify_all();
}

}  // namespace dolmen::bench
