// Randomized test of the Store against a deliberately naive model: the whole key space stored
// as a std::map for every revision. Seeded; a failure names the seed and step to replay
// (--gtest_filter=*Model*/<seed>).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include "backend/lmdb/lmdb_backend.h"
#include "backend/memory_backend.h"
#include "mvcc/store.h"

namespace dolmen::mvcc {
namespace {

using State = std::map<std::string, KeyValue>;

}  // namespace

// So that failures print key-values readably.
void PrintTo(const KeyValue& kv, std::ostream* os) {
  *os << "{" << kv.key << " c=" << kv.create_revision << " m=" << kv.mod_revision
      << " v=" << kv.version << " " << kv.value << " l=" << kv.lease << "}";
}

void PrintTo(const Event& e, std::ostream* os) {
  *os << (e.type == Event::Type::kPut ? "PUT" : "DEL");
  PrintTo(e.kv, os);
}

namespace {

std::string Describe(const RangeOptions& o) {
  std::ostringstream os;
  os << "range[" << o.key << ", " << (o.range_end == std::string(1, '\0') ? "\\0" : o.range_end)
     << ") rev=" << o.revision << " limit=" << o.limit << " sort=" << static_cast<int>(o.sort_order)
     << "/" << static_cast<int>(o.sort_target) << " keys_only=" << o.keys_only
     << " count_only=" << o.count_only << " mod=[" << o.min_mod_revision << ","
     << o.max_mod_revision << "] create=[" << o.min_create_revision << "," << o.max_create_revision
     << "]";
  return os.str();
}

// The model: states[r] is every live key at revision r.
struct Model {
  std::vector<State> states{State(), State()};      // revision 0 unused; revision 1 is empty
  std::vector<std::vector<Event>> changes{{}, {}};  // changes[r]: the events of revision r
  int64_t compacted = 0;
  int64_t current() const { return static_cast<int64_t>(states.size()) - 1; }
};

bool InRange(const std::string& k, const std::string& key, const std::string& end) {
  if (end.empty()) return k == key;
  if (end == std::string(1, '\0')) return k >= key;
  return k >= key && k < end;
}

// etcd's Range, computed the slow and obvious way.
Result<RangeResult> ModelRange(const Model& m, const State& state_now, int64_t current,
                               const RangeOptions& o) {
  int64_t at = o.revision.value();
  if (at > current) return Status(Code::kFutureRevision, "future");
  if (at <= 0) at = current;
  if (at < m.compacted) return Status(Code::kCompacted, "compacted");
  const State& state = at == current ? state_now : m.states[static_cast<size_t>(at)];
  RangeResult r;
  r.revision = Revision(current);
  std::vector<KeyValue> hits;
  for (const auto& [k, kv] : state) {
    if (InRange(k, o.key, o.range_end)) hits.push_back(kv);
  }
  r.count = static_cast<int64_t>(hits.size());
  if (o.count_only) return r;
  // etcd quirk: with sort_order NONE and no filters, a limit reads only the first limit+1 keys
  // (in key order) even when a non-key sort target then sorts them.
  const bool filters = o.min_mod_revision.value() || o.max_mod_revision.value() ||
                       o.min_create_revision.value() || o.max_create_revision.value();
  if (o.limit > 0 && o.sort_order == SortOrder::kNone && !filters &&
      static_cast<int64_t>(hits.size()) > o.limit + 1) {
    hits.resize(static_cast<size_t>(o.limit + 1));
  }
  for (const KeyValue& kv : hits) {
    auto out = [](Revision bound, Revision v, bool is_max) {
      return bound.value() != 0 && (is_max ? v > bound : v < bound);
    };
    if (out(o.max_mod_revision, kv.mod_revision, true) ||
        out(o.min_mod_revision, kv.mod_revision, false) ||
        out(o.max_create_revision, kv.create_revision, true) ||
        out(o.min_create_revision, kv.create_revision, false)) {
      continue;
    }
    r.kvs.push_back(kv);
  }
  auto field = [&](const KeyValue& kv) -> std::tuple<std::string, int64_t> {
    switch (o.sort_target) {
      case SortTarget::kKey:
        return {kv.key, 0};
      case SortTarget::kVersion:
        return {"", kv.version};
      case SortTarget::kCreate:
        return {"", kv.create_revision.value()};
      case SortTarget::kMod:
        return {"", kv.mod_revision.value()};
      case SortTarget::kValue:
        return {kv.value, 0};
    }
    return {};
  };
  const bool descend = o.sort_order == SortOrder::kDescend;
  std::stable_sort(r.kvs.begin(), r.kvs.end(), [&](const KeyValue& a, const KeyValue& b) {
    return descend ? field(b) < field(a) : field(a) < field(b);
  });
  if (o.limit > 0 && static_cast<int64_t>(r.kvs.size()) > o.limit) {
    r.kvs.resize(static_cast<size_t>(o.limit));
    r.more = true;
  }
  if (o.keys_only) {
    for (auto& kv : r.kvs) kv.value.clear();
  }
  return r;
}

class Harness {
 public:
  Harness(uint64_t seed, bool lmdb) : rng_(seed), lmdb_(lmdb) {
    if (lmdb_) {
      std::string pattern = "/tmp/dolmen_mvcc_model.XXXXXX";
      CHECK(::mkdtemp(pattern.data()) != nullptr);
      dir_ = pattern;
    }
    backend_ = OpenBackend();
    Reopen();
  }
  ~Harness() {
    store_.reset();
    backend_.reset();
    if (lmdb_) std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<backend::Backend> OpenBackend() {
    if (!lmdb_) return backend::NewMemoryBackend();
    auto b = backend::OpenLmdb(dir_, backend::Options{});
    CHECK(b.ok()) << b.status().ToString();
    return std::move(b).value();
  }

  void Reopen() {
    store_.reset();
    if (lmdb_) backend_ = OpenBackend();  // a real restart reopens the file too
    auto s = Store::Open(backend_.get());
    CHECK(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }

  std::string RandomKey() {
    static const char* kKeys[] = {"a", "a1", "a2", "b", "b1", "c", "d", "e"};
    return kKeys[Pick(std::size(kKeys))];
  }
  std::string RandomEnd() {
    switch (Pick(4)) {
      case 0:
        return "";
      case 1:
        return std::string(1, '\0');
      default:
        return RandomKey();
    }
  }
  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  int64_t Between(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }

  RangeOptions RandomRange(int64_t current) {
    RangeOptions o;
    o.key = Pick(5) == 0 ? std::string(1, '\0') : RandomKey();
    o.range_end = RandomEnd();
    if (Pick(3) == 0) o.limit = Between(0, 4);
    if (Pick(3) == 0) o.revision = Revision(Between(-1, current + 1));
    o.sort_order = static_cast<SortOrder>(Pick(3));
    o.sort_target = static_cast<SortTarget>(Pick(5));
    o.keys_only = Pick(5) == 0;
    o.count_only = Pick(8) == 0;
    auto bound = [&] { return Revision(Pick(4) == 0 ? Between(1, current) : 0); };
    o.min_mod_revision = bound();
    o.max_mod_revision = bound();
    o.min_create_revision = bound();
    o.max_create_revision = bound();
    return o;
  }

  void ExpectSameRange(const Result<RangeResult>& got, const Result<RangeResult>& want,
                       const std::string& where) {
    ASSERT_EQ(got.ok(), want.ok()) << where << " got " << got.status().ToString();
    if (!got.ok()) {
      EXPECT_EQ(got.status().code(), want.status().code()) << where;
      return;
    }
    EXPECT_EQ(got->revision, want->revision) << where;
    EXPECT_EQ(got->count, want->count) << where;
    EXPECT_EQ(got->more, want->more) << where;
    EXPECT_EQ(got->kvs, want->kvs) << where;
  }

  // One write txn of 1-3 random operations, checked step by step against the model.
  void RandomTxn(const std::string& where) {
    const int64_t rev = model_.current() + 1;
    State working = model_.states.back();
    std::vector<Event> events;
    bool changed = false;
    auto txn = store_->BeginWrite();
    const size_t ops = 1 + Pick(3);
    for (size_t i = 0; i < ops; ++i) {
      const size_t kind = Pick(10);
      if (kind < 6) {
        std::string key = RandomKey();
        std::string value = std::to_string(Pick(1000));
        value.insert(0, 1, 'v');
        const int64_t lease = static_cast<int64_t>(Pick(3));
        auto r = txn->Put(key, value, LeaseId(lease));
        ASSERT_TRUE(r.ok()) << where;
        auto it = working.find(key);
        std::optional<KeyValue> prev;
        if (it != working.end()) prev = it->second;
        std::optional<Store::WriteTxn::PutResult::Replaced> replaced;
        if (prev) replaced = {prev->create_revision, prev->mod_revision, prev->version};
        EXPECT_EQ(r->prev, replaced) << where << " put " << key;
        working[key] = KeyValue{key,           prev ? prev->create_revision : Revision(rev),
                                Revision(rev), prev ? prev->version + 1 : 1,
                                value,         LeaseId(lease)};
        events.push_back(Event{Event::Type::kPut, working[key]});
        changed = true;
      } else if (kind < 9) {
        std::string key = RandomKey(), end = RandomEnd();
        auto r = txn->DeleteRange(key, end);
        ASSERT_TRUE(r.ok()) << where;
        std::vector<KeyValue> gone;
        for (auto it = working.begin(); it != working.end();) {
          if (InRange(it->first, key, end)) {
            gone.push_back(it->second);
            KeyValue tombstone;
            tombstone.key = it->first;
            tombstone.mod_revision = Revision(rev);
            events.push_back(Event{Event::Type::kDelete, tombstone});
            it = working.erase(it);
          } else {
            ++it;
          }
        }
        EXPECT_EQ(r->deleted, static_cast<int64_t>(gone.size())) << where;
        EXPECT_EQ(r->prev_kvs, gone) << where;
        changed = changed || !gone.empty();
      } else {
        const int64_t seen = changed ? rev : rev - 1;
        RangeOptions o = RandomRange(seen);
        ExpectSameRange(txn->Range(o), ModelRange(model_, working, seen, o),
                        where + " txn " + Describe(o));
      }
    }
    const Revision end = txn->End();
    EXPECT_EQ(txn->Events(), events) << where;
    if (changed) {
      model_.states.push_back(std::move(working));
      model_.changes.push_back(std::move(events));
    }
    EXPECT_EQ(end.value(), model_.current()) << where;
  }

  void Step(int step) {
    const std::string where = "step " + std::to_string(step);
    const size_t kind = Pick(100);
    if (kind < 45) {
      RandomTxn(where);
    } else if (kind < 80) {
      RangeOptions o = RandomRange(model_.current());
      ExpectSameRange(store_->Range(o),
                      ModelRange(model_, model_.states.back(), model_.current(), o),
                      where + " " + Describe(o));
    } else if (kind < 83) {
      // Watch catch-up: everything after a revision the compaction has not reached.
      const int64_t from = Between(model_.compacted + 1, model_.current() + 1);
      auto got = store_->Events(Revision(from), Revision(0), 1000);
      ASSERT_TRUE(got.ok()) << where << got.status().ToString();
      std::vector<Event> want;
      for (int64_t r = from; r <= model_.current(); ++r) {
        const auto& c = model_.changes[static_cast<size_t>(r)];
        want.insert(want.end(), c.begin(), c.end());
      }
      EXPECT_EQ(got->events, want) << where << " events from " << from;
      EXPECT_EQ(got->next.value(), model_.current() + 1) << where;
    } else if (kind < 86) {
      const int64_t rev = Between(model_.compacted - 1, model_.current() + 1);
      Status s = store_->Compact(Revision(rev));
      if (rev <= model_.compacted) {
        EXPECT_EQ(s.code(), Code::kCompacted) << where;
      } else if (rev > model_.current()) {
        EXPECT_EQ(s.code(), Code::kFutureRevision) << where;
      } else {
        ASSERT_TRUE(s.ok()) << where << s.ToString();
        model_.compacted = rev;
      }
    } else if (kind < 94) {
      ASSERT_TRUE(store_->Commit(Index(++index_)).ok()) << where;
      committed_ = model_;
    } else if (kind < 97) {
      // A clean restart: everything committed survives.
      ASSERT_TRUE(store_->Commit(Index(++index_)).ok()) << where;
      committed_ = model_;
      const uint32_t hash = store_->HashKv(Revision(0))->hash;
      Reopen();
      EXPECT_EQ(store_->HashKv(Revision(0))->hash, hash) << where;
    } else {
      // A crash: whatever was applied since the last Commit is gone (the log would replay it).
      Reopen();
      model_ = committed_;
      index_ = static_cast<uint64_t>(store_->ConsistentIndex().value());
    }
    EXPECT_EQ(store_->CurrentRevision().value(), model_.current()) << where;
    EXPECT_EQ(store_->CompactRevision().value(), model_.compacted) << where;
  }

  Store& store() { return *store_; }

 private:
  std::mt19937_64 rng_;
  bool lmdb_;
  std::string dir_;
  std::unique_ptr<backend::Backend> backend_;
  std::unique_ptr<Store> store_;
  Model model_;
  Model committed_;
  uint64_t index_ = 0;
};

class MvccStoreModelTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(MvccStoreModelTest, MatchesModel) {
  const uint64_t seed = GetParam();
  Harness h(seed, /*lmdb=*/seed % 4 == 0);
  for (int step = 0; step < 1500 && !HasFailure(); ++step) h.Step(step);
  if (HasFailure()) ADD_FAILURE() << "replay with --gtest_filter=*MvccStoreModelTest*/" << seed;
}

// DOLMEN_MODEL_SEEDS=N widens the sweep for a soak run; 12 seeds keep the unit suite fast.
uint64_t SeedCount() {
  const char* env = std::getenv("DOLMEN_MODEL_SEEDS");
  return env ? std::strtoull(env, nullptr, 10) : 12;
}

INSTANTIATE_TEST_SUITE_P(Seeds, MvccStoreModelTest, ::testing::Range<uint64_t>(0, SeedCount()));

// Two stores fed the same txns and compactions but committing at different times must agree on
// HashKv at every revision they can both answer (etcd's corruption check relies on this).
class MvccHashKvTwinTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(MvccHashKvTwinTest, SameOpsSameHash) {
  std::mt19937_64 rng(GetParam());
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  auto backend_a = backend::NewMemoryBackend();
  auto backend_b = backend::NewMemoryBackend();
  auto a = std::move(Store::Open(backend_a.get())).value();
  auto b = std::move(Store::Open(backend_b.get())).value();
  const std::string keys[] = {"a", "b", "c", "d"};
  uint64_t index = 0;
  for (int step = 0; step < 400; ++step) {
    const int64_t kind = pick(0, 9);
    if (kind < 7) {
      const std::string key = keys[pick(0, 3)];
      const bool del = kind >= 5;
      const std::string value = std::to_string(pick(0, 99));
      for (Store* s : {a.get(), b.get()}) {
        auto txn = s->BeginWrite();
        if (del) {
          ASSERT_TRUE(txn->DeleteRange(key, "").ok());
        } else {
          ASSERT_TRUE(txn->Put(key, value, LeaseId()).ok());
        }
      }
    } else if (kind < 8 && a->CurrentRevision() > a->CompactRevision()) {
      const Revision rev(pick(a->CompactRevision().value() + 1, a->CurrentRevision().value()));
      ASSERT_TRUE(a->Compact(rev).ok());
      ASSERT_TRUE(b->Compact(rev).ok());
    }
    ++index;
    ASSERT_TRUE(a->Commit(Index(index)).ok());
    if (pick(0, 9) == 0) {
      ASSERT_TRUE(b->Commit(Index(index)).ok());
    }
    const int64_t lo = a->CompactRevision().value() + 1, hi = a->CurrentRevision().value();
    const Revision rev(lo <= hi && pick(0, 1) ? pick(lo, hi) : 0);
    auto ha = a->HashKv(rev);
    auto hb = b->HashKv(rev);
    ASSERT_TRUE(ha.ok()) << ha.status().ToString();
    ASSERT_TRUE(hb.ok()) << hb.status().ToString();
    EXPECT_EQ(ha->hash, hb->hash) << "seed " << GetParam() << " step " << step << " rev " << rev;
    EXPECT_EQ(ha->hash_revision, hb->hash_revision);
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, MvccHashKvTwinTest, ::testing::Range<uint64_t>(0, 4));

}  // namespace
}  // namespace dolmen::mvcc
