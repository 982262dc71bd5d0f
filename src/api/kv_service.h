// etcdserverpb.KV over gRPC's callback API: a handler hands the request to the server and
// returns at once; the reply is finished from whichever thread completes it (usually the
// driver thread after apply), so no thread waits per request.
#pragma once

#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/server.h"

namespace dolmen::api {

class KvService final : public etcdserverpb::KV::CallbackService {
 public:
  explicit KvService(server::Server* server) : server_(server) {}

  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* ctx,
                                  const etcdserverpb::RangeRequest* request,
                                  etcdserverpb::RangeResponse* response) override;
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx,
                                const etcdserverpb::PutRequest* request,
                                etcdserverpb::PutResponse* response) override;
  grpc::ServerUnaryReactor* DeleteRange(grpc::CallbackServerContext* ctx,
                                        const etcdserverpb::DeleteRangeRequest* request,
                                        etcdserverpb::DeleteRangeResponse* response) override;
  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* ctx,
                                const etcdserverpb::TxnRequest* request,
                                etcdserverpb::TxnResponse* response) override;
  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* ctx,
                                    const etcdserverpb::CompactionRequest* request,
                                    etcdserverpb::CompactionResponse* response) override;

 private:
  server::Server* server_;
};

}  // namespace dolmen::api
