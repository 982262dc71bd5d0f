// etcd 3.6's v3 discovery at member start (docs/discovery.md): the --discovery-* flags, their
// checks, and the first start's registration in the discovery service (src/discovery), turned
// into what --initial-cluster would have given.
#pragma once

#include <functional>
#include <string>

#include "base/status.h"
#include "embed/config.h"
#include "embed/flag_set.h"

namespace dolmen::embed {

// --discovery-token, --discovery-endpoints and the --discovery-* dial, keepalive, TLS and auth
// flags, with etcd 3.6's names, defaults and help.
void RegisterV3DiscoveryFlags(FlagSet* flags, Config* config);

// etcd 3.6's checks (with its texts): one of --initial-cluster, --discovery-endpoints and
// --discovery-srv; the token and the endpoints together; no empty endpoint. With discovery the
// initial cluster is, until the first start asks the service, this member alone (as etcd).
Status ValidateV3Discovery(Config* config);

// With --discovery-token and a data dir that holds no log yet: registers this member under the
// token, waits until the registry's size has registered, and fills config->initial_cluster and
// initial_members from the first `size` registrations; the cluster token becomes the discovery
// token, as in etcd (member ids hash it). A data dir with a log keeps its membership and the
// service is not asked. Errors are etcd's ("discovery: cluster is full", ...).
Status BootstrapFromV3Discovery(Config* config, const std::function<void(const std::string&)>& log);

// Whether BootstrapFromV3Discovery failed because the registry is full: the token bootstrapped
// a cluster already (etcd then says not to reuse it).
bool IsDiscoveryTokenUsedUp(const Status& status);

}  // namespace dolmen::embed
