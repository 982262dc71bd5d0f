#include "embed/config_file.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

#include "embed/config.h"

namespace dolmen::embed {
namespace {

// etcd 3.4 keys (embed.Config's and etcdmain's json tags) that dolmen has no flag for, with
// (a key that is also a flag, e.g. one answered_flags.h accepts or refuses, is the flag's:
// Top looks flags up first)
// etcd's default as it reads back from YAML. A value other than the default is refused when
// ignoring it would change what the member does with data or membership; otherwise it is
// ignored with a warning.
struct EtcdOnlyKey {
  const char* default_text;
  bool refuse;
};
const std::map<std::string, EtcdOnlyKey>& EtcdOnlyKeys() {
  static const std::map<std::string, EtcdOnlyKey> keys = {
      {"max-snapshots", {"5", false}},
      {"max-wals", {"5", false}},
      {"discovery", {"", true}},
      {"discovery-proxy", {"", true}},
      {"discovery-fallback", {"proxy", false}},
      {"proxy", {"off", true}},
      {"proxy-failure-wait", {"5000", false}},
      {"proxy-refresh-interval", {"30000", false}},
      {"proxy-dial-timeout", {"1000", false}},
      {"proxy-write-timeout", {"5000", false}},
      {"proxy-read-timeout", {"0", false}},
      {"debug", {"false", false}},
      {"log-package-levels", {"", false}},
      {"log-output", {"", false}},
      {"auth-token", {"simple", true}},
      {"auth-token-ttl", {"300", false}},
      {"bcrypt-cost", {"10", false}},
      {"pre-vote", {"false", false}},
      {"initial-election-tick-advance", {"true", false}},
      {"max-concurrent-streams", {"4294967295", false}},
      {"grpc-keepalive-min-time", {"5000000000", false}},
      {"grpc-keepalive-interval", {"7200000000000", false}},
      {"grpc-keepalive-timeout", {"20000000000", false}},
      {"backend-batch-interval", {"0", false}},
      {"backend-batch-limit", {"0", false}},
      {"unsafe-no-fsync", {"false", false}},
      {"experimental-enable-v2v3", {"", true}},
      {"experimental-enable-lease-checkpoint", {"false", false}},
      {"experimental-enable-lease-checkpoint-persist", {"false", false}},
      {"experimental-compaction-batch-limit", {"1000", false}},
      {"experimental-backend-bbolt-freelist-type", {"map", false}},
      {"experimental-warning-apply-duration", {"100000000", false}},
  };
  return keys;
}

// A key inside client-/peer-transport-security, and the flag it corresponds to.
const std::map<std::string, std::string>& TlsKeys() {
  static const std::map<std::string, std::string> keys = {{"cert-file", "cert-file"},
                                                          {"key-file", "key-file"},
                                                          {"trusted-ca-file", "trusted-ca-file"},
                                                          {"client-cert-auth", "client-cert-auth"},
                                                          {"auto-tls", "auto-tls"},
                                                          {"client-cert-file", "client-cert-file"},
                                                          {"client-key-file", "client-key-file"}};
  return keys;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return s;
}

class Loader {
 public:
  Loader(std::string path, FlagSet* flags, std::vector<std::string>* warnings)
      : path_(std::move(path)), flags_(flags), warnings_(warnings) {}

  Status Load(const YAML::Node& root) {
    if (root.IsNull()) return OkStatus();  // an empty file: every default
    if (!root.IsMap()) return Error(root, "the file must be a mapping of keys to values");
    for (const auto& kv : root) {
      RETURN_IF_ERROR(Top(kv.first, kv.second));
    }
    return OkStatus();
  }

 private:
  std::string Where(const YAML::Node& node) const {
    return path_ + ":" + std::to_string(node.Mark().line + 1);
  }
  Status Error(const YAML::Node& node, const std::string& message) const {
    return InvalidArgument(Where(node) + ": " + message);
  }

  // The value as one string, as etcd would read it into its field: a scalar, or (for the
  // keys etcd declares as lists) a sequence of scalars joined with commas.
  Result<std::string> Text(const std::string& key, const YAML::Node& value, bool list) const {
    if (value.IsScalar() && !list) return value.Scalar();
    if (value.IsSequence() && list) {
      std::string out;
      for (const auto& item : value) {
        if (!item.IsScalar()) return Error(item, "key \"" + key + "\": list items must be values");
        out += (out.empty() ? "" : ",") + item.Scalar();
      }
      return out;
    }
    return Error(value, "key \"" + key + "\": expected " +
                            (list ? "a list, as etcd takes it" : "a single value") + ", got " +
                            (value.IsMap()        ? "a mapping"
                             : value.IsSequence() ? "a list"
                                                  : "a value"));
  }

