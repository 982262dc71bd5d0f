// Command-line flags with Go's flag-package rules, because operators pass etcd's flags as they
// always have: "--name x", "--name=x", "-name x"; booleans as "--flag" or "--flag=false"; and
// every flag also settable as ETCD_<NAME> (dashes to underscores), the command line winning.
// A small parser of our own beats a general CLI library here: those follow GNU conventions
// (single-dash short options) that would misread etcd's "-name".
#pragma once

#include <charconv>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"

namespace dolmen::embed {

// A whole decimal number of type T, as Go's flag package reads one ("parse error", "value out
// of range").
template <typename T>
Status ParseNumber(const std::string& v, T* out) {
  T parsed{};
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), parsed);
  if (ec == std::errc::result_out_of_range) return InvalidArgument("value out of range");
  if (ec != std::errc() || ptr != v.data() + v.size() || v.empty()) {
    return InvalidArgument("parse error");
  }
  *out = parsed;
  return OkStatus();
}

// Go's strconv.ParseBool, which Go's flag package uses: 1 t T true TRUE True, and the same for
// false; anything else is "parse error".
Status ParseGoBool(const std::string& text, bool* out);

class FlagSet {
 public:
  // `set` parses a value and stores it; it returns a message (without the flag's name) when
  // the value is bad.
  using Setter = std::function<Status(const std::string& value)>;

  void AddString(const std::string& name, std::string* target, std::string help);
  void AddBool(const std::string& name, bool* target, std::string help);
  void AddInt(const std::string& name, int64_t* target, std::string help);
  void AddUint(const std::string& name, uint64_t* target, std::string help);
  void Add(const std::string& name, std::string default_text, std::string help, Setter set);
  // A boolean flag with its own setter: "--name" alone passes "true", as for AddBool.
  void AddBoolSetter(const std::string& name, bool default_value, std::string help, Setter set);

  // Parses argv[1..]; then fills flags not given from ETCD_* variables in `env` ("K=V").
  // Unknown ETCD_ variables are reported in `warnings`, as etcd does.
  Status Parse(int argc, const char* const* argv, const std::vector<std::string>& env,
               std::vector<std::string>* warnings);
  // Parse's two halves, for callers that decide between them (--config-file ignores ETCD_*).
  Status ParseArgs(int argc, const char* const* argv);
  Status ApplyEnv(const std::vector<std::string>& env, std::vector<std::string>* warnings);

  // Sets one flag from another source (a config file); `source` names it in the error, as
  // in "invalid value \"x\" for <source>: <the flag's own message>".
  bool Has(const std::string& name) const { return flags_.count(name) > 0; }
  Status SetFrom(const std::string& name, const std::string& value, const std::string& source) {
    return Set(name, value, source);
  }

  bool WasSet(const std::string& name) const { return set_.count(name) > 0; }
  // Every flag's name, in the order they were added.
  const std::vector<std::string>& Names() const { return order_; }
  std::string Usage() const;

 private:
  struct Flag {
    std::string default_text;
    std::string help;
    bool is_bool = false;
    Setter set;
  };
  Status Set(const std::string& name, const std::string& value, const std::string& source);

  std::map<std::string, Flag> flags_;
  std::vector<std::string> order_;
  std::map<std::string, bool> set_;
};

}  // namespace dolmen::embed
