// Structured logging, as etcd logs with zap: one JSON object per line,
//   {"level":"info","ts":"2026-12-06T18:40:01.123Z","caller":"server/driver.cc:123","msg":"...",
//    "term":2,"local-member-id":"8e9e05c52164694d"}
// so the same log pipelines parse dolmen's lines and etcd's (docs/logging.md).
//
//   log::Info("became leader", {{"local-member-id", log::Hex(id)}, {"term", term}});
//
// Thread-safe, never throws: any bytes (invalid UTF-8, control characters, quotes) in a message,
// key or value come out as valid JSON. A call below the configured level returns after one
// relaxed atomic load, but its arguments are still evaluated: guard an expensive debug line
// with `if (log::Enabled(log::Level::kDebug))`. Nothing on the request path logs above debug.
//
// Fields hold views: a Field must not outlive the call it is passed to (write them inline, in
// the braces of the call, as above).
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <source_location>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dolmen::log {

// zap's levels, in order. kDPanic exists because zap accepts "dpanic" for --log-level; dolmen
// logs nothing at it.
enum class Level : int { kDebug = 0, kInfo, kWarn, kError, kDPanic, kPanic, kFatal };

// zap's lower-case names: "debug", "info", "warn", "error", "dpanic", "panic", "fatal".
std::string_view LevelName(Level level);

// One key/value pair. The value keeps its JSON type: string, number, bool, a duration (as Go
// prints it: "1.5s", zap's StringDurationEncoder) or a list of strings.
class Field {
 public:
  enum class Kind { kString, kInt, kUint, kBool, kDouble, kDuration, kStrings };

  Field(std::string_view key, std::string_view value)
      : key_(key), kind_(Kind::kString), text_(value) {}
  Field(std::string_view key, const char* value)
      : Field(key, std::string_view(value == nullptr ? "" : value)) {}
  Field(std::string_view key, const std::string& value) : Field(key, std::string_view(value)) {}
  Field(std::string_view key, bool value) : key_(key), kind_(Kind::kBool), uint_(value ? 1 : 0) {}
  template <std::signed_integral T>
  Field(std::string_view key, T value) : key_(key), kind_(Kind::kInt), int_(value) {}
  template <std::unsigned_integral T>
  requires(!std::same_as<T, bool>) Field(std::string_view key, T value)
      : key_(key), kind_(Kind::kUint), uint_(value) {}
  Field(std::string_view key, double value) : key_(key), kind_(Kind::kDouble), double_(value) {}
  template <class Rep, class Period>
  Field(std::string_view key, std::chrono::duration<Rep, Period> value)
      : key_(key),
        kind_(Kind::kDuration),
        int_(std::chrono::duration_cast<std::chrono::nanoseconds>(value).count()) {}
  Field(std::string_view key, const std::vector<std::string>& values)
      : key_(key), kind_(Kind::kStrings), strings_(&values) {}

  std::string_view key() const { return key_; }
  Kind kind() const { return kind_; }
  std::string_view text() const { return text_; }
  int64_t int_value() const { return int_; }     // kInt; nanoseconds for kDuration
  uint64_t uint_value() const { return uint_; }  // kUint; 0 or 1 for kBool
  double double_value() const { return double_; }
  const std::vector<std::string>& strings() const { return *strings_; }

 private:
  std::string_view key_;
  Kind kind_;
  std::string_view text_;
  int64_t int_ = 0;
  uint64_t uint_ = 0;
  double double_ = 0;
  const std::vector<std::string>* strings_ = nullptr;
};

// Where finished lines go (log/outputs.h builds the real ones on spdlog). `line` is one JSON
// object without the newline; `file` is the caller's short file name ("server/driver.cc").
// Called from any thread; must not throw.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void Write(Level level, std::string_view line, std::string_view file) = 0;
  virtual void Flush() {}
};

namespace internal {
extern std::atomic<int> threshold;
}  // namespace internal

inline bool Enabled(Level level) {
  return static_cast<int>(level) >= internal::threshold.load(std::memory_order_relaxed);
}
// The least level written; info until configured.
void SetLevel(Level level);
Level CurrentLevel();
// Replaces where lines go (null: back to the default, stderr). Lines being written meanwhile go
// to one or the other, whole.
void SetSink(std::shared_ptr<Sink> sink);
void Flush();

// Where a log call is written: std::source_location where the standard library has it. With
// clang 14 (the fuzz build, docs/testing.md) libstdc++ 12 leaves it out for want of a builtin, so
// there the same two fields come from the __builtin_FILE/__builtin_LINE builtins.
#if defined(__cpp_lib_source_location)
using SourceLocation = std::source_location;
#else
class SourceLocation {
 public:
  static constexpr SourceLocation current(const char* file = __builtin_FILE(),
                                          unsigned line = __builtin_LINE()) {
    return SourceLocation(file, line);
  }
  constexpr const char* file_name() const { return file_; }
  constexpr unsigned line() const { return line_; }

 private:
  constexpr SourceLocation(const char* file, unsigned line) : file_(file), line_(line) {}
  const char* file_;
  unsigned line_;
};
#endif

// Formats and writes one line, whatever the level (callers check Enabled first).
void Write(Level level, std::string_view msg, std::span<const Field> fields,
           const SourceLocation& where);

inline void Debug(std::string_view msg, std::initializer_list<Field> fields = {},
                  const SourceLocation where = SourceLocation::current()) {
  if (Enabled(Level::kDebug)) Write(Level::kDebug, msg, fields, where);
}
inline void Info(std::string_view msg, std::initializer_list<Field> fields = {},
                 const SourceLocation where = SourceLocation::current()) {
  if (Enabled(Level::kInfo)) Write(Level::kInfo, msg, fields, where);
}
inline void Warn(std::string_view msg, std::initializer_list<Field> fields = {},
                 const SourceLocation where = SourceLocation::current()) {
  if (Enabled(Level::kWarn)) Write(Level::kWarn, msg, fields, where);
}
inline void Error(std::string_view msg, std::initializer_list<Field> fields = {},
                  const SourceLocation where = SourceLocation::current()) {
  if (Enabled(Level::kError)) Write(Level::kError, msg, fields, where);
}
// zap's Panic and Fatal: the line is written (if its level is enabled, as zap does) and flushed,
// then the process aborts (Panic) or exits with status 1 (Fatal) whatever the level.
[[noreturn]] void Panic(std::string_view msg, std::initializer_list<Field> fields = {},
                        const SourceLocation where = SourceLocation::current());
[[noreturn]] void Fatal(std::string_view msg, std::initializer_list<Field> fields = {},
                        const SourceLocation where = SourceLocation::current());

// A member, cluster or lease id as etcd prints it in logs (types.ID): lower-case hex, no
// padding, e.g. "8e9e05c52164694d".
std::string Hex(uint64_t id);

}  // namespace dolmen::log
