// File: controllers/gpu_node_pool_spec.h
//
// Reads a GPUNodePool object (crds/gpunodepool.yaml) into the planner's
// NodePoolSpec plus the provider's part: its type, the group of each
// (instance type, tier) offering, location fields and the credentials
// Secret; and spec.predictive with its defaults. Problems are collected, not thrown: the controller
// writes them to the pool's Ready condition and goes on with the other pools.
//
//   ParsedNodePool pool = ParseNodePool(object_json);
//   if (!pool.problems.empty()) ... Ready=False, reason InvalidSpec ...
//   const std::string& group = pool.provider.Group(it, autoscale::CapacityTier::kSpot);
//
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autoscale/node_pool.h"
#include "autoscale/predictive_floor.h"

namespace gpu_autoscaler::controllers {

// The provider types the CRD knows.
inline constexpr std::array<std::string_view, 5> kProviderTypes = {
    "aws-asg", "gcp-mig", "azure-vmss", "cluster-api", "simulated"};

struct PoolProviderSpec {
  std::string type{};
  // Group name per (instance type, tier); "" when that offering has no group.
  std::vector<std::array<std::string, autoscale::kTierCount>> groups{};
  std::string region{}, zone{}, project{}, subscription_id{}, resource_group{};
  std::chrono::milliseconds provisioning_delay = std::chrono::seconds(90);  // simulated
  std::string secret_namespace{}, secret_name{};         // secret_name empty: ambient credentials
  std::vector<std::string> simulated_capacity_errors{};  // simulated: groups that fail scale-ups
  std::vector<std::string> simulated_launch_failures{};  // simulated: accepted, never launched

  const std::string& Group(int instance_type, autoscale::CapacityTier tier) const {
    return groups[instance_type][autoscale::TierIndex(tier)];
  }
  bool operator==(const PoolProviderSpec&) const = default;
};

// spec.predictive. Its problems do not stop the pool: it scales reactively
// and reports Predicting=False, reason InvalidSpec.
struct PredictiveSpec {
  bool enabled = false;
  std::string method = "Auto";  // as written: Auto, HoltWinters, SeasonalNaive, RecentPeak
  autoscale::PredictiveOptions options{};
  std::vector<std::string> problems{};
};

struct ParsedNodePool {
  autoscale::NodePoolSpec spec{};
  PoolProviderSpec provider{};
  PredictiveSpec predictive{};
  // spec.weight, Karpenter's NodePool weight: among pools that can serve a
  // pending pod the highest wins (node_pool_selection.h). 0 when unset.
  int weight = 0;
  std::vector<std::string> problems{};  // each a sentence naming the field
};

// `default_secret_namespace`: where a credentialsSecretRef without a
// namespace points (the manager's namespace).
ParsedNodePool ParseNodePool(const nlohmann::json& object,
                             const std::string& default_secret_namespace = "default");

}  // namespace gpu_autoscaler::controllers
