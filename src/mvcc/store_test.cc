// MVCC semantics, case by case, against what etcd v3 does.
#include "mvcc/store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <thread>

#include "backend/lmdb/lmdb_backend.h"
#include "backend/memory_backend.h"
#include "mvcc/kv_codec.h"
#include "mvcc/revision.h"

namespace dolmen::mvcc {
namespace {

using ::dolmen::backend::Backend;

class MvccStoreTest : public ::testing::Test {
 protected:
  MvccStoreTest() : backend_(backend::NewMemoryBackend()) { Reopen(); }

  // Drops the Store (and anything not committed) and rebuilds it from the backend.
  void Reopen() {
    store_.reset();
    auto opened = Store::Open(backend_.get());
    CHECK(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }

  int64_t Put(std::string_view key, std::string_view value, int64_t lease = 0) {
    auto txn = store_->BeginWrite();
    auto r = txn->Put(key, value, LeaseId(lease));
    CHECK(r.ok()) << r.status().ToString();
    return txn->End().value();
  }

  int64_t Delete(std::string_view key, std::string_view end = "") {
    auto txn = store_->BeginWrite();
    auto r = txn->DeleteRange(key, end);
    CHECK(r.ok()) << r.status().ToString();
    txn->End();
    return r->deleted;
  }

  Result<RangeResult> Range(RangeOptions opts) { return store_->Range(opts); }

  std::optional<KeyValue> Get(std::string_view key, int64_t rev = 0) {
    RangeOptions opts;
    opts.key = std::string(key);
    opts.revision = Revision(rev);
    auto r = store_->Range(opts);
    CHECK(r.ok()) << r.status().ToString();
    if (r->kvs.empty()) return std::nullopt;
    return r->kvs.front();
  }

  std::vector<std::string> Keys(const RangeResult& r) {
    std::vector<std::string> out;
    for (const auto& kv : r.kvs) out.push_back(kv.key);
    return out;
  }

  RangeOptions All() {
    RangeOptions opts;
    opts.key = std::string(1, '\0');
    opts.range_end = std::string(1, '\0');
    return opts;
  }

  size_t StoredVersions() {
    auto txn = backend_->BeginRead();
    CHECK(txn.ok());
    size_t n = 0;
    CHECK((*txn)->Scan("key", "", "", [&](auto, auto) { return ++n, true; }).ok());
    return n;
  }

  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Store> store_;
};

TEST_F(MvccStoreTest, EmptyStoreStartsAtRevisionOne) {
  EXPECT_EQ(store_->CurrentRevision(), Revision(1));
  EXPECT_EQ(store_->CompactRevision(), Revision(0));
  EXPECT_EQ(store_->ConsistentIndex(), Index(0));
  auto r = Range(All());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->kvs.empty());
  EXPECT_EQ(r->count, 0);
  EXPECT_EQ(r->revision, Revision(1));
}

TEST_F(MvccStoreTest, PutCreatesThenUpdates) {
  EXPECT_EQ(Put("a", "1", 7), 2);
  EXPECT_EQ(*Get("a"), (KeyValue{"a", Revision(2), Revision(2), 1, "1", LeaseId(7)}));
  auto txn = store_->BeginWrite();
  auto put = txn->Put("a", "2", LeaseId(0));
  ASSERT_TRUE(put.ok());
  ASSERT_TRUE(put->prev.has_value());
  EXPECT_EQ(put->prev->mod_revision, Revision(2));
  EXPECT_EQ(put->prev->create_revision, Revision(2));
  EXPECT_EQ(put->prev->version, 1);
  EXPECT_EQ(txn->End(), Revision(3));
  EXPECT_EQ(*Get("a"), (KeyValue{"a", Revision(2), Revision(3), 2, "2", LeaseId(0)}));
  EXPECT_EQ(Get("a", 2)->value, "1");
}

TEST_F(MvccStoreTest, EmptyKeyIsRejected) {
  auto txn = store_->BeginWrite();
  EXPECT_EQ(txn->Put("", "v", LeaseId()).status().code(), Code::kEmptyKey);
  EXPECT_EQ(txn->End(), Revision(1));
}

TEST_F(MvccStoreTest, DeleteLeavesTombstoneAndRecreateStartsNewGeneration) {
  Put("a", "1");  // 2
  Put("a", "2");  // 3
  auto txn = store_->BeginWrite();
  auto del = txn->DeleteRange("a", "");
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->deleted, 1);
  ASSERT_EQ(del->prev_kvs.size(), 1u);
  EXPECT_EQ(del->prev_kvs[0].value, "2");
  EXPECT_EQ(txn->End(), Revision(4));
  EXPECT_FALSE(Get("a").has_value());
  EXPECT_EQ(Put("a", "3"), 5);
  EXPECT_EQ(*Get("a"), (KeyValue{"a", Revision(5), Revision(5), 1, "3", LeaseId()}));
  EXPECT_EQ(Get("a", 3)->version, 2);
  EXPECT_EQ(Get("a", 3)->create_revision, Revision(2));
  EXPECT_FALSE(Get("a", 4).has_value());
  EXPECT_FALSE(Get("a", 1).has_value());
}

TEST_F(MvccStoreTest, TxnThatChangesNothingKeepsRevision) {
  Put("a", "1");
  EXPECT_EQ(Delete("missing"), 0);
  EXPECT_EQ(Delete("b", "c"), 0);
  {
    auto txn = store_->BeginWrite();
    ASSERT_TRUE(txn->Range(All()).ok());
    EXPECT_EQ(txn->End(), Revision(2));
  }
  { auto txn = store_->BeginWrite(); }  // destroyed without End: ends itself
  EXPECT_EQ(store_->CurrentRevision(), Revision(2));
}

TEST_F(MvccStoreTest, TxnChangesShareOneRevision) {
  Put("c", "0");  // 2
  auto txn = store_->BeginWrite();
  ASSERT_TRUE(txn->Put("a", "1", LeaseId()).ok());
  ASSERT_TRUE(txn->Put("b", "1", LeaseId()).ok());
  auto del = txn->DeleteRange("c", "");
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->deleted, 1);
  EXPECT_EQ(txn->End(), Revision(3));
  auto r = Range(All());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Keys(*r), (std::vector<std::string>{"a", "b"}));
  for (const auto& kv : r->kvs) EXPECT_EQ(kv.mod_revision, Revision(3));
}

