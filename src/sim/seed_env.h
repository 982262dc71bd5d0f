// What the simulators' tests read from their environment to run or replay seeds, shared by the
// Raft-only simulator (tests/sim) and the whole-cluster one (src/sim).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace dolmen::sim {

// The number in environment variable `name`, or `fallback` when it is unset or empty.
inline uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v == nullptr || *v == '\0' ? fallback : std::strtoull(v, nullptr, 10);
}

// The running test binary's path, for a replay command; `fallback` if /proc cannot say.
inline std::string SelfExecutable(const std::string& fallback) {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? fallback : exe.string();
}

}  // namespace dolmen::sim
