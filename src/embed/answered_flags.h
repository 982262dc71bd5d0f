// The etcd flags dolmen answers without implementing them: accepted with no effect (the reason
// is written in docs/flags.md and logged once when the flag is given), or refused at start-up
// with one line saying why (and what to use instead). A refused flag given the value that asks
// for nothing (its "harmless" value, usually etcd's default) is accepted, so that tooling which
// spells out every default (kubeadm, config generators) still starts the member.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "embed/flag_set.h"

namespace dolmen::embed {

struct AnsweredFlag {
  enum class Kind { kBool, kText, kUint, kInt, kDuration, kIgnored };
  std::string name;
  Kind kind;
  std::string default_text;  // etcd's default, as --help shows it
  bool refused;              // false: accepted with no effect
  std::string harmless;      // refused flags only: the value accepted (it asks for nothing)
  std::string reason;        // why: one clause, also in docs/flags.md
  std::string instead;       // refused flags: what to use instead ("" when nothing)
  std::string valid_values;  // kText only: comma-separated values etcd accepts ("" any)
};

const std::vector<AnsweredFlag>& AnsweredFlags();
const AnsweredFlag* FindAnsweredFlag(const std::string& name);

// Registers every answered flag; a given value is checked for its kind (a bad number is a
// parse error, as in etcd) and kept in `values` by flag name.
void RegisterAnsweredFlags(FlagSet* flags, std::map<std::string, std::string>* values);
// The refusal of the first refused flag given a value other than its harmless one.
Status CheckAnsweredFlags(const FlagSet& flags, const std::map<std::string, std::string>& values);
// One line per no-effect flag that was given, for the start-up log.
std::vector<std::string> NoEffectNotes(const FlagSet& flags);
// The one-line refusal of `flag` (also what docs/flags.md quotes).
std::string RefusalMessage(const AnsweredFlag& flag);

}  // namespace dolmen::embed