TEST_F(MvccStoreTest, TxnSeesItsOwnWrites) {
  Put("a", "0");  // 2
  auto txn = store_->BeginWrite();
  auto before = txn->Range(All());
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->revision, Revision(2));
  ASSERT_TRUE(txn->Put("a", "1", LeaseId()).ok());
  auto second = txn->Put("a", "2", LeaseId());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->prev->mod_revision, Revision(3));  // the txn's own first put
  EXPECT_EQ(second->prev->version, 2);
  ASSERT_TRUE(txn->Put("b", "x", LeaseId()).ok());
  auto mid = txn->Range(All());
  ASSERT_TRUE(mid.ok());
  EXPECT_EQ(mid->revision, Revision(3));
  ASSERT_EQ(mid->kvs.size(), 2u);
  EXPECT_EQ(mid->kvs[0], (KeyValue{"a", Revision(2), Revision(3), 3, "2", LeaseId()}));
  auto del = txn->DeleteRange("b", "");
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->deleted, 1);
  EXPECT_EQ(txn->Range(All())->count, 1);
  EXPECT_EQ(txn->End(), Revision(3));
  EXPECT_EQ(Get("a")->version, 3);
  EXPECT_FALSE(Get("b").has_value());
}

TEST_F(MvccStoreTest, RangeEndRules) {
  for (std::string k : {"a", "ab", "abc", "b", "c"}) Put(k, "v");
  RangeOptions o;
  o.key = "ab";
  EXPECT_EQ(Keys(*Range(o)), (std::vector<std::string>{"ab"}));  // single key
  o.range_end = "b";
  EXPECT_EQ(Keys(*Range(o)), (std::vector<std::string>{"ab", "abc"}));
  o.range_end = std::string(1, '\0');
  EXPECT_EQ(Keys(*Range(o)), (std::vector<std::string>{"ab", "abc", "b", "c"}));
  o.range_end = "a";  // end before key: nothing
  EXPECT_TRUE(Range(o)->kvs.empty());
  EXPECT_EQ(Range(All())->count, 5);
  o.key = "zz";
  o.range_end = "";
  EXPECT_EQ(Range(o)->count, 0);
}

TEST_F(MvccStoreTest, HistoricalReadsAndRevisionErrors) {
  Put("a", "1");  // 2
  Put("b", "1");  // 3
  Put("a", "2");  // 4
  RangeOptions o = All();
  o.revision = Revision(3);
  auto r = Range(o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->revision, Revision(4));  // header revision is the current one
  ASSERT_EQ(r->kvs.size(), 2u);
  EXPECT_EQ(r->kvs[0].value, "1");
  o.revision = Revision(1);
  EXPECT_EQ(Range(o)->count, 0);
  o.revision = Revision(5);
  EXPECT_EQ(Range(o).status().code(), Code::kFutureRevision);
  o.revision = Revision(-3);  // negative = current, as etcd
  EXPECT_EQ(Range(o)->kvs[0].value, "2");
}

