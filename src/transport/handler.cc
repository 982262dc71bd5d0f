// The answers of Handler's and Transport's optional calls when an implementation does not
// override them. Kept apart from forward.cc (the gRPC side of forwarding) so that code using
// only the interfaces, such as the peer stream fuzzer (tests/fuzz), links without gRPC: this
// file holds the classes' key functions, hence their vtables and type info.
#include "transport/transport.h"

namespace dolmen::transport {

// Members that serve no forwarded requests (test handlers) answer every one as "not served".
Result<int64_t> Handler::ServeLeaseRenew(int64_t, Deadline) {
  return Status(Code::kUnimplemented, "forwarded requests are not served by this member");
}
Result<std::vector<Result<int64_t>>> Handler::ServeLeaseRenewBatch(const std::vector<int64_t>&,
                                                                   Deadline) {
  return Status(Code::kUnimplemented, "forwarded requests are not served by this member");
}
Result<Handler::LeaseTtl> Handler::ServeLeaseTimeToLive(int64_t, bool, Deadline) {
  return Status(Code::kUnimplemented, "forwarded requests are not served by this member");
}
Result<std::vector<Handler::MemberInfo>> Handler::ServePromoteMember(MemberId, Deadline) {
  return Status(Code::kUnimplemented, "forwarded requests are not served by this member");
}

Result<Handler::HashKv> Handler::ServeHashKv(int64_t) {
  return Status(Code::kUnimplemented, "hash requests are not served by this member");
}
Result<std::vector<Result<int64_t>>> Transport::ForwardLeaseRenewBatch(MemberId,
                                                                       const std::vector<int64_t>&,
                                                                       Handler::Deadline) {
  return Status(Code::kUnimplemented, "this transport does not forward renewal batches");
}
Result<Handler::HashKv> Transport::PeerHashKv(MemberId, int64_t, Handler::Deadline) {
  return Status(Code::kUnimplemented, "this transport does not ask peers for hashes");
}

}  // namespace dolmen::transport
