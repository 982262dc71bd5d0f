#include "watch/groups.h"

#include "base/check.h"

namespace dolmen::watch {

void FlushWakes(Wakes wakes) {
  for (auto& s : wakes) s->Wake();
}

Watcher* WatcherGroups::Add(std::unique_ptr<Watcher> owned, bool in_sync) {
  Watcher* w = owned.get();
  Stream* s = w->stream;
  w->serial = next_serial++;
  w->synced = in_sync;
  s->registry.watchers.emplace(w->id, std::move(owned));
  ++watchers;
  if (w->progress_notify) progress_watchers.insert(w);
  if (in_sync) {
    synced.Add(w);
  } else {
    unsynced.emplace(w->serial, w);
    ++s->registry.unsynced;
    s->set_has_unsynced(true);  // so draining the stream resumes catch-up
  }
  return w;
}

void WatcherGroups::MakeUnsynced(Watcher* w, int64_t next) {
  CHECK(w->synced) << "watcher " << w->id << " already unsynced";
  synced.Remove(w);
  w->synced = false;
  w->next = next;
  unsynced.emplace(w->serial, w);
  ++w->stream->registry.unsynced;
  w->stream->set_has_unsynced(true);
}

void WatcherGroups::MakeSynced(Watcher* w) {
  CHECK(!w->synced) << "watcher " << w->id << " already synced";
  unsynced.erase(w->serial);
  if (--w->stream->registry.unsynced == 0) w->stream->set_has_unsynced(false);
  w->synced = true;
  synced.Add(w);
}

void WatcherGroups::Remove(Watcher* w) {
  Stream* s = w->stream;
  if (w->synced) {
    synced.Remove(w);
  } else {
    unsynced.erase(w->serial);
    if (--s->registry.unsynced == 0) s->set_has_unsynced(false);
  }
  progress_watchers.erase(w);
  --watchers;
  s->registry.watchers.erase(w->id);  // destroys w
  inbox_->WatcherGone();
}

void WatcherGroups::Enqueue(Stream* s, Response r) {
  if (s->Push(std::move(r))) AddWake(s);
}

void WatcherGroups::AddWake(Stream* s) {
  auto it = streams.find(s);
  CHECK(it != streams.end()) << "response for a closed stream";
  to_wake_.push_back(it->second);
}

Response BaseResponse(const Watcher& w, int64_t revision) {
  Response r;
  r.watch_id = w.id;
  r.revision = Revision(revision);
  r.prev_kv = w.prev_kv;
  r.fragment = w.fragment;
  return r;
}

bool Passes(const Watcher& w, const mvcc::Event& e) {
  if (e.type == mvcc::Event::Type::kPut) return !w.filter_put;
  return !w.filter_delete;
}

}  // namespace dolmen::watch
