// The default two-step defragmentation: nothing to prepare, the whole rewrite in Finish.
#include <memory>

#include "backend/backend.h"

namespace dolmen::backend {
namespace {

class DefragmentInFinish final : public PreparedDefragment {
 public:
  explicit DefragmentInFinish(Backend* backend) : backend_(backend) {}
  Status Finish() override { return backend_->Defragment(); }

 private:
  Backend* backend_;
};

}  // namespace

Result<std::unique_ptr<PreparedDefragment>> Backend::PrepareDefragment() {
  return std::unique_ptr<PreparedDefragment>(std::make_unique<DefragmentInFinish>(this));
}

}  // namespace dolmen::backend
