// Checks, through the generated descriptors, the facts etcd clients rely on:
// full gRPC method paths, streaming shape, and field numbers. The exhaustive
// field-by-field comparison against etcd's own descriptors lives in
// tests/wire/compare_descriptors.py; this test keeps the C++ side honest.

#include <gtest/gtest.h>

#include <string>

#include "dolmen/internal.pb.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "etcdserverpb/rpc.pb.h"
#include "mvccpb/kv.pb.h"
#include "v3electionpb/v3election.grpc.pb.h"
#include "v3lockpb/v3lock.grpc.pb.h"

namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::FieldDescriptor;
using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;

// dolmen_proto is a static library: a generated file's descriptors enter the
// generated pool only if something links its object. Touch one message per file.
void LinkAllProtoFiles() {
  (void)etcdserverpb::RangeRequest::descriptor();
  (void)mvccpb::KeyValue::descriptor();
  (void)v3lockpb::LockRequest::descriptor();
  (void)v3electionpb::CampaignRequest::descriptor();
  (void)dolmen::internal::InternalRequest::descriptor();
}

enum class Shape { kUnary, kServerStream, kClientStream, kBidi };

// gRPC's path for a method: "/<package>.<Service>/<Method>".
std::string Path(const MethodDescriptor* m) {
  return "/" + m->service()->full_name() + "/" + m->name();
}

// Looks `path` up in the generated pool and checks its streaming shape.
void ExpectMethod(const std::string& path, Shape shape) {
  SCOPED_TRACE(path);
  LinkAllProtoFiles();
  const auto slash = path.rfind('/');
  ASSERT_NE(slash, std::string::npos);
  const std::string service_name = path.substr(1, slash - 1);
  const std::string method_name = path.substr(slash + 1);
  const ServiceDescriptor* service =
      DescriptorPool::generated_pool()->FindServiceByName(service_name);
  ASSERT_NE(service, nullptr);
  const MethodDescriptor* method = service->FindMethodByName(method_name);
  ASSERT_NE(method, nullptr);
  EXPECT_EQ(Path(method), path);
  EXPECT_EQ(method->client_streaming(), shape == Shape::kClientStream || shape == Shape::kBidi);
  EXPECT_EQ(method->server_streaming(), shape == Shape::kServerStream || shape == Shape::kBidi);
}

