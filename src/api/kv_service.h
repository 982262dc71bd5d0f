// etcdserverpb.KV over gRPC's callback API: a handler hands the request to the server and
// returns at once; the reply is finished from whichever thread completes it (usually the
// driver thread after apply), so no thread waits per request.
//
// Range is a raw method (bytes in, bytes out): its reply is the RangeResponse the server wrote
// straight from the stored records (server/range_wire.h), handed to gRPC without a copy, so a
// list of a large prefix is not materialised as messages and serialized again (issue 18).
#pragma once

#include "api/raw_methods.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/server.h"

namespace dolmen::api {

using KvServiceBase =
    etcdserverpb::KV::WithRawCallbackMethod_Range<etcdserverpb::KV::WithCallbackMethod_Put<
        etcdserverpb::KV::WithCallbackMethod_DeleteRange<etcdserverpb::KV::WithCallbackMethod_Txn<
            etcdserverpb::KV::WithCallbackMethod_Compact<etcdserverpb::KV::Service>>>>>;

class KvService final : public KvServiceBase {
 public:
  explicit KvService(server::Server* server) : server_(server) {}

  using KvServiceBase::Range;
  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
                                  grpc::ByteBuffer* response) override;
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
