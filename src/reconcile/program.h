// File: src/reconcile/program.h
//
// What every gpu-autoscaler program's main() does the same way: read
// kube-style flags ("--name=value", "--name value", bare booleans, --help),
// turn flag text into numbers with messages that name the flag, and the
// common tail (usage, logging, signal handling, exit codes).
//
//   Result<std::vector<ProgramFlag>> flags = ScanFlags(argc, argv, kValueFlags,
//   {"--leader-elect"}); for (const ProgramFlag& f : *flags) { if (f.name == "--port")
//   ParseIntFlag(f, 0, 65535, &port); } return RunProgram("gpu-autoscaler-x", kUsage, parsed, help,
//   logging,
//                     [&](std::stop_source stop) { return Run(flags, stop); });
//
// Exit codes: 2 for a bad flag or logging option, else what `run` returns.
// Thread-safety: call from main() only (RunProgram installs signal handling).
#pragma once

#include <functional>
#include <initializer_list>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <memory>

#include "common/status.h"
#include "reconcile/logging.h"

namespace prometheus {
class Registry;
}
namespace gpu_autoscaler::kube {
class RestClient;
}

namespace gpu_autoscaler::reconcile {

struct ProgramFlag {
  std::string name{};   // "--port"; "--help" for -h too
  std::string value{};  // "" for a bare boolean
  bool has_value = false;
};

// Splits the command line. `value_flags` take a value ("--name=v" or
// "--name v"); `bool_flags` may stand alone or take =true/=false. Anything
// else is an error naming it and pointing at --help.
Result<std::vector<ProgramFlag>> ScanFlags(int argc, char** argv,
                                           std::initializer_list<std::string_view> value_flags,
                                           std::initializer_list<std::string_view> bool_flags);

// A bare boolean is true; otherwise true/1 or false/0.
Status ParseBoolFlag(const ProgramFlag& flag, bool* out);
// An integer in [lo, hi].
Status ParseIntFlag(const ProgramFlag& flag, long lo, long hi, int* out);
// A number greater than zero.
Status ParsePositiveFlag(const ProgramFlag& flag, double* out);

// The API client of a program: the kubeconfig file (or, when empty, the
// in-cluster configuration, then $KUBECONFIG, then ~/.kube/config), with the
// program's user agent, its request metrics in `registry`, and optional
// qps/burst (0 keeps the client's defaults). The error says which step failed.
Result<std::unique_ptr<kube::RestClient>> ConnectToCluster(const std::string& kubeconfig,
                                                           const std::string& context,
                                                           std::string user_agent,
                                                           prometheus::Registry* registry,
                                                           double qps = 0, int burst = 0);

// The common tail of main(): a parse error -> message on stderr, exit 2;
// --help -> usage on stdout, exit 0; then logging, SIGINT/SIGTERM stop
// handling (before any other thread starts), and `run`.
int RunProgram(std::string_view program, std::string_view usage, const Status& parsed, bool help,
               const LoggingOptions& logging, const std::function<int(std::stop_source)>& run);

}  // namespace gpu_autoscaler::reconcile
