// Shared by the server tests that run a member on fakes.
#pragma once

#include <functional>
#include <future>
#include <memory>

#include "backend/backend.h"
#include "server/server.h"

namespace dolmen::server::fakes {

// Lets several Server lifetimes share one backend, as a restarted process shares its files.
class SharedBackend final : public backend::Backend {
 public:
  explicit SharedBackend(backend::Backend* base) : base_(base) {}
  Result<std::unique_ptr<backend::ReadTxn>> BeginRead() override { return base_->BeginRead(); }
  Result<std::unique_ptr<backend::WriteTxn>> BeginWrite() override { return base_->BeginWrite(); }
  Status Sync() override { return base_->Sync(); }
  uint64_t SizeBytes() override { return base_->SizeBytes(); }
  uint64_t SizeInUseBytes() override { return base_->SizeInUseBytes(); }
  Status CopyTo(const std::string& path) override { return base_->CopyTo(path); }
  Status Defragment() override { return base_->Defragment(); }

 private:
  backend::Backend* base_;
};

// Calls an asynchronous Server entry point and waits for its callback.
template <typename T>
Result<T> Wait(const std::function<void(Callback<T>)>& call) {
  std::promise<Result<T>> p;
  auto f = p.get_future();
  call([&p](Result<T> r) { p.set_value(std::move(r)); });
  return f.get();
}

}  // namespace dolmen::server::fakes
