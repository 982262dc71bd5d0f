#include "base/check.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace dolmen {
namespace {
std::atomic<CheckFailureWriter> check_failure_writer{nullptr};
}  // namespace

void SetCheckFailureWriter(CheckFailureWriter writer) { check_failure_writer.store(writer); }

}  // namespace dolmen

namespace dolmen::internal {

CheckFailure::CheckFailure(const char* file, int line, const char* condition) {
  stream_ << file << ":" << line << ": CHECK failed: " << condition << " ";
}

CheckFailure::~CheckFailure() {
  if (CheckFailureWriter writer = check_failure_writer.load(); writer != nullptr) {
    writer(stream_.str());
  } else {
    std::fprintf(stderr, "%s\n", stream_.str().c_str());
  }
  std::fflush(stderr);
  std::abort();
}

}  // namespace dolmen::internal
