#include "api/watch_service.h"

#include <deque>

#include "api/caller.h"
#include "api/errors.h"
#include "server/applier.h"

namespace dolmen::api {
namespace {

// etcd's grpcOverheadBytes: watch responses are split at max-request-bytes plus this.
constexpr size_t kGrpcOverheadBytes = 512 * 1024;

watch::WatchOptions ToOptions(const etcdserverpb::WatchCreateRequest& c) {
  watch::WatchOptions o;
  o.watch_id = c.watch_id();
  o.key = c.key();
  o.range_end = c.range_end();
  o.start_revision = Revision(c.start_revision());
  for (int f : c.filters()) {
    // Unknown filter values are ignored, as etcd does.
    if (f == etcdserverpb::WatchCreateRequest::NOPUT) o.filter_put = true;
    if (f == etcdserverpb::WatchCreateRequest::NODELETE) o.filter_delete = true;
  }
  o.prev_kv = c.prev_kv();
  o.progress_notify = c.progress_notify();
  o.fragment = c.fragment();
  return o;
}

// What etcd's watch stream puts in cancel_reason for a refused watch: the Go text of its gRPC
// error, "rpc error: code = <Code> desc = <message>".
std::string CancelReason(const Status& refusal) {
  const char* code = "PermissionDenied";
  switch (refusal.code()) {
    case Code::kUnauthenticated:
      code = "Unauthenticated";
      break;
    case Code::kAuthOldRevision:
    case Code::kInvalidArgument:
      code = "InvalidArgument";
      break;
    default:
      // etcd reports every other refusal as "permission denied".
      return "rpc error: code = PermissionDenied desc = etcdserver: permission denied";
  }
  return std::string("rpc error: code = ") + code +
         " desc = " + ToGrpcStatus(refusal).error_message();
}

bool IsCreate(const mvcc::Event& e) {
  return e.type == mvcc::Event::Type::kPut && e.kv.create_revision == e.kv.mod_revision;
}

// etcd's sendFragments: a response at or over the limit with two or more events becomes
// several, each as full as fits (at least one event), all but the last with fragment=true.
void Split(etcdserverpb::WatchResponse whole, size_t max_bytes,
           std::deque<etcdserverpb::WatchResponse>* out) {
  if (whole.ByteSizeLong() < max_bytes || whole.events_size() < 2) {
    out->push_back(std::move(whole));
    return;
  }
  etcdserverpb::WatchResponse shell = whole;
  shell.clear_events();
  shell.set_fragment(true);
  int next = 0;
  const int total = whole.events_size();
  while (next < total) {
    etcdserverpb::WatchResponse part = shell;
    while (next < total) {
      *part.add_events() = whole.events(next);
      if (part.events_size() > 1 && part.ByteSizeLong() >= max_bytes) {
        part.mutable_events()->RemoveLast();
        break;
      }
      ++next;
    }
    if (next == total) part.set_fragment(false);
    out->push_back(std::move(part));
  }
}

}  // namespace

// One client stream. Lives from Watch() until OnDone. mu_ guards the write side; the hub's
// Stream is the bounded queue in front of it.
class WatchService::Reactor final
    : public grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>,
      public LeaderMonitor::Stream {
 public:
  Reactor(WatchService* service, grpc::CallbackServerContext* context, bool require_leader)
      : service_(service),
        context_(context),
        monitor_(require_leader ? service->monitor_ : nullptr) {
    stream_ = service_->hub_->OpenStream([this] { Pump(); });
    if (!service_->Register(this)) {
      FinishNow(ToGrpcStatus(Status(Code::kStopped, "server stopped")));
      return;
    }
    if (monitor_ != nullptr) {
      // etcd's stream interceptor: a stream that requires a leader is refused without one,
      // and ended if the member loses it for long (LeaderMonitor).
      if (service_->server_->leader().value() == 0) {
        FinishNow(ToGrpcStatus(Status(Code::kNoLeader, "no leader")));
        return;
      }
      monitor_->Register(this);
    }
    StartRead(&request_);
  }

  void CancelNoLeader() override { FinishNow(ToGrpcStatus(Status(Code::kNoLeader, "no leader"))); }

  void OnReadDone(bool ok) override {
    // A half-closed stream keeps delivering, as in etcd (its recvLoop ends, the stream not).
    if (!ok) return;
    Handle(request_);
    request_.Clear();
    {
      std::lock_guard<std::mutex> l(mu_);
      if (finish_wanted_) return;
      if (stream_->ShouldPauseReads()) {
        // The client does not read what its requests produce: stop reading until it does.
        read_paused_ = true;
        return;
      }
    }
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    Actions a;
    {
      std::lock_guard<std::mutex> l(mu_);
      writing_ = false;
      if (!ok) finish_wanted_ = true;  // the stream is broken; nothing more can be written
      a = DecideLocked();
    }
    Run(a);
  }

  void OnCancel() override { FinishNow(grpc::Status::CANCELLED); }

  void OnDone() override {
    if (monitor_ != nullptr) monitor_->Unregister(this);
    service_->Unregister(this);
    service_->hub_->CloseStream(stream_);
    delete this;
  }

  void FinishNow(grpc::Status status) {
    Actions a;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (finish_wanted_) return;
      finish_wanted_ = true;
      finish_status_ = std::move(status);
      a = DecideLocked();
    }
    Run(a);
  }

