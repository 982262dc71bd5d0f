#include <charconv>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "closed_loop.h"
#include "stream_workloads.h"

namespace dolmen::bench {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// State every stream reports into. Counters are guarded by mu; waiters use cv.
struct WatchShared {
  std::mutex mu;
  std::condition_variable cv;
  int64_t created = 0;
  int64_t events = 0;
  int64_t event_responses = 0;  // responses carrying events: shows how the server batches
  int64_t expected_events = 0;
  int64_t last_event_ns = 0;
  int streams_done = 0;
  ErrorLog* errors = nullptr;

  template <typename Pred>
  bool WaitUntil(Clock::time_point deadline, Pred pred) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_until(lock, deadline, pred);
  }
};

// One Watch stream carrying `watchers` watchers of the same key. Creates are written one at
// a time (a reactor allows one write in flight); one read is always outstanding.
class WatchStream
    : public grpc::ClientBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse> {
 public:
  WatchStream(etcdserverpb::Watch::Stub* stub, std::string key, int watchers, WatchShared* shared)
      : stub_(stub), watchers_(watchers), shared_(shared) {
    create_.mutable_create_request()->set_key(std::move(key));
  }

  void Begin() {
    stub_->async()->Watch(&ctx_, this);
    StartWrite(&create_);
    StartRead(&response_);
    StartCall();
  }
  void Cancel() { ctx_.TryCancel(); }
  std::vector<int64_t>& latencies_ns() { return latencies_ns_; }
  // Per watcher: events received and the revision of the last. Every watcher watches the one
  // key the puts write, so it must see consecutive revisions: a gap is a skipped event, a
  // repeat or a step back is a duplicate or reordering. Read after OnDone.
  struct Seen {
    int64_t events = 0;
    int64_t last_revision = 0;
  };
  const std::map<int64_t, Seen>& seen() const { return seen_; }
  const std::vector<std::string>& order_errors() const { return order_errors_; }

  void OnWriteDone(bool ok) override {
    if (ok && ++sent_ < watchers_) StartWrite(&create_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream is over; OnDone follows
    int64_t now = NowNs();
    if (response_.canceled()) {
      shared_->errors->Add("watch canceled: " + response_.cancel_reason());
    }
    if (response_.created()) seen_.try_emplace(response_.watch_id());
    for (const auto& event : response_.events()) {
      Seen& seen = seen_[response_.watch_id()];
      const int64_t rev = event.kv().mod_revision();
      if (seen.last_revision != 0 && rev != seen.last_revision + 1 && order_errors_.size() < 5) {
        order_errors_.push_back("watcher " + std::to_string(response_.watch_id()) + ": revision " +
                                std::to_string(rev) + " after " +
                                std::to_string(seen.last_revision));
      }
      seen.last_revision = rev;
      ++seen.events;
      const std::string& value = event.kv().value();
      int64_t sent_ns = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), sent_ns);
      if (ec == std::errc() && sent_ns > 0 && sent_ns <= now)
        latencies_ns_.push_back(now - sent_ns);
    }
    {
      std::lock_guard<std::mutex> lock(shared_->mu);
      if (response_.created()) ++shared_->created;
      shared_->events += response_.events_size();
      if (response_.events_size() > 0) {
        shared_->last_event_ns = now;
        ++shared_->event_responses;
      }
      shared_->cv.notify_all();
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
      shared_->errors->Add("watch stream: code " + std::to_string(status.error_code()) + ": " +
                           status.error_message());
    }
    std::lock_guard<std::mutex> lock(shared_->mu);
    ++shared_->streams_done;
    shared_->cv.notify_all();
  }

 private:
  etcdserverpb::Watch::Stub* stub_;
  const int watchers_;
  WatchShared* shared_;
  grpc::ClientContext ctx_;
  etcdserverpb::WatchRequest create_;
  etcdserverpb::WatchResponse response_;
  int sent_ = 0;
  std::vector<int64_t> latencies_ns_;  // only OnReadDone touches it until OnDone
  std::map<int64_t, Seen> seen_;       // likewise
  std::vector<std::string> order_errors_;
};

