// File: src/common/failpoint.h
//
// Failpoints: named places in the code where a test makes the process fail
// on purpose (killed, aborted, stalled, or an error returned) to prove a
// "nothing lost, nothing done twice" claim at an exact point, such as inside
// a database transaction before its COMMIT. Production code pays one relaxed
// atomic load per evaluation while none is configured.
//
// Configuration: GPA_FAILPOINTS in the environment (read at the first
// evaluation), or Configure() from a test, as a comma-separated list of
// name=action[@N]: the action runs on the N-th evaluation (default the first)
// and on every one after it.
//   kill        SIGKILL this process (no destructors, no flush)
//   abort       std::abort()
//   sleep(MS)   stall the calling thread MS milliseconds
//   error       Evaluate returns an Internal error naming the failpoint
//   off         nothing
//
//   GPA_FAILPOINTS=cost_store.append.before_commit=kill@4 gpu-autoscaler-manager ...
//   GPU_RETURN_IF_ERROR(failpoint::Evaluate("cost_store.append.before_commit"));
//
// Names in use are listed in docs/reliability.md.
//
// Thread-safety: Evaluate and Configure may be called from any thread.
#pragma once

#include <string_view>

#include "common/status.h"

namespace gpu_autoscaler::failpoint {

// Replaces the configuration. Invalid specs change nothing.
Status Configure(std::string_view spec);

// Runs the failpoint's action when it is configured and due.
Status Evaluate(std::string_view name);

// How often `name` was evaluated while configured (for tests).
int HitCount(std::string_view name);

}  // namespace gpu_autoscaler::failpoint
