#include "raft/read_index.h"

#include "base/coding.h"

namespace dolmen::raft {

namespace {
std::string RoundContextFor(uint64_t round) {
  std::string out = "ri";  // distinguishes a round context from an empty one
  coding::PutFixed64(&out, round);
  return out;
}
}  // namespace

Status ReadIndexQueue::Add(ReadRequest request) {
  if (pending_.size() >= max_pending_) {
    return Status(Code::kResourceExhausted, "too many pending read index requests");
  }
  pending_.push_back(std::move(request));
  return OkStatus();
}

std::string ReadIndexQueue::StartRound(Index commit) {
  CHECK(!in_flight_) << "a read index round is already in flight";
  CHECK(!pending_.empty()) << "starting a read index round with no reads";
  in_flight_ = true;
  round_ = next_round_++;
  round_index_ = commit;
  acks_.clear();
  round_reads_ = std::move(pending_);
  pending_.clear();
  return RoundContextFor(round_);
}

std::string ReadIndexQueue::RoundContext() const {
  return in_flight_ ? RoundContextFor(round_) : std::string();
}

const std::set<MemberId>* ReadIndexQueue::Ack(MemberId from, const std::string& context) {
  if (!in_flight_ || context != RoundContextFor(round_)) return nullptr;
  acks_.insert(from);
  return &acks_;
}

std::pair<Index, std::vector<ReadRequest>> ReadIndexQueue::FinishRound() {
  CHECK(in_flight_) << "no read index round in flight";
  in_flight_ = false;
  acks_.clear();
  std::vector<ReadRequest> reads = std::move(round_reads_);
  round_reads_.clear();
  return {round_index_, std::move(reads)};
}

void ReadIndexQueue::Reset() {
  in_flight_ = false;
  acks_.clear();
  round_reads_.clear();
  pending_.clear();
}

}  // namespace dolmen::raft