TEST_F(MvccStoreTest, LimitMoreAndCount) {
  for (std::string k : {"a", "b", "c", "d", "e"}) Put(k, "v");
  RangeOptions o = All();
  o.limit = 2;
  auto r = Range(o);
  EXPECT_EQ(Keys(*r), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(r->more);
  EXPECT_EQ(r->count, 5);
  o.limit = 5;
  EXPECT_FALSE(Range(o)->more);
  EXPECT_EQ(Range(o)->kvs.size(), 5u);
  o.limit = 50;
  EXPECT_FALSE(Range(o)->more);
}

TEST_F(MvccStoreTest, CountOnlyAndKeysOnly) {
  Put("a", "1");
  Put("b", "2");
  RangeOptions o = All();
  o.count_only = true;
  o.max_mod_revision = Revision(2);  // filters do not apply to count_only, as in etcd
  auto r = Range(o);
  EXPECT_TRUE(r->kvs.empty());
  EXPECT_EQ(r->count, 2);
  o = All();
  o.keys_only = true;
  r = Range(o);
  ASSERT_EQ(r->kvs.size(), 2u);
  EXPECT_EQ(r->kvs[1].key, "b");
  EXPECT_EQ(r->kvs[1].value, "");
  EXPECT_EQ(r->kvs[1].mod_revision, Revision(3));
}

// RangeEncoded must answer exactly what Range answers, record by record.
void ExpectEncodedMatches(const Store& store, const RangeOptions& opts) {
  SCOPED_TRACE("key=" + opts.key + " end=" + opts.range_end + " limit=" +
               std::to_string(opts.limit) + " rev=" + std::to_string(opts.revision.value()));
  Result<RangeResult> decoded = store.Range(opts);
  Result<EncodedRange> encoded = store.RangeEncoded(opts);
  ASSERT_EQ(decoded.ok(), encoded.ok());
  if (!decoded.ok()) {
    EXPECT_EQ(decoded.status().code(), encoded.status().code());
    EXPECT_EQ(decoded.status().message(), encoded.status().message());
    return;
  }
  EXPECT_EQ(decoded->more, encoded->more);
  EXPECT_EQ(decoded->count, encoded->count);
  EXPECT_EQ(decoded->revision, encoded->revision);
  ASSERT_EQ(decoded->kvs.size(), encoded->kvs.size());
  for (size_t i = 0; i < decoded->kvs.size(); ++i) {
    Result<KeyValue> kv = DecodeKeyValue(encoded->kvs[i]);
    ASSERT_TRUE(kv.ok());
    EXPECT_EQ(*kv, decoded->kvs[i]) << "at " << i;
  }
}

TEST_F(MvccStoreTest, EncodedRangeAnswersAsRange) {
  // Committed versions in the backend, then newer ones still pending (not yet Commit()ted),
  // a deleted key and a second generation, so both sources of records are read.
  for (std::string k : {"a", "b", "c", "d", "e"}) Put(k, "v1-" + k, k == "c" ? 7 : 0);
  ASSERT_TRUE(store_->Commit(Index(1)).ok());
  Put("b", "v2-b");
  Delete("d");
  Put("f", "");
  Put("d", "v3-d");
  std::vector<RangeOptions> cases;
  auto with = [&](auto change) {
    RangeOptions o = All();
    change(o);
    cases.push_back(o);
  };
  with([](RangeOptions&) {});
  with([](RangeOptions& o) { o.limit = 2; });
  with([](RangeOptions& o) { o.limit = 6; });
  with([](RangeOptions& o) { o.limit = 7; });
  with([](RangeOptions& o) { o.revision = Revision(4); });
  with([](RangeOptions& o) { o.revision = Revision(99); });  // future: the same error
  with([](RangeOptions& o) { o.count_only = true; });
  with([](RangeOptions& o) { o.keys_only = true; });
  with([](RangeOptions& o) { o.sort_order = SortOrder::kDescend; });
  with([](RangeOptions& o) { o.sort_order = SortOrder::kAscend; });
  with([](RangeOptions& o) { o.sort_target = SortTarget::kMod; });
  with([](RangeOptions& o) { o.min_mod_revision = Revision(6); });
  with([](RangeOptions& o) {
    o.key = "b";
    o.range_end = "e";
  });
  with([](RangeOptions& o) {
    o.key = "c";
    o.range_end = "";
  });
  with([](RangeOptions& o) {
    o.key = "zz";
    o.range_end = "";
  });
  for (const RangeOptions& o : cases) ExpectEncodedMatches(*store_, o);
  ASSERT_TRUE(store_->Commit(Index(2)).ok());  // now all from the backend
  for (const RangeOptions& o : cases) ExpectEncodedMatches(*store_, o);
  ASSERT_TRUE(store_->Compact(Revision(5)).ok());
  for (const RangeOptions& o : cases) ExpectEncodedMatches(*store_, o);  // rev 4: compacted
}

TEST_F(MvccStoreTest, EncodedRangeOutlivesLaterWrites) {
  Put("a", "first");
  ASSERT_TRUE(store_->Commit(Index(1)).ok());
  Put("b", "pending");
  Result<EncodedRange> r = store_->RangeEncoded(All());
  ASSERT_TRUE(r.ok());
  // Writes and commits after the read (the apply thread goes on) do not touch its records.
  for (int i = 0; i < 20; ++i) Put("a", std::string(200, 'x'));
  ASSERT_TRUE(store_->Commit(Index(2)).ok());
  ASSERT_EQ(r->kvs.size(), 2u);
  EXPECT_EQ(DecodeKeyValue(r->kvs[0])->value, "first");
  EXPECT_EQ(DecodeKeyValue(r->kvs[1])->value, "pending");
}

class MvccStoreSortTest : public MvccStoreTest {
 protected:
  // Key order a<b<c; create order c(2) b(3) a(4); mod order b(5) a(6) c(7);
  // versions a=2 b=2 c=3; values a="z" b="x" c="y".
  void SetUp() override {
    Put("c", "0");
    Put("b", "0");
    Put("a", "0");
    Put("b", "x");
    Put("a", "z");
    Put("c", "0");
    Put("c", "y");
  }
  std::vector<std::string> Sorted(SortTarget target, SortOrder order, int64_t limit = 0) {
    RangeOptions o = All();
    o.sort_target = target;
    o.sort_order = order;
    o.limit = limit;
    auto r = Range(o);
    CHECK(r.ok());
    return Keys(*r);
  }
};

using V = std::vector<std::string>;

TEST_F(MvccStoreSortTest, ByKey) {
  EXPECT_EQ(Sorted(SortTarget::kKey, SortOrder::kNone), (V{"a", "b", "c"}));
  EXPECT_EQ(Sorted(SortTarget::kKey, SortOrder::kAscend), (V{"a", "b", "c"}));
  EXPECT_EQ(Sorted(SortTarget::kKey, SortOrder::kDescend), (V{"c", "b", "a"}));
}
TEST_F(MvccStoreSortTest, ByCreate) {
  EXPECT_EQ(Sorted(SortTarget::kCreate, SortOrder::kAscend), (V{"c", "b", "a"}));
  EXPECT_EQ(Sorted(SortTarget::kCreate, SortOrder::kDescend), (V{"a", "b", "c"}));
  // etcd sorts ascending by default when the target is not the key.
  EXPECT_EQ(Sorted(SortTarget::kCreate, SortOrder::kNone), (V{"c", "b", "a"}));
}
TEST_F(MvccStoreSortTest, ByMod) {
  EXPECT_EQ(Sorted(SortTarget::kMod, SortOrder::kAscend), (V{"b", "a", "c"}));
  EXPECT_EQ(Sorted(SortTarget::kMod, SortOrder::kDescend), (V{"c", "a", "b"}));
}
TEST_F(MvccStoreSortTest, ByVersionTiesStayInKeyOrder) {
  EXPECT_EQ(Sorted(SortTarget::kVersion, SortOrder::kAscend), (V{"a", "b", "c"}));
  EXPECT_EQ(Sorted(SortTarget::kVersion, SortOrder::kDescend), (V{"c", "a", "b"}));
}
TEST_F(MvccStoreSortTest, ByValue) {
  EXPECT_EQ(Sorted(SortTarget::kValue, SortOrder::kAscend), (V{"b", "c", "a"}));
  EXPECT_EQ(Sorted(SortTarget::kValue, SortOrder::kDescend), (V{"a", "c", "b"}));
}
TEST_F(MvccStoreSortTest, LimitAppliesAfterSorting) {
  RangeOptions o = All();
  o.sort_target = SortTarget::kMod;
  o.sort_order = SortOrder::kDescend;
  o.limit = 2;
  auto r = Range(o);
  EXPECT_EQ(Keys(*r), (V{"c", "a"}));
  EXPECT_TRUE(r->more);
  EXPECT_EQ(r->count, 3);
}

TEST_F(MvccStoreSortTest, RevisionFilters) {
  auto filtered = [&](auto set) {
    RangeOptions o = All();
    set(o);
    auto r = Range(o);
    CHECK(r.ok());
    EXPECT_EQ(r->count, 3) << "filters never change count";
    return Keys(*r);
  };
  EXPECT_EQ(filtered([](RangeOptions& o) { o.min_mod_revision = Revision(6); }), (V{"a", "c"}));
  EXPECT_EQ(filtered([](RangeOptions& o) { o.max_mod_revision = Revision(6); }), (V{"a", "b"}));
  EXPECT_EQ(filtered([](RangeOptions& o) { o.min_create_revision = Revision(3); }), (V{"a", "b"}));
  EXPECT_EQ(filtered([](RangeOptions& o) { o.max_create_revision = Revision(3); }), (V{"b", "c"}));
  EXPECT_EQ(filtered([](RangeOptions& o) {
              o.min_create_revision = Revision(3);
              o.max_mod_revision = Revision(5);
            }),
            (V{"b"}));
  // The limit counts what survives the filters; `more` only if survivors were cut.
  RangeOptions o = All();
  o.min_mod_revision = Revision(6);
  o.limit = 1;
  auto r = Range(o);
  EXPECT_EQ(Keys(*r), (V{"a"}));
  EXPECT_TRUE(r->more);
  o.limit = 2;
  EXPECT_FALSE(Range(o)->more);
}

TEST_F(MvccStoreTest, CompactionErrorsAndVisibility) {
  Put("a", "1");  // 2
  Put("a", "2");  // 3
  Put("b", "1");  // 4
  Delete("b");    // 5
  Put("a", "3");  // 6
  EXPECT_EQ(store_->Compact(Revision(7)).code(), Code::kFutureRevision);
  ASSERT_TRUE(store_->Compact(Revision(5)).ok());
  EXPECT_EQ(store_->CompactRevision(), Revision(5));
  EXPECT_EQ(store_->Compact(Revision(5)).code(), Code::kCompacted);
  EXPECT_EQ(store_->Compact(Revision(4)).code(), Code::kCompacted);
  RangeOptions o = All();
  o.revision = Revision(4);
  EXPECT_EQ(Range(o).status().code(), Code::kCompacted);
  o.revision = Revision(5);  // reading at the compact revision itself is allowed
  auto r = Range(o);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0], (KeyValue{"a", Revision(2), Revision(3), 2, "2", LeaseId()}));
  EXPECT_EQ(Get("a")->version, 3);
  ASSERT_TRUE(store_->Commit(Index(1)).ok());
  // Left in the backend: a@3 (visible at 5) and a@6.
  EXPECT_EQ(StoredVersions(), 2u);
  // A future revision error wins over a compacted one, as etcd checks it first.
  o.revision = Revision(100);
  EXPECT_EQ(Range(o).status().code(), Code::kFutureRevision);
}

