// File: tests/scheduler/preemption_test_util.h
//
// What the preemption tests (preemption_test.cc, preemption_gang_test.cc)
// build their clusters from: pods with priorities, bound or pending, a cache
// with GPU nodes, PodDisruptionBudgets and required anti-affinity.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "kube/object_codec.h"
#include "scheduler/cluster_cache.h"
#include "scheduler/preemption.h"
#include "scheduler/scheduler_test_util.h"

namespace gpu_autoscaler::scheduler::preemption_testing {

using testutil::json;
using testutil::Node;
using testutil::PodArgs;

// A pod decoded from its JSON, for tests that set fields PodWith does not.
inline std::shared_ptr<const kube::PodView> Decoded(const json& pod) {
  auto view = kube::DecodePod(pod.dump());
  EXPECT_TRUE(view.ok()) << view.error().message();
  return std::make_shared<const kube::PodView>(std::move(view).value());
}

// A pod with a priority, and optionally a start time and labels.
inline std::shared_ptr<const kube::PodView> PodWith(PodArgs args, int priority,
                                                    const std::string& started = "",
                                                    json labels = json::object()) {
  json pod = testutil::PodJson(args);
  pod["spec"]["priority"] = priority;
  if (!started.empty()) pod["status"]["startTime"] = started;
  if (!labels.empty()) pod["metadata"]["labels"] = labels;
  return Decoded(pod);
}

// A pod bound to `node` on GPU `gpu` (gpus > 1: from `gpu` on).
inline std::shared_ptr<const kube::PodView> Running(const std::string& name,
                                                    const std::string& node, int gpu, int priority,
                                                    int gpus = 1, const std::string& started = "",
                                                    json labels = json::object()) {
  std::string indices;
  for (int g = gpu; g < gpu + gpus; ++g)
    indices += (indices.empty() ? "" : ",") + std::to_string(g);
  return PodWith({.name = name,
                  .requests = {{"nvidia.com/gpu", std::to_string(gpus)}},
                  .annotations = {{"gpuautoscaler.io/gpu-indices", indices}},
                  .node = node,
                  .phase = "Running"},
                 priority, started, std::move(labels));
}

inline std::shared_ptr<const kube::PodView> Pending(const std::string& name, int priority,
                                                    int gpus = 1,
                                                    json spec_extra = json::object()) {
  return PodWith({.name = name,
                  .requests = {{"nvidia.com/gpu", std::to_string(gpus)}},
                  .spec_extra = std::move(spec_extra)},
                 priority);
}

inline std::unique_ptr<ClusterCache> NewCache() {
  auto cache = ClusterCache::Create({.policy = "FragLookahead"});
  EXPECT_TRUE(cache.ok());
  return std::move(cache).value();
}

inline void AddGpuNode(ClusterCache& cache, const std::string& name, int gpus,
                       json labels = json::object()) {
  cache.UpsertNode(Node({.name = name,
                         .allocatable_extra = {{"nvidia.com/gpu", std::to_string(gpus)}},
                         .labels = std::move(labels)}));
}

inline std::vector<std::string> Names(const std::vector<PreemptionVictim>& victims) {
  std::vector<std::string> names;
  for (const PreemptionVictim& v : victims)
    names.emplace_back(v.pod->name());
  return names;
}

inline DisruptionBudget Budget(const std::string& app, int64_t allowed) {
  Result<DisruptionBudget> b = ParseDisruptionBudget(json{
      {"apiVersion", "policy/v1"},
      {"kind", "PodDisruptionBudget"},
      {"metadata", {{"name", app}, {"namespace", "default"}}},
      {"spec", {{"selector", {{"matchLabels", {{"app", app}}}}}}},
      {"status", {{"disruptionsAllowed", allowed}}}}.dump());
  EXPECT_TRUE(b.ok()) << b.error().message();
  return std::move(b).value();
}

// Required anti-affinity to the pods `match_labels` selects, on `key`.
inline json AntiAffinity(json match_labels, const std::string& key = "kubernetes.io/hostname") {
  return {{"podAntiAffinity",
           {{"requiredDuringSchedulingIgnoredDuringExecution",
             {{{"labelSelector", {{"matchLabels", match_labels}}}, {"topologyKey", key}}}}}}};
}

}  // namespace gpu_autoscaler::scheduler::preemption_testing
