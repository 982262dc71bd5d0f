#include "server/request_checks.h"

#include <gtest/gtest.h>

namespace dolmen::server {
namespace {

using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;

void AddPut(google::protobuf::RepeatedPtrField<RequestOp>* ops, const std::string& key) {
  ops->Add()->mutable_request_put()->set_key(key);
}

void AddDelete(google::protobuf::RepeatedPtrField<RequestOp>* ops, const std::string& key,
               const std::string& end = "") {
  auto* d = ops->Add()->mutable_request_delete_range();
  d->set_key(key);
  d->set_range_end(end);
}

TEST(RequestChecksTest, EmptyKeys) {
  EXPECT_EQ(CheckRange({}).code(), Code::kEmptyKey);
  EXPECT_EQ(CheckPut({}).code(), Code::kEmptyKey);
  EXPECT_EQ(CheckDeleteRange({}).code(), Code::kEmptyKey);
  TxnRequest t;
  t.add_compare();
  EXPECT_EQ(CheckTxn(t, 128).code(), Code::kEmptyKey);
}

TEST(RequestChecksTest, PutIgnoreFlags) {
  etcdserverpb::PutRequest p;
  p.set_key("k");
  p.set_ignore_value(true);
  p.set_value("v");
  EXPECT_EQ(CheckPut(p).code(), Code::kValueProvided);
  p.clear_value();
  p.set_ignore_lease(true);
  p.set_lease(5);
  EXPECT_EQ(CheckPut(p).code(), Code::kLeaseProvided);
}

TEST(RequestChecksTest, TooManyOps) {
  TxnRequest t;
  for (int i = 0; i < 3; ++i) AddPut(t.mutable_success(), "k" + std::to_string(i));
  EXPECT_TRUE(CheckTxn(t, 3).ok());
  EXPECT_EQ(CheckTxn(t, 2).code(), Code::kTooManyOps);
}

TEST(RequestChecksTest, EmptyOpIsKeyNotFound) {
  TxnRequest t;
  t.add_success();
  EXPECT_EQ(CheckTxn(t, 128).code(), Code::kKeyNotFound);
}

TEST(RequestChecksTest, DuplicatePutsRefused) {
  TxnRequest t;
  AddPut(t.mutable_success(), "a");
  AddPut(t.mutable_success(), "a");
  EXPECT_EQ(CheckTxn(t, 128).code(), Code::kDuplicateKey);
}

TEST(RequestChecksTest, SameKeyInThenAndElseIsFine) {
  TxnRequest t;
  AddPut(t.mutable_success(), "a");
  AddPut(t.mutable_failure(), "a");
  EXPECT_TRUE(CheckTxn(t, 128).ok());
}

TEST(RequestChecksTest, PutInsideDeletedRangeRefused) {
  TxnRequest t;
  AddDelete(t.mutable_success(), "a", "c");
  AddPut(t.mutable_success(), "b");
  EXPECT_EQ(CheckTxn(t, 128).code(), Code::kDuplicateKey);
  TxnRequest u;
  AddDelete(u.mutable_success(), "a", "c");
  AddPut(u.mutable_success(), "c");  // end is exclusive
  EXPECT_TRUE(CheckTxn(u, 128).ok());
  TxnRequest from_key;
  AddDelete(from_key.mutable_success(), "m", std::string(1, '\0'));
  AddPut(from_key.mutable_success(), "z");
  EXPECT_EQ(CheckTxn(from_key, 128).code(), Code::kDuplicateKey);
}

TEST(RequestChecksTest, NestedTxnBranchesChecked) {
  TxnRequest t;
  AddPut(t.mutable_success(), "a");
  auto* nested = t.add_success()->mutable_request_txn();
  AddPut(nested->mutable_success(), "a");
  EXPECT_EQ(CheckTxn(t, 128).code(), Code::kDuplicateKey);

  TxnRequest ok;
  auto* n2 = ok.add_success()->mutable_request_txn();
  AddPut(n2->mutable_success(), "x");
  AddPut(n2->mutable_failure(), "x");
  EXPECT_TRUE(CheckTxn(ok, 128).ok());
}

TEST(RequestChecksTest, ReadOnlyDetection) {
  TxnRequest t;
  t.add_success()->mutable_request_range()->set_key("a");
  EXPECT_TRUE(IsReadOnly(t));
  AddPut(t.mutable_failure(), "b");
  EXPECT_FALSE(IsReadOnly(t));
}

}  // namespace
}  // namespace dolmen::server
