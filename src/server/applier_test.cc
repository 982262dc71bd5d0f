// The apply path on entries no API would propose (found by tests/fuzz/apply_fuzzer): each is
// refused or ignored with the store unchanged, never reported as a storage failure, which
// would stop every member on the same committed entry.
#include "server/applier.h"

#include <gtest/gtest.h>

#include <memory>

#include "backend/memory_backend.h"
#include "base/clock.h"
#include "lease/lessor.h"
#include "mvcc/store.h"
#include "server/alarm_store.h"
#include "server/quota.h"

namespace dolmen::server {
namespace {

class ApplierTest : public ::testing::Test {
 protected:
  ApplierTest() : backend_(backend::NewMemoryBackend()) {
    auto store = mvcc::Store::Open(backend_.get());
    EXPECT_TRUE(store.ok());
    store_ = std::move(store).value();
    EXPECT_TRUE(alarms_.Load(backend_.get()).ok());
    applier_ = std::make_unique<Applier>(store_.get());
    applier_->set_leases(&lessor_, &clock_);
    applier_->set_alarms(&alarms_, &quota_, [] {});
  }

  std::unique_ptr<backend::Backend> backend_;
  std::unique_ptr<mvcc::Store> store_;
  AlarmStore alarms_;
  Quota quota_{0, [this] { return backend_->SizeBytes(); }};
  lease::Lessor lessor_{lease::LessorOptions{}};
  ManualClock clock_;
  std::unique_ptr<Applier> applier_;
};

TEST_F(ApplierTest, CommittedPutWithoutKeyIsRefusedNotAStorageFailure) {
  const Revision before = store_->CurrentRevision();
  internal::InternalRequest put;
  put.set_id(1);
  put.mutable_put()->set_value("v");
  ApplyResult result = applier_->Apply(put);
  EXPECT_EQ(result.status.code(), Code::kEmptyKey);
  EXPECT_FALSE(applier_->storage_failed());
  EXPECT_EQ(store_->CurrentRevision(), before);

  internal::InternalRequest txn;  // the same put inside a txn
  txn.set_id(2);
  txn.mutable_txn()->add_success()->mutable_request_put()->set_value("v");
  EXPECT_EQ(applier_->Apply(txn).status.code(), Code::kEmptyKey);
  EXPECT_FALSE(applier_->storage_failed());
  EXPECT_EQ(store_->CurrentRevision(), before);
}

TEST_F(ApplierTest, RaisingOrClearingNoAlarmChangesNothing) {
  for (auto action :
       {etcdserverpb::AlarmRequest::ACTIVATE, etcdserverpb::AlarmRequest::DEACTIVATE}) {
    internal::InternalRequest r;
    r.set_id(1);
    r.mutable_alarm()->set_action(action);  // member 0, alarm NONE: an empty backend key
    ApplyResult result = applier_->Apply(r);
    EXPECT_TRUE(result.status.ok()) << result.status.ToString();
    EXPECT_FALSE(applier_->storage_failed());
    EXPECT_TRUE(alarms_.Get(etcdserverpb::NONE).empty());
  }
  internal::InternalRequest raise;  // a real alarm still works
  raise.set_id(2);
  raise.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
  raise.mutable_alarm()->set_memberid(7);
  raise.mutable_alarm()->set_alarm(etcdserverpb::NOSPACE);
  EXPECT_TRUE(applier_->Apply(raise).status.ok());
  EXPECT_TRUE(alarms_.Active(etcdserverpb::NOSPACE));
}

}  // namespace
}  // namespace dolmen::server
