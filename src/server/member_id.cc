#include "server/member_id.h"

#include <openssl/sha.h>

#include <algorithm>

#include "base/coding.h"

namespace dolmen::server {
namespace {

uint64_t FirstEightBytesBigEndian(const std::string& bytes) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return coding::DecodeBigEndian64(reinterpret_cast<const char*>(digest));
}

}  // namespace

MemberId ComputeMemberId(std::vector<std::string> peer_urls, const std::string& cluster_token) {
  std::sort(peer_urls.begin(), peer_urls.end());
  std::string input;
  for (const auto& u : peer_urls) input += u;
  input += cluster_token;
  return MemberId(FirstEightBytesBigEndian(input));
}

ClusterId ComputeClusterId(std::vector<MemberId> members) {
  std::sort(members.begin(), members.end());
  std::string input;
  for (MemberId m : members) coding::PutBigEndian64(&input, m.value());
  return ClusterId(FirstEightBytesBigEndian(input));
}

}  // namespace dolmen::server
