// libFuzzer target: committed log entries applied to a fresh store (the apply path every member
// runs, for live entries and on replay). An entry is whatever a leader proposed, so a leader of
// another version, a bug or a corrupted log can hand any bytes to it: the allowed outcomes are
// a response or an error Status, never a crash, and the store never reports a storage failure
// (this store is in memory and cannot fail).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "backend/memory_backend.h"
#include "base/clock.h"
#include "lease/lessor.h"
#include "mvcc/store.h"
#include "server/alarm_store.h"
#include "server/applier.h"
#include "server/quota.h"
#include "tests/fuzz/apply_input.h"

namespace {

// A small quota, so that inputs reach the NOSPACE paths too.
constexpr uint64_t kQuotaBytes = 64 * 1024;
constexpr int kMaxRequests = 64;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dolmen;
  std::unique_ptr<backend::Backend> backend = backend::NewMemoryBackend();
  auto store = mvcc::Store::Open(backend.get());
  if (!store.ok()) std::abort();
  server::AlarmStore alarms;
  if (!alarms.Load(backend.get()).ok()) std::abort();
  server::Quota quota(kQuotaBytes, [&backend] { return backend->SizeBytes(); });
  lease::Lessor lessor{lease::LessorOptions{}};
  ManualClock clock;
  server::Applier applier(store->get());
  applier.set_leases(&lessor, &clock);
  applier.set_alarms(&alarms, &quota, [] {});
  int applied = 0;
  fuzz::ForEachRequest({reinterpret_cast<const char*>(data), size}, [&](std::string_view bytes) {
    internal::InternalRequest request;
    if (applied >= kMaxRequests ||
        !request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return;
    }
    ++applied;
    applier.Apply(request);
    if (applier.storage_failed()) std::abort();
    clock.Advance(std::chrono::seconds(1));
  });
  return 0;
}