TEST_F(MvccStoreTest, CompactAtCurrentRevisionAfterDeleteRemovesEverything) {
  Put("a", "1");
  Delete("a");  // 3
  ASSERT_TRUE(store_->Compact(Revision(3)).ok());
  ASSERT_TRUE(store_->Commit(Index(2)).ok());
  EXPECT_EQ(StoredVersions(), 0u);
  Reopen();
  EXPECT_EQ(store_->CurrentRevision(), Revision(3));
  EXPECT_EQ(store_->CompactRevision(), Revision(3));
  EXPECT_EQ(Put("a", "again"), 4);
  EXPECT_EQ(Get("a")->create_revision, Revision(4));
}

TEST_F(MvccStoreTest, ReopenRebuildsIndexAndMeta) {
  Put("a", "1");     // 2
  Put("b", "1", 9);  // 3
  Put("a", "2");     // 4
  Delete("b");       // 5
  Put("b", "2");     // 6
  Put("a", "3");     // 7
  ASSERT_TRUE(store_->Compact(Revision(4)).ok());
  ASSERT_TRUE(store_->Commit(Index(42)).ok());
  Put("c", "uncommitted");  // lost at reopen: the log would replay it
  auto before = Range(All());
  Reopen();
  EXPECT_EQ(store_->ConsistentIndex(), Index(42));
  EXPECT_EQ(store_->CompactRevision(), Revision(4));
  EXPECT_EQ(store_->CurrentRevision(), Revision(7));
  auto after = Range(All());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(Keys(*after), (V{"a", "b"}));
  EXPECT_EQ(after->kvs[0], (KeyValue{"a", Revision(2), Revision(7), 3, "3", LeaseId()}));
  EXPECT_EQ(after->kvs[1], (KeyValue{"b", Revision(6), Revision(6), 1, "2", LeaseId()}));
  RangeOptions o = All();
  o.revision = Revision(4);
  auto old = Range(o);
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(Keys(*old), (V{"a", "b"}));
  EXPECT_EQ(old->kvs[0].version, 2);
  EXPECT_EQ(old->kvs[1].lease, LeaseId(9));
  // The next put continues the restored generation.
  Put("a", "4");
  EXPECT_EQ(Get("a")->version, 4);
  EXPECT_EQ(Get("a")->create_revision, Revision(2));
}

