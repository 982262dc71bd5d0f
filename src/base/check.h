// CHECK: an invariant that cannot fail unless Dolmen has a bug. Always on, release builds
// included (TigerBeetle's TIGER_STYLE): a broken invariant stops the process and prints the
// values involved, rather than carrying on with corrupt state.
#pragma once

#include <sstream>
#include <string>

namespace dolmen {

// Where a failed CHECK's text goes before the process aborts. Unset, it is printed to stderr;
// src/log installs one that writes it as a log line (level "panic"), so a member logging to a
// file or the journal records there why it stopped. Must not throw.
using CheckFailureWriter = void (*)(const std::string& text);
void SetCheckFailureWriter(CheckFailureWriter writer);

}  // namespace dolmen

namespace dolmen::internal {

class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Lets `CHECK(x) << "context"` compile to nothing when x holds.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace dolmen::internal

#define CHECK(condition)                        \
  (condition) ? (void)0                         \
              : ::dolmen::internal::Voidify() & \
                    ::dolmen::internal::CheckFailure(__FILE__, __LINE__, #condition).stream()

#define DOLMEN_CHECK_OP(a, op, b) CHECK((a)op(b)) << "(" << (a) << " vs " << (b) << ") "
#define CHECK_EQ(a, b) DOLMEN_CHECK_OP(a, ==, b)
#define CHECK_NE(a, b) DOLMEN_CHECK_OP(a, !=, b)
#define CHECK_LT(a, b) DOLMEN_CHECK_OP(a, <, b)
#define CHECK_LE(a, b) DOLMEN_CHECK_OP(a, <=, b)
#define CHECK_GT(a, b) DOLMEN_CHECK_OP(a, >, b)
#define CHECK_GE(a, b) DOLMEN_CHECK_OP(a, >=, b)
