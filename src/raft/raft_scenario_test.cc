// Protocol scenarios as text (STYLE §6): each file in testdata/ is a script of commands, each
// followed by "----" and the output it must produce (the messages exchanged, the nodes' state).
// A change in behaviour shows up as a diff of these files. After an intended change, regenerate
// them with DOLMEN_REWRITE=1 and review the diff:
//
//   DOLMEN_REWRITE=1 build/src/raft/dolmen_raft_test --gtest_filter='Scenario*'
//
// Commands (ids are member ids):
//   cluster voters=N [learners=M] [prevote=false] [checkquorum=false]
//   campaign ID | propose ID DATA | read ID CTX | transfer ID TARGET
//   conf ID add|learner|remove NODE...   propose a membership change on ID (several: joint)
//   add-node ID                           start an empty node (to be added)
//   tick ID [N] | tick-all [N]            tick, stabilizing after each tick
//   stabilize                             handle Readies and deliver until quiet
//   isolate ID | heal | restart ID | compact ID
//   status | log ID | reads ID
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "raft/test_cluster.h"

namespace dolmen::raft {
namespace {

using testing::TestCluster;

std::string FormatEntries(const std::vector<Entry>& entries) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (i > 0) os << " ";
    os << e.index << "/" << e.term;
    if (e.type == EntryType::kConfChange) {
      auto cc = DecodeConfChangeV2(e.data);
      os << "(conf";
      if (cc.ok() && cc->LeavesJoint()) os << " leave-joint";
      for (const ConfChangeSingle& c : cc.ok() ? cc->changes : std::vector<ConfChangeSingle>{}) {
        os << " " << static_cast<int>(c.type) << ":" << c.node_id;
      }
      os << ")";
    } else if (!e.data.empty()) {
      os << "(" << e.data << ")";
    }
  }
  os << "]";
  return os.str();
}

std::string FormatMessage(const Message& m) {
  std::ostringstream os;
  os << m.from << "->" << m.to << " " << MessageTypeName(m.type) << " term=" << m.term;
  switch (m.type) {
    case MessageType::kApp:
      os << " prev=" << m.index << "/" << m.log_term << " commit=" << m.commit
         << " entries=" << FormatEntries(m.entries);
      break;
    case MessageType::kAppResp:
      if (m.reject) {
        os << " reject index=" << m.index << " hint=" << m.reject_hint << "/" << m.log_term;
      } else {
        os << " index=" << m.index;
      }
      break;
    case MessageType::kVote:
    case MessageType::kPreVote:
      os << " last=" << m.index << "/" << m.log_term;
      if (!m.context.empty()) os << " " << m.context;
      break;
    case MessageType::kVoteResp:
    case MessageType::kPreVoteResp:
      os << (m.reject ? " reject" : " granted");
      break;
    case MessageType::kHeartbeat:
      os << " commit=" << m.commit;
      [[fallthrough]];
    case MessageType::kHeartbeatResp:
      if (!m.context.empty()) os << " read-round";
      break;
    case MessageType::kSnap:
      if (m.snapshot)
        os << " snapshot=" << m.snapshot->metadata.index << "/" << m.snapshot->metadata.term;
      break;
    case MessageType::kProp:
      os << " entries=" << FormatEntries(m.entries);
      break;
    case MessageType::kReadIndex:
      os << " ctx=" << m.context;
      break;
    case MessageType::kReadIndexResp:
      os << " index=" << m.index << " ctx=" << m.context;
      break;
    case MessageType::kTransferLeader:
      os << " transferee=" << m.transferee;
      break;
    default:
      break;
  }
  return os.str();
}

