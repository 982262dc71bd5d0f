// The line format: zap's JSON encoder with etcd's production encoder config (etcd
// pkg/logutil/zap.go): keys level, ts, caller, msg, then the fields in call order; lower-case
// level names; ts as zap's ISO8601TimeEncoder ("2006-01-02T15:04:05.000Z0700", local time);
// caller as zap's ShortCallerEncoder (the last directory and the file, ":line"); durations as
// Go's Duration.String(). Pure functions, so tests pin the format down byte for byte.
#pragma once

#include <chrono>
#include <span>
#include <string>
#include <string_view>

#include "log/log.h"

namespace dolmen::log {

// Appends `text` as a quoted JSON string, escaped as zap escapes: '"' and '\\' backslashed,
// \n \r \t by name, other bytes below 0x20 as \u00XX, and every byte that does not start a
// valid UTF-8 sequence as \ufffd. Valid UTF-8 (DEL included) is copied as is.
void AppendJsonString(std::string* out, std::string_view text);

// "2026-12-06T18:40:01.123Z" (UTC) or "2026-12-06T19:40:01.123+0100": milliseconds, the zone
// offset of the local time zone, as zap's ISO8601TimeEncoder.
std::string FormatTimestamp(std::chrono::system_clock::time_point when);

// "/work/src/server/driver.cc", 12 -> "server/driver.cc:12" (zap's ShortCallerEncoder).
std::string_view ShortFile(std::string_view path);

// Go's time.Duration.String(): "0s", "1.5s", "2m0.5s", "1h0m0s", "300ms", "1.5µs", "-2s".
std::string GoDuration(std::chrono::nanoseconds duration);

// One whole line, without the trailing newline.
std::string JsonLine(Level level, std::chrono::system_clock::time_point when, std::string_view file,
                     unsigned line, std::string_view msg, std::span<const Field> fields);

}  // namespace dolmen::log
