// DNS SRV answers (RFC 2782): the records of one answer message, and the order in which a
// client must try them. Decoding is libresolv's (ns_initparse / ns_parserr / dn_expand); this
// file only picks the SRV records out and says what a failed answer means.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"

namespace dolmen::discovery {

struct SrvRecord {
  uint16_t priority = 0;
  uint16_t weight = 0;
  uint16_t port = 0;
  std::string target;  // fully qualified, with the trailing dot (as Go's net.LookupSRV gives it)
};

// The SRV records in the answer section of `message` (a whole DNS response as received).
// NXDOMAIN, or an answer without SRV records, is NotFound "no such host" (Go's resolver's
// words, which etcd prints); SERVFAIL, REFUSED and other error codes are Unavailable "server
// misbehaving"; a message libresolv cannot decode is InvalidArgument. Records come in message
// order; see OrderSrvRecords.
Result<std::vector<SrvRecord>> ParseSrvAnswer(const uint8_t* message, size_t size);

// RFC 2782's order, as Go's net.LookupSRV returns records to etcd: by priority, lowest first,
// and within one priority a weighted random order (a record of weight 0 is picked last unless
// every weight is 0, and then the answer's order is kept).
void OrderSrvRecords(std::vector<SrvRecord>* records, Random* random);

}  // namespace dolmen::discovery
