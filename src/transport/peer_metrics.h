#pragma once

// etcd's peer traffic metrics (etcdserver/api/rafthttp/metrics.go), labelled with the peer's
// member id in hex as etcd writes it (types.ID.String()). Look a counter up once per peer or
// stream and keep it: the lookup takes a reader lock.

#include "base/ids.h"
#include "metrics/metrics.h"

namespace dolmen::transport {

metrics::Counter& PeerSentBytes(MemberId to);        // etcd_network_peer_sent_bytes_total{To}
metrics::Counter& PeerSentFailures(MemberId to);     // etcd_network_peer_sent_failures_total{To}
metrics::Counter& PeerReceivedBytes(MemberId from);  // ..._received_bytes_total{From}
// etcd_network_peer_round_trip_time_seconds{To}: the message stream's probe round trips
// (docs/formats/peer.md, "Round-trip probes"); etcd's buckets, 0.1 ms x 2^0..15.
metrics::Histogram& PeerRoundTripTime(MemberId to);

}  // namespace dolmen::transport