TEST_F(MvccStoreTest, RejectsUnknownFormatAndMalformedData) {
  Put("a", "1");
  ASSERT_TRUE(store_->Commit(Index(1)).ok());
  store_.reset();
  auto write = [&](std::string_view bucket, std::string_view key, std::string_view value) {
    auto txn = std::move(backend_->BeginWrite()).value();
    CHECK(txn->Put(bucket, key, value).ok());
    CHECK(txn->Commit().ok());
  };
  auto open_code = [&] {
    auto s = Store::Open(backend_.get());
    return s.ok() ? Code::kOk : s.status().code();
  };
  write("meta", "format_version", std::string("\0\0\0\0\0\0\0\x02", 8));
  EXPECT_EQ(open_code(), Code::kCorruption);
  write("meta", "format_version", std::string("\0\0\0\0\0\0\0\x01", 8));
  EXPECT_EQ(open_code(), Code::kOk);
  write("meta", "consistent_index", "short");
  EXPECT_EQ(open_code(), Code::kCorruption);
  write("meta", "consistent_index", std::string(8, '\0'));
  write("key", "not a revision", "x");
  EXPECT_EQ(open_code(), Code::kCorruption);
  auto txn = std::move(backend_->BeginWrite()).value();
  ASSERT_TRUE(txn->Delete("key", "not a revision").ok());
  ASSERT_TRUE(txn->Put("key", EncodeRevisionKey({9, 0}, false), "\x0b").ok());
  ASSERT_TRUE(txn->Commit().ok());
  EXPECT_EQ(open_code(), Code::kCorruption);
}

