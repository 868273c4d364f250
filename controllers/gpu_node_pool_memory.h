// File: controllers/gpu_node_pool_memory.h
//
// What a GPUNodePool's decision memory (autoscale::PoolMemory) keeps across
// manager restarts, carried in the pool's status:
//   status.answeredInterruptions  nodes whose interruption notice was answered
//                                 (replacement ordered, Interruption recorded);
//   status.unavailableOfferings   offerings skipped after a capacity error or a
//                                 notice, each until a time.
// Both are written in the same status update as the Interruption or
// CapacityError entry they go with, so a manager killed after the write and
// restarted neither answers a notice twice (a second entry, Event and
// interruption counter increment) nor retries an offering the cloud has just
// refused. A kill before the write repeats the pass, as every other action.
//
//   if (!state.restored) RestorePoolMemory(old_status, now, wall, &state.memory);
//   status["answeredInterruptions"] = AnsweredInterruptionsJson(state.memory);
//
// Thread-safety: pure functions; the memory has one owner at a time.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "autoscale/node_pool_decide.h"
#include "common/clock.h"

namespace gpu_autoscaler::controllers {

// Seeds `memory` from a pool's status as written by the two functions below.
// Entries that do not parse, and offerings whose time has passed, are skipped.
void RestorePoolMemory(const nlohmann::json& status, Clock::TimePoint now, Clock::WallTime wall,
                       autoscale::PoolMemory* memory);

// status.answeredInterruptions: the answered nodes, sorted.
nlohmann::json AnsweredInterruptionsJson(const autoscale::PoolMemory& memory);

// status.unavailableOfferings: [{instanceType, tier, until}], "until" as
// metav1.Time (wall clock).
nlohmann::json UnavailableOfferingsJson(const autoscale::PoolMemory& memory, Clock::TimePoint now,
                                        Clock::WallTime wall);

}  // namespace gpu_autoscaler::controllers
