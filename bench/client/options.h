// Command-line options of dolmen-bench. Parsing never throws and never exits: a bad flag
// comes back as an error string that main prints with the usage.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dolmen::bench {

struct Options {
  std::string workload;  // put | range | txn-put | watch | lease-keepalive
  std::vector<std::string> endpoints{"127.0.0.1:2379"};
  int conns = 1;
  int clients = 1;
  int64_t total = 10000;
  int key_size = 8;
  int val_size = 8;
  int64_t key_space = 1;
  bool sequential_keys = false;
  bool linearizable = true;  // --consistency l|s
  std::string json_out;
  // TLS: a PEM CA bundle to verify the servers with (set: connect over TLS), and optionally a
  // client certificate and key.
  std::string cacert, cert, key;
  // Bounds: the whole run, and each request.
  double max_seconds = 300;
  int request_timeout_ms = 10000;
  // range
  std::string range_key;  // empty: a key drawn from the key space like put's
  bool prefix = false;    // range [range_key, prefix end of range_key)
  int64_t limit = 0;
  // watch
  int watchers = 100;
  int watch_streams = 10;
  std::string watch_key = "watch-key";
  // lease-keepalive
  int64_t lease_ttl_s = 60;
};

// Fills `options` from argv. Returns "" on success, else a message naming the bad flag.
std::string ParseOptions(int argc, char** argv, Options* options);

// Usage text for --help and for bad flags.
std::string Usage();

}  // namespace dolmen::bench