TEST_F(MvccStoreTest, EventsByRevision) {
  Put("a", "1", 5);  // 2
  {
    auto txn = store_->BeginWrite();  // 3: put b, delete a
    ASSERT_TRUE(txn->Put("b", "1", LeaseId()).ok());
    ASSERT_TRUE(txn->DeleteRange("a", "").ok());
    ASSERT_EQ(txn->Events().size(), 2u);
    EXPECT_EQ(txn->Events()[1].type, Event::Type::kDelete);
  }
  ASSERT_TRUE(store_->Commit(Index(1)).ok());
  Put("b", "2");  // 4, still pending
  auto all = store_->Events(Revision(1), Revision(0), 100);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  KeyValue deleted_a;
  deleted_a.key = "a";
  deleted_a.mod_revision = Revision(3);
  std::vector<Event> want = {
      {Event::Type::kPut, {"a", Revision(2), Revision(2), 1, "1", LeaseId(5)}},
      {Event::Type::kPut, {"b", Revision(3), Revision(3), 1, "1", LeaseId()}},
      {Event::Type::kDelete, deleted_a},
      {Event::Type::kPut, {"b", Revision(3), Revision(4), 2, "2", LeaseId()}},
  };
  EXPECT_EQ(all->events, want);
  EXPECT_EQ(all->next, Revision(5));
  // A limit never splits a revision.
  auto first = store_->Events(Revision(2), Revision(0), 2);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->events.size(), 3u);
  EXPECT_EQ(first->next, Revision(4));
  auto bounded = store_->Events(Revision(3), Revision(3), 0);
  EXPECT_EQ(bounded->events.size(), 2u);
  EXPECT_EQ(bounded->next, Revision(4));
  EXPECT_TRUE(store_->Events(Revision(9), Revision(0), 10)->events.empty());
  ASSERT_TRUE(store_->Compact(Revision(3)).ok());
  EXPECT_EQ(store_->Events(Revision(2), Revision(0), 10).status().code(), Code::kCompacted);
  // From the compact revision: what compaction kept at 3 (b@3), not the deleted a.
  auto kept = store_->Events(Revision(3), Revision(0), 10);
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(kept->events.size(), 2u);
  EXPECT_EQ(kept->events[0].kv.key, "b");
  EXPECT_EQ(kept->events[1].kv.mod_revision, Revision(4));
}

TEST_F(MvccStoreTest, ReadersSeeEndedTxnsBeforeCommit) {
  Put("a", "1");
  // Visible before Commit (the value is only in the batch), and still after Commit.
  EXPECT_EQ(Get("a")->value, "1");
  ASSERT_TRUE(store_->Commit(Index(1)).ok());
  EXPECT_EQ(Get("a")->value, "1");
}

