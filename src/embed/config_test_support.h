// For the config tests: parses a command line as dolmen's main does (flags only, no ETCD_*
// variables) and validates it.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "embed/config.h"
#include "embed/flag_set.h"

namespace dolmen::embed::testing {

inline Status ParseAndValidate(std::vector<const char*> args, Config* c) {
  FlagSet flags;
  RegisterFlags(&flags, c);
  args.insert(args.begin(), "dolmen");
  std::vector<std::string> warnings;
  RETURN_IF_ERROR(flags.Parse(static_cast<int>(args.size()), args.data(), {}, &warnings));
  return Validate(flags, c);
}

}  // namespace dolmen::embed::testing
