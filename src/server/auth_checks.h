// etcd's permission rules for the KV requests (etcdserver/apply_auth.go), shared by the applier
// (writes, checked when applied) and the server's read path (ranges and read-only txns).
#pragma once

#include "auth/auth_store.h"
#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"

namespace dolmen::server {

// Every compare key needs read; each op what its kind needs (range: read; put: write; delete:
// write, and read with prev_kv), nested txns included.
Status CheckTxnPermitted(const auth::AuthStore& store, const auth::AuthInfo& who,
                         const etcdserverpb::TxnRequest& r);

}  // namespace dolmen::server
