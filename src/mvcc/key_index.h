// The history of one key in the in-memory index: its generations. A generation is one life of
// the key, from the put that created it to the delete (tombstone) that ended it. Deleting a key
// and putting it again starts a new generation with a new create revision and version 1.
//
// Only revisions are kept here, never values: values live in the backend under their revision.
// Not thread-safe; the Store guards it.
#pragma once

#include <absl/container/inlined_vector.h>

#include <cstdint>
#include <optional>
#include <set>
#include <vector>

#include "mvcc/revision.h"

namespace dolmen::mvcc {

class KeyIndex {
 public:
  // What a read at some revision finds for this key.
  struct Found {
    RevisionPair rev;  // the version visible at the read revision
    Revision created;  // create revision of its generation
    int64_t version = 0;
  };

  // Records a put at `rev`, which must be newer than everything recorded so far.
  void Put(RevisionPair rev);
  // Records a delete at `rev`; the key must be live.
  void Tombstone(RevisionPair rev);
  // Rebuilding from the backend after compaction: the first surviving put of a generation need
  // not be its creating put, so its create revision and version come from the stored value.
  void RestorePut(RevisionPair rev, Revision created, int64_t version);
  // Like Tombstone, but tolerates a tombstone with no live generation before it (its puts may
  // have been compacted away); returns false for a tombstone that is not newer than the history.
  bool RestoreTombstone(RevisionPair rev);

  // The version visible at `at`, or nullopt if the key did not exist (or was deleted) then.
  std::optional<Found> Get(int64_t at) const;
  bool LiveNow() const { return !gens_.empty() && !gens_.back().tombstoned; }

  // Compaction at `at`: keeps the version visible at `at` (added to *keep, unless the key is
  // deleted then) and everything newer; forgets the rest. Returns true if nothing is left, in
  // which case the key leaves the index.
  bool Compact(int64_t at, std::set<RevisionPair>* keep);
  // What Compact(at) would keep, without changing anything.
  void Keep(int64_t at, std::set<RevisionPair>* keep) const;

  bool empty() const { return gens_.empty(); }
  RevisionPair Latest() const;

 private:
  struct Generation {
    Revision created;
    int64_t version = 0;      // version of the newest put in `revs`
    bool tombstoned = false;  // the last entry of `revs` is the delete that ended it
    // Ascending; front may be trimmed by compaction. Inline for the common key with one
    // version: no heap block per key (docs/mvcc.md, memory per key).
    absl::InlinedVector<RevisionPair, 1> revs;

    int64_t puts() const { return static_cast<int64_t>(revs.size()) - (tombstoned ? 1 : 0); }
  };

  // Position of the generation Compact(at) works on (gens before it are dead at `at`), and the
  // index in it of the newest revision <= at (-1 if none).
  std::pair<size_t, int64_t> CompactionPoint(int64_t at) const;

  absl::InlinedVector<Generation, 1> gens_;
};

}  // namespace dolmen::mvcc
