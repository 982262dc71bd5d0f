// Strong integer types, so that a log index is never passed where an MVCC revision is expected.
// "index" always means a Raft/log index; "revision" always means an MVCC revision.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>

namespace dolmen {

template <typename Tag, typename Rep>
class StrongId {
 public:
  using rep = Rep;
  constexpr StrongId() = default;
  constexpr explicit StrongId(Rep v) : v_(v) {}
  constexpr Rep value() const { return v_; }
  constexpr auto operator<=>(const StrongId&) const = default;
  friend std::ostream& operator<<(std::ostream& os, StrongId id) { return os << id.v_; }

 private:
  Rep v_{};
};

struct TermTag {};
struct IndexTag {};
struct RevisionTag {};
struct LeaseIdTag {};
struct MemberIdTag {};
struct ClusterIdTag {};

using Term = StrongId<TermTag, uint64_t>;
using Index = StrongId<IndexTag, uint64_t>;
using Revision = StrongId<RevisionTag, int64_t>;
using LeaseId = StrongId<LeaseIdTag, int64_t>;
using MemberId = StrongId<MemberIdTag, uint64_t>;
using ClusterId = StrongId<ClusterIdTag, uint64_t>;

}  // namespace dolmen

template <typename Tag, typename Rep>
struct std::hash<dolmen::StrongId<Tag, Rep>> {
  size_t operator()(dolmen::StrongId<Tag, Rep> id) const { return std::hash<Rep>()(id.value()); }
};
