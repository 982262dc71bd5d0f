#include "embed/removed_member.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <vector>

#include "log/log.h"

namespace dolmen::embed {
namespace {

Status Rename(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    return Status(Code::kInternal,
                  "cannot move " + from + " aside to " + to + ": " + std::strerror(errno));
  }
  log::Warn("moved the data of a removed member aside; this member joins the cluster anew",
            {{"from", from}, {"to", to}});
  return OkStatus();
}

}  // namespace

std::string RemovedDataDirName(const std::string& data_dir, std::time_t now) {
  std::tm utc{};
  gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &utc);
  std::string dir = data_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir + ".removed-" + stamp;
}

Status MoveDataDirAside(const Config& config) {
  const std::time_t now = std::time(nullptr);
  // A --wal-dir outside the data dir holds the same member's log: it goes too.
  if (!config.wal_dir.empty() && config.wal_dir.rfind(config.data_dir + "/", 0) != 0) {
    RETURN_IF_ERROR(Rename(config.wal_dir, RemovedDataDirName(config.wal_dir, now)));
  }
  return Rename(config.data_dir, RemovedDataDirName(config.data_dir, now));
}

Status RestartSelf() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\0') {
      args.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  if (args.empty()) return Status(Code::kInternal, "cannot read /proc/self/cmdline");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The member blocked these to take them with sigwait; the new image must be stoppable while
  // it discovers (a signal pending now ends the process, as the operator asked).
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, nullptr);
  log::Info("starting again to join the cluster as a new member");
  log::Flush();
  execv("/proc/self/exe", argv.data());
  return Status(Code::kInternal, std::string("cannot start again: ") + std::strerror(errno));
}

}  // namespace dolmen::embed
