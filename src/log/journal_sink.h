// --log-outputs=systemd/journal: each JSON line goes to journald as MESSAGE, with PRIORITY from
// its level, PACKAGE (the caller's directory) and SYSLOG_IDENTIFIER (the program's name), the
// fields etcd's journal writer sends (etcd pkg/logutil/zap_journal.go). A line journald does not
// take is written to standard error instead, as etcd falls back.
#pragma once

#include <spdlog/sinks/base_sink.h>

#include <mutex>

namespace dolmen::log {

class JournalSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}
};

// syslog's PRIORITY for a spdlog level, as etcd maps zap's: debug 7, info 6, warn 4, error 3,
// dpanic/panic/fatal 2.
int JournalPriority(spdlog::level::level_enum level);

}  // namespace dolmen::log
