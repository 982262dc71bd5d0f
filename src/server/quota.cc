#include "server/quota.h"

#include <algorithm>

namespace dolmen::server {

uint64_t QuotaCost(const etcdserverpb::PutRequest& r) {
  return kQuotaKvOverhead + r.key().size() + r.value().size();
}

uint64_t QuotaCost(const etcdserverpb::TxnRequest& r) {
  auto branch = [](const auto& ops) {
    uint64_t sum = 0;
    for (const auto& op : ops) {
      if (op.has_request_put()) sum += QuotaCost(op.request_put());
    }
    return sum;
  };
  return std::max(branch(r.success()), branch(r.failure()));
}

}  // namespace dolmen::server
