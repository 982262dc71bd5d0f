#include "transport/forward.h"

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "dolmen/peer.grpc.pb.h"
#include "transport/codec.h"
#include "transport/url.h"

namespace dolmen::transport {
namespace {

using Steady = std::chrono::steady_clock;

// The gRPC deadline (system clock) for a steady-clock deadline.
std::chrono::system_clock::time_point SystemDeadline(Handler::Deadline deadline) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(deadline - Steady::now());
}

// Calls `rpc` on each channel in turn until one answers; the answer's ForwardStatus decides
// the result. A channel that fails (peer down, refused, deadline) moves on to the next.
template <typename Request, typename Response, typename Rpc>
Status CallEach(const ForwardChannels& channels, const Request& request, Response* response,
                Handler::Deadline deadline, Rpc rpc) {
  if (channels.empty()) return Unavailable("no dialable peer URL");
  std::string errors;
  for (const auto& channel : channels) {
    if (Steady::now() >= deadline) return Status(Code::kDeadlineExceeded, "deadline passed");
    auto stub = peer::Peer::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(SystemDeadline(deadline));
    // Fail fast: a member that is down is not waited for; the server asks again, perhaps
    // another leader.
    grpc::Status status = rpc(stub.get(), &context, request, response);
    if (status.ok()) return DecodeForwardStatus(response->status());
    if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      return Status(Code::kDeadlineExceeded, "deadline passed");
    }
    // A member of an earlier version that lacks this call: the caller falls back.
    if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      return Status(Code::kUnimplemented, status.error_message());
    }
    errors += (errors.empty() ? "" : "; ") + status.error_message();
  }
  return Unavailable(errors);
}

}  // namespace

void EncodeForwardStatus(const Status& status, peer::ForwardStatus* out) {
  peer::ForwardError error = peer::FORWARD_ERROR_OTHER;
  switch (status.code()) {
    case Code::kOk:
      out->Clear();
      return;
    case Code::kNotLeader:
    case Code::kNoLeader:
      error = peer::FORWARD_ERROR_NOT_LEADER;
      break;
    case Code::kLeaseNotFound:
      error = peer::FORWARD_ERROR_LEASE_NOT_FOUND;
      break;
    case Code::kNotFound:
      error = peer::FORWARD_ERROR_MEMBER_NOT_FOUND;
      break;
    case Code::kFailedPrecondition:
      error = peer::FORWARD_ERROR_FAILED_PRECONDITION;
      break;
    case Code::kTimeout:
      error = peer::FORWARD_ERROR_TIMEOUT;
      break;
    case Code::kStopped:
      error = peer::FORWARD_ERROR_STOPPED;
      break;
    case Code::kCompacted:
      error = peer::FORWARD_ERROR_COMPACTED;
      break;
    case Code::kFutureRevision:
      error = peer::FORWARD_ERROR_FUTURE_REVISION;
      break;
    default:
      break;
  }
  out->set_error(error);
  out->set_message(status.message());
}

Status DecodeForwardStatus(const peer::ForwardStatus& in) {
  switch (in.error()) {
    case peer::FORWARD_ERROR_NONE:
      return OkStatus();
    case peer::FORWARD_ERROR_NOT_LEADER:
      return Status(Code::kNotLeader, in.message());
    case peer::FORWARD_ERROR_LEASE_NOT_FOUND:
      return Status(Code::kLeaseNotFound, in.message());
    case peer::FORWARD_ERROR_MEMBER_NOT_FOUND:
      return Status(Code::kNotFound, in.message());
    case peer::FORWARD_ERROR_FAILED_PRECONDITION:
      return Status(Code::kFailedPrecondition, in.message());
    case peer::FORWARD_ERROR_TIMEOUT:
      return Status(Code::kTimeout, in.message());
    case peer::FORWARD_ERROR_STOPPED:
      return Status(Code::kStopped, in.message());
    case peer::FORWARD_ERROR_COMPACTED:
      return Status(Code::kCompacted, in.message());
    case peer::FORWARD_ERROR_FUTURE_REVISION:
      return Status(Code::kFutureRevision, in.message());
    default:  // OTHER, or a value a newer member added
      return Status(Code::kInternal,
                    in.message().empty() ? "forwarded request failed" : in.message());
  }
}