 private:
  void Handle(const etcdserverpb::WatchRequest& req) {
    watch::Hub* hub = service_->hub_;
    switch (req.request_union_case()) {
      case etcdserverpb::WatchRequest::kCreateRequest:
        if (Status s = Permitted(req.create_request()); !s.ok()) {
          Refuse(s);
          break;
        }
        hub->Watch(stream_.get(), ToOptions(req.create_request()));
        break;
      case etcdserverpb::WatchRequest::kCancelRequest:
        hub->Cancel(stream_.get(), req.cancel_request().watch_id());
        break;
      case etcdserverpb::WatchRequest::kProgressRequest:
        hub->RequestProgress(stream_.get());
        break;
      default:
        break;  // etcd ignores a request it does not know rather than ending the stream
    }
  }

  // etcd's isWatchPermitted: read permission on the watched range, for the stream's token as
  // it stands now (it may have expired since the stream opened).
  Status Permitted(const etcdserverpb::WatchCreateRequest& c) {
    server::Server* server = service_->server_;
    if (!server->auth_store().enabled()) return OkStatus();
    ASSIGN_OR_RETURN(auth::AuthInfo caller, CallerOf(context_, server));
    // etcd's normalisation: an empty key is "\0", the smallest key.
    const std::string key = c.key().empty() ? std::string(1, '\0') : c.key();
    return server->auth_store().CheckRange(caller, key, c.range_end());
  }

  // A refused create: etcd answers with a created-and-canceled response (watch id -1) and
  // keeps the stream.
  void Refuse(const Status& refusal) {
    etcdserverpb::WatchResponse r;
    service_->server_->FillHeader(r.mutable_header());
    r.mutable_header()->set_revision(service_->server_->current_revision().value());
    r.set_watch_id(-1);
    r.set_created(true);
    r.set_canceled(true);
    r.set_cancel_reason(CancelReason(refusal));
    {
      std::lock_guard<std::mutex> l(mu_);
      pending_.push_back(std::move(r));
    }
    Pump();
  }

  // What to start once mu_ is released: gRPC's Start*/Finish are never called under mu_, so
  // a reaction that runs inline cannot deadlock on it.
  struct Actions {
    bool write = false;
    bool read = false;
    bool finish = false;
    bool buffer = false;  // the write may wait for the next one (gRPC's buffer hint)
  };

  void Pump() {
    Actions a;
    {
      std::lock_guard<std::mutex> l(mu_);
      a = DecideLocked();
    }
    Run(a);
  }

  Actions DecideLocked() {
    Actions a;
    if (finish_called_) return a;
    if (finish_wanted_) {
      if (!writing_) {
        finish_called_ = true;
        a.finish = true;
      }
      return a;
    }
    if (writing_) return a;
    if (!pending_.empty()) {
      response_ = std::move(pending_.front());
      pending_.pop_front();
    } else {
      std::optional<watch::Response> next = stream_->Pop();
      if (!next) return a;  // the hub wakes us when it queues more
      // Built in place: response_ keeps its events' allocations from the previous write.
      ToProto(*next, &response_);
      if (next->fragment) SplitIfLarge();
    }
    writing_ = true;  // response_ is gRPC's until OnWriteDone
    a.write = true;
    // More is ready right now: let gRPC hold this write and send it with the next one (one
    // sendmsg for many responses instead of one each). The last one goes out unbuffered.
    // Never the first write: it carries the stream's initial metadata, and chttp2 may not start
    // a buffered write that does, so it waited (10 s and more, with history to replay) for an
    // unrelated write on the connection to flush it.
    a.buffer = !first_write_ && (!pending_.empty() || stream_->HasQueued());
    first_write_ = false;
    if (read_paused_ && !stream_->ShouldPauseReads()) {
      read_paused_ = false;
      a.read = true;
    }
    return a;
  }

