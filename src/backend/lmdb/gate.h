// Admission to an LMDB environment, so a defragmentation can close and reopen it under its
// users. Internal to this folder.
#pragma once

#include <condition_variable>
#include <mutex>

#include "base/check.h"

namespace dolmen::backend::lmdb_internal {

// Admission to the environment. Every read txn, the write txn, CopyTo and Sync are "users"
// between Enter and Leave; Defragment closes the gate, waits for the users to leave and has the
// environment to itself (it closes and reopens it) until it reopens the gate.
class Gate {
 public:
  void Enter() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return !closed_; });
    ++users_;
  }
  void Leave() {
    std::lock_guard lock(mu_);
    CHECK_GT(users_, 0);
    if (--users_ == 0) cv_.notify_all();
  }
  void CloseAndDrain() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return !closed_; });  // one defragmentation at a time
    closed_ = true;
    cv_.wait(lock, [this] { return users_ == 0; });
  }
  void Reopen() {
    std::lock_guard lock(mu_);
    closed_ = false;
    cv_.notify_all();
  }
  int users() {
    std::lock_guard lock(mu_);
    return users_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int users_ = 0;        // guarded by mu_
  bool closed_ = false;  // guarded by mu_
};

// Enter/Leave for the length of a scope.
class GateUse {
 public:
  explicit GateUse(Gate* gate) : gate_(gate) { gate_->Enter(); }
  ~GateUse() { gate_->Leave(); }
  GateUse(const GateUse&) = delete;
  GateUse& operator=(const GateUse&) = delete;

 private:
  Gate* gate_;
};

}  // namespace dolmen::backend::lmdb_internal
