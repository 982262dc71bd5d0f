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

}  // namespace dolmen::transport
