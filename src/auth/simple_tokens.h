// etcd's simple tokens (auth/simple_token.go): "<16 random letters>.<log index>", issued when an
// Authenticate entry is applied, so every member that applied it knows the token. They live in
// this member's memory only (a restart forgets them all, and clients authenticate again) and
// expire after `ttl` without use; each use extends them by `ttl`.
//
// Expiry is checked when a token is looked up and swept when one is issued, so no thread is
// needed and at most the tokens issued within one TTL are held. Thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "base/clock.h"
#include "base/status.h"

namespace dolmen::auth {

class SimpleTokens {
 public:
  // `clock` is not owned and outlives this.
  SimpleTokens(const Clock* clock, std::chrono::seconds ttl) : clock_(clock), ttl_(ttl) {}

  // 16 letters from the kernel's random source, the token's random part (etcd's
  // genTokenPrefix). Made by the proposing member, so the log carries the token.
  static Result<std::string> NewPrefix();
  // The token "<prefix>.<index>" for `user`.
  std::string Assign(const std::string& prefix, uint64_t index, const std::string& user);
  // The user of a live token, extending its life; nullopt if unknown or expired.
  std::optional<std::string> UserOf(const std::string& token);
  // Every token of `user` (deleted, or its password changed).
  void InvalidateUser(const std::string& user);
  // Every token (auth disabled).
  void InvalidateAll();
  size_t size() const;

 private:
  struct Entry {
    std::string user;
    std::chrono::steady_clock::time_point expires;
  };
  void SweepExpired(std::chrono::steady_clock::time_point now);  // caller holds mu_

  const Clock* clock_;
  const std::chrono::seconds ttl_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> tokens_;  // guarded by mu_
};

// etcd's format check: "<anything>.<decimal index>"; the index, or nullopt.
std::optional<uint64_t> SimpleTokenIndex(const std::string& token);

}  // namespace dolmen::auth
