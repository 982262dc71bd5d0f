#include "backend/memory_backend.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "base/check.h"
#include "base/coding.h"

namespace dolmen::backend {
namespace {

using Bucket = std::map<std::string, std::string, std::less<>>;
// Buckets are immutable once published; a writer copies a bucket the first time it touches it.
using Root = std::map<std::string, std::shared_ptr<const Bucket>, std::less<>>;

// A view into `bucket`: published buckets never change, and a write txn's own copy changes
// only on its next write, which is GetView's contract.
std::optional<std::string_view> GetViewFrom(const Bucket* bucket, std::string_view key) {
  if (bucket == nullptr) return std::nullopt;
  auto it = bucket->find(key);
  if (it == bucket->end()) return std::nullopt;
  return std::string_view(it->second);
}

std::optional<std::string> GetFrom(const Bucket* bucket, std::string_view key) {
  std::optional<std::string_view> v = GetViewFrom(bucket, key);
  if (!v) return std::nullopt;
  return std::string(*v);
}

void ScanFrom(const Bucket* bucket, std::string_view start, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) {
  if (bucket == nullptr) return;
  for (auto it = bucket->lower_bound(start); it != bucket->end(); ++it) {
    if (!end.empty() && std::string_view(it->first) >= end) break;
    if (!fn(it->first, it->second)) break;
  }
}

const Bucket* Find(const Root& root, std::string_view name) {
  auto it = root.find(name);
  return it == root.end() ? nullptr : it->second.get();
}

std::vector<std::string> NamesOf(const Root& root) {
  std::vector<std::string> names;
  for (const auto& [name, bucket] : root) names.push_back(name);
  return names;
}

// The image format of CopyTo: a magic line, then per bucket its length-prefixed name, entry
// count (varint) and length-prefixed keys and values. For tests and the simulator only.
constexpr std::string_view kImageMagic = "dolmen-memory-image-1\n";

std::string EncodeImage(const Root& root) {
  std::string out(kImageMagic);
  for (const auto& [name, bucket] : root) {
    coding::PutLengthPrefixed(&out, name);
    coding::PutVarint64(&out, bucket->size());
    for (const auto& [k, v] : *bucket) {
      coding::PutLengthPrefixed(&out, k);
      coding::PutLengthPrefixed(&out, v);
    }
  }
  return out;
}

Result<Root> DecodeImage(std::string_view in, const std::string& path) {
  auto bad = [&] { return Corruption("memory backend image " + path + " is malformed"); };
  if (in.substr(0, kImageMagic.size()) != kImageMagic) return bad();
  in.remove_prefix(kImageMagic.size());
  Root root;
  while (!in.empty()) {
    auto name = coding::GetLengthPrefixed(&in);
    auto count = coding::GetVarint64(&in);
    if (!name || !count) return bad();
    auto bucket = std::make_shared<Bucket>();
    for (uint64_t i = 0; i < *count; ++i) {
      auto k = coding::GetLengthPrefixed(&in);
      auto v = coding::GetLengthPrefixed(&in);
      if (!k || !v) return bad();
      bucket->emplace(std::string(*k), std::string(*v));
    }
    root.emplace(std::string(*name), std::move(bucket));
  }
  return root;
}

class MemoryBackend;

class MemoryReadTxn final : public ReadTxn {
 public:
  explicit MemoryReadTxn(std::shared_ptr<const Root> root) : root_(std::move(root)) {}

  Result<std::optional<std::string>> Get(std::string_view bucket, std::string_view key) override {
    return GetFrom(Find(*root_, bucket), key);
  }
  Result<std::optional<std::string_view>> GetView(std::string_view bucket,
                                                  std::string_view key) override {
    return GetViewFrom(Find(*root_, bucket), key);
  }
  Status Scan(std::string_view bucket, std::string_view start, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) override {
    ScanFrom(Find(*root_, bucket), start, end, fn);
    return OkStatus();
  }
  Result<std::vector<std::string>> Buckets() override { return NamesOf(*root_); }

 private:
  std::shared_ptr<const Root> root_;
};

class MemoryBackend final : public Backend {
 public:
  MemoryBackend() : root_(std::make_shared<const Root>()) {}
  explicit MemoryBackend(Root root) : root_(std::make_shared<const Root>(std::move(root))) {}
  ~MemoryBackend() override { CHECK(!writer_open_) << "a WriteTxn outlived its Backend"; }

  Result<std::unique_ptr<ReadTxn>> BeginRead() override {
    return std::unique_ptr<ReadTxn>(std::make_unique<MemoryReadTxn>(Snapshot()));
  }
  Result<std::unique_ptr<WriteTxn>> BeginWrite() override;
  Status Sync() override { return OkStatus(); }
  uint64_t SizeBytes() override { return SizeInUseBytes(); }
  uint64_t SizeInUseBytes() override {
    uint64_t total = 0;
    for (const auto& [name, bucket] : *Snapshot()) {
      for (const auto& [k, v] : *bucket) total += k.size() + v.size();
    }
    return total;
  }
  Status CopyTo(const std::string& path) override {
    if (std::ifstream(path).good()) return Status(Code::kAlreadyExists, path + " exists");
    std::string image = EncodeImage(*Snapshot());
    std::ofstream out(path, std::ios::binary);
    out.write(image.data(), static_cast<std::streamsize>(image.size()));
    out.close();
    if (!out) return IoError("write " + path);
    return OkStatus();
  }
  // Nothing to compact: the size is always the size in use. Same precondition as LMDB's.
  Status Defragment() override {
    if (writer_open_) return Status(Code::kFailedPrecondition, "defragment with a write txn open");
    return OkStatus();
  }
  // Nothing to swap either: Finish is done at once, beside the writer as LMDB's.
  Result<std::unique_ptr<PreparedDefragment>> PrepareDefragment() override {
    class NothingToSwap final : public PreparedDefragment {
      Status Finish() override { return OkStatus(); }
    };
    return std::unique_ptr<PreparedDefragment>(std::make_unique<NothingToSwap>());
  }

