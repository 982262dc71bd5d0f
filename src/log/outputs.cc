#include "log/outputs.h"

#include <fcntl.h>
#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "base/check.h"
#include "log/journal_sink.h"

namespace dolmen::log {
namespace {

constexpr std::string_view kDefault = "default";
constexpr std::string_view kJournal = "systemd/journal";

spdlog::level::level_enum SpdlogLevel(Level level) {
  switch (level) {
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
    default:
      return spdlog::level::critical;
  }
}

// Our lines are finished JSON: spdlog only delivers them (pattern "%v", one per line), to each
// of its sinks under their own locks, flushing after every line so a crash loses none.
class SpdlogSink : public Sink {
 public:
  explicit SpdlogSink(std::vector<spdlog::sink_ptr> sinks)
      : logger_("dolmen", sinks.begin(), sinks.end()) {
    logger_.set_formatter(std::make_unique<spdlog::pattern_formatter>("%v"));
    logger_.set_level(spdlog::level::trace);
    logger_.flush_on(spdlog::level::trace);
    logger_.set_error_handler([](const std::string& what) {
      std::fprintf(stderr, "dolmen: cannot write a log line: %s\n", what.c_str());
    });
  }
  void Write(Level level, std::string_view line, std::string_view file) override {
    // spdlog wants a C string for the file (the journal sink reads it); a copy, since a caller's
    // view need not end in a NUL.
    const std::string file_name(file);
    logger_.log(spdlog::source_loc{file_name.c_str(), 0, ""}, SpdlogLevel(level),
                spdlog::string_view_t(line.data(), line.size()));
  }
  void Flush() override { logger_.flush(); }

 private:
  spdlog::logger logger_;
};

// Go's %q of a []string: ["a" "b"].
std::string GoQuotedList(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    out += (i == 0 ? "\"" : " \"") + values[i] + "\"";
  }
  return out + "]";
}

// etcd's check (pkg/systemd DialJournal): the journal socket accepts a datagram connection.
Status DialJournal() {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status(Code::kUnavailable, std::string("socket: ") + std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, kJournalSocket, sizeof addr.sun_path - 1);
  int rc = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  int err = errno;
  close(fd);
  if (rc == 0) return OkStatus();
  std::string why = std::strerror(err);
  if (!why.empty()) why[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(why[0])));
  return InvalidArgument(std::string("can't find journal (dial unixgram ") + kJournalSocket +
                         ": connect: " + why + ")");
}

Result<spdlog::sink_ptr> OpenFile(const std::string& path) {
  // Opened once here for zap's error text ("open <path>: <reason>"); spdlog then appends.
  int fd = path.empty() ? -1 : open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) {
    std::string why = path.empty() ? "no such file or directory" : std::strerror(errno);
    if (!why.empty()) why[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(why[0])));
    return InvalidArgument("couldn't open sink \"" + path + "\": open " + path + ": " + why);
  }
  close(fd);
  try {
    return spdlog::sink_ptr(std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, false));
  } catch (const std::exception& e) {
    return InvalidArgument("couldn't open sink \"" + path + "\": " + e.what());
  }
}

}  // namespace

Result<Level> ParseLevel(std::string_view text) {
  static const std::pair<std::string_view, Level> kNames[] = {
      {"debug", Level::kDebug},   {"DEBUG", Level::kDebug},   {"info", Level::kInfo},
      {"INFO", Level::kInfo},     {"", Level::kInfo},         {"warn", Level::kWarn},
      {"WARN", Level::kWarn},     {"error", Level::kError},   {"ERROR", Level::kError},
      {"dpanic", Level::kDPanic}, {"DPANIC", Level::kDPanic}, {"panic", Level::kPanic},
      {"PANIC", Level::kPanic},   {"fatal", Level::kFatal},   {"FATAL", Level::kFatal}};
  for (const auto& [name, level] : kNames) {
    if (name == text) return level;
  }
  return InvalidArgument("unrecognized level: \"" + std::string(text) + "\"");
}

std::vector<std::string> SplitOutputs(const std::string& text) {
  std::set<std::string> unique;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    unique.insert(
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return {unique.begin(), unique.end()};
}

Result<std::shared_ptr<Sink>> OpenOutputs(const std::vector<std::string>& given) {
  std::vector<std::string> outputs = given;
  if (outputs.empty()) outputs.push_back(std::string(kDefault));
  const bool journal = std::find(outputs.begin(), outputs.end(), kJournal) != outputs.end();
  if (outputs.size() > 1) {
    if (std::find(outputs.begin(), outputs.end(), kDefault) != outputs.end()) {
      return InvalidArgument("multi logoutput for \"default\" is not supported yet");
    }
    if (journal) {
      return InvalidArgument("running with systemd/journal but other '--log-outputs' values (" +
                             GoQuotedList(outputs) +
                             ") are configured with 'default'; override 'default' value with "
                             "something else");
    }
  }
  std::vector<spdlog::sink_ptr> sinks;
  if (std::find(outputs.begin(), outputs.end(), "/dev/null") != outputs.end()) {
    // etcd (logutil.MergeOutputPaths): "/dev/null" discards everything, whatever else is given.
    sinks.push_back(std::make_shared<spdlog::sinks::null_sink_mt>());
    return std::shared_ptr<Sink>(std::make_shared<SpdlogSink>(std::move(sinks)));
  }
  for (const std::string& out : outputs) {
    if (out == kDefault || out == "stderr") {
      sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
    } else if (out == "stdout") {
      sinks.push_back(std::make_shared<spdlog::sinks::stdout_sink_mt>());
    } else if (out == kJournal) {
      RETURN_IF_ERROR(DialJournal());
      sinks.push_back(std::make_shared<JournalSink>());
    } else {
      ASSIGN_OR_RETURN(spdlog::sink_ptr file, OpenFile(out));
      sinks.push_back(std::move(file));
    }
  }
  return std::shared_ptr<Sink>(std::make_shared<SpdlogSink>(std::move(sinks)));
}

namespace {

// A failed CHECK (base/check.h) as a log line; the process aborts right after, so it is flushed.
void WriteCheckFailure(const std::string& text) {
  Write(Level::kPanic, "CHECK failed", std::initializer_list<Field>{{"check", text}},
        SourceLocation::current());
  Flush();
}

}  // namespace

Status Configure(const Options& options) {
  if (options.logger == "capnslog") {
    return InvalidArgument("--logger=capnslog is removed in v3.5");
  }
  if (options.logger != "zap") {
    return InvalidArgument("unknown logger option \"" + options.logger + "\"");
  }
  ASSIGN_OR_RETURN(Level level, ParseLevel(options.level));
  ASSIGN_OR_RETURN(std::shared_ptr<Sink> sink, OpenOutputs(SplitOutputs(options.outputs)));
  SetSink(std::move(sink));
  SetLevel(level);
  SetCheckFailureWriter(WriteCheckFailure);
  return OkStatus();
}

std::shared_ptr<Sink> NewStderrSink() {
  return std::make_shared<SpdlogSink>(
      std::vector<spdlog::sink_ptr>{std::make_shared<spdlog::sinks::stderr_sink_mt>()});
}

}  // namespace dolmen::log
