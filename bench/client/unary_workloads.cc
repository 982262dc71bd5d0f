#include "unary_workloads.h"

#include <memory>
#include <random>

#include "closed_loop.h"
#include "keys.h"

namespace dolmen::bench {
namespace {

using etcdserverpb::Compare;

// Largest key space txn-put tracks revisions for (8 bytes a key).
constexpr int64_t kMaxTxnKeySpace = 10000000;

class PutClient : public UnaryClient {
 public:
  PutClient(etcdserverpb::KV::Stub* stub, KeyPicker* keys, int index, int val_size)
      : stub_(stub), keys_(keys), rng_(static_cast<uint64_t>(index) + 1) {
    request_.set_value(std::string(static_cast<size_t>(val_size), 'v'));
  }
  void Start(grpc::ClientContext* ctx, DoneFn done) override {
    request_.set_key(keys_->Key(keys_->Next(&rng_)));
    stub_->async()->Put(ctx, &request_, &response_, std::move(done));
  }

 private:
  etcdserverpb::KV::Stub* stub_;
  KeyPicker* keys_;
  std::mt19937_64 rng_;
  etcdserverpb::PutRequest request_;
  etcdserverpb::PutResponse response_;
};

class RangeClient : public UnaryClient {
 public:
  RangeClient(const Options& options, etcdserverpb::KV::Stub* stub, KeyPicker* keys, int index)
      : stub_(stub),
        keys_(keys),
        rng_(static_cast<uint64_t>(index) + 1),
        fixed_key_(!options.range_key.empty()) {
    request_.set_serializable(!options.linearizable);
    request_.set_limit(options.limit);
    if (fixed_key_) request_.set_key(options.range_key);
    if (fixed_key_ && options.prefix) request_.set_range_end(PrefixEnd(options.range_key));
  }
  void Start(grpc::ClientContext* ctx, DoneFn done) override {
    if (!fixed_key_) request_.set_key(keys_->Key(keys_->Next(&rng_)));
    stub_->async()->Range(ctx, &request_, &response_, std::move(done));
  }

 private:
  // etcd's rule: the smallest key greater than every key with this prefix; "\0" for "all".
  static std::string PrefixEnd(std::string key) {
    while (!key.empty()) {
      if (static_cast<unsigned char>(key.back()) < 0xff) {
        key.back() = static_cast<char>(key.back() + 1);
        return key;
      }
      key.pop_back();
    }
    return std::string(1, '\0');
  }

  etcdserverpb::KV::Stub* stub_;
  KeyPicker* keys_;
  std::mt19937_64 rng_;
  const bool fixed_key_;
  etcdserverpb::RangeRequest request_;
  etcdserverpb::RangeResponse response_;
};

// Kubernetes' optimistic update: put only if the key's mod_revision is the one last seen,
// else read the current one (the else branch) and try again next time. A failed compare is a
// conflict, not an error: it is what the pattern does under contention.
class TxnPutClient : public UnaryClient {
 public:
  TxnPutClient(const Options& options, etcdserverpb::KV::Stub* stub, KeyPicker* keys, int index,
               std::vector<std::atomic<int64_t>>* revisions, std::atomic<int64_t>* conflicts)
      : stub_(stub),
        keys_(keys),
        rng_(static_cast<uint64_t>(index) + 1),
        value_(static_cast<size_t>(options.val_size), 'v'),
        revisions_(revisions),
        conflicts_(conflicts) {}

  void Start(grpc::ClientContext* ctx, DoneFn done) override {
    key_index_ = keys_->Next(&rng_);
    std::string key = keys_->Key(key_index_);
    request_.Clear();
    response_.Clear();
    Compare* cmp = request_.add_compare();
    cmp->set_key(key);
    cmp->set_target(Compare::MOD);
    cmp->set_result(Compare::EQUAL);
    cmp->set_mod_revision((*revisions_)[static_cast<size_t>(key_index_)].load());
    auto* put = request_.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value_);
    request_.add_failure()->mutable_request_range()->set_key(key);
    stub_->async()->Txn(ctx, &request_, &response_,
                        [this, done = std::move(done)](const grpc::Status& status) {
                          if (status.ok()) Learn();
                          done(status);
                        });
  }

 private:
  void Learn() {
    auto& slot = (*revisions_)[static_cast<size_t>(key_index_)];
    if (response_.succeeded()) {
      slot.store(response_.header().revision());
      return;
    }
    conflicts_->fetch_add(1);
    const auto& responses = response_.responses();
    if (!responses.empty() && responses[0].response_range().kvs_size() > 0) {
      slot.store(responses[0].response_range().kvs(0).mod_revision());
    }
  }

  etcdserverpb::KV::Stub* stub_;
  KeyPicker* keys_;
  std::mt19937_64 rng_;
  const std::string value_;
  std::vector<std::atomic<int64_t>>* revisions_;
  std::atomic<int64_t>* conflicts_;
  int64_t key_index_ = 0;
  etcdserverpb::TxnRequest request_;
  etcdserverpb::TxnResponse response_;
};

void RunClients(const Options& options, const std::vector<std::unique_ptr<UnaryClient>>& clients,
                Report* report) {
  ClosedLoop loop(options, options.total, &report->errors);
  loop.Run(clients, &report->requests);
}

}  // namespace

void RunPut(const Options& options, Connections* conns, Report* report) {
  KeyPicker keys(options);
  std::vector<std::unique_ptr<UnaryClient>> clients;
  for (int i = 0; i < options.clients; ++i) {
    clients.push_back(std::make_unique<PutClient>(conns->Kv(i), &keys, i, options.val_size));
  }
  RunClients(options, clients, report);
}

void RunRange(const Options& options, Connections* conns, Report* report) {
  KeyPicker keys(options);
  std::vector<std::unique_ptr<UnaryClient>> clients;
  for (int i = 0; i < options.clients; ++i) {
    clients.push_back(std::make_unique<RangeClient>(options, conns->Kv(i), &keys, i));
  }
  RunClients(options, clients, report);
}

void RunTxnPut(const Options& options, Connections* conns, Report* report) {
  if (options.key_space > kMaxTxnKeySpace) {
    report->errors.Add("txn-put: --key-space above " + std::to_string(kMaxTxnKeySpace));
    return;
  }
  KeyPicker keys(options);
  std::vector<std::atomic<int64_t>> revisions(static_cast<size_t>(options.key_space));
  std::atomic<int64_t> conflicts{0};
  std::vector<std::unique_ptr<UnaryClient>> clients;
  for (int i = 0; i < options.clients; ++i) {
    clients.push_back(
        std::make_unique<TxnPutClient>(options, conns->Kv(i), &keys, i, &revisions, &conflicts));
  }
  RunClients(options, clients, report);
  report->extra["conflicts"] = static_cast<double>(conflicts.load());
}

}  // namespace dolmen::bench
