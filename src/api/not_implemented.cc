#include "api/not_implemented.h"

namespace dolmen::api {
namespace {

class FinishedBidi final : public grpc::ServerGenericBidiReactor {
 public:
  explicit FinishedBidi(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerGenericBidiReactor* CatchAllService::CreateReactor(
    grpc::GenericCallbackServerContext* ctx) {
  return new FinishedBidi(NotImplemented(ctx->method()));
}

}  // namespace dolmen::api
