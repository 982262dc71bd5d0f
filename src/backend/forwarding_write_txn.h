// A write transaction that forwards every call to another. Decorators derive from it and
// override only what they count, watch or break: the simulator's crashable backend and the
// server tests' backends that fail or check commits.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backend/backend.h"

namespace dolmen::backend {

class ForwardingWriteTxn : public WriteTxn {
 public:
  explicit ForwardingWriteTxn(std::unique_ptr<WriteTxn> base) : base_(std::move(base)) {}
  Result<std::optional<std::string>> Get(std::string_view b, std::string_view k) override {
    return base_->Get(b, k);
  }
  Result<std::optional<std::string_view>> GetView(std::string_view b, std::string_view k) override {
    return base_->GetView(b, k);
  }
  Status Scan(std::string_view b, std::string_view start, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) override {
    return base_->Scan(b, start, end, fn);
  }
  Result<std::vector<std::string>> Buckets() override { return base_->Buckets(); }
  Status Put(std::string_view b, std::string_view k, std::string_view v) override {
    return base_->Put(b, k, v);
  }
  Status Delete(std::string_view b, std::string_view k) override { return base_->Delete(b, k); }
  Status ClearBucket(std::string_view b) override { return base_->ClearBucket(b); }
  Status Commit() override { return base_->Commit(); }

 protected:
  std::unique_ptr<WriteTxn> base_;
};

}  // namespace dolmen::backend