TEST(WireTest, EveryMethodPathAndShapeMatchesEtcd) {
  struct Row {
    const char* path;
    Shape shape;
  };
  const Row rows[] = {
      {"/etcdserverpb.KV/Range", Shape::kUnary},
      {"/etcdserverpb.KV/Put", Shape::kUnary},
      {"/etcdserverpb.KV/DeleteRange", Shape::kUnary},
      {"/etcdserverpb.KV/Txn", Shape::kUnary},
      {"/etcdserverpb.KV/Compact", Shape::kUnary},
      {"/etcdserverpb.Watch/Watch", Shape::kBidi},
      {"/etcdserverpb.Lease/LeaseGrant", Shape::kUnary},
      {"/etcdserverpb.Lease/LeaseRevoke", Shape::kUnary},
      {"/etcdserverpb.Lease/LeaseKeepAlive", Shape::kBidi},
      {"/etcdserverpb.Lease/LeaseTimeToLive", Shape::kUnary},
      {"/etcdserverpb.Lease/LeaseLeases", Shape::kUnary},
      {"/etcdserverpb.Cluster/MemberAdd", Shape::kUnary},
      {"/etcdserverpb.Cluster/MemberRemove", Shape::kUnary},
      {"/etcdserverpb.Cluster/MemberUpdate", Shape::kUnary},
      {"/etcdserverpb.Cluster/MemberList", Shape::kUnary},
      {"/etcdserverpb.Cluster/MemberPromote", Shape::kUnary},
      {"/etcdserverpb.Maintenance/Alarm", Shape::kUnary},
      {"/etcdserverpb.Maintenance/Status", Shape::kUnary},
      {"/etcdserverpb.Maintenance/Defragment", Shape::kUnary},
      {"/etcdserverpb.Maintenance/Hash", Shape::kUnary},
      {"/etcdserverpb.Maintenance/HashKV", Shape::kUnary},
      {"/etcdserverpb.Maintenance/Snapshot", Shape::kServerStream},
      {"/etcdserverpb.Maintenance/MoveLeader", Shape::kUnary},
      {"/etcdserverpb.Maintenance/Downgrade", Shape::kUnary},
      {"/etcdserverpb.Auth/AuthEnable", Shape::kUnary},
      {"/etcdserverpb.Auth/AuthDisable", Shape::kUnary},
      {"/etcdserverpb.Auth/AuthStatus", Shape::kUnary},
      {"/etcdserverpb.Auth/Authenticate", Shape::kUnary},
      {"/etcdserverpb.Auth/UserAdd", Shape::kUnary},
      {"/etcdserverpb.Auth/UserGet", Shape::kUnary},
      {"/etcdserverpb.Auth/UserList", Shape::kUnary},
      {"/etcdserverpb.Auth/UserDelete", Shape::kUnary},
      {"/etcdserverpb.Auth/UserChangePassword", Shape::kUnary},
      {"/etcdserverpb.Auth/UserGrantRole", Shape::kUnary},
      {"/etcdserverpb.Auth/UserRevokeRole", Shape::kUnary},
      {"/etcdserverpb.Auth/RoleAdd", Shape::kUnary},
      {"/etcdserverpb.Auth/RoleGet", Shape::kUnary},
      {"/etcdserverpb.Auth/RoleList", Shape::kUnary},
      {"/etcdserverpb.Auth/RoleDelete", Shape::kUnary},
      {"/etcdserverpb.Auth/RoleGrantPermission", Shape::kUnary},
      {"/etcdserverpb.Auth/RoleRevokePermission", Shape::kUnary},
      {"/v3lockpb.Lock/Lock", Shape::kUnary},
      {"/v3lockpb.Lock/Unlock", Shape::kUnary},
      {"/v3electionpb.Election/Campaign", Shape::kUnary},
      {"/v3electionpb.Election/Proclaim", Shape::kUnary},
      {"/v3electionpb.Election/Leader", Shape::kUnary},
      {"/v3electionpb.Election/Observe", Shape::kServerStream},
      {"/v3electionpb.Election/Resign", Shape::kUnary},
  };
  for (const Row& row : rows) ExpectMethod(row.path, row.shape);
}

TEST(WireTest, ServicesHaveNoMethodsBeyondEtcds) {
  // Counts per service, so an extra or misspelled method cannot hide.
  const struct {
    const char* service;
    int methods;
  } counts[] = {
      {"etcdserverpb.KV", 5},      {"etcdserverpb.Watch", 1},       {"etcdserverpb.Lease", 5},
      {"etcdserverpb.Cluster", 5}, {"etcdserverpb.Maintenance", 8}, {"etcdserverpb.Auth", 17},
      {"v3lockpb.Lock", 2},        {"v3electionpb.Election", 5},
  };
  LinkAllProtoFiles();
  for (const auto& c : counts) {
    const ServiceDescriptor* s = DescriptorPool::generated_pool()->FindServiceByName(c.service);
    ASSERT_NE(s, nullptr) << c.service;
    EXPECT_EQ(s->method_count(), c.methods) << c.service;
  }
}

TEST(WireTest, GeneratedStubsUseTheSameServiceNames) {
  // grpc_cpp_plugin bakes "/<service_full_name>/<Method>" into the stubs.
  EXPECT_STREQ(etcdserverpb::KV::service_full_name(), "etcdserverpb.KV");
  EXPECT_STREQ(etcdserverpb::Watch::service_full_name(), "etcdserverpb.Watch");
  EXPECT_STREQ(etcdserverpb::Lease::service_full_name(), "etcdserverpb.Lease");
  EXPECT_STREQ(etcdserverpb::Cluster::service_full_name(), "etcdserverpb.Cluster");
  EXPECT_STREQ(etcdserverpb::Maintenance::service_full_name(), "etcdserverpb.Maintenance");
  EXPECT_STREQ(etcdserverpb::Auth::service_full_name(), "etcdserverpb.Auth");
  EXPECT_STREQ(v3lockpb::Lock::service_full_name(), "v3lockpb.Lock");
  EXPECT_STREQ(v3electionpb::Election::service_full_name(), "v3electionpb.Election");
}

