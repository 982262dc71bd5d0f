#include "http/endpoints.h"

#include <set>
#include <sstream>

namespace dolmen::http {
namespace {

const std::vector<std::string> kLivezChecks = {"serializable_read"};
// etcd runs them in Go map order (random); a fixed order reads better and means the same.
const std::vector<std::string> kReadyzChecks = {"data_corruption", "serializable_read",
                                                "linearizable_read"};

Response MethodNotAllowed(const char* allow) {
  Response r = Response::Error(405, "Method Not Allowed");
  r.headers.emplace_back("Allow", allow);
  return r;
}

// Query values of `key`, also split at commas (etcd 3.5's getQuerySet), empty ones dropped.
std::set<std::string> QuerySet(const Request& req, const std::string& key) {
  std::set<std::string> out;
  for (const std::string& v : req.QueryValues(key)) {
    std::stringstream in(v);
    std::string item;
    while (std::getline(in, item, ',')) {
      if (!item.empty()) out.insert(item);
    }
  }
  return out;
}

metrics::Counter& HealthSuccess() {
  static metrics::Counter& c = metrics::DefaultRegistry().AddCounter(
      "etcd_server_health_success", "The total number of successful health checks");
  return c;
}

metrics::Counter& HealthFailures() {
  static metrics::Counter& c = metrics::DefaultRegistry().AddCounter(
      "etcd_server_health_failures", "The total number of failed health checks");
  return c;
}

metrics::GaugeFamily& CheckGauge() {
  static metrics::GaugeFamily& gauge = metrics::DefaultRegistry().AddGaugeFamily(
      "etcd_server_healthcheck", "The result of each kind of healthcheck.", {"type", "name"});
  return gauge;
}

metrics::CounterFamily& CheckTotal() {
  static metrics::CounterFamily& total = metrics::DefaultRegistry().AddCounterFamily(
      "etcd_server_healthchecks_total", "The total number of each kind of healthcheck.",
      {"type", "name", "status"});
  return total;
}

void RecordCheck(const std::string& type, const std::string& name, bool ok) {
  CheckGauge().With({type, name}).Set(ok ? 1 : 0);
  CheckTotal().With({type, name, ok ? "success" : "error"}).Inc();
}

Response Health(HealthChecks* checks, const Request& req) {
  if (req.method != "GET") return MethodNotAllowed("GET");
  const HealthChecks::Result h =
      checks->Health(QuerySet(req, "exclude"),
                     req.QueryValues("serializable") == std::vector<std::string>{"true"});
  (h.ok ? HealthSuccess() : HealthFailures()).Inc();
  // Go's json.Marshal of etcd's Health struct. Reasons are short ASCII texts (an etcd error
  // message at most), so quotes and backslashes are all that needs escaping.
  std::string reason;
  for (char c : h.reason) {
    if (c == '"' || c == '\\') reason += '\\';
    reason += c;
  }
  const std::string body = std::string("{\"health\":\"") + (h.ok ? "true" : "false") +
                           "\",\"reason\":\"" + reason + "\"}";
  if (!h.ok) return Response::Error(503, body);
  Response r;
  r.headers = {{"Content-Type", "text/plain; charset=utf-8"}};  // what Go sniffs from the body
  r.body = body;
  return r;
}

// /livez, /readyz and their /<check> sub-paths.
Response Checks(HealthChecks* checks, const std::string& type, const std::vector<std::string>& all,
                const std::string& only, const Request& req) {
  if (req.method != "GET") return MethodNotAllowed("GET");
  std::vector<std::string> run;
  if (!only.empty()) {
    run = {only};
  } else {
    const std::set<std::string> excluded = QuerySet(req, "exclude");
    for (const std::string& c : all) {
      if (excluded.count(c) == 0) run.push_back(c);
    }
  }
  bool ok = true;
  std::string report;
  for (const std::string& name : run) {
    const HealthChecks::Result r = checks->RunCheck(name);
    RecordCheck(type, name, r.ok);
    ok = ok && r.ok;
    report += r.ok ? "[+]" + name + " ok\n" : "[-]" + name + " failed: " + r.reason + "\n";
  }
  if (!ok) return Response::Error(503, report);  // Go's http.Error adds a newline to the last
  Response r;
  r.headers = {{"Content-Type", "text/plain; charset=utf-8"},
               {"X-Content-Type-Options", "nosniff"}};
  r.body = (req.HasQuery("verbose") ? report : "") + "ok\n";
  return r;
}

// Sub-path `/livez/<check>` of a known check, or "" for the root.
bool MatchChecks(const std::string& path, const std::string& root,
                 const std::vector<std::string>& all, std::string* only) {
  if (path == root) {
    only->clear();
    return true;
  }
  for (const std::string& c : all) {
    if (path == root + "/" + c) {
      *only = c;
      return true;
    }
  }
  return false;
}

}  // namespace

void RegisterEndpointMetrics() {
  HealthSuccess();
  HealthFailures();
  CheckGauge();
  CheckTotal();
}

Handler MakeEndpoints(HealthChecks* checks, metrics::Registry* registry, EndpointOptions options) {
  return [checks, registry, options](const Request& req) -> Response {
    std::string only;
    if (req.path == "/metrics") {
      Response r;
      r.headers = {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}};
      r.body = registry->Expose();
      return r;
    }
    if (req.path == "/health") return Health(checks, req);
    if (MatchChecks(req.path, "/livez", kLivezChecks, &only)) {
      return Checks(checks, "livez", kLivezChecks, only, req);
    }
    if (MatchChecks(req.path, "/readyz", kReadyzChecks, &only)) {
      return Checks(checks, "readyz", kReadyzChecks, only, req);
    }
    if (options.version && req.path == "/version") {
      if (req.method != "GET") return MethodNotAllowed("GET");
      Response r;
      r.headers = {{"Content-Type", "application/json"}};
      r.body = "{\"etcdserver\":\"" + options.server_version + "\",\"etcdcluster\":\"" +
               options.cluster_version + "\"}";
      return r;
    }
    return Response::Error(404, "404 page not found");
  };
}

}  // namespace dolmen::http
