#include "api/errors.h"

namespace dolmen::api {
namespace {

struct Mapping {
  grpc::StatusCode code;
  const char* message;  // nullptr: use "etcdserver: " + the status message
};

Mapping Lookup(Code code) {
  using G = grpc::StatusCode;
  switch (code) {
    case Code::kEmptyKey:
      return {G::INVALID_ARGUMENT, "etcdserver: key is not provided"};
    case Code::kKeyNotFound:
      return {G::INVALID_ARGUMENT, "etcdserver: key not found"};
    case Code::kValueProvided:
      return {G::INVALID_ARGUMENT, "etcdserver: value is provided"};
    case Code::kLeaseProvided:
      return {G::INVALID_ARGUMENT, "etcdserver: lease is provided"};
    case Code::kTooManyOps:
      return {G::INVALID_ARGUMENT, "etcdserver: too many operations in txn request"};
    case Code::kDuplicateKey:
      return {G::INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request"};
    case Code::kCompacted:
      return {G::OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted"};
    case Code::kFutureRevision:
      return {G::OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision"};
    case Code::kNoSpace:
      return {G::RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded"};
    case Code::kRequestTooLarge:
      return {G::INVALID_ARGUMENT, "etcdserver: request is too large"};
    case Code::kTooManyRequests:
      return {G::RESOURCE_EXHAUSTED, "etcdserver: too many requests"};
    case Code::kLeaseNotFound:
      return {G::NOT_FOUND, "etcdserver: requested lease not found"};
    case Code::kLeaseExists:
      return {G::FAILED_PRECONDITION, "etcdserver: lease already exists"};
    case Code::kLeaseTtlTooLarge:
      return {G::OUT_OF_RANGE, "etcdserver: too large lease TTL"};
    case Code::kNoLeader:
      return {G::UNAVAILABLE, "etcdserver: no leader"};
    case Code::kNotLeader:
      return {G::FAILED_PRECONDITION, "etcdserver: not leader"};
    case Code::kLeaderChanged:
      return {G::UNAVAILABLE, "etcdserver: leader changed"};
    case Code::kTimeout:
      return {G::UNAVAILABLE, "etcdserver: request timed out"};
    case Code::kStopped:
    case Code::kRemoved:  // etcd answers what is in flight on a removed member with ErrStopped
      return {G::UNAVAILABLE, "etcdserver: server stopped"};
    case Code::kAuthOldRevision:
      return {G::INVALID_ARGUMENT, "etcdserver: revision of auth store is old"};
    case Code::kPermissionDenied:
      return {G::PERMISSION_DENIED, nullptr};
    case Code::kUnauthenticated:
      return {G::UNAUTHENTICATED, nullptr};
    case Code::kInvalidArgument:
      return {G::INVALID_ARGUMENT, nullptr};
    case Code::kNotFound:
      return {G::NOT_FOUND, nullptr};
    case Code::kAlreadyExists:
      return {G::ALREADY_EXISTS, nullptr};
    case Code::kFailedPrecondition:
      return {G::FAILED_PRECONDITION, nullptr};
    case Code::kOutOfRange:
      return {G::OUT_OF_RANGE, nullptr};
    case Code::kUnavailable:
      return {G::UNAVAILABLE, nullptr};
    case Code::kDeadlineExceeded:
      return {G::DEADLINE_EXCEEDED, nullptr};
    case Code::kCancelled:
      return {G::CANCELLED, nullptr};
    case Code::kResourceExhausted:
      return {G::RESOURCE_EXHAUSTED, nullptr};
    case Code::kUnimplemented:
      return {G::UNIMPLEMENTED, nullptr};
    case Code::kCorruption:
      return {G::DATA_LOSS, nullptr};
    case Code::kOk:
    case Code::kInternal:
    case Code::kIoError:
      break;
  }
  return {G::INTERNAL, nullptr};
}

}  // namespace

grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  Mapping m = Lookup(status.code());
  if (m.message != nullptr) return grpc::Status(m.code, m.message);
  return grpc::Status(m.code, "etcdserver: " + status.message());
}

grpc::Status NotImplemented(const std::string& method) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      "dolmen: " + method + " is not implemented yet");
}

}  // namespace dolmen::api
