#include "transport/peer_service.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "base/crc32c.h"
#include "transport/admission.h"
#include "transport/channel.h"
#include "transport/codec.h"
#include "transport/forward.h"
#include "transport/url.h"

namespace dolmen::transport {
namespace {

// Chunks are snapshot_chunk_bytes (1 MiB by default) on the sender; the receiver accepts up
// to this, so senders configured differently still interoperate, but nothing unbounded.
constexpr size_t kMaxChunkBytes = 4 << 20;

grpc::Status Refuse(grpc::ServerContextBase* context, const char* reason, std::string message) {
  context->AddTrailingMetadata(kRefusedKey, reason);
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, std::move(message));
}

grpc::Status Malformed(std::string message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "dolmen: " + message);
}

Status WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError(std::string("write: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return OkStatus();
}

}  // namespace

PeerService::PeerService(const Options& options, Handler* handler)
    : options_(options), handler_(handler), instance_(std::random_device()()) {}

grpc::Status PeerService::Admit(grpc::ServerContextBase* context, const peer::Header& header) {
  Admission admission = AdmitSender(options_, handler_, header);
  switch (admission.verdict) {
    case Admission::Verdict::kAdmitted:
      return grpc::Status::OK;
    case Admission::Verdict::kRefused:
      return Refuse(context, kRefusedOther, std::move(admission.message));
    case Admission::Verdict::kRemoved:
      return Refuse(context, kRefusedRemoved, std::move(admission.message));
    case Admission::Verdict::kMalformed:
      break;
  }
  return Malformed(std::move(admission.message));
}

grpc::Status PeerService::Snapshot(grpc::ServerContext* context,
                                   grpc::ServerReader<peer::SnapshotChunk>* reader,
                                   peer::SnapshotAck*) {
  peer::SnapshotChunk first;
  if (!reader->Read(&first)) return Malformed("empty snapshot stream");
  if (!first.has_begin()) return Malformed("snapshot stream must start with a begin chunk");
  const peer::SnapshotBegin& begin = first.begin();
  grpc::Status admitted = Admit(context, begin.header());
  if (!admitted.ok()) return admitted;
  Result<raft::Message> message = DecodeMessage(begin.message());
  if (!message.ok()) return Malformed(message.status().message());
  if (message->type != raft::MessageType::kSnap || !message->snapshot.has_value() ||
      message->from.value() != begin.header().from() || message->to != options_.self) {
    return Malformed("snapshot stream whose message is not a snapshot from its sender to us");
  }
  Result<std::string> path = ReceiveFile(reader, begin);
  if (!path.ok()) {
    return grpc::Status(path.status().code() == Code::kIoError ? grpc::StatusCode::INTERNAL
                                                               : grpc::StatusCode::INVALID_ARGUMENT,
                        "dolmen: snapshot: " + path.status().message());
  }
  handler_->OnSnapshot(std::move(message).value(), std::move(path).value());
  return grpc::Status::OK;
}

Result<std::string> PeerService::ReceiveFile(grpc::ServerReader<peer::SnapshotChunk>* reader,
                                             const peer::SnapshotBegin& begin) {
  char name[128];
  std::snprintf(name, sizeof(name), "/snap-%s-%016llx-%llu.db",
                IdHex(begin.header().from()).c_str(), static_cast<unsigned long long>(instance_),
                static_cast<unsigned long long>(next_file_.fetch_add(1)));
  const std::string path = options_.snapshot_dir + name;
  const std::string part = path + ".part";
  int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("create " + part + ": " + std::strerror(errno));

  // Every failure below removes the partial file: the sender retries with a new one.
  auto fail = [&](Status s) -> Status {
    ::close(fd);
    ::unlink(part.c_str());
    return s;
  };
  uint64_t received = 0;
  uint32_t crc = 0;
  peer::SnapshotChunk chunk;
  bool ended = false;
  while (!ended) {
    if (!reader->Read(&chunk)) {
      return fail(InvalidArgument("stream ended after " + std::to_string(received) + " of " +
                                  std::to_string(begin.size_bytes()) + " bytes"));
    }
    switch (chunk.part_case()) {
      case peer::SnapshotChunk::kData: {
        const std::string& data = chunk.data();
        if (data.size() > kMaxChunkBytes || data.size() > begin.size_bytes() - received) {
          return fail(InvalidArgument("chunk of " + std::to_string(data.size()) +
                                      " bytes past the announced size " +
                                      std::to_string(begin.size_bytes())));
        }
        Status written = WriteAll(fd, data);
        if (!written.ok()) return fail(IoError(part + ": " + written.message()));
        crc = crc32c::Extend(crc, data.data(), data.size());
        received += data.size();
        break;
      }
      case peer::SnapshotChunk::kEnd:
        ended = true;
        break;
      default:
        return fail(InvalidArgument("unexpected chunk in a snapshot stream"));
    }
  }
  if (received != begin.size_bytes()) {
    return fail(InvalidArgument("received " + std::to_string(received) + " of " +
                                std::to_string(begin.size_bytes()) + " bytes"));
  }
  if (crc != chunk.end().crc32c()) return fail(InvalidArgument("checksum mismatch"));
  // Durable before the server is told: it may install the file and acknowledge the snapshot.
  if (::fsync(fd) != 0) return fail(IoError("fsync " + part + ": " + std::strerror(errno)));
  if (::close(fd) != 0) {
    ::unlink(part.c_str());
    return IoError("close " + part + ": " + std::strerror(errno));
  }
  if (::rename(part.c_str(), path.c_str()) != 0) {
    ::unlink(part.c_str());
    return IoError("rename " + part + ": " + std::strerror(errno));
  }
  return path;
}

