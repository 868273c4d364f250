// File: src/autoscale/policy_internal.h
//
// Constructors of policies implemented outside policy.cc. Internal to
// src/autoscale; use MakePolicy.
//
// Thread-safety: see policy.h.
#pragma once

#include <memory>

#include "autoscale/policy.h"

namespace gpu_autoscaler::autoscale::internal {

std::unique_ptr<Policy> MakeFragLookahead(const TargetWorkload* workload);

}  // namespace gpu_autoscaler::autoscale::internal
