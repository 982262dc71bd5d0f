// Who may talk to us, and what an envelope may contain: the checks every message stream,
// snapshot and forwarded request passes before anything is handed to the server
// (docs/transport.md, "Who may talk to us"). Independent of how the bytes arrived.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "dolmen/peer.pb.h"
#include "raft/message.h"
#include "transport/transport.h"

namespace dolmen::transport {

struct Admission {
  enum class Verdict {
    kAdmitted,
    kRefused,    // another cluster, or addressed to another member
    kRemoved,    // the sender was removed from the cluster
    kMalformed,  // no sender
  };
  Verdict verdict = Verdict::kAdmitted;
  std::string message;  // for a refusal, the full text the sender reports; else what is wrong

  bool ok() const { return verdict == Verdict::kAdmitted; }
};

// The checks in order: cluster id, a sender, not removed, addressed to us.
Admission AdmitSender(const Options& options, Handler* handler, const peer::Header& header);

// Decodes an envelope's messages, checking each against the envelope's header (and that none is
// a snapshot, which travels on its own stream).
Result<std::vector<raft::Message>> DecodeEnvelope(const peer::Envelope& envelope);

}  // namespace dolmen::transport
