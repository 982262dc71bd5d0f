// --config-file: etcd's YAML configuration file (etcd.conf.yml.sample's format), read into the
// same FlagSet the command line fills, so every value gets its flag's own parsing, validation
// and error message.
//
// etcd 3.4 reads the file with sigs.k8s.io/yaml into embed.Config; we follow what that means
// for an operator's file: keys are the flag names (matched case-insensitively); an empty value
// (YAML null) keeps the default; URL lists are comma-separated strings; log-outputs is a list;
// experimental-watch-progress-notify-interval is integer nanoseconds (a Go time.Duration in
// JSON); TLS lives in the client-transport-security and peer-transport-security blocks.
// Where we differ on purpose: etcd ignores keys it does not know; we refuse them, naming the
// key and its line, because a misspelt key silently ignored is a misconfigured member.
// Keys etcd has and dolmen does not implement load when they hold etcd's default, are ignored
// with a warning when ignoring them cannot hurt the data, and are refused otherwise.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "embed/flag_set.h"

namespace dolmen::embed {

// Reads `path` into `flags` (registered by RegisterFlags). Messages name the file and line.
Status LoadConfigFile(const std::string& path, FlagSet* flags, std::vector<std::string>* warnings);
// The same, from text already read; `path` is only used in messages.
Status LoadConfigText(const std::string& text, const std::string& path, FlagSet* flags,
                      std::vector<std::string>* warnings);

}  // namespace dolmen::embed
