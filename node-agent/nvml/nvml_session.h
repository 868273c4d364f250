// File: node-agent/nvml/nvml_session.h
//
// NVML as the agent sees it over time: loads the library, initialises it,
// and polls it, with every NVML call made on one worker thread and each
// poll bounded by a deadline. A call that does not return in time marks
// NVML unavailable (kHung) and Poll answers at once from then on, naming the
// stuck call, until that call returns; the rest of the agent keeps serving.
// A missing library (no driver) or a failed nvmlInit is retried every
// `retry_interval`, so a driver installed after the agent started is found.
//
//   auto nvml = NvmlSession::Open({.library_path = "libnvidia-ml.so.1"});
//   auto snap = nvml->Poll();          // Result<GpuSnapshot>
//   if (nvml->state() != NvmlState::kUp) ... nvml->last_error() ...
//
// Thread-safety: Poll from one thread at a time; state(), last_error() and
// the counters from any thread. The destructor shuts NVML down unless a call
// is stuck, in which case it leaves the worker thread and the library behind.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "node-agent/nvml/snapshot.h"

namespace gpu_autoscaler::node_agent::nvml {

enum class NvmlState {
  kNoLibrary,   // libnvidia-ml could not be loaded (no driver on this node)
  kInitFailed,  // nvmlInit_v2 failed
  kUp,          // the last poll completed
  kFailed,      // the last poll failed (counting the GPUs)
  kHung,        // an NVML call has not returned within the deadline
};
std::string_view NvmlStateName(NvmlState s);  // "NoLibrary", "InitFailed", "Up", ...

struct NvmlSessionOptions {
  std::string library_path = "libnvidia-ml.so.1";
  std::chrono::milliseconds call_timeout{5000};      // per poll (init, read, shutdown)
  std::chrono::milliseconds retry_interval{30'000};  // reload / re-init after a failure
  Clock* clock = &RealClock::Instance();
};

class NvmlSession {
 public:
  // Never fails: a missing library or a failed init is a state, retried by Poll.
  static std::unique_ptr<NvmlSession> Open(NvmlSessionOptions options);
  ~NvmlSession();
  NvmlSession(const NvmlSession&) = delete;
  NvmlSession& operator=(const NvmlSession&) = delete;

  // One pass over the GPUs on the worker thread, waiting at most
  // call_timeout. Errors: kUnavailable without the library or after a
  // failed init, kDeadlineExceeded when a call hangs (or is still hung).
  Result<GpuSnapshot> Poll();

  NvmlState state() const;
  Status last_error() const;  // why the state is not kUp; OK when it is
  uint64_t timeouts() const;  // polls that hit the deadline

 private:
  struct Worker;
  explicit NvmlSession(NvmlSessionOptions options);
  void SetState(NvmlState state, Status error);
  // Loads and initialises when due; OK when NVML is ready to poll.
  Status EnsureReady();
  // Runs `job` on the worker; kDeadlineExceeded (and kHung) after the timeout.
  Status RunBounded(const std::string& what, std::function<Status()> job);

  NvmlSessionOptions options_;
  std::shared_ptr<Worker> worker_;
  bool initialised_ = false;
  Clock::TimePoint next_attempt_{};
  bool attempted_ = false;

  mutable std::mutex mu_;
  NvmlState state_ = NvmlState::kNoLibrary;
  Status error_ = UnavailableError("NVML not polled yet");
  uint64_t timeouts_ = 0;
};

}  // namespace gpu_autoscaler::node_agent::nvml
