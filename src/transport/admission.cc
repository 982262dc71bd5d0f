#include "transport/admission.h"

#include <mutex>
#include <set>
#include <utility>

#include "log/log.h"
#include "transport/codec.h"
#include "transport/url.h"

namespace dolmen::transport {
namespace {

// A refused peer retries (with backoff) for as long as it runs: its refusal is logged the first
// time each (peer, reason) is seen, not at every retry. Bounded: the set starts over when full.
void LogRefusalOnce(const peer::Header& header, const Admission& admission) {
  static std::mutex mu;
  static std::set<std::pair<uint64_t, std::string>>* seen =
      new std::set<std::pair<uint64_t, std::string>>;  // never destroyed: used by any thread
  constexpr size_t kMaxRemembered = 256;
  {
    std::lock_guard lock(mu);
    if (seen->size() >= kMaxRemembered) seen->clear();
    if (!seen->emplace(header.from(), admission.message).second) return;
  }
  log::Warn("refused a peer", {{"remote-peer-id", IdHex(header.from())},
                               {"removed", admission.verdict == Admission::Verdict::kRemoved},
                               {"reason", admission.message}});
}

Admission Judge(const Options& options, Handler* handler, const peer::Header& header) {
  using Verdict = Admission::Verdict;
  if (header.cluster_id() != options.cluster_id.value()) {
    return {Verdict::kRefused, "dolmen: peer " + IdHex(header.from()) + " is in cluster " +
                                   IdHex(header.cluster_id()) + ", this member is in cluster " +
                                   IdHex(options.cluster_id.value())};
  }
  if (header.from() == 0) return {Verdict::kMalformed, "envelope without a sender"};
  if (handler->IsRemoved(MemberId(header.from()))) {
    return {Verdict::kRemoved,
            "member " + IdHex(header.from()) + " has been removed from the cluster"};
  }
  if (header.to() != options.self.value()) {
    return {Verdict::kRefused, "dolmen: peer " + IdHex(header.from()) + " sent to member " +
                                   IdHex(header.to()) + ", this is member " +
                                   IdHex(options.self.value())};
  }
  return {};
}

}  // namespace

Admission AdmitSender(const Options& options, Handler* handler, const peer::Header& header) {
  Admission admission = Judge(options, handler, header);
  if (admission.verdict != Admission::Verdict::kAdmitted) LogRefusalOnce(header, admission);
  return admission;
}

Result<std::vector<raft::Message>> DecodeEnvelope(const peer::Envelope& envelope) {
  std::vector<raft::Message> messages;
  messages.reserve(envelope.messages_size());
  for (const peer::Message& wire : envelope.messages()) {
    ASSIGN_OR_RETURN(raft::Message m, DecodeMessage(wire));
    if (m.from.value() != envelope.header().from() || m.to.value() != envelope.header().to()) {
      return InvalidArgument("message from " + IdHex(m.from.value()) + " to " +
                             IdHex(m.to.value()) + " in an envelope from " +
                             IdHex(envelope.header().from()) + " to " +
                             IdHex(envelope.header().to()));
    }
    if (m.type == raft::MessageType::kSnap) {
      return InvalidArgument("snapshot message outside a snapshot stream");
    }
    messages.push_back(std::move(m));
  }
  return messages;
}

}  // namespace dolmen::transport
