// Member and cluster ids, derived the way etcd derives them so the same flags give the same
// ids: a member id hashes its sorted peer URLs and the cluster token; a cluster id hashes the
// sorted member ids.
#pragma once

#include <string>
#include <vector>

#include "base/ids.h"

namespace dolmen::server {

MemberId ComputeMemberId(std::vector<std::string> peer_urls, const std::string& cluster_token);
ClusterId ComputeClusterId(std::vector<MemberId> members);

}  // namespace dolmen::server
