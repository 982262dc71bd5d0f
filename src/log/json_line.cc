#include "log/json_line.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace dolmen::log {
namespace {

// Length of the valid UTF-8 sequence starting at s[0], or 0 if none starts there. As Go's
// utf8.DecodeRune (which zap uses): no overlong forms, no surrogates, nothing past U+10FFFF.
size_t ValidUtf8Length(std::string_view s) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const auto continuation = [&](size_t i) { return i < s.size() && (byte(i) & 0xC0) == 0x80; };
  const unsigned char b0 = byte(0);
  if (b0 >= 0xC2 && b0 <= 0xDF) return continuation(1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (!continuation(1) || !continuation(2)) return 0;
    if (b0 == 0xE0 && byte(1) < 0xA0) return 0;   // overlong
    if (b0 == 0xED && byte(1) >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (!continuation(1) || !continuation(2) || !continuation(3)) return 0;
    if (b0 == 0xF0 && byte(1) < 0x90) return 0;   // overlong
    if (b0 == 0xF4 && byte(1) >= 0x90) return 0;  // past U+10FFFF
    return 4;
  }
  return 0;
}

void AppendDouble(std::string* out, double value) {
  if (std::isnan(value)) return AppendJsonString(out, "NaN");
  if (std::isinf(value)) return AppendJsonString(out, value > 0 ? "+Inf" : "-Inf");
  char buf[512];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed);
  if (ec != std::errc()) {
    out->append("0");
    return;
  }
  out->append(buf, end);
}

void AppendField(std::string* out, const Field& f) {
  out->push_back(',');
  AppendJsonString(out, f.key());
  out->push_back(':');
  switch (f.kind()) {
    case Field::Kind::kString:
      AppendJsonString(out, f.text());
      break;
    case Field::Kind::kInt:
      out->append(std::to_string(f.int_value()));
      break;
    case Field::Kind::kUint:
      out->append(std::to_string(f.uint_value()));
      break;
    case Field::Kind::kBool:
      out->append(f.uint_value() != 0 ? "true" : "false");
      break;
    case Field::Kind::kDouble:
      AppendDouble(out, f.double_value());
      break;
    case Field::Kind::kDuration:
      AppendJsonString(out, GoDuration(std::chrono::nanoseconds(f.int_value())));
      break;
    case Field::Kind::kStrings: {
      out->push_back('[');
      bool first = true;
      for (const std::string& s : f.strings()) {
        if (!first) out->push_back(',');
        first = false;
        AppendJsonString(out, s);
      }
      out->push_back(']');
      break;
    }
  }
}

}  // namespace

void AppendJsonString(std::string* out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char ch = static_cast<unsigned char>(text[i]);
    if (ch < 0x80) {
      switch (ch) {
        case '"':
          out->append("\\\"");
          break;
        case '\\':
          out->append("\\\\");
          break;
        case '\n':
          out->append("\\n");
          break;
        case '\r':
          out->append("\\r");
          break;
        case '\t':
          out->append("\\t");
          break;
        default:
          if (ch < 0x20) {
            out->append("\\u00");
            out->push_back(kHex[ch >> 4]);
            out->push_back(kHex[ch & 0xF]);
          } else {
            out->push_back(static_cast<char>(ch));
          }
      }
      ++i;
      continue;
    }
    const size_t n = ValidUtf8Length(text.substr(i));
    if (n == 0) {
      out->append("\\ufffd");
      ++i;
    } else {
      out->append(text.substr(i, n));
      i += n;
    }
  }
  out->push_back('"');
}

std::string FormatTimestamp(std::chrono::system_clock::time_point when) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  const auto since_epoch = duration_cast<milliseconds>(when.time_since_epoch()).count();
  time_t seconds = static_cast<time_t>(since_epoch / 1000);
  long millis = static_cast<long>(since_epoch % 1000);
  if (millis < 0) {  // before 1970: floor, as Go does
    millis += 1000;
    --seconds;
  }
  tm local{};
  localtime_r(&seconds, &local);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &local);
  std::string out(buf, n);
  std::snprintf(buf, sizeof buf, ".%03ld", millis);
  out += buf;
  const long offset_minutes = local.tm_gmtoff / 60;
  if (offset_minutes == 0) {
    out += 'Z';
  } else {
    const long a = offset_minutes < 0 ? -offset_minutes : offset_minutes;
    std::snprintf(buf, sizeof buf, "%c%02ld%02ld", offset_minutes < 0 ? '-' : '+', a / 60, a % 60);
    out += buf;
  }
  return out;
}

std::string_view ShortFile(std::string_view path) {
  const size_t last = path.rfind('/');
  if (last == std::string_view::npos || last == 0) return path;
  const size_t before = path.rfind('/', last - 1);
  return before == std::string_view::npos ? path : path.substr(before + 1);
}

std::string GoDuration(std::chrono::nanoseconds duration) {
  const int64_t ns = duration.count();
  if (ns == 0) return "0s";
  // The magnitude as unsigned, so INT64_MIN does not overflow.
  const uint64_t u = ns < 0 ? uint64_t{0} - static_cast<uint64_t>(ns) : static_cast<uint64_t>(ns);
  std::string out = ns < 0 ? "-" : "";
  // "1.500" -> "1.5"; "2.000" -> "2".
  const auto with_fraction = [](uint64_t whole, uint64_t frac, int digits) {
    std::string s = std::to_string(whole);
    if (frac == 0) return s;
    std::string f = std::to_string(frac);
    f.insert(0, static_cast<size_t>(digits) - f.size(), '0');
    while (!f.empty() && f.back() == '0') f.pop_back();
    return s + "." + f;
  };
  if (u < 1000000000) {
    if (u < 1000) return out + std::to_string(u) + "ns";
    if (u < 1000000) return out + with_fraction(u / 1000, u % 1000, 3) + "\xc2\xb5s";
    return out + with_fraction(u / 1000000, u % 1000000, 6) + "ms";
  }
  const uint64_t seconds = u / 1000000000;
  const uint64_t hours = seconds / 3600;
  const uint64_t minutes = (seconds / 60) % 60;
  if (hours > 0) out += std::to_string(hours) + "h";
  if (hours > 0 || minutes > 0) out += std::to_string(minutes) + "m";
  return out + with_fraction(seconds % 60, u % 1000000000, 9) + "s";
}

std::string JsonLine(Level level, std::chrono::system_clock::time_point when, std::string_view file,
                     unsigned line, std::string_view msg, std::span<const Field> fields) {
  std::string out;
  out.reserve(128 + msg.size());
  out.append("{\"level\":\"");
  out.append(LevelName(level));
  out.append("\",\"ts\":\"");
  out.append(FormatTimestamp(when));
  out.append("\",\"caller\":");
  std::string caller(file);
  caller += ':';
  caller += std::to_string(line);
  AppendJsonString(&out, caller);
  out.append(",\"msg\":");
  AppendJsonString(&out, msg);
  for (const Field& f : fields) AppendField(&out, f);
  out.push_back('}');
  return out;
}

}  // namespace dolmen::log
