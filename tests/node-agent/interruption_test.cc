#include "node-agent/interruption.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace gpu_autoscaler::node_agent {
namespace {

using nlohmann::json;

DrainCandidate Pod(std::string name, int32_t priority, bool critical = false,
                   bool daemonset = false, bool skip = false) {
  return {"ns", std::move(name), priority, critical, daemonset, skip};
}

std::vector<std::vector<std::string>> Names(const std::vector<DrainCandidate>& pods,
                                            const std::vector<std::vector<size_t>>& waves) {
  std::vector<std::vector<std::string>> out;
  for (const auto& wave : waves) {
    out.emplace_back();
    for (size_t i : wave)
      out.back().push_back(pods[i].name);
  }
  return out;
}

TEST(PlanDrainWavesTest, KarpentersFourWavesHighestPriorityFirstWithin) {
  std::vector<DrainCandidate> pods = {
      Pod("batch", 0),
      Pod("dns", 2000000000, /*critical=*/true),
      Pod("serving", 1000),
      Pod("logging-ds", 0, false, /*daemonset=*/true),
      Pod("mirror", 0, false, false, /*skip=*/true),
      Pod("device-plugin-ds", 2000001000, true, true),
      Pod("training", 500),
  };
  EXPECT_EQ(Names(pods, PlanDrainWaves(pods)),
            (std::vector<std::vector<std::string>>{
                {"serving", "training", "batch"}, {"logging-ds"}, {"dns"}, {"device-plugin-ds"}}));
}

TEST(PlanDrainWavesTest, EmptyWavesAreDroppedAndTiesKeepListOrder) {
  std::vector<DrainCandidate> pods = {Pod("a", 5), Pod("b", 5), Pod("c", 7, true)};
  EXPECT_EQ(Names(pods, PlanDrainWaves(pods)),
            (std::vector<std::vector<std::string>>{{"a", "b"}, {"c"}}));
  EXPECT_TRUE(PlanDrainWaves({}).empty());
}

TEST(DrainCandidateTest, ReadsPriorityCriticalityOwnerAndWhatStays) {
  json pod = json::parse(R"({
    "metadata": {"namespace": "kube-system", "name": "nvidia-device-plugin-x",
                 "ownerReferences": [{"kind": "DaemonSet", "name": "dp", "controller": true}]},
    "spec": {"priority": 2000001000, "priorityClassName": "system-node-critical"},
    "status": {"phase": "Running"}})");
  DrainCandidate c = DrainCandidateOf(pod);
  EXPECT_EQ(c.ns, "kube-system");
  EXPECT_EQ(c.name, "nvidia-device-plugin-x");
  EXPECT_EQ(c.priority, 2000001000);
  EXPECT_TRUE(c.critical);
  EXPECT_TRUE(c.daemonset);
  EXPECT_FALSE(c.skip);

  EXPECT_TRUE(DrainCandidateOf(json::parse(
                                   R"({"metadata": {"name": "m", "annotations":
                                      {"kubernetes.io/config.mirror": "abc"}}})"))
                  .skip);
  EXPECT_TRUE(DrainCandidateOf(json::parse(R"({"status": {"phase": "Succeeded"}})")).skip);
  EXPECT_TRUE(DrainCandidateOf(json::parse(R"({"spec": {"tolerations": [
                  {"key": "gpu-autoscaler.io/interruption", "operator": "Exists"}]}})"))
                  .skip);
  EXPECT_TRUE(
      DrainCandidateOf(json::parse(R"({"spec": {"tolerations": [{"operator": "Exists"}]}})")).skip);
  // A toleration for another taint, or for NoExecute only, does not keep the pod.
  EXPECT_FALSE(DrainCandidateOf(json::parse(R"({"spec": {"tolerations": [
                   {"key": "nvidia.com/gpu", "operator": "Exists"},
                   {"key": "gpu-autoscaler.io/interruption", "effect": "NoExecute"}]}})"))
                   .skip);
  // An owner that is not the controlling DaemonSet does not count.
  EXPECT_FALSE(DrainCandidateOf(json::parse(R"({"metadata": {"ownerReferences": [
                   {"kind": "DaemonSet", "name": "x"}]}})"))
                   .daemonset);
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
