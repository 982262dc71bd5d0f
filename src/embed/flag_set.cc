#include "embed/flag_set.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

namespace dolmen::embed {
namespace {

std::string EnvName(const std::string& flag) {
  std::string out = "ETCD_";
  for (char c : flag) out.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  return out;
}

}  // namespace

Status ParseGoBool(const std::string& v, bool* out) {
  if (v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True") {
    *out = true;
    return OkStatus();
  }
  if (v == "0" || v == "f" || v == "F" || v == "false" || v == "FALSE" || v == "False") {
    *out = false;
    return OkStatus();
  }
  return InvalidArgument("parse error");
}

void FlagSet::Add(const std::string& name, std::string default_text, std::string help, Setter set) {
  if (!flags_.count(name)) order_.push_back(name);
  flags_[name] = Flag{std::move(default_text), std::move(help), false, std::move(set)};
}

void FlagSet::AddString(const std::string& name, std::string* target, std::string help) {
  Add(name, *target, std::move(help), [target](const std::string& v) {
    *target = v;
    return OkStatus();
  });
}

void FlagSet::AddBool(const std::string& name, bool* target, std::string help) {
  Add(name, *target ? "true" : "false", std::move(help),
      [target](const std::string& v) { return ParseGoBool(v, target); });
  flags_[name].is_bool = true;
}

void FlagSet::AddBoolSetter(const std::string& name, bool default_value, std::string help,
                            Setter set) {
  Add(name, default_value ? "true" : "false", std::move(help), std::move(set));
  flags_[name].is_bool = true;
}

void FlagSet::AddInt(const std::string& name, int64_t* target, std::string help) {
  Add(name, std::to_string(*target), std::move(help),
      [target](const std::string& v) { return ParseNumber(v, target); });
}

void FlagSet::AddUint(const std::string& name, uint64_t* target, std::string help) {
  Add(name, std::to_string(*target), std::move(help),
      [target](const std::string& v) { return ParseNumber(v, target); });
}

Status FlagSet::Set(const std::string& name, const std::string& value, const std::string& source) {
  Status s = flags_.at(name).set(value);
  if (!s.ok()) {
    return InvalidArgument("invalid value \"" + value + "\" for " + source + ": " + s.message());
  }
  set_[name] = true;
  return OkStatus();
}

Status FlagSet::Parse(int argc, const char* const* argv, const std::vector<std::string>& env,
                      std::vector<std::string>* warnings) {
  RETURN_IF_ERROR(ParseArgs(argc, argv));
  return ApplyEnv(env, warnings);
}

Status FlagSet::ParseArgs(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() < 2 || arg[0] != '-') {
      return InvalidArgument("'" + arg + "' is not a valid flag");
    }
    if (arg == "--") {
      if (i + 1 < argc)
        return InvalidArgument("'" + std::string(argv[i + 1]) + "' is not a valid flag");
      break;
    }
    std::string body = arg.substr(arg[1] == '-' ? 2 : 1);
    if (body.empty() || body[0] == '-' || body[0] == '=') {
      return InvalidArgument("bad flag syntax: " + arg);
    }
    std::string name = body, value;
    bool has_value = false;
    if (size_t eq = body.find('='); eq != std::string::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      has_value = true;
    }
    auto it = flags_.find(name);
    if (it == flags_.end()) return InvalidArgument("flag provided but not defined: -" + name);
    if (it->second.is_bool) {
      if (!has_value) value = "true";
    } else if (!has_value) {
      if (i + 1 >= argc) return InvalidArgument("flag needs an argument: -" + name);
      value = argv[++i];
    }
    RETURN_IF_ERROR(Set(name, value, "flag -" + name));
  }
  return OkStatus();
}

Status FlagSet::ApplyEnv(const std::vector<std::string>& env, std::vector<std::string>* warnings) {
  std::map<std::string, std::string> by_env;
  for (const auto& name : order_) by_env[EnvName(name)] = name;
  for (const auto& kv : env) {
    if (kv.rfind("ETCD_", 0) != 0) continue;
    size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;
    std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
    auto it = by_env.find(key);
    if (it == by_env.end()) {
      warnings->push_back("unrecognized environment variable " + kv);
      continue;
    }
    if (WasSet(it->second)) {
      warnings->push_back("recognized environment variable " + key +
                          ", but unused: shadowed by corresponding flag");
      continue;
    }
    RETURN_IF_ERROR(Set(it->second, value, "environment variable " + key));
  }
  return OkStatus();
}

std::string FlagSet::Usage() const {
  std::string out;
  for (const auto& name : order_) {
    const Flag& f = flags_.at(name);
    out += "  --" + name + " '" + f.default_text + "'\n      " + f.help + "\n";
  }
  return out;
}

}  // namespace dolmen::embed
