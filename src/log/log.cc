#include "log/log.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "log/json_line.h"
#include "log/outputs.h"

namespace dolmen::log {
namespace internal {
std::atomic<int> threshold{static_cast<int>(Level::kInfo)};
}  // namespace internal

namespace {

// The current sink. Swapped rarely (start-up, tests); each Write copies the pointer under the
// mutex, so a swap never frees a sink that a line is being written to.
struct SinkSlot {
  std::mutex mu;
  std::shared_ptr<Sink> sink;  // guarded by mu; null until first use
};

SinkSlot& Slot() {
  static SinkSlot* slot = new SinkSlot;  // never destroyed: threads may log during exit
  return *slot;
}

std::shared_ptr<Sink> CurrentSink() {
  SinkSlot& slot = Slot();
  std::lock_guard lock(slot.mu);
  if (!slot.sink) slot.sink = NewStderrSink();
  return slot.sink;
}

}  // namespace

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
    case Level::kDPanic:
      return "dpanic";
    case Level::kPanic:
      return "panic";
    case Level::kFatal:
      return "fatal";
  }
  return "info";
}

void SetLevel(Level level) {
  internal::threshold.store(static_cast<int>(level), std::memory_order_relaxed);
}

Level CurrentLevel() {
  return static_cast<Level>(internal::threshold.load(std::memory_order_relaxed));
}

void SetSink(std::shared_ptr<Sink> sink) {
  SinkSlot& slot = Slot();
  std::lock_guard lock(slot.mu);
  slot.sink = std::move(sink);
}

void Flush() { CurrentSink()->Flush(); }

void Write(Level level, std::string_view msg, std::span<const Field> fields,
           const SourceLocation& where) {
  // Formatting allocates; a failed allocation must not take the process down from a log line.
  try {
    const std::string_view file = ShortFile(where.file_name());
    const std::string line =
        JsonLine(level, std::chrono::system_clock::now(), file, where.line(), msg, fields);
    CurrentSink()->Write(level, line, file);
  } catch (...) {
    std::fputs("dolmen: a log line could not be written\n", stderr);
  }
}

void Panic(std::string_view msg, std::initializer_list<Field> fields, const SourceLocation where) {
  if (Enabled(Level::kPanic)) Write(Level::kPanic, msg, fields, where);
  Flush();
  std::fflush(nullptr);
  std::abort();
}

void Fatal(std::string_view msg, std::initializer_list<Field> fields, const SourceLocation where) {
  if (Enabled(Level::kFatal)) Write(Level::kFatal, msg, fields, where);
  Flush();
  std::fflush(nullptr);
  // As Go's os.Exit: no destructors, which other threads may still be using.
  std::_Exit(1);
}

std::string Hex(uint64_t id) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(id));
  return buf;
}

}  // namespace dolmen::log