  Status Top(const YAML::Node& key_node, const YAML::Node& value) {
    const std::string key = key_node.Scalar();
    const std::string lower = Lower(key);
    if (lower == "client-transport-security" || lower == "peer-transport-security") {
      return Tls(key, value, lower == "peer-transport-security" ? "peer-" : "");
    }
    if (lower == "discovery-config") return DiscoveryConfig(key, value);
    if (lower == "config-file" || lower == "version" || lower == "help" || lower == "h") {
      return Error(key_node, "unknown key \"" + key + "\"");
    }
    if (flags_->Has(lower)) {
      if (value.IsNull()) return OkStatus();  // etcd keeps the default
      ASSIGN_OR_RETURN(std::string text,
                       Text(key, value, lower == "log-outputs" || lower == "cipher-suites"));
      // A Go time.Duration in JSON is integer nanoseconds; the flag takes Go's duration text.
      if (IsDurationFlag(lower)) text += "ns";
      return flags_->SetFrom(lower, text, "key \"" + key + "\" (" + Where(key_node) + ")");
    }
    auto it = EtcdOnlyKeys().find(lower);
    if (it == EtcdOnlyKeys().end()) return Error(key_node, "unknown key \"" + key + "\"");
    if (value.IsNull()) return OkStatus();
    bool list = lower == "log-output";
    ASSIGN_OR_RETURN(std::string text, Text(key, value, list));
    if (text == it->second.default_text) return OkStatus();
    if (it->second.refuse) {
      return Error(key_node, "key \"" + key + "\" (etcd's --" + lower + ") is not supported by " +
                                 "this version of dolmen; refusing to start without it");
    }
    warnings_->push_back(Where(key_node) + ": key \"" + key + "\" (etcd's --" + lower +
                         ") is not implemented by this version of dolmen; ignored");
    return OkStatus();
  }

  // A transport-security block: each key sets the flag it stands for (peer-... in
  // peer-transport-security), so the flags' own checks apply.
  Status Tls(const std::string& block, const YAML::Node& value, const std::string& prefix) {
    if (value.IsNull()) return OkStatus();
    if (!value.IsMap()) return Error(value, "key \"" + block + "\": expected a mapping");
    for (const auto& kv : value) {
      const std::string key = kv.first.Scalar();
      auto it = TlsKeys().find(Lower(key));
      if (it == TlsKeys().end()) {
        return Error(kv.first, "unknown key \"" + key + "\" in " + block);
      }
      if (kv.second.IsNull()) continue;
      ASSIGN_OR_RETURN(std::string text, Text(key, kv.second, false));
      RETURN_IF_ERROR(
          flags_->SetFrom(prefix + it->second, text,
                          "key \"" + block + "." + key + "\" (" + Where(kv.first) + ")"));
    }
    return OkStatus();
  }

  // etcd 3.6's v3 discovery block: {token, client: {endpoints, dial-timeout, request-timeout,
  // keepalive-time, keepalive-timeout, secure: {...}, auth: {...}}} (its DiscoveryConfig's json
  // tags); each key sets the --discovery-* flag it stands for.
  Status DiscoveryConfig(const std::string& block, const YAML::Node& value) {
    static const std::map<std::string, std::string> kKeys = {
        {"token", "discovery-token"},
        {"client.endpoints", "discovery-endpoints"},
        {"client.dial-timeout", "discovery-dial-timeout"},
        {"client.request-timeout", "discovery-request-timeout"},
        {"client.keepalive-time", "discovery-keepalive-time"},
        {"client.keepalive-timeout", "discovery-keepalive-timeout"},
        {"client.secure.cert", "discovery-cert"},
        {"client.secure.key", "discovery-key"},
        {"client.secure.cacert", "discovery-cacert"},
        {"client.secure.insecure-transport", "discovery-insecure-transport"},
        {"client.secure.insecure-skip-tls-verify", "discovery-insecure-skip-tls-verify"},
        {"client.auth.username", "discovery-user"},
        {"client.auth.password", "discovery-password"}};
    return Nested(block, "", value, kKeys);
  }
  Status Nested(const std::string& block, const std::string& path, const YAML::Node& value,
                const std::map<std::string, std::string>& keys) {
    if (value.IsNull()) return OkStatus();
    if (!value.IsMap()) return Error(value, "key \"" + block + "\": expected a mapping");
    for (const auto& kv : value) {
      const std::string key = path + Lower(kv.first.Scalar());
      if (kv.second.IsMap()) {
        RETURN_IF_ERROR(Nested(block, key + ".", kv.second, keys));
        continue;
      }
      auto it = keys.find(key);
      if (it == keys.end()) return Error(kv.first, "unknown key \"" + key + "\" in " + block);
      if (kv.second.IsNull()) continue;
      ASSIGN_OR_RETURN(std::string text, Text(key, kv.second, key == "client.endpoints"));
      if (IsDurationFlag(it->second)) text += "ns";
      RETURN_IF_ERROR(flags_->SetFrom(
          it->second, text, "key \"" + block + "." + key + "\" (" + Where(kv.first) + ")"));
    }
    return OkStatus();
  }

  std::string path_;
  FlagSet* flags_;
  std::vector<std::string>* warnings_;
};

}  // namespace

Status LoadConfigText(const std::string& text, const std::string& path, FlagSet* flags,
                      std::vector<std::string>* warnings) {
  // yaml-cpp reports malformed YAML by exception; it stops here (no exceptions cross modules).
  try {
    YAML::Node root = YAML::Load(text);
    return Loader(path, flags, warnings).Load(root);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

Status LoadConfigFile(const std::string& path, FlagSet* flags, std::vector<std::string>* warnings) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("cannot read config file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return InvalidArgument("cannot read config file " + path);
  return LoadConfigText(text.str(), path, flags, warnings);
}

}  // namespace dolmen::embed
