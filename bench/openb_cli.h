// File: bench/openb_cli.h
//
// What the openb placement tools (placement_report, placement_tune,
// placement_rollout, placement_behind_kube_scheduler, defrag_openb_eval) share
// on their command lines: a flag loop that stops with a message on a missing
// value or an unknown flag, comma lists, the --traces/--data/--seeds flags,
// and loading one pod-list variant against the openb node list.
//
//   Flags flags(argc, argv);
//   while (flags.Next()) {
//     if (flags.IsHelp()) return Usage(), 0;
//     if (flags.Is("--traces")) traces = SplitList(flags.Value());
//     else return flags.Unknown();
//   }
//   GPU_ASSIGN_OR_RETURN(PreparedTrace trace, LoadOpenbVariant(data, "default"));
//
// Thread-safety: none needed (main-thread command-line parsing); the loader
// is reentrant.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "autoscale/simulator.h"
#include "autoscale/trace.h"
#include "common/status.h"

namespace gpu_autoscaler::autoscale::bench {

// "a,b,,c" → {"a", "b", "c"}.
inline std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

// "A-B" (A ≤ B) or a single seed "A" into [first, last]; false on anything else.
inline bool ParseSeedRange(const std::string& text, unsigned long* first, unsigned long* last) {
  unsigned long a = 0, b = 0;
  char rest = 0;
  if (std::sscanf(text.c_str(), "%lu-%lu%c", &a, &b, &rest) == 2 && a <= b) {
    *first = a;
    *last = b;
    return true;
  }
  if (std::sscanf(text.c_str(), "%lu%c", &a, &rest) == 1) {
    *first = *last = a;
    return true;
  }
  return false;
}

// The arguments after the program name, one flag at a time.
class Flags {
 public:
  Flags(int argc, char** argv) : argc_(argc), argv_(argv) {}

  // Moves to the next argument; false when none is left.
  bool Next() {
    if (++index_ >= argc_) return false;
    flag_ = argv_[index_];
    return true;
  }
  const std::string& flag() const { return flag_; }
  bool Is(std::string_view name) const { return flag_ == name; }
  bool IsHelp() const { return flag_ == "--help" || flag_ == "-h"; }

  // The current flag's value (the next argument); without one, says so and exits 2.
  std::string Value() {
    if (index_ + 1 >= argc_) {
      std::fprintf(stderr, "%s needs a value (see --help)\n", flag_.c_str());
      std::exit(2);
    }
    return argv_[++index_];
  }

  // Says the current flag is unknown; returns main's exit status for it (2).
  int Unknown() const {
    std::fprintf(stderr, "unknown flag %s (see --help)\n", flag_.c_str());
    return 2;
  }

 private:
  int argc_;
  char** argv_;
  int index_ = 0;
  std::string flag_;
};

// Takes the current flag when it is one the placement tools share: --traces
// LIST, --data DIR or --seeds A-B (or A), into the caller's variables; false
// when it is another flag. A bad --seeds value says so and exits 2.
inline bool TakeTraceFlag(Flags& flags, std::vector<std::string>* traces, std::string* data,
                          unsigned long* first_seed, unsigned long* last_seed) {
  if (flags.Is("--traces")) {
    *traces = SplitList(flags.Value());
  } else if (flags.Is("--data")) {
    *data = flags.Value();
  } else if (flags.Is("--seeds")) {
    if (!ParseSeedRange(flags.Value(), first_seed, last_seed)) {
      std::fprintf(stderr, "--seeds takes A-B or A\n");
      std::exit(2);
    }
  } else {
    return false;
  }
  return true;
}

// `data`/openb_node_list_gpu_node.csv with `data`/openb_pod_list_<variant>.csv, prepared.
inline Result<PreparedTrace> LoadOpenbVariant(const std::string& data, const std::string& variant) {
  auto nodes = LoadNodeCsv(data + "/openb_node_list_gpu_node.csv");
  if (!nodes.ok()) return nodes.error().WithContext("openb node list in " + data);
  auto pods = LoadPodCsv(data + "/openb_pod_list_" + variant + ".csv");
  if (!pods.ok()) return pods.error().WithContext("openb pod list " + variant + " in " + data);
  auto trace = PrepareTrace(std::move(*nodes), std::move(*pods));
  if (!trace.ok()) return trace.error().WithContext("openb variant " + variant);
  return trace;
}

}  // namespace gpu_autoscaler::autoscale::bench
