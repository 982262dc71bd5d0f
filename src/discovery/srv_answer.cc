#include "discovery/srv_answer.h"

#include <arpa/nameser.h>
#include <resolv.h>

#include <algorithm>

namespace dolmen::discovery {
namespace {

// One SRV RDATA: priority, weight, port (16 bits each), then the target, possibly compressed
// against the rest of the message (dn_expand follows the pointers, bounded by the message).
Result<SrvRecord> DecodeSrv(const ns_msg& msg, const ns_rr& rr) {
  const uint8_t* rdata = ns_rr_rdata(rr);
  if (ns_rr_rdlen(rr) < 7) return InvalidArgument("SRV record shorter than 7 bytes");
  SrvRecord out;
  out.priority = ns_get16(rdata);
  out.weight = ns_get16(rdata + 2);
  out.port = ns_get16(rdata + 4);
  char name[NS_MAXDNAME];
  if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rdata + 6, name, sizeof(name)) < 0) {
    return InvalidArgument("SRV record with an undecodable target name");
  }
  out.target = name;
  // libresolv gives names without the root's dot; Go (and so etcd) keeps it.
  if (out.target.empty() || out.target.back() != '.') out.target += '.';
  return out;
}

}  // namespace

Result<std::vector<SrvRecord>> ParseSrvAnswer(const uint8_t* message, size_t size) {
  ns_msg msg;
  if (size > 0xffff || ns_initparse(message, static_cast<int>(size), &msg) < 0) {
    return InvalidArgument("cannot parse DNS message");
  }
  switch (ns_msg_getflag(msg, ns_f_rcode)) {
    case ns_r_noerror:
      break;
    case ns_r_nxdomain:
      return NotFound("no such host");
    default:
      return Unavailable("server misbehaving");
  }
  std::vector<SrvRecord> out;
  const int count = ns_msg_count(msg, ns_s_an);
  for (int i = 0; i < count; ++i) {
    ns_rr rr;
    if (ns_parserr(&msg, ns_s_an, i, &rr) < 0) {
      return InvalidArgument("cannot parse DNS answer record " + std::to_string(i));
    }
    // An answer may also hold the CNAME chain that led to the records: skip it.
    if (ns_rr_type(rr) != ns_t_srv || ns_rr_class(rr) != ns_c_in) continue;
    ASSIGN_OR_RETURN(SrvRecord record, DecodeSrv(msg, rr));
    out.push_back(std::move(record));
  }
  if (out.empty()) return NotFound("no such host");
  return out;
}

void OrderSrvRecords(std::vector<SrvRecord>* records, Random* random) {
  std::stable_sort(records->begin(), records->end(),
                   [](const SrvRecord& a, const SrvRecord& b) { return a.priority < b.priority; });
  // Within each priority, RFC 2782's selection as Go does it: draw a point below the sum of
  // the weights left, take the record whose running sum passes it, repeat with the rest. A
  // record of weight 0 is never drawn; those stay last, in the answer's order.
  for (auto group = records->begin(); group != records->end();) {
    auto end = std::find_if(group, records->end(),
                            [&](const SrvRecord& r) { return r.priority != group->priority; });
    uint64_t sum = 0;
    for (auto it = group; it != end; ++it) sum += it->weight;
    for (auto first = group; sum > 0 && first + 1 < end; ++first) {
      const uint64_t point = random->Uniform(sum);
      auto pick = first;
      for (uint64_t running = pick->weight; running <= point; running += pick->weight) ++pick;
      sum -= pick->weight;
      std::rotate(first, pick, pick + 1);
    }
    group = end;
  }
}

}  // namespace dolmen::discovery
