// --discovery-srv at member start (docs/discovery.md): the initial cluster from DNS SRV records
// (src/discovery), turned into what --initial-cluster would have given.
#pragma once

#include <functional>
#include <string>

#include "base/status.h"
#include "embed/config.h"

namespace dolmen::embed {

// With --discovery-srv and a data dir that holds no log yet (as etcd: a member that has started
// once keeps its membership and never asks DNS again), fills config->initial_members from the
// SRV records, waiting for them as --experimental-discovery-srv-wait allows, and sets the
// member's advertised peer URLs to its own entry there: etcd's member carries the SRV target's
// host name ("http://m1.example.com:2380"), and the member's id is derived from it. The error
// is etcd's text, without its "error setting up initial cluster: " prefix.
Status BootstrapFromSrv(Config* config, const std::function<void(const std::string&)>& log);

}  // namespace dolmen::embed
