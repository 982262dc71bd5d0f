// The two shapes of a member record at the embed seam: the replicated one (internal::Member,
// what the server keeps) and the transport's (Handler::MemberInfo, what peers exchange).
#pragma once

#include "dolmen/internal.pb.h"
#include "transport/transport.h"

namespace dolmen::embed {

inline internal::Member ToMember(const transport::Handler::MemberInfo& info) {
  internal::Member m;
  m.set_id(info.id.value());
  m.set_name(info.name);
  for (const auto& u : info.peer_urls) m.add_peer_urls(u);
  for (const auto& u : info.client_urls) m.add_client_urls(u);
  m.set_is_learner(info.is_learner);
  return m;
}

inline transport::Handler::MemberInfo ToMemberInfo(const internal::Member& m) {
  transport::Handler::MemberInfo info;
  info.id = MemberId(m.id());
  info.name = m.name();
  info.peer_urls.assign(m.peer_urls().begin(), m.peer_urls().end());
  info.client_urls.assign(m.client_urls().begin(), m.client_urls().end());
  info.is_learner = m.is_learner();
  return info;
}

}  // namespace dolmen::embed
