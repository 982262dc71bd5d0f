#include "transport/notifier.h"

#include <utility>

#include "transport/transport.h"

namespace dolmen::transport {

void Notifier::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  CHECK(!running_ && !stopping_) << "Notifier started twice";
  running_ = true;
  thread_ = std::thread([this] { Run(); });
}

void Notifier::Stop() {
  // Joining ourselves would hang: a callback must hand Stop to another thread.
  CHECK(std::this_thread::get_id() != thread_.get_id())
      << "Transport::Stop called from inside a transport callback";
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    unreachable_.clear();
    events_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Notifier::Unreachable(MemberId peer) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || !unreachable_.insert(peer).second) return;
  }
  cv_.notify_one();
}

void Notifier::SnapshotStatus(MemberId peer, bool ok) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    events_.push_back([this, peer, ok] {
      if (callbacks_->on_snapshot_status) callbacks_->on_snapshot_status(peer, ok);
    });
  }
  cv_.notify_one();
}

void Notifier::Refused(MemberId peer, Status why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    events_.push_back([this, peer, why = std::move(why)] {
      if (callbacks_->on_refused) callbacks_->on_refused(peer, why);
    });
  }
  cv_.notify_one();
}

void Notifier::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !unreachable_.empty() || !events_.empty(); });
    if (stopping_) return;
    std::set<MemberId> unreachable = std::exchange(unreachable_, {});
    std::deque<std::function<void()>> events = std::exchange(events_, {});
    lock.unlock();
    for (MemberId peer : unreachable) {
      if (callbacks_->on_unreachable) callbacks_->on_unreachable(peer);
    }
    for (auto& event : events) event();
    lock.lock();
  }
}

}  // namespace dolmen::transport