class ScenarioRunner {
 public:
  std::string Run(const std::string& line) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    std::vector<std::string> args;
    for (std::string a; in >> a;) args.push_back(a);
    if (cmd == "cluster") return Cluster(args);
    if (!cluster_) return "error: no cluster yet";
    auto id = [&](size_t i) { return std::stoull(args.at(i)); };
    if (cmd == "campaign") return StatusText(cluster_->node(id(0)).Campaign());
    if (cmd == "propose") return StatusText(cluster_->node(id(0)).Propose(args.at(1)));
    if (cmd == "read") return StatusText(cluster_->node(id(0)).ReadIndex(args.at(1)));
    if (cmd == "transfer") {
      cluster_->node(id(0)).TransferLeader(MemberId(id(1)));
      return "ok";
    }
    if (cmd == "conf") {
      // conf ID KIND NODE [KIND NODE]...: one change is a simple change, more is joint.
      ConfChangeV2 cc;
      for (size_t i = 1; i + 1 < args.size(); i += 2) {
        const std::string& kind = args[i];
        const ConfChangeType type = kind == "add"       ? ConfChangeType::kAddNode
                                    : kind == "learner" ? ConfChangeType::kAddLearner
                                                        : ConfChangeType::kRemoveNode;
        cc.changes.push_back(ConfChangeSingle{type, MemberId(id(i + 1))});
      }
      return StatusText(cluster_->node(id(0)).ProposeConfChangeV2(cc));
    }
    if (cmd == "add-node") {
      cluster_->AddEmptyNode(id(0));
      ids_.push_back(id(0));
      return "ok";
    }
    if (cmd == "stabilize") {
      cluster_->Stabilize();
      return Deliveries();
    }
    if (cmd == "tick") {
      cluster_->Tick(id(0), args.size() > 1 ? std::stoi(args[1]) : 1);
      return Deliveries();
    }
    if (cmd == "tick-all") {
      cluster_->TickAll(args.empty() ? 1 : std::stoi(args[0]));
      return Deliveries();
    }
    if (cmd == "isolate") {
      cluster_->Isolate(id(0));
      return "ok";
    }
    if (cmd == "heal") {
      cluster_->Heal();
      return "ok";
    }
    if (cmd == "restart") {
      cluster_->Restart(id(0));
      return "ok";
    }
    if (cmd == "compact") return Compact(id(0));
    if (cmd == "status") return StatusOfAll();
    if (cmd == "log") return Log(id(0));
    if (cmd == "reads") return Reads(id(0));
    return "error: unknown command " + cmd;
  }

 private:
  static std::string StatusText(const Status& s) { return s.ok() ? "ok" : s.ToString(); }

  std::string Cluster(const std::vector<std::string>& args) {
    int voters = 3;
    int learners = 0;
    bool pre_vote = true;
    bool check_quorum = true;
    for (const std::string& a : args) {
      const auto eq = a.find('=');
      const std::string key = a.substr(0, eq);
      const std::string value = a.substr(eq + 1);
      if (key == "voters") voters = std::stoi(value);
      if (key == "learners") learners = std::stoi(value);
      if (key == "prevote") pre_vote = value == "true";
      if (key == "checkquorum") check_quorum = value == "true";
    }
    cluster_ = std::make_unique<TestCluster>(voters, learners, [=](Config* c) {
      c->pre_vote = pre_vote;
      c->check_quorum = check_quorum;
    });
    ids_.clear();
    for (int i = 1; i <= voters + learners; ++i) ids_.push_back(static_cast<uint64_t>(i));
    return "ok";
  }

  std::string Deliveries() {
    std::ostringstream os;
    for (const auto& [m, dropped] : cluster_->deliveries()) {
      os << (dropped ? "dropped " : "") << FormatMessage(m) << "\n";
    }
    cluster_->ClearDeliveries();
    std::string out = os.str();
    if (out.empty()) return "(no messages)";
    out.pop_back();
    return out;
  }

  std::string StatusOfAll() {
    std::ostringstream os;
    for (uint64_t id : ids_) {
      const Raft& r = cluster_->raft(id);
      os << id << ": " << RoleName(r.role()) << " term=" << r.term() << " lead=" << r.lead()
         << " last=" << r.log().LastIndex() << " commit=" << r.log().committed()
         << " applied=" << r.log().applied();
      if (r.role() == Role::kLeader) {
        const ProgressTracker& t = r.tracker();
        os << " voters=" << Ids(t.voters());
        if (t.IsJoint()) os << "&" << Ids(t.voters_outgoing());
        if (!t.learners().empty()) os << " learners=" << Ids(t.learners());
      }
      os << "\n";
    }
    std::string out = os.str();
    out.pop_back();
    return out;
  }

  static std::string Ids(const std::set<MemberId>& ids) {
    std::string out = "(";
    for (MemberId id : ids) {
      if (out.size() > 1) out += " ";
      out += std::to_string(id.value());
    }
    return out + ")";
  }

  std::string Log(uint64_t id) {
    const RaftLog& log = cluster_->raft(id).log();
    auto entries = log.Slice(log.FirstIndex(), log.LastIndex() + 1, UINT64_MAX);
    if (!entries.ok()) return entries.status().ToString();
    return "first=" + std::to_string(log.FirstIndex().value()) + " " + FormatEntries(*entries);
  }

  std::string Reads(uint64_t id) {
    std::ostringstream os;
    for (const ReadState& r : (*cluster_)[id].read_states) os << r.context << "@" << r.index << " ";
    (*cluster_)[id].read_states.clear();
    std::string out = os.str();
    if (out.empty()) return "(none)";
    out.pop_back();
    return out;
  }

  std::string Compact(uint64_t id) {
    testing::TestNode& n = (*cluster_)[id];
    const Index applied = cluster_->raft(id).log().applied();
    auto snap = n.storage->CreateSnapshot(applied, n.conf_state, "snap");
    if (!snap.ok()) return snap.status().ToString();
    return StatusText(n.storage->Compact(applied));
  }

  std::unique_ptr<TestCluster> cluster_;
  std::vector<uint64_t> ids_;
};