Result<int64_t> CallLeaseRenew(const ForwardChannels& channels, const peer::Header& header,
                               int64_t lease_id, Handler::Deadline deadline) {
  peer::LeaseRenewRequest request;
  *request.mutable_header() = header;
  request.set_lease_id(lease_id);
  peer::LeaseRenewResponse response;
  RETURN_IF_ERROR(CallEach(channels, request, &response, deadline,
                           [](peer::Peer::Stub* stub, grpc::ClientContext* c, const auto& req,
                              auto* resp) { return stub->LeaseRenew(c, req, resp); }));
  return response.ttl_seconds();
}

Result<std::vector<Result<int64_t>>> CallLeaseRenewBatch(const ForwardChannels& channels,
                                                         const peer::Header& header,
                                                         const std::vector<int64_t>& lease_ids,
                                                         Handler::Deadline deadline) {
  if (lease_ids.size() > kMaxLeaseRenewBatch) {
    return Status(Code::kInvalidArgument, "too many leases in one renewal batch");
  }
  peer::LeaseRenewBatchRequest request;
  *request.mutable_header() = header;
  request.mutable_lease_ids()->Add(lease_ids.begin(), lease_ids.end());
  peer::LeaseRenewBatchResponse response;
  RETURN_IF_ERROR(CallEach(channels, request, &response, deadline,
                           [](peer::Peer::Stub* stub, grpc::ClientContext* c, const auto& req,
                              auto* resp) { return stub->LeaseRenewBatch(c, req, resp); }));
  if (static_cast<size_t>(response.renewals_size()) != lease_ids.size()) {
    return Status(Code::kInternal, "the leader answered a renewal batch with " +
                                       std::to_string(response.renewals_size()) + " of " +
                                       std::to_string(lease_ids.size()) + " leases");
  }
  std::vector<Result<int64_t>> out;
  out.reserve(lease_ids.size());
  for (const auto& renewal : response.renewals()) {
    Status s = DecodeForwardStatus(renewal.status());
    if (s.ok()) {
      out.emplace_back(renewal.ttl_seconds());
    } else {
      out.emplace_back(std::move(s));
    }
  }
  return out;
}

Result<Handler::LeaseTtl> CallLeaseTimeToLive(const ForwardChannels& channels,
                                              const peer::Header& header, int64_t lease_id,
                                              bool keys, Handler::Deadline deadline) {
  peer::LeaseTimeToLiveRequest request;
  *request.mutable_header() = header;
  request.set_lease_id(lease_id);
  request.set_keys(keys);
  peer::LeaseTimeToLiveResponse response;
  RETURN_IF_ERROR(CallEach(channels, request, &response, deadline,
                           [](peer::Peer::Stub* stub, grpc::ClientContext* c, const auto& req,
                              auto* resp) { return stub->LeaseTimeToLive(c, req, resp); }));
  Handler::LeaseTtl out;
  out.ttl_seconds = response.ttl_seconds();
  out.granted_ttl_seconds = response.granted_ttl_seconds();
  out.keys.assign(response.keys().begin(), response.keys().end());
  return out;
}

Result<std::vector<Handler::MemberInfo>> CallPromoteMember(const ForwardChannels& channels,
                                                           const peer::Header& header,
                                                           MemberId learner,
                                                           Handler::Deadline deadline) {
  peer::PromoteMemberRequest request;
  *request.mutable_header() = header;
  request.set_member_id(learner.value());
  peer::PromoteMemberResponse response;
  RETURN_IF_ERROR(CallEach(channels, request, &response, deadline,
                           [](peer::Peer::Stub* stub, grpc::ClientContext* c, const auto& req,
                              auto* resp) { return stub->PromoteMember(c, req, resp); }));
  std::vector<Handler::MemberInfo> members;
  for (const peer::MemberInfo& m : response.members()) members.push_back(DecodeMemberInfo(m));
  return members;
}

Result<Handler::HashKv> CallHashKv(const ForwardChannels& channels, const peer::Header& header,
                                   int64_t revision, Handler::Deadline deadline) {
  peer::HashKVRequest request;
  *request.mutable_header() = header;
  request.set_revision(revision);
  peer::HashKVResponse response;
  RETURN_IF_ERROR(CallEach(channels, request, &response, deadline,
                           [](peer::Peer::Stub* stub, grpc::ClientContext* c, const auto& req,
                              auto* resp) { return stub->HashKV(c, req, resp); }));
  Handler::HashKv out;
  out.member = MemberId(response.member_id());
  out.hash = response.hash();
  out.compact_revision = response.compact_revision();
  out.hash_revision = response.hash_revision();
  out.revision = response.revision();
  return out;
}

}  // namespace dolmen::transport
