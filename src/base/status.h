// Status and Result<T>: how every module reports what can go wrong (a missing key, a compacted
// revision, a corrupt file). No exceptions cross a module boundary. The one table that turns a
// Code into etcd's gRPC code and exact message lives in src/api.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "base/check.h"

namespace dolmen {

// Codes name what happened, in Dolmen's terms. Generic codes first, then domain codes that
// etcd clients distinguish by message.
enum class Code {
  kOk = 0,
  // Generic.
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,
  kOutOfRange,
  kUnavailable,
  kDeadlineExceeded,
  kCancelled,
  kResourceExhausted,
  kUnimplemented,
  kInternal,
  kIoError,
  kCorruption,
  // MVCC.
  kCompacted,       // requested revision has been compacted
  kFutureRevision,  // requested revision is newer than the store
  // Request validation.
  kEmptyKey,
  kKeyNotFound,  // a txn op with no request, or ignore_value/ignore_lease on a missing key
  kTooManyOps,
  kDuplicateKey,
  kRequestTooLarge,
  kValueProvided,  // ignore_value set together with a value
  kLeaseProvided,  // ignore_lease set together with a lease
  // Lease.
  kLeaseNotFound,
  kLeaseExists,
  kLeaseTtlTooLarge,
  // Cluster and consensus.
  kNoLeader,
  kNotLeader,
  kLeaderChanged,
  kTimeout,
  kStopped,
  kRemoved,  // this member was removed from the cluster: it stops, and that is no failure
  kNoSpace,
  kTooManyRequests,  // the apply queue is full
  // Auth (src/auth): gRPC's PERMISSION_DENIED and UNAUTHENTICATED, and a request checked
  // against an auth store that changed before it was applied.
  kPermissionDenied,
  kUnauthenticated,
  kAuthOldRevision,
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "Corruption: wal segment 0000.log offset 4096: bad checksum" (for logs and tests).
  std::string ToString() const;

  // Marks a status as deliberately ignored (e.g. best-effort cleanup on shutdown).
  void IgnoreError() const {}

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status OkStatus() { return Status(); }
inline Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }
inline Status IoError(std::string m) { return {Code::kIoError, std::move(m)}; }
inline Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
inline Status Unimplemented(std::string m) { return {Code::kUnimplemented, std::move(m)}; }
inline Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }

// Result<T>: a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    CHECK(!status_.ok()) << "Result constructed from an ok Status without a value";
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & {
    CHECK(ok()) << status_.ToString();
    return *value_;
  }
  const T& value() const& {
    CHECK(ok()) << status_.ToString();
    return *value_;
  }
  T&& value() && {
    CHECK(ok()) << status_.ToString();
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace dolmen

// RETURN_IF_ERROR(expr): propagate a non-ok Status.
#define DOLMEN_CONCAT_INNER(a, b) a##b
#define DOLMEN_CONCAT(a, b) DOLMEN_CONCAT_INNER(a, b)
#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::dolmen::Status dolmen_status_ = (expr);        \
    if (!dolmen_status_.ok()) return dolmen_status_; \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr): unwrap a Result<T> or propagate its Status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(DOLMEN_CONCAT(dolmen_result_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
