#include "transport/peer_metrics.h"

#include <cstdio>
#include <string>

namespace dolmen::transport {
namespace {

std::string Hex(MemberId id) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(id.value()));
  return buf;
}

}  // namespace

metrics::Counter& PeerSentBytes(MemberId to) {
  static metrics::CounterFamily& f = metrics::DefaultRegistry().AddCounterFamily(
      "etcd_network_peer_sent_bytes_total", "The total number of bytes sent to peers.", {"To"});
  return f.With({Hex(to)});
}

metrics::Counter& PeerSentFailures(MemberId to) {
  static metrics::CounterFamily& f = metrics::DefaultRegistry().AddCounterFamily(
      "etcd_network_peer_sent_failures_total", "The total number of send failures from peers.",
      {"To"});
  return f.With({Hex(to)});
}

metrics::Counter& PeerReceivedBytes(MemberId from) {
  static metrics::CounterFamily& f = metrics::DefaultRegistry().AddCounterFamily(
      "etcd_network_peer_received_bytes_total", "The total number of bytes received from peers.",
      {"From"});
  return f.With({Hex(from)});
}

metrics::Histogram& PeerRoundTripTime(MemberId to) {
  static metrics::HistogramFamily& f = metrics::DefaultRegistry().AddHistogramFamily(
      "etcd_network_peer_round_trip_time_seconds", "Round-Trip-Time histogram between peers",
      {"To"}, metrics::ExponentialBuckets(0.0001, 2, 16));
  return f.With({Hex(to)});
}

}  // namespace dolmen::transport