TEST_F(MvccStoreTest, BatchTxnCommitsWithTheStore) {
  Put("a", "1");
  auto batch = store_->BatchTxn();
  ASSERT_TRUE(batch.ok());
  ASSERT_TRUE((*batch)->Put("lease", "id", "x").ok());
  ASSERT_TRUE(store_->Commit(Index(3)).ok());
  auto txn = backend_->BeginRead();
  ASSERT_TRUE(txn.ok());
  EXPECT_EQ(*(*txn)->Get("lease", "id"), "x");
}

TEST_F(MvccStoreTest, HashKvMatchesForSameHistory) {
  auto other_backend = backend::NewMemoryBackend();
  auto other = std::move(Store::Open(other_backend.get())).value();
  auto feed = [](Store& s, bool commit) {
    auto put = [&](std::string_view k, std::string_view v) {
      auto t = s.BeginWrite();
      CHECK(t->Put(k, v, LeaseId()).ok());
    };
    put("a", "1");
    put("b", "2");
    put("a", "3");
    {
      auto t = s.BeginWrite();
      CHECK(t->DeleteRange("b", "").ok());
    }
    put("c", "4");
    if (commit) CHECK(s.Commit(Index(5)).ok());
    CHECK(s.Compact(Revision(4)).ok());
    put("a", "5");
    if (commit) CHECK(s.Commit(Index(7)).ok());
  };
  feed(*store_, /*commit=*/true);
  feed(*other, /*commit=*/false);  // same history, nothing committed yet: same answers
  for (int64_t rev : {0, 5, 6, 7}) {
    auto h1 = store_->HashKv(Revision(rev));
    auto h2 = other->HashKv(Revision(rev));
    ASSERT_TRUE(h1.ok()) << rev << h1.status().ToString();
    ASSERT_TRUE(h2.ok());
    EXPECT_EQ(h1->hash, h2->hash) << rev;
    EXPECT_EQ(h1->compact_revision, Revision(4));
  }
  EXPECT_EQ(store_->HashKv(Revision(0))->hash_revision, Revision(7));
  EXPECT_NE(store_->HashKv(Revision(6))->hash, store_->HashKv(Revision(7))->hash);
  EXPECT_EQ(store_->HashKv(Revision(4)).status().code(), Code::kCompacted);
  EXPECT_EQ(store_->HashKv(Revision(8)).status().code(), Code::kFutureRevision);
  ASSERT_TRUE(other->Commit(Index(7)).ok());
  EXPECT_EQ(store_->HashKv(Revision(0))->hash, other->HashKv(Revision(0))->hash);
  uint32_t before = store_->HashKv(Revision(0))->hash;
  Reopen();
  EXPECT_EQ(store_->HashKv(Revision(0))->hash, before);
  other.reset();
}

// A follower installing the leader's snapshot: the store becomes exactly the image (history,
// compaction, applied index), and anything it had before is gone.
TEST_F(MvccStoreTest, RestoreBecomesTheImage) {
  auto leader_backend = backend::NewMemoryBackend();
  auto leader = Store::Open(leader_backend.get());
  ASSERT_TRUE(leader.ok());
  for (int i = 0; i < 20; ++i) {
    auto txn = (*leader)->BeginWrite();
    ASSERT_TRUE(txn->Put("k" + std::to_string(i % 5), "v" + std::to_string(i), LeaseId(0)).ok());
    txn->End();
  }
  ASSERT_TRUE((*leader)->Compact(Revision(10)).ok());
  ASSERT_TRUE((*leader)->Commit(Index(42)).ok());

  Put("stale", "from before");
  ASSERT_TRUE(store_->Commit(Index(3)).ok());
  auto image = leader_backend->BeginRead();
  ASSERT_TRUE(image.ok());
  ASSERT_TRUE(store_->Restore(**image).ok());

  EXPECT_EQ(store_->ConsistentIndex(), Index(42));
  EXPECT_EQ(store_->CurrentRevision(), (*leader)->CurrentRevision());
  EXPECT_EQ(store_->CompactRevision(), Revision(10));
  EXPECT_EQ(Get("stale"), std::nullopt);
  EXPECT_EQ(Get("k3")->value, "v18");
  EXPECT_EQ(Get("k3", 15)->value, "v13");  // history past the compaction travels too
  auto mine = store_->HashKv(Revision(0));
  auto theirs = (*leader)->HashKv(Revision(0));
  ASSERT_TRUE(mine.ok() && theirs.ok());
  EXPECT_EQ(mine->hash, theirs->hash);
  // Writes continue from the image's revision, and survive a reopen.
  EXPECT_EQ(Put("after", "x"), (*leader)->CurrentRevision().value() + 1);
  ASSERT_TRUE(store_->Commit(Index(43)).ok());
  Reopen();
  EXPECT_EQ(Get("after")->value, "x");
  EXPECT_EQ(Get("stale"), std::nullopt);
}

