// File: tests/support/loopback_port.h
//
// A TCP port on 127.0.0.1 that was free a moment ago, for child servers the
// tests start (nghttpd, PostgreSQL). The kernel picks it; another process
// may still take it before the server binds, so callers retry on failure.
// Thread-safety: pure function.
#pragma once

#include "common/status.h"

namespace gpu_autoscaler::testing {

Result<int> FreeLoopbackPort();

}  // namespace gpu_autoscaler::testing
