// File: src/report/inputs.h
//
// Reads the report's inputs from what the cluster and the demo hand over:
// API list bodies (Budgets, GPUNodePools, Events, ...), the alert receiver's
// log (JSON lines) and the placement simulator's arrived-workload curve
// (CSV). All of it is outside input: wrong types, malformed lines and
// oversized files give an InvalidArgument error naming the place, never a
// crash (tests/fuzz/report_inputs_fuzz.cc).
//
//   auto alerts = ParseAlertLog(text);         // hack/alert-receiver.py --log
//   auto curves = ParsePlacementCurve(csv);    // gpu-autoscaler simulate --arrived-curve
//   auto budgets = ParseBudgets(list_json);    // GET .../budgets
//
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "report/report.h"

namespace gpu_autoscaler::report {

inline constexpr size_t kMaxInputBytes = 64 << 20;

// One JSON object a line: {"path", "body", "signature", "idempotency_key"};
// the body is the alert's payload (Slack "text", webhook "summary" and
// "thresholdPercent", PagerDuty "payload.summary").
Result<std::vector<AlertInput>> ParseAlertLog(std::string_view jsonl);

// Header "arrived_pct,<policy>_alloc_mean,<policy>_alloc_sd,<policy>_frag_mean,...".
Result<std::vector<PlacementCurve>> ParsePlacementCurve(std::string_view csv);

// Each takes a list body ({"items": [...]}) from the API server.
Result<std::vector<BudgetInput>> ParseBudgets(const nlohmann::json& list);
Result<std::vector<NodePoolInput>> ParseNodePools(const nlohmann::json& list);
Result<std::vector<EventInput>> ParseEvents(const nlohmann::json& list);
Result<std::vector<SharingPolicyInput>> ParseSharingPolicies(const nlohmann::json& list);
Result<std::vector<RescheduleInput>> ParseReschedulePolicies(const nlohmann::json& list);
Result<std::vector<ProfileInput>> ParseServiceProfiles(const nlohmann::json& list);

}  // namespace gpu_autoscaler::report