grpc::Status PeerService::GetMembers(grpc::ServerContext*, const peer::GetMembersRequest*,
                                     peer::GetMembersResponse* response) {
  response->set_cluster_id(options_.cluster_id.value());
  response->set_member_id(options_.self.value());
  for (const Handler::MemberInfo& m : handler_->Members()) {
    EncodeMemberInfo(m, response->add_members());
  }
  return grpc::Status::OK;
}

namespace {

// The handler may take until the caller's deadline, and never longer than this (a caller
// without a deadline is not allowed to hold a server thread for ever).
constexpr std::chrono::seconds kMaxForwardWait{30};

Handler::Deadline ForwardDeadline(const grpc::ServerContext* context) {
  auto now_system = std::chrono::system_clock::now();
  auto left = context->deadline() - now_system;
  if (left > kMaxForwardWait) left = kMaxForwardWait;
  if (left < std::chrono::system_clock::duration::zero()) left = {};
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(left);
}

}  // namespace

grpc::Status PeerService::LeaseRenew(grpc::ServerContext* context,
                                     const peer::LeaseRenewRequest* request,
                                     peer::LeaseRenewResponse* response) {
  grpc::Status admitted = Admit(context, request->header());
  if (!admitted.ok()) return admitted;
  Result<int64_t> ttl = handler_->ServeLeaseRenew(request->lease_id(), ForwardDeadline(context));
  if (ttl.ok()) {
    response->set_ttl_seconds(*ttl);
  } else {
    EncodeForwardStatus(ttl.status(), response->mutable_status());
  }
  return grpc::Status::OK;
}

grpc::Status PeerService::LeaseRenewBatch(grpc::ServerContext* context,
                                          const peer::LeaseRenewBatchRequest* request,
                                          peer::LeaseRenewBatchResponse* response) {
  grpc::Status admitted = Admit(context, request->header());
  if (!admitted.ok()) return admitted;
  if (static_cast<size_t>(request->lease_ids_size()) > kMaxLeaseRenewBatch) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "a renewal batch of " + std::to_string(request->lease_ids_size()) +
                            " leases; at most " + std::to_string(kMaxLeaseRenewBatch));
  }
  std::vector<int64_t> ids(request->lease_ids().begin(), request->lease_ids().end());
  Result<std::vector<Result<int64_t>>> renewed =
      handler_->ServeLeaseRenewBatch(ids, ForwardDeadline(context));
  if (renewed.status().code() == Code::kUnimplemented) {
    // A handler that serves no batches answers as a member without this call would: the
    // follower then renews lease by lease.
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, renewed.status().message());
  }
  if (!renewed.ok()) {
    EncodeForwardStatus(renewed.status(), response->mutable_status());
    return grpc::Status::OK;
  }
  for (const Result<int64_t>& one : *renewed) {
    peer::LeaseRenewResponse* out = response->add_renewals();
    if (one.ok()) {
      out->set_ttl_seconds(*one);
    } else {
      EncodeForwardStatus(one.status(), out->mutable_status());
    }
  }
  return grpc::Status::OK;
}

grpc::Status PeerService::LeaseTimeToLive(grpc::ServerContext* context,
                                          const peer::LeaseTimeToLiveRequest* request,
                                          peer::LeaseTimeToLiveResponse* response) {
  grpc::Status admitted = Admit(context, request->header());
  if (!admitted.ok()) return admitted;
  Result<Handler::LeaseTtl> ttl = handler_->ServeLeaseTimeToLive(
      request->lease_id(), request->keys(), ForwardDeadline(context));
  if (!ttl.ok()) {
    EncodeForwardStatus(ttl.status(), response->mutable_status());
    return grpc::Status::OK;
  }
  response->set_ttl_seconds(ttl->ttl_seconds);
  response->set_granted_ttl_seconds(ttl->granted_ttl_seconds);
  for (const std::string& key : ttl->keys) response->add_keys(key);
  return grpc::Status::OK;
}

grpc::Status PeerService::PromoteMember(grpc::ServerContext* context,
                                        const peer::PromoteMemberRequest* request,
                                        peer::PromoteMemberResponse* response) {
  grpc::Status admitted = Admit(context, request->header());
  if (!admitted.ok()) return admitted;
  if (request->member_id() == 0) return Malformed("promote request without a member id");
  Result<std::vector<Handler::MemberInfo>> members =
      handler_->ServePromoteMember(MemberId(request->member_id()), ForwardDeadline(context));
  if (!members.ok()) {
    EncodeForwardStatus(members.status(), response->mutable_status());
    return grpc::Status::OK;
  }
  for (const Handler::MemberInfo& m : *members) EncodeMemberInfo(m, response->add_members());
  return grpc::Status::OK;
}

grpc::Status PeerService::HashKV(grpc::ServerContext* context, const peer::HashKVRequest* request,
                                 peer::HashKVResponse* response) {
  grpc::Status admitted = Admit(context, request->header());
  if (!admitted.ok()) return admitted;
  if (request->revision() < 0) return Malformed("hash request for a negative revision");
  Result<Handler::HashKv> hash = handler_->ServeHashKv(request->revision());
  if (!hash.ok()) {
    EncodeForwardStatus(hash.status(), response->mutable_status());
    return grpc::Status::OK;
  }
  response->set_member_id(hash->member.value());
  response->set_hash(hash->hash);
  response->set_compact_revision(hash->compact_revision);
  response->set_hash_revision(hash->hash_revision);
  response->set_revision(hash->revision);
  return grpc::Status::OK;
}

}  // namespace dolmen::transport