  std::shared_ptr<const Root> Snapshot() {
    std::lock_guard lock(mu_);
    return root_;
  }
  void Publish(std::shared_ptr<const Root> root) {
    std::lock_guard lock(mu_);
    root_ = std::move(root);
  }
  void WriterDone() { writer_open_ = false; }

 private:
  std::mutex mu_;
  std::shared_ptr<const Root> root_;  // guarded by mu_
  std::atomic<bool> writer_open_ = false;
};

class MemoryWriteTxn final : public WriteTxn {
 public:
  MemoryWriteTxn(MemoryBackend* backend, std::shared_ptr<const Root> base)
      : backend_(backend), base_(std::move(base)) {}
  ~MemoryWriteTxn() override {
    if (!done_) backend_->WriterDone();
  }

  Result<std::optional<std::string>> Get(std::string_view bucket, std::string_view key) override {
    RETURN_IF_ERROR(CheckOpen());
    return GetFrom(View(bucket), key);
  }
  Result<std::optional<std::string_view>> GetView(std::string_view bucket,
                                                  std::string_view key) override {
    RETURN_IF_ERROR(CheckOpen());
    return GetViewFrom(View(bucket), key);
  }
  Status Scan(std::string_view bucket, std::string_view start, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) override {
    RETURN_IF_ERROR(CheckOpen());
    ScanFrom(View(bucket), start, end, fn);
    return OkStatus();
  }
  Status Put(std::string_view bucket, std::string_view key, std::string_view value) override {
    RETURN_IF_ERROR(CheckOpen());
    // Same limits as LMDB, so that code tested on the fake does not fail on the real thing.
    if (key.empty() || key.size() > kMaxKeyBytes) {
      return InvalidArgument("backend key must be 1.." + std::to_string(kMaxKeyBytes) + " bytes");
    }
    Mutable(bucket)->insert_or_assign(std::string(key), std::string(value));
    return OkStatus();
  }
  Status Delete(std::string_view bucket, std::string_view key) override {
    RETURN_IF_ERROR(CheckOpen());
    if (View(bucket) == nullptr) return OkStatus();
    Bucket* b = Mutable(bucket);
    if (auto it = b->find(key); it != b->end()) b->erase(it);
    return OkStatus();
  }
  Status ClearBucket(std::string_view bucket) override {
    RETURN_IF_ERROR(CheckOpen());
    if (View(bucket) == nullptr) return OkStatus();
    Mutable(bucket)->clear();
    return OkStatus();
  }
  Result<std::vector<std::string>> Buckets() override {
    RETURN_IF_ERROR(CheckOpen());
    std::vector<std::string> names = NamesOf(*base_);
    for (const auto& [name, bucket] : dirty_) {
      if (!Find(*base_, name)) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  Status Commit() override {
    RETURN_IF_ERROR(CheckOpen());
    auto root = std::make_shared<Root>(*base_);
    for (auto& [name, bucket] : dirty_) (*root)[name] = std::move(bucket);
    backend_->Publish(std::move(root));
    done_ = true;
    backend_->WriterDone();
    return OkStatus();
  }

 private:
  Status CheckOpen() const {
    if (done_) return Status(Code::kFailedPrecondition, "write txn already committed");
    return OkStatus();
  }
  const Bucket* View(std::string_view name) const {
    if (auto it = dirty_.find(name); it != dirty_.end()) return it->second.get();
    return Find(*base_, name);
  }
  Bucket* Mutable(std::string_view name) {
    if (auto it = dirty_.find(name); it != dirty_.end()) return it->second.get();
    const Bucket* base = Find(*base_, name);
    auto copy = base ? std::make_shared<Bucket>(*base) : std::make_shared<Bucket>();
    Bucket* raw = copy.get();
    dirty_.emplace(std::string(name), std::move(copy));
    return raw;
  }

  MemoryBackend* backend_;
  std::shared_ptr<const Root> base_;
  std::map<std::string, std::shared_ptr<Bucket>, std::less<>> dirty_;
  bool done_ = false;
};

Result<std::unique_ptr<WriteTxn>> MemoryBackend::BeginWrite() {
  bool expected = false;
  if (!writer_open_.compare_exchange_strong(expected, true)) {
    return Status(Code::kFailedPrecondition, "another write txn is open");
  }
  return std::unique_ptr<WriteTxn>(std::make_unique<MemoryWriteTxn>(this, Snapshot()));
}

}  // namespace

std::unique_ptr<Backend> NewMemoryBackend() { return std::make_unique<MemoryBackend>(); }

Result<std::unique_ptr<Backend>> OpenMemoryImage(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("open " + path);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSIGN_OR_RETURN(Root root, DecodeImage(bytes, path));
  return std::unique_ptr<Backend>(std::make_unique<MemoryBackend>(std::move(root)));
}

}  // namespace dolmen::backend
