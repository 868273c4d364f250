// File: src/common/shutdown_signals.h
//
// SIGTERM/SIGINT handling for the programs: block them before any thread
// starts, so every thread inherits the mask and exactly one place receives
// them (sigwait or sigtimedwait on the returned set).
//
//   sigset_t signals = BlockShutdownSignals();   // first thing in main()
//   ... start threads ...
//   int sig = 0;
//   sigwait(&signals, &sig);
//
// Thread-safety: call from the main thread before other threads exist.
#pragma once

#include <signal.h>

namespace gpu_autoscaler {

// Blocks SIGTERM and SIGINT in the calling thread; returns that set.
sigset_t BlockShutdownSignals();

}  // namespace gpu_autoscaler