// Checks field `name` of `message` has `number` and `type`.
void ExpectField(const Descriptor* message, const char* name, int number,
                 FieldDescriptor::Type type) {
  SCOPED_TRACE(message->full_name() + "." + name);
  const FieldDescriptor* f = message->FindFieldByName(name);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->number(), number);
  EXPECT_EQ(f->type(), type);
}

TEST(WireTest, SampleFieldNumbersMatchEtcd) {
  using F = FieldDescriptor;
  ExpectField(etcdserverpb::ResponseHeader::descriptor(), "cluster_id", 1, F::TYPE_UINT64);
  ExpectField(etcdserverpb::ResponseHeader::descriptor(), "raft_term", 4, F::TYPE_UINT64);
  ExpectField(etcdserverpb::RangeRequest::descriptor(), "sort_target", 6, F::TYPE_ENUM);
  ExpectField(etcdserverpb::RangeRequest::descriptor(), "max_create_revision", 13, F::TYPE_INT64);
  ExpectField(etcdserverpb::PutRequest::descriptor(), "ignore_lease", 6, F::TYPE_BOOL);
  ExpectField(etcdserverpb::Compare::descriptor(), "range_end", 64, F::TYPE_BYTES);
  ExpectField(etcdserverpb::Compare::descriptor(), "lease", 8, F::TYPE_INT64);
  ExpectField(etcdserverpb::StatusResponse::descriptor(), "dbSizeInUse", 9, F::TYPE_INT64);
  ExpectField(etcdserverpb::StatusResponse::descriptor(), "isLearner", 10, F::TYPE_BOOL);
  ExpectField(etcdserverpb::HashKVResponse::descriptor(), "hash_revision", 4, F::TYPE_INT64);
  ExpectField(etcdserverpb::WatchCreateRequest::descriptor(), "fragment", 8, F::TYPE_BOOL);
  ExpectField(etcdserverpb::WatchResponse::descriptor(), "fragment", 7, F::TYPE_BOOL);
  ExpectField(etcdserverpb::WatchResponse::descriptor(), "events", 11, F::TYPE_MESSAGE);
  ExpectField(etcdserverpb::LeaseGrantRequest::descriptor(), "TTL", 1, F::TYPE_INT64);
  ExpectField(etcdserverpb::MemberAddRequest::descriptor(), "isLearner", 2, F::TYPE_BOOL);
  ExpectField(etcdserverpb::AuthStatusResponse::descriptor(), "enabled", 2, F::TYPE_BOOL);
  ExpectField(etcdserverpb::AuthStatusResponse::descriptor(), "authRevision", 3, F::TYPE_UINT64);
  ExpectField(etcdserverpb::AuthUserAddRequest::descriptor(), "options", 3, F::TYPE_MESSAGE);
  ExpectField(mvccpb::KeyValue::descriptor(), "lease", 6, F::TYPE_INT64);
  ExpectField(mvccpb::Event::descriptor(), "prev_kv", 3, F::TYPE_MESSAGE);
}

TEST(WireTest, EnumValuesMatchEtcd) {
  EXPECT_EQ(mvccpb::Event::DELETE, 1);
  EXPECT_EQ(etcdserverpb::Compare::NOT_EQUAL, 3);
  EXPECT_EQ(etcdserverpb::Compare::LEASE, 4);
  EXPECT_EQ(etcdserverpb::RangeRequest::VALUE, 4);
  EXPECT_EQ(etcdserverpb::CORRUPT, 2);
  EXPECT_EQ(etcdserverpb::DowngradeRequest::CANCEL, 2);
}

TEST(WireTest, InternalRequestRoundTrips) {
  dolmen::internal::InternalRequest in;
  in.set_id(42);
  in.mutable_put()->set_key("k");
  in.mutable_put()->set_value("v");
  dolmen::internal::InternalRequest out;
  ASSERT_TRUE(out.ParseFromString(in.SerializeAsString()));
  EXPECT_EQ(out.id(), 42u);
  ASSERT_EQ(out.request_case(), dolmen::internal::InternalRequest::kPut);
  EXPECT_EQ(out.put().key(), "k");
}

}  // namespace
