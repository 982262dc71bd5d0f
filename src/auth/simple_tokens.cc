#include "auth/simple_tokens.h"

#include <sys/random.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace dolmen::auth {
namespace {
constexpr char kLetters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr size_t kLetterCount = sizeof(kLetters) - 1;  // 52
constexpr size_t kPrefixLength = 16;
}  // namespace

Result<std::string> SimpleTokens::NewPrefix() {
  std::string out;
  while (out.size() < kPrefixLength) {
    unsigned char bytes[32];
    ssize_t n = getrandom(bytes, sizeof(bytes), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Internal(std::string("getrandom: ") + std::strerror(errno));
    }
    for (ssize_t i = 0; i < n && out.size() < kPrefixLength; ++i) {
      // 208 = 4 * 52: bytes above it are dropped so every letter is equally likely.
      if (bytes[i] >= 4 * kLetterCount) continue;
      out.push_back(kLetters[bytes[i] % kLetterCount]);
    }
  }
  return out;
}

std::string SimpleTokens::Assign(const std::string& prefix, uint64_t index,
                                 const std::string& user) {
  std::string token = prefix + "." + std::to_string(index);
  const auto now = clock_->Now();
  std::lock_guard lock(mu_);
  SweepExpired(now);
  tokens_[token] = Entry{user, now + ttl_};
  return token;
}

std::optional<std::string> SimpleTokens::UserOf(const std::string& token) {
  const auto now = clock_->Now();
  std::lock_guard lock(mu_);
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return std::nullopt;
  if (now >= it->second.expires) {
    tokens_.erase(it);
    return std::nullopt;
  }
  it->second.expires = now + ttl_;
  return it->second.user;
}

void SimpleTokens::InvalidateUser(const std::string& user) {
  std::lock_guard lock(mu_);
  std::erase_if(tokens_, [&](const auto& t) { return t.second.user == user; });
}

void SimpleTokens::InvalidateAll() {
  std::lock_guard lock(mu_);
  tokens_.clear();
}

size_t SimpleTokens::size() const {
  std::lock_guard lock(mu_);
  return tokens_.size();
}

void SimpleTokens::SweepExpired(std::chrono::steady_clock::time_point now) {
  std::erase_if(tokens_, [&](const auto& t) { return now >= t.second.expires; });
}

std::optional<uint64_t> SimpleTokenIndex(const std::string& token) {
  size_t dot = token.find('.');
  if (dot == std::string::npos || token.find('.', dot + 1) != std::string::npos) {
    return std::nullopt;
  }
  const char* first = token.data() + dot + 1;
  const char* last = token.data() + token.size();
  uint64_t index = 0;
  auto [ptr, ec] = std::from_chars(first, last, index);
  if (ec != std::errc() || ptr != last || first == last) return std::nullopt;
  return index;
}

}  // namespace dolmen::auth
