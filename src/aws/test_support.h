// For src/aws's unit tests: a scripted HttpTransport (answers are popped in order; every request
// is kept for inspection) and an environment held in a map.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <vector>

#include "aws/credentials.h"
#include "aws/http.h"

namespace dolmen::aws {

class FakeTransport final : public HttpTransport {
 public:
  void Answer(int status, std::string body) { answers_.push_back(HttpResponse{status, body}); }
  void NoAnswer() { answers_.push_back(Unavailable("connection refused")); }

  Result<HttpResponse> Send(const HttpRequest& request) override {
    requests.push_back(request);
    if (answers_.empty()) return Unavailable("fake transport: no answer scripted");
    Result<HttpResponse> next = answers_.front();
    answers_.pop_front();
    return next;
  }

  std::vector<HttpRequest> requests;

 private:
  std::deque<Result<HttpResponse>> answers_;
};

inline std::string HeaderValue(const HttpRequest& request, const std::string& name) {
  for (const auto& [n, v] : request.headers) {
    if (n == name) return v;
  }
  return "";
}

inline Getenv EnvOf(std::map<std::string, std::string> values) {
  return [values](const std::string& name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace dolmen::aws
