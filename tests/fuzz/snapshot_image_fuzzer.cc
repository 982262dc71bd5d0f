// libFuzzer target: the records of a backend image, decoded as a member decodes a leader's
// snapshot image before and while installing it (server_snapshot.cc) and its own backend at
// start (server_storage.cc): the image's consistent index, the mvcc store (key index, revisions,
// compaction marks), the leases and their attachments, users and roles, the member list and the
// alarms. The image's bytes reach us checked only by a CRC over the transfer, so a leader of
// another version, a bug or a disk fault can put any record in any bucket: the allowed outcomes
// are an error Status from each step, never a crash or a hang.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "auth/auth_store.h"
#include "backend/memory_backend.h"
#include "lease/lessor.h"
#include "mvcc/store.h"
#include "server/alarm_store.h"
#include "server/membership.h"
#include "tests/fuzz/image_input.h"

namespace {

constexpr int kMaxRecords = 256;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dolmen;
  std::unique_ptr<backend::Backend> image = backend::NewMemoryBackend();
  {
    auto txn = image->BeginWrite();
    if (!txn.ok()) std::abort();
    int records = 0;
    fuzz::ForEachRecord({reinterpret_cast<const char*>(data), size},
                        [&](std::string_view bucket, std::string_view key, std::string_view value) {
                          if (records++ < kMaxRecords) (void)(*txn)->Put(bucket, key, value);
                        });
    if (!(*txn)->Commit().ok()) std::abort();
  }
  {
    // What ReceiveSnapshot checks before Raft commits to the snapshot.
    auto txn = image->BeginRead();
    if (!txn.ok()) std::abort();
    (void)mvcc::Store::ImageConsistentIndex(**txn);
  }
  auto store = mvcc::Store::Open(image.get());
  if (store.ok()) {
    // What RestoreFromImage and ReloadLeases do: the store again from the image, the leases,
    // and their attachments from every live key.
    auto txn = image->BeginRead();
    if (!txn.ok()) std::abort();
    (void)(*store)->Restore(**txn);
    lease::Lessor lessor{lease::LessorOptions{}};
    (void)lessor.Load(txn->get());
    mvcc::RangeOptions all;
    all.key = std::string(1, '\0');
    all.range_end = std::string(1, '\0');
    all.keys_only = true;
    (void)(*store)->Range(all);
  }
  auth::AuthStore auth;
  (void)auth.Load(image.get());
  server::Membership members;
  (void)members.Load(image.get());
  server::AlarmStore alarms;
  (void)alarms.Load(image.get());
  return 0;
}
