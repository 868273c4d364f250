// File: controllers/reschedule_policy_spec.h
//
// Reads a ReschedulePolicy object (crds/reschedulepolicy.yaml) into the
// rescheduler's settings, with the CRD's defaults. Problems are collected,
// not thrown: the controller writes them to the Accepted condition and plans
// nothing for that policy. Impossible usage thresholds (the descheduler's
// rules: the same resources in both maps, each in [0, 100], threshold <=
// targetThreshold) are problems even where the schema did not catch them.
//
//   ParsedReschedulePolicy p = ParseReschedulePolicy(object_json);
//   if (!p.problems.empty()) ... Accepted=False, reason InvalidSpec ...
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autoscale/usage_balance.h"
#include "kube/selector.h"

namespace gpu_autoscaler::controllers {

struct ReschedulePolicySpec {
  std::string name{};
  int64_t generation = 0;
  bool dry_run = false;
  int64_t interval_seconds = 300;
  bool respect_pdbs = true;
  bool defrag_enabled = true;
  int max_moves = 5;
  int min_gain_milli = 100;
  bool usage_enabled = false;
  autoscale::UsageThresholds thresholds{};
  int per_node = 1;  // 0 = no cap
  int per_namespace = 0;
  int per_hour = 10;
  std::vector<std::string> include_namespaces{};
  std::vector<std::string> exclude_namespaces{};
  kube::LabelSelector pod_selector{};

  // Whether pods of `ns` may move (kube-system never).
  bool NamespaceAllowed(std::string_view ns) const;
};

struct ParsedReschedulePolicy {
  ReschedulePolicySpec spec{};
  std::vector<std::string> problems{};  // each a sentence naming the field
};

ParsedReschedulePolicy ParseReschedulePolicy(const nlohmann::json& object);

}  // namespace gpu_autoscaler::controllers
