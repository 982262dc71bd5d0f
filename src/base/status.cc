#include "base/status.h"

namespace dolmen {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kInvalidArgument:
      return "InvalidArgument";
    case Code::kNotFound:
      return "NotFound";
    case Code::kAlreadyExists:
      return "AlreadyExists";
    case Code::kFailedPrecondition:
      return "FailedPrecondition";
    case Code::kOutOfRange:
      return "OutOfRange";
    case Code::kUnavailable:
      return "Unavailable";
    case Code::kDeadlineExceeded:
      return "DeadlineExceeded";
    case Code::kCancelled:
      return "Cancelled";
    case Code::kResourceExhausted:
      return "ResourceExhausted";
    case Code::kUnimplemented:
      return "Unimplemented";
    case Code::kInternal:
      return "Internal";
    case Code::kIoError:
      return "IoError";
    case Code::kCorruption:
      return "Corruption";
    case Code::kCompacted:
      return "Compacted";
    case Code::kFutureRevision:
      return "FutureRevision";
    case Code::kEmptyKey:
      return "EmptyKey";
    case Code::kKeyNotFound:
      return "KeyNotFound";
    case Code::kTooManyOps:
      return "TooManyOps";
    case Code::kDuplicateKey:
      return "DuplicateKey";
    case Code::kRequestTooLarge:
      return "RequestTooLarge";
    case Code::kValueProvided:
      return "ValueProvided";
    case Code::kLeaseProvided:
      return "LeaseProvided";
    case Code::kLeaseNotFound:
      return "LeaseNotFound";
    case Code::kLeaseExists:
      return "LeaseExists";
    case Code::kLeaseTtlTooLarge:
      return "LeaseTtlTooLarge";
    case Code::kPermissionDenied:
      return "PermissionDenied";
    case Code::kUnauthenticated:
      return "Unauthenticated";
    case Code::kAuthOldRevision:
      return "AuthOldRevision";
    case Code::kNoLeader:
      return "NoLeader";
    case Code::kNotLeader:
      return "NotLeader";
    case Code::kLeaderChanged:
      return "LeaderChanged";
    case Code::kTimeout:
      return "Timeout";
    case Code::kStopped:
      return "Stopped";
    case Code::kRemoved:
      return "Removed";
    case Code::kNoSpace:
      return "NoSpace";
    case Code::kTooManyRequests:
      return "TooManyRequests";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(CodeName(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

}  // namespace dolmen
