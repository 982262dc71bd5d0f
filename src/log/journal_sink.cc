#include "log/journal_sink.h"

#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <string_view>

namespace dolmen::log {

int JournalPriority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return 7;
    case spdlog::level::info:
      return 6;
    case spdlog::level::warn:
      return 4;
    case spdlog::level::err:
      return 3;
    default:
      return 2;
  }
}

void JournalSink::sink_it_(const spdlog::details::log_msg& msg) {
  const std::string_view line(msg.payload.data(), msg.payload.size());
  const std::string_view file(msg.source.filename == nullptr ? "" : msg.source.filename);
  const size_t slash = file.rfind('/');
  const std::string message = "MESSAGE=" + std::string(line);
  const std::string priority = "PRIORITY=" + std::to_string(JournalPriority(msg.level));
  const std::string package =
      "PACKAGE=" + std::string(slash == std::string_view::npos ? "." : file.substr(0, slash));
  const std::string identifier = std::string("SYSLOG_IDENTIFIER=") + program_invocation_short_name;
  iovec parts[4];
  const std::string* texts[4] = {&message, &priority, &package, &identifier};
  for (int i = 0; i < 4; ++i) {
    parts[i].iov_base = const_cast<char*>(texts[i]->data());
    parts[i].iov_len = texts[i]->size();
  }
  if (sd_journal_sendv(parts, 4) < 0) {
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fputc('\n', stderr);
    std::fflush(stderr);
  }
}

}  // namespace dolmen::log
