// File: tests/support/child_process.h
//
// Runs one of the project's programs as a separate process for an
// integration test: stderr (and stdout) to a log file, SIGKILL on
// destruction, and helpers to read what it logged.
//
//   ChildProcess manager;
//   ASSERT_TRUE(manager.Spawn({BinaryPath("gpu-autoscaler-manager"), "--kubeconfig=" + kc},
//                             dir + "/manager.log"));
//   int port = -1;
//   ASSERT_TRUE(WaitFor([&] { return (port = manager.PortFromLog("metrics_port")) > 0; }));
//   manager.Kill(SIGKILL);   // a crash, for restart tests
//
// Thread-safety: not thread-safe; use from the test's main thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "kube/config.h"

namespace gpu_autoscaler::testing {

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts args[0] with args; stdout and stderr go to `log_path` (appended,
  // so a restarted program's log follows the first one's).
  bool Spawn(const std::vector<std::string>& args, const std::string& log_path);
  // Sends `signal` and reaps the process; returns its wait status (-1 if none ran).
  int Kill(int signal);
  // Sends `signal` without waiting (see TryWait).
  void Signal(int signal);
  // The wait status if the process has exited (reaping it), else nullopt.
  std::optional<int> TryWait();
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  std::string Log() const;
  // The number the program logged as "<key>=<digits>" (the last occurrence),
  // or -1 until it has.
  int PortFromLog(const std::string& key) const;

 private:
  pid_t pid_ = -1;
  std::string log_path_;
};

// Runs a program to completion: its stdout, stderr and exit code.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CommandResult RunCommand(const std::vector<std::string>& args);

// Polls `done` every 20 ms until it is true or `limit` passes.
bool WaitFor(const std::function<bool()>& done,
             std::chrono::milliseconds limit = std::chrono::seconds(30));

// Spawns `args` with GPA_FAILPOINTS=`failpoints` (src/common/failpoint.h) in
// its environment and waits up to `limit` for a failpoint to SIGKILL it: ""
// when one did, else what happened instead (with the log).
//   ASSERT_EQ(RunUntilFailpointKills(manager, args, dir + "/manager.log",
//                                    "gpunodepool.scale_down.after_intent=kill"), "");
std::string RunUntilFailpointKills(ChildProcess& process, const std::vector<std::string>& args,
                                   const std::string& log_path, const std::string& failpoints,
                                   std::chrono::milliseconds limit = std::chrono::seconds(60));

// Writes a kubeconfig for `config` (server, token, CA) into `dir`; returns its path.
std::string WriteKubeconfig(const kube::ClientConfig& config, const std::string& dir);

// A fresh directory under /tmp; removed by the caller.
std::string MakeTempDir(const std::string& prefix);

}  // namespace gpu_autoscaler::testing
