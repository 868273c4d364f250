// LocalPodCache and the pod view it keeps: QoS level and enhancements from
// Katalyst's annotations, the Kubernetes QoS class, container amounts, and
// the snapshot/generation/handler contract.
#include "node-agent/local_pods.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "kube/object_codec.h"

namespace gpu_autoscaler::node_agent {
namespace {

kube::PodView Pod(nlohmann::json j) {
  auto pod = kube::DecodePod(j.dump());
  EXPECT_TRUE(pod.ok()) << pod.error().ToString();
  return std::move(pod).value();
}

nlohmann::json PodJson(std::string name, std::string uid, nlohmann::json annotations,
                       nlohmann::json containers, std::string node = "gpu-1") {
  return {{"metadata",
           {{"namespace", "team"},
            {"name", name},
            {"uid", uid},
            {"resourceVersion", "1"},
            {"annotations", annotations},
            {"ownerReferences",
             {{{"apiVersion", "apps/v1"},
               {"kind", "ReplicaSet"},
               {"name", "rs"},
               {"uid", "o1"},
               {"controller", true}}}}}},
          {"spec", {{"nodeName", node}, {"priority", 1000}, {"containers", containers}}},
          {"status", {{"phase", "Running"}}}};
}

nlohmann::json Container(std::string name, nlohmann::json requests, nlohmann::json limits) {
  return {{"name", name}, {"resources", {{"requests", requests}, {"limits", limits}}}};
}

TEST(QosLevel, ParsesKatalystValues) {
  EXPECT_EQ(ParseQosLevel(""), QosLevel::kShared);
  EXPECT_EQ(ParseQosLevel("shared_cores"), QosLevel::kShared);
  EXPECT_EQ(ParseQosLevel("dedicated_cores"), QosLevel::kDedicated);
  EXPECT_EQ(ParseQosLevel("reclaimed_cores"), QosLevel::kReclaimed);
  EXPECT_EQ(ParseQosLevel("system_cores"), QosLevel::kSystem);
  EXPECT_EQ(ParseQosLevel("Dedicated_Cores"), QosLevel::kUnknown);
  EXPECT_EQ(QosLevelName(QosLevel::kReclaimed), "reclaimed_cores");
}

TEST(Enhancements, NumaBindingUnderMemoryPoolUnderCpu) {
  auto e = ParseEnhancements(R"({"numa_binding":"true","numa_exclusive":"true"})",
                             R"({"cpuset_pool":"batch","numa_share":"false"})");
  EXPECT_TRUE(e.numa_binding);
  EXPECT_TRUE(e.numa_exclusive);
  EXPECT_EQ(e.cpuset_pool, "batch");
  EXPECT_FALSE(e.numa_share);
  EXPECT_EQ(e.error, "");
  // numa_binding under cpu_enhancement is not Katalyst's key: ignored.
  EXPECT_FALSE(ParseEnhancements(std::nullopt, R"({"numa_binding":"true"})").numa_binding);
  EXPECT_EQ(ParseEnhancements(std::nullopt, R"({"cpuset_pool":"default"})").cpuset_pool, "");
}

TEST(Enhancements, MalformedKeepsDefaultsAndSaysWhy) {
  auto e = ParseEnhancements("{not json", R"(["cpuset_pool"])");
  EXPECT_FALSE(e.numa_binding);
  EXPECT_EQ(e.cpuset_pool, "");
  EXPECT_EQ(e.error,
            "memory_enhancement is not a JSON object; cpu_enhancement is not a JSON object");
  EXPECT_EQ(ParseEnhancements(R"({"numa_binding":3})", std::nullopt).error,
            "memory_enhancement.numa_binding is not a string");
}

TEST(KubeQosClass, KubeletRule) {
  auto guaranteed = Pod(PodJson(
      "g", "u1", nlohmann::json::object(),
      {Container("a", {{"cpu", "2"}, {"memory", "1Gi"}}, {{"cpu", "2"}, {"memory", "1Gi"}})}));
  EXPECT_EQ(ComputeKubeQosClass(guaranteed), KubeQosClass::kGuaranteed);
  auto burstable = Pod(PodJson("b", "u2", nlohmann::json::object(),
                               {Container("a", {{"cpu", "1"}}, {{"cpu", "2"}})}));
  EXPECT_EQ(ComputeKubeQosClass(burstable), KubeQosClass::kBurstable);
  auto best_effort =
      Pod(PodJson("e", "u3", nlohmann::json::object(),
                  {Container("a", {{kReclaimedMilliCpu, "2k"}}, {{kReclaimedMilliCpu, "2k"}})}));
  EXPECT_EQ(ComputeKubeQosClass(best_effort), KubeQosClass::kBestEffort);
}

TEST(MakeLocalPod, ReadsEverythingTheAgentNeeds) {
  auto view = Pod(PodJson(
      "batch-0", "uid-7",
      {{"katalyst.kubewharf.io/qos_level", "reclaimed_cores"},
       {"katalyst.kubewharf.io/cpu_enhancement", R"({"cpuset_pool":"batch"})"}},
      {Container("main", {{kReclaimedMilliCpu, "1500"}, {kReclaimedMemory, "1Gi"}},
                 {{kReclaimedMilliCpu, "2k"}, {kReclaimedMemory, "2Gi"}}),
       Container("side", {{"cpu", "100m"}, {"memory", "64Mi"}}, nlohmann::json::object())}));
  LocalPod p = MakeLocalPod(view);
  EXPECT_EQ(p.uid, "uid-7");
  EXPECT_EQ(p.ns, "team");
  EXPECT_EQ(p.name, "batch-0");
  EXPECT_EQ(p.phase, kube::PodPhase::kRunning);
  EXPECT_EQ(p.priority, 1000);
  EXPECT_EQ(p.owner_kind, "ReplicaSet");
  EXPECT_EQ(p.qos_level, QosLevel::kReclaimed);
  EXPECT_EQ(p.qos_class, KubeQosClass::kBurstable);
  EXPECT_EQ(p.enhancements.cpuset_pool, "batch");
  ASSERT_EQ(p.containers.size(), 2u);
  EXPECT_EQ(p.containers[0].name, "main");
  EXPECT_EQ(p.containers[0].requests.reclaimed_millicpu, 1500);
  EXPECT_EQ(p.containers[0].limits.reclaimed_millicpu, 2000);
  EXPECT_EQ(p.containers[0].limits.reclaimed_memory_bytes, 2LL << 30);
  EXPECT_EQ(p.containers[1].requests.cpu_millis, 100);
  EXPECT_EQ(p.containers[1].requests.memory_bytes, 64LL << 20);
  EXPECT_EQ(p.requests, (ResourceAmounts{.cpu_millis = 100,
                                         .memory_bytes = 64LL << 20,
                                         .reclaimed_millicpu = 1500,
                                         .reclaimed_memory_bytes = 1LL << 30}));
}

TEST(MakeLocalPod, UnknownLevelKeepsRawValue) {
  LocalPod p = MakeLocalPod(Pod(PodJson("x", "u", {{"katalyst.kubewharf.io/qos_level", "gold"}},
                                        {Container("a", {{"cpu", "1"}}, {{"cpu", "1"}})})));
  EXPECT_EQ(p.qos_level, QosLevel::kUnknown);
  EXPECT_EQ(p.qos_level_raw, "gold");
}

TEST(LocalPodCache, SnapshotsGenerationsAndHandlers) {
  LocalPodCache cache(nullptr, {.node_name = "gpu-1"});
  std::vector<uint64_t> seen;
  cache.AddChangeHandler([&](uint64_t g) { seen.push_back(g); });
  EXPECT_EQ(cache.generation(), 0u);
  auto a = PodJson("b-pod", "u-b", nlohmann::json::object(),
                   {Container("a", {{"cpu", "1"}}, nlohmann::json::object())});
  cache.Upsert(Pod(a));
  cache.Upsert(Pod(PodJson("a-pod", "u-a", nlohmann::json::object(),
                           {Container("a", {{"cpu", "2"}}, nlohmann::json::object())})));
  // Elsewhere: ignored.
  cache.Upsert(
      Pod(PodJson("c", "u-c", nlohmann::json::object(), nlohmann::json::array(), "gpu-2")));
  auto before = cache.Snapshot();
  ASSERT_EQ(before->pods.size(), 2u);
  EXPECT_EQ(before->pods[0].name, "a-pod");  // sorted
  EXPECT_EQ(before->generation, 2u);
  // The same pod again (a new resourceVersion, same content): no change.
  a["metadata"]["resourceVersion"] = "2";
  cache.Upsert(Pod(a));
  EXPECT_EQ(cache.generation(), 2u);
  a["status"]["phase"] = "Succeeded";
  cache.Upsert(Pod(a));
  EXPECT_EQ(cache.generation(), 3u);
  EXPECT_FALSE(cache.UidToPod("u-b")->Active());
  ASSERT_TRUE(cache.UidToPod("u-a").has_value());
  EXPECT_EQ(cache.UidToPod("u-a")->name, "a-pod");
  cache.Remove("u-a");
  cache.Remove("u-a");
  EXPECT_FALSE(cache.UidToPod("u-a").has_value());
  EXPECT_EQ(seen, (std::vector<uint64_t>{1, 2, 3, 4}));
  // A snapshot taken earlier does not change.
  EXPECT_EQ(before->pods.size(), 2u);
  EXPECT_EQ(before->FindUid("u-a")->requests.cpu_millis, 2000);
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
