#include "metrics/process.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace dolmen::metrics {
namespace {

// Fields of /proc/self/stat after the command name (which may hold spaces and parentheses,
// hence the search for the last ')'). Field 3 (state) is index 0 here.
std::vector<std::string> StatFields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  std::vector<std::string> fields;
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return fields;
  std::istringstream rest(line.substr(close + 1));
  std::string f;
  while (rest >> f) fields.push_back(f);
  return fields;
}

double StatField(const std::vector<std::string>& fields, int stat_number) {
  const size_t i = static_cast<size_t>(stat_number - 3);  // proc(5) numbers fields from 1
  return i < fields.size() ? std::strtod(fields[i].c_str(), nullptr) : 0;
}

double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime") {
      in >> value;
      return value;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

double OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  double n = 0;
  while (dirent* d = readdir(dir)) {
    if (d->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;  // the directory stream's own descriptor
}

}  // namespace

void RegisterProcessMetrics(Registry& registry) {
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  static const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const void* owner = &registry;
  registry.AddCollector(
      "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
      Type::kCounter,
      [] {
        auto f = StatFields();
        return std::vector<Sample>{{{}, (StatField(f, 14) + StatField(f, 15)) / ticks}};
      },
      owner);
  registry.AddGaugeFunc(
      "process_resident_memory_bytes", "Resident memory size in bytes.",
      [] { return StatField(StatFields(), 24) * page; }, owner);
  registry.AddGaugeFunc(
      "process_virtual_memory_bytes", "Virtual memory size in bytes.",
      [] { return StatField(StatFields(), 23); }, owner);
  registry.AddGaugeFunc(
      "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
      [] { return BootTimeSeconds() + StatField(StatFields(), 22) / ticks; }, owner);
  registry.AddGaugeFunc("process_open_fds", "Number of open file descriptors.", OpenFds, owner);
  registry.AddGaugeFunc(
      "process_max_fds", "Maximum number of open file descriptors.",
      [] {
        rlimit r{};
        getrlimit(RLIMIT_NOFILE, &r);
        return static_cast<double>(r.rlim_cur);
      },
      owner);
}

}  // namespace dolmen::metrics
