// A scripted HttpTransport for the unit tests: answers are popped in order; every request is
// kept for inspection.
#pragma once

#include <deque>
#include <vector>

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

}  // namespace dolmen::aws