// Puts whose value starts with the send time, so each watcher can time its delivery.
class StampedPutClient : public UnaryClient {
 public:
  StampedPutClient(etcdserverpb::KV::Stub* stub, const std::string& key, int val_size)
      : stub_(stub), val_size_(static_cast<size_t>(val_size)) {
    request_.set_key(key);
  }
  void Start(grpc::ClientContext* ctx, DoneFn done) override {
    std::string value = std::to_string(NowNs());
    if (value.size() < val_size_) value.resize(val_size_, ' ');
    request_.set_value(std::move(value));
    stub_->async()->Put(ctx, &request_, &response_, std::move(done));
  }

 private:
  etcdserverpb::KV::Stub* stub_;
  const size_t val_size_;
  etcdserverpb::PutRequest request_;
  etcdserverpb::PutResponse response_;
};

Clock::time_point After(double seconds) {
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

}  // namespace

void RunWatch(const Options& options, Connections* conns, Report* report) {
  WatchShared shared;
  shared.errors = &report->errors;
  shared.expected_events = options.total * options.watchers;
  int streams = std::min(options.watch_streams, options.watchers);
  std::vector<std::unique_ptr<WatchStream>> watch_streams;
  for (int s = 0; s < streams; ++s) {
    // Spread watchers evenly: the first (watchers % streams) streams take one more.
    int n = options.watchers / streams + (s < options.watchers % streams ? 1 : 0);
    watch_streams.push_back(
        std::make_unique<WatchStream>(conns->Watch(s), options.watch_key, n, &shared));
  }
  Clock::time_point deadline = After(options.max_seconds);
  for (auto& stream : watch_streams) stream->Begin();
  // Streams that ended (e.g. no server) will never create their watchers: stop waiting then.
  bool created = shared.WaitUntil(deadline, [&] {
    return shared.created >= options.watchers || shared.streams_done == streams;
  }) && shared.created >= options.watchers;
  if (!created)
    report->errors.Add("not every watcher was created (streams ended or --max-seconds)");

  int64_t begin_ns = NowNs();
  if (created) {
    std::vector<std::unique_ptr<UnaryClient>> putters;
    for (int i = 0; i < options.clients; ++i) {
      putters.push_back(
          std::make_unique<StampedPutClient>(conns->Kv(i), options.watch_key, options.val_size));
    }
    ClosedLoop loop(options, options.total, &report->errors);
    loop.Run(putters, &report->requests);
    // Wait for delivery of what the puts wrote, within the run's bound.
    int64_t expected = report->requests.count * options.watchers;
    bool delivered = shared.WaitUntil(deadline, [&] {
      return shared.events >= expected || shared.streams_done == streams;
    }) && shared.events >= expected;
    if (!delivered) {
      report->errors.Add("events missing (streams ended or --max-seconds): expected " +
                         std::to_string(expected));
    }
  }
  for (auto& stream : watch_streams) stream->Cancel();
  if (!shared.WaitUntil(After(10), [&] { return shared.streams_done == streams; })) {
    AbandonRun("watch streams did not close after cancel");
  }
  // Every watcher got every event of the run, each once, in order (revisions consecutive).
  if (created) {
    int64_t short_watchers = 0;
    std::string example;
    for (auto& stream : watch_streams) {
      for (const std::string& e : stream->order_errors()) report->errors.Add(e);
      for (const auto& [id, seen] : stream->seen()) {
        if (seen.events == report->requests.count) continue;
        if (++short_watchers == 1) {
          example = "watcher " + std::to_string(id) + " got " + std::to_string(seen.events);
        }
      }
    }
    if (short_watchers > 0) {
      report->errors.Add(std::to_string(short_watchers) + " watchers did not get exactly the " +
                         std::to_string(report->requests.count) + " events written (" + example +
                         ")");
    }
  }
  Figures& events = report->secondary["events"];
  for (auto& stream : watch_streams) {
    auto& l = stream->latencies_ns();
    events.latencies_ns.insert(events.latencies_ns.end(), l.begin(), l.end());
  }
  events.count = shared.events;
  events.seconds = shared.last_event_ns > begin_ns ? (shared.last_event_ns - begin_ns) / 1e9 : 0;
  events.Finish();
  report->extra["watchers"] = options.watchers;
  report->extra["event_responses"] = static_cast<double>(shared.event_responses);
  report->extra["expected_events"] = static_cast<double>(report->requests.count * options.watchers);
}

}  // namespace dolmen::bench
