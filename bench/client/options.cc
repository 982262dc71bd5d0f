#include "options.h"

#include <charconv>
#include <functional>
#include <map>

namespace dolmen::bench {
namespace {

// Upper bounds that keep a typo from asking for a billion threads or buffers.
constexpr int64_t kMaxClients = 100000;
constexpr int64_t kMaxTotal = 1000000000;
constexpr int64_t kMaxSize = 64 << 20;

bool ParseInt(const std::string& text, int64_t lo, int64_t hi, int64_t* out) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi) return false;
  *out = v;
  return true;
}

std::vector<std::string> SplitEndpoints(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string ep = text.substr(start, comma - start);
    // Channels take host:port; etcd users write URLs.
    for (const char* scheme : {"http://", "https://"}) {
      if (ep.rfind(scheme, 0) == 0) ep = ep.substr(std::string(scheme).size());
    }
    if (!ep.empty()) out.push_back(ep);
    start = comma + 1;
  }
  return out;
}

}  // namespace

std::string Usage() {
  return "usage: dolmen-bench <put|range|txn-put|watch|lease-keepalive> [flags]\n"
         "  --endpoints=h:p,...   --conns=N  --clients=N  --total=N\n"
         "  --key-size=N  --val-size=N  --key-space=N  --sequential-keys\n"
         "  --consistency=l|s  --json-out=FILE  --max-seconds=S  --request-timeout-ms=MS\n"
         "  --cacert=FILE (TLS)  --cert=FILE --key=FILE (client certificate)\n"
         "  range:  --range-key=K  --prefix  --limit=N\n"
         "  watch:  --watchers=N  --watch-streams=N  --watch-key=K   (--total puts)\n"
         "  lease-keepalive:  --lease-ttl=S   (--total keep-alives over --clients leases)\n";
}

std::string ParseOptions(int argc, char** argv, Options* o) {
  using Setter = std::function<bool(const std::string&)>;
  auto int_flag = [](auto* field, int64_t lo, int64_t hi) -> Setter {
    return [field, lo, hi](const std::string& v) {
      int64_t parsed = 0;
      if (!ParseInt(v, lo, hi, &parsed)) return false;
      *field = static_cast<std::remove_pointer_t<decltype(field)>>(parsed);
      return true;
    };
  };
  auto str_flag = [](std::string* field) -> Setter {
    return [field](const std::string& v) {
      *field = v;
      return true;
    };
  };
  std::map<std::string, Setter> valued = {
      {"endpoints",
       [o](const std::string& v) {
         o->endpoints = SplitEndpoints(v);
         return !o->endpoints.empty();
       }},
      {"conns", int_flag(&o->conns, 1, 10000)},
      {"clients", int_flag(&o->clients, 1, kMaxClients)},
      {"total", int_flag(&o->total, 1, kMaxTotal)},
      {"key-size", int_flag(&o->key_size, 1, kMaxSize)},
      {"val-size", int_flag(&o->val_size, 0, kMaxSize)},
      {"key-space", int_flag(&o->key_space, 1, kMaxTotal)},
      {"consistency",
       [o](const std::string& v) {
         if (v != "l" && v != "s") return false;
         o->linearizable = v == "l";
         return true;
       }},
      {"json-out", str_flag(&o->json_out)},
      {"cacert", str_flag(&o->cacert)},
      {"cert", str_flag(&o->cert)},
      {"key", str_flag(&o->key)},
      {"max-seconds",
       [o](const std::string& v) {
         int64_t s = 0;
         if (!ParseInt(v, 1, 86400, &s)) return false;
         o->max_seconds = static_cast<double>(s);
         return true;
       }},
      {"request-timeout-ms", int_flag(&o->request_timeout_ms, 1, 3600000)},
      {"range-key", str_flag(&o->range_key)},
      {"limit", int_flag(&o->limit, 0, kMaxTotal)},
      {"watchers", int_flag(&o->watchers, 1, kMaxClients)},
      {"watch-streams", int_flag(&o->watch_streams, 1, kMaxClients)},
      {"watch-key", str_flag(&o->watch_key)},
      {"lease-ttl", int_flag(&o->lease_ttl_s, 1, 86400)},
  };
  std::map<std::string, bool*> booleans = {{"sequential-keys", &o->sequential_keys},
                                           {"prefix", &o->prefix}};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      if (!o->workload.empty()) return "unexpected argument: " + arg;
      o->workload = arg;
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (auto b = booleans.find(name); b != booleans.end()) {
      if (has_value && value != "true" && value != "false") return "bad value for --" + name;
      *b->second = !has_value || value == "true";
      continue;
    }
    auto setter = valued.find(name);
    if (setter == valued.end()) return "unknown flag: --" + name;
    if (!has_value) {
      if (i + 1 >= argc) return "missing value for --" + name;
      value = argv[++i];
    }
    if (!setter->second(value)) return "bad value for --" + name + ": '" + value + "'";
  }
  static const char* kWorkloads[] = {"put", "range", "txn-put", "watch", "lease-keepalive"};
  for (const char* w : kWorkloads) {
    if (o->workload == w) return "";
  }
  return o->workload.empty() ? "missing workload" : "unknown workload: " + o->workload;
}

}  // namespace dolmen::bench
