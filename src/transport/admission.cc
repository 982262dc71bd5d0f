#include "transport/admission.h"

#include <utility>

#include "transport/codec.h"
#include "transport/url.h"

namespace dolmen::transport {

Admission AdmitSender(const Options& options, Handler* handler, const peer::Header& header) {
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