std::vector<std::string> ScenarioFiles() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(DOLMEN_RAFT_TESTDATA)) {
    if (e.path().extension() == ".txt") out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class Scenario : public ::testing::TestWithParam<std::string> {};

TEST_P(Scenario, MatchesExpectedTrace) {
  const std::string path = std::string(DOLMEN_RAFT_TESTDATA) + "/" + GetParam();
  std::ifstream file(path);
  ASSERT_TRUE(file.good()) << path;
  std::vector<std::string> lines;
  for (std::string l; std::getline(file, l);) lines.push_back(l);
  const bool rewrite = std::getenv("DOLMEN_REWRITE") != nullptr;
  std::ostringstream rewritten;
  ScenarioRunner runner;
  size_t i = 0;
  while (i < lines.size()) {
    const std::string& line = lines[i];
    if (line.empty() || line[0] == '#') {
      rewritten << line << "\n";
      ++i;
      continue;
    }
    const std::string command = line;
    const size_t command_line = i + 1;
    ++i;
    ASSERT_TRUE(i < lines.size() && lines[i] == "----")
        << path << ":" << command_line << ": expected ---- after the command";
    ++i;
    std::string expected;
    while (i < lines.size() && !lines[i].empty()) expected += lines[i++] + "\n";
    if (!expected.empty()) expected.pop_back();
    const std::string actual = runner.Run(command);
    rewritten << command << "\n----\n" << actual << "\n";
    if (!rewrite) {
      EXPECT_EQ(actual, expected) << path << ":" << command_line << ": " << command;
    }
  }
  if (rewrite) {
    std::string text = rewritten.str();
    while (text.size() >= 2 && text.substr(text.size() - 2) == "\n\n") text.pop_back();
    std::ofstream(path) << text;
  }
}

INSTANTIATE_TEST_SUITE_P(Raft, Scenario, ::testing::ValuesIn(ScenarioFiles()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param.substr(0, info.param.size() - 4);
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace dolmen::raft