  void Run(const Actions& a) {
    if (a.finish) Finish(finish_status_);
    if (a.write) {
      grpc::WriteOptions options;
      if (a.buffer) options.set_buffer_hint();
      StartWrite(&response_, options);
    }
    if (a.read) StartRead(&request_);
  }

  void ToProto(const watch::Response& r, etcdserverpb::WatchResponse* out) {
    out->Clear();
    service_->server_->FillHeader(out->mutable_header());
    out->mutable_header()->set_revision(r.revision.value());
    out->set_watch_id(r.watch_id);
    out->set_created(r.created);
    out->set_canceled(r.canceled);
    out->set_compact_revision(r.compact_revision.value());
    out->set_cancel_reason(r.cancel_reason);
    for (const auto& e : r.events) {
      mvccpb::Event* pe = out->add_events();
      pe->set_type(e->type == mvcc::Event::Type::kPut ? mvccpb::Event::PUT : mvccpb::Event::DELETE);
      server::ToProto(e->kv, pe->mutable_kv());
      if (r.prev_kv && !IsCreate(*e)) FillPrevKv(*e, pe);
    }
  }

  // A fragment-enabled response over the limit: response_ becomes its first part, the rest
  // wait in pending_.
  void SplitIfLarge() {
    if (response_.events_size() < 2 || response_.ByteSizeLong() < service_->max_response_bytes_) {
      return;
    }
    Split(std::move(response_), service_->max_response_bytes_, &pending_);
    response_ = std::move(pending_.front());
    pending_.pop_front();
  }

  // etcd reads the key at mod_revision-1; a compacted or missing version leaves it unset.
  void FillPrevKv(const mvcc::Event& e, mvccpb::Event* pe) {
    mvcc::RangeOptions opts;
    opts.key = e.kv.key;
    opts.revision = Revision(e.kv.mod_revision.value() - 1);
    auto read = service_->server_->store()->Range(opts);
    if (read.ok() && !read.value().kvs.empty()) {
      server::ToProto(read.value().kvs[0], pe->mutable_prev_kv());
    }
  }

  WatchService* const service_;
  grpc::CallbackServerContext* const context_;  // gRPC's, alive until OnDone
  LeaderMonitor* const monitor_;                // null unless the client required a leader
  std::shared_ptr<watch::Stream> stream_;
  etcdserverpb::WatchRequest request_;  // the read side: one read in flight

  std::mutex mu_;
  etcdserverpb::WatchResponse response_;  // the write in flight
  // Fragments of one hub response, and refusals of watch creates.
  std::deque<etcdserverpb::WatchResponse> pending_;
  bool writing_ = false;
  bool first_write_ = true;  // no write has started yet (initial metadata not sent)
  bool read_paused_ = false;
  bool finish_wanted_ = false;
  bool finish_called_ = false;
  grpc::Status finish_status_;
};

WatchService::WatchService(server::Server* server, watch::Hub* hub, LeaderMonitor* monitor)
    : server_(server),
      hub_(hub),
      monitor_(monitor),
      max_response_bytes_(server->config().max_request_bytes + kGrpcOverheadBytes) {}

grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>*
WatchService::Watch(grpc::CallbackServerContext* context) {
  return new Reactor(this, context, RequiresLeader(context));
}

bool WatchService::Register(Reactor* r) {
  std::lock_guard<std::mutex> l(mu_);
  live_.insert(r);
  return !shutting_down_;
}

void WatchService::Unregister(Reactor* r) {
  std::lock_guard<std::mutex> l(mu_);
  live_.erase(r);
}

void WatchService::Shutdown() {
  std::lock_guard<std::mutex> l(mu_);
  shutting_down_ = true;
  for (Reactor* r : live_) r->FinishNow(ToGrpcStatus(Status(Code::kStopped, "server stopped")));
}

}  // namespace dolmen::api