TEST_F(MvccStoreTest, RestoreFromAMalformedImageChangesNothing) {
  Put("keep", "me");
  ASSERT_TRUE(store_->Commit(Index(5)).ok());
  auto bad = backend::NewMemoryBackend();
  {
    auto w = bad->BeginWrite();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Put("key", "not a revision key", "junk").ok());
    ASSERT_TRUE((*w)->Commit().ok());
  }
  auto image = bad->BeginRead();
  ASSERT_TRUE(image.ok());
  EXPECT_EQ(store_->Restore(**image).code(), Code::kCorruption);
  EXPECT_EQ(Get("keep")->value, "me");
  EXPECT_EQ(store_->ConsistentIndex(), Index(5));
  Reopen();
  EXPECT_EQ(Get("keep")->value, "me");
}

TEST_F(MvccStoreTest, ConcurrentReadersNeverSeeHalfATxn) {
  // Every txn writes x and y with the same value; a reader must always find them equal and at
  // the same mod revision, with that revision no newer than the header revision.
  {
    auto txn = store_->BeginWrite();
    ASSERT_TRUE(txn->Put("x", "0", LeaseId()).ok());
    ASSERT_TRUE(txn->Put("y", "0", LeaseId()).ok());
  }
  std::atomic<bool> stop = false;
  std::atomic<int> bad = 0;
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      RangeOptions o;
      o.key = "x";
      o.range_end = "z";
      while (!stop) {
        auto r = store_->Range(o);
        if (!r.ok() || r->kvs.size() != 2 || r->kvs[0].value != r->kvs[1].value ||
            r->kvs[0].mod_revision != r->kvs[1].mod_revision ||
            r->kvs[0].mod_revision > r->revision) {
          if (bad++ == 0) {
            if (!r.ok()) {
              ADD_FAILURE() << r.status().ToString();
            } else {
              std::ostringstream os;
              os << "header " << r->revision;
              for (const auto& kv : r->kvs) {
                os << " " << kv.key << "=" << kv.value << "@" << kv.mod_revision;
              }
              ADD_FAILURE() << os.str();
            }
          }
        }
      }
    });
  }
  for (int i = 1; i <= 500; ++i) {
    auto txn = store_->BeginWrite();
    ASSERT_TRUE(txn->Put("x", std::to_string(i), LeaseId()).ok());
    ASSERT_TRUE(txn->Put("y", std::to_string(i), LeaseId()).ok());
    txn->End();
    if (i % 50 == 0) {
      ASSERT_TRUE(store_->Commit(Index(i)).ok());
    }
    if (i % 100 == 0) {
      ASSERT_TRUE(store_->Compact(Revision(store_->CurrentRevision().value() - 3)).ok());
    }
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad, 0);
}

TEST(MvccStoreLmdbTest, ReopenOnLmdbAndNoSpacePoisonsWrites) {
  std::string pattern = "/tmp/dolmen_mvcc_test.XXXXXX";
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const std::string dir = pattern;
  backend::Options options;
  options.map_size_bytes = 2 << 20;
  {
    auto backend = std::move(backend::OpenLmdb(dir, options)).value();
    auto store = std::move(Store::Open(backend.get())).value();
    {
      auto txn = store->BeginWrite();
      ASSERT_TRUE(txn->Put("k", "v", LeaseId(3)).ok());
    }
    ASSERT_TRUE(store->Commit(Index(10)).ok());
    ASSERT_TRUE(store->Sync().ok());
    // Fill the map until the backend refuses; then the store refuses every write until reopened.
    Status status;
    for (int i = 0; i < 10000 && status.ok(); ++i) {
      auto txn = store->BeginWrite();
      auto r = txn->Put("big" + std::to_string(i), std::string(4096, 'x'), LeaseId());
      status = r.status();
    }
    EXPECT_EQ(status.code(), Code::kNoSpace) << status.ToString();
    EXPECT_EQ(store->Commit(Index(11)).code(), Code::kNoSpace);
    auto txn = store->BeginWrite();
    EXPECT_FALSE(txn->Put("k", "w", LeaseId()).ok());
  }
  {
    auto backend = std::move(backend::OpenLmdb(dir, options)).value();
    auto store = std::move(Store::Open(backend.get())).value();
    EXPECT_EQ(store->ConsistentIndex(), Index(10));
    EXPECT_EQ(store->CurrentRevision(), Revision(2));
    RangeOptions o;
    o.key = "k";
    auto r = store->Range(o);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->kvs.size(), 1u);
    EXPECT_EQ(r->kvs[0].lease, LeaseId(3));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace dolmen::mvcc
