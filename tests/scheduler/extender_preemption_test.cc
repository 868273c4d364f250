// The extender's preemptVerb: kube-scheduler's candidates in, one node and
// victims chosen on the GPUs out (extender.h, ClusterCache::PlanPreemptionAmong).
// The request shapes are ExtenderPreemptionArgs as kube-scheduler encodes
// them (PascalCase keys, the unset map as null).
#include <gtest/gtest.h>

#include "scheduler/extender.h"
#include "scheduler/scheduler_test_util.h"

namespace gpu_autoscaler::scheduler {
namespace {

using testutil::json;
using testutil::Node;
using testutil::PodArgs;

json WithPriority(PodArgs args, int priority, const std::string& started = "") {
  json pod = testutil::PodJson(args);
  pod["spec"]["priority"] = priority;
  if (!started.empty()) pod["status"]["startTime"] = started;
  return pod;
}

std::shared_ptr<const kube::PodView> View(const json& pod) {
  auto view = kube::DecodePod(pod.dump());
  EXPECT_TRUE(view.ok()) << view.error().message();
  return std::make_shared<const kube::PodView>(std::move(view).value());
}

// A time-sliced node "ts" (2 GPUs, 2 replicas each), full: z (priority 5)
// and x (1) share GPU 0, w (9) and y (1, started later) GPU 1. A whole GPU's
// share (2 replicas) needs both pods of one GPU gone. kube-scheduler counts
// replicas and so chooses x and y, the two least important, one on each GPU.
std::unique_ptr<ClusterCache> TimeSlicedCluster() {
  auto cache = std::move(ClusterCache::Create({})).value();
  cache->UpsertNode(Node({.name = "ts",
                          .allocatable_extra = {{"nvidia.com/gpu.shared", "4"}},
                          .labels = {{"nvidia.com/gpu.replicas", "2"}}}));
  auto shared = [](const std::string& name, int gpu, int priority, const std::string& started) {
    return View(
        WithPriority({.name = name,
                      .requests = {{"nvidia.com/gpu.shared", "1"}},
                      .annotations = {{"gpuautoscaler.io/gpu-indices", std::to_string(gpu)}},
                      .node = "ts",
                      .phase = "Running"},
                     priority, started));
  };
  cache->UpsertPod(shared("z", 0, 5, "2026-01-01T00:00:00Z"));
  cache->UpsertPod(shared("x", 0, 1, "2026-01-01T00:00:00Z"));
  cache->UpsertPod(shared("w", 1, 9, "2026-01-01T00:00:00Z"));
  cache->UpsertPod(shared("y", 1, 1, "2026-02-01T00:00:00Z"));
  return cache;
}

json Preemptor() {
  return WithPriority({.name = "p", .requests = {{"nvidia.com/gpu.shared", "2"}}}, 1000);
}

// ExtenderPreemptionArgs in kube-scheduler's cache form (nodeCacheCapable).
json MetaArgs(const json& pod, const std::map<std::string, std::vector<std::string>>& victims) {
  json nodes = json::object();
  for (const auto& [node, uids] : victims) {
    json pods = json::array();
    for (const std::string& uid : uids)
      pods.push_back({{"UID", uid}});
    nodes[node] = {{"Pods", pods}, {"NumPDBViolations", 0}};
  }
  return {{"Pod", pod}, {"NodeNameToVictims", nullptr}, {"NodeNameToMetaVictims", nodes}};
}

TEST(ExtenderPreemptionTest, ParsesBothFormsInAnyKeyCase) {
  json pod = Preemptor();
  json victim = testutil::PodJson({.name = "x", .node = "ts"});
  json full = {{"Pod", pod},
               {"NodeNameToVictims",
                {{"ts", {{"Pods", {victim}}, {"NumPDBViolations", 2}}}, {"other", nullptr}}},
               {"NodeNameToMetaVictims", nullptr}};
  Result<ExtenderPreemptionArgs> args = ParseExtenderPreemptionArgs(full.dump());
  ASSERT_TRUE(args.ok()) << args.error().message();
  // nlohmann writes the keys sorted: "other" first.
  ASSERT_EQ(args->candidates.size(), 2u);
  EXPECT_EQ(args->candidates[0].node, "other");
  EXPECT_TRUE(args->candidates[0].victim_uids.empty());
  EXPECT_EQ(args->candidates[1].node, "ts");
  EXPECT_EQ(args->candidates[1].victim_uids, std::vector<std::string>{"uid-x"});
  EXPECT_EQ(args->candidates[1].pdb_violations, 2);

  json camel = {
      {"pod", pod},
      {"nodeNameToMetaVictims", {{"ts", {{"pods", {{{"uid", "uid-x"}}, {{"UID", "uid-y"}}}}}}}}};
  args = ParseExtenderPreemptionArgs(camel.dump());
  ASSERT_TRUE(args.ok()) << args.error().message();
  ASSERT_EQ(args->candidates.size(), 1u);
  EXPECT_EQ(args->candidates[0].victim_uids, (std::vector<std::string>{"uid-x", "uid-y"}));
  EXPECT_FALSE(args->pod_json.empty());
}

TEST(ExtenderPreemptionTest, MalformedRequestsGetAClearError) {
  auto cache = TimeSlicedCluster();
  Extender extender(*cache, {});
  const std::string pod = Preemptor().dump();
  for (const auto& [body, want] : std::vector<std::pair<std::string, std::string>>{
           {"{", "ExtenderPreemptionArgs"},
           {"[]", "must be a JSON object"},
           {R"({"NodeNameToMetaVictims":{}})", "has no Pod"},
           {R"({"Pod":)" + pod + "}", "neither NodeNameToVictims nor NodeNameToMetaVictims"},
           {R"({"Pod":)" + pod + R"(,"NodeNameToVictims":{},"NodeNameToMetaVictims":{}})",
            "has both"},
           {R"({"Pod":)" + pod + R"(,"NodeNameToMetaVictims":[]})", "must be an object"},
           {R"({"Pod":)" + pod + R"(,"NodeNameToMetaVictims":{"ts":{"Pods":[{}]}}})", "no UID"},
           {R"({"Pod":)" + pod + R"(,"NodeNameToMetaVictims":{"ts":{"Pods":[{"UID":7}]}}})",
            "UID must be a string"},
           {R"({"Pod":)" + pod + R"(,"NodeNameToVictims":{"ts":{"Pods":[{"metadata":{}}]}}})",
            "metadata.uid"},
           {R"({"Pod":)" + pod + R"(,"NodeNameToMetaVictims":{"ts":{"NumPDBViolations":"x"}}})",
            "NumPDBViolations must be an integer"},
           {R"({"Pod":{"spec":{"containers":7}},"NodeNameToMetaVictims":{}})", "Pod:"},
       }) {
    SCOPED_TRACE(body);
    ExtenderReply reply = extender.Handle("preempt", body);
    EXPECT_EQ(reply.status, 400);
    json out = json::parse(reply.body);
    EXPECT_NE(out["Error"].get<std::string>().find(want), std::string::npos) << reply.body;
  }
}

TEST(ExtenderPreemptionTest, VictimsAreChosenOnTheGpusNotTakenFromKubeScheduler) {
  auto cache = TimeSlicedCluster();
  std::vector<std::pair<std::string, int>> counted;
  Extender extender(*cache, {.count_preemption = [&](std::string_view result, int victims) {
    counted.emplace_back(std::string(result), victims);
  }});
  // kube-scheduler's count-based victims: x and y, which free no GPU.
  ExtenderReply reply =
      extender.Handle("preempt", MetaArgs(Preemptor(), {{"ts", {"uid-x", "uid-y"}}}).dump());
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.body,
            R"({"NodeNameToMetaVictims":{"ts":{"Pods":[{"UID":"uid-z"},{"UID":"uid-x"}],)"
            R"("NumPDBViolations":0}}})");
  EXPECT_EQ(counted, (std::vector<std::pair<std::string, int>>{{"preempted", 2}}));
}

// Nodes a and b of one GPU each, full: a0 runs on a, b0 on b, with these
// priorities and app labels.
std::unique_ptr<ClusterCache> TwoFullNodes(int a0_priority, int b0_priority,
                                           const std::string& a0_app = "",
                                           const std::string& b0_app = "") {
  auto cache = std::move(ClusterCache::Create({})).value();
  for (const char* name : {"a", "b"})
    cache->UpsertNode(Node({.name = name, .allocatable_extra = {{"nvidia.com/gpu", "1"}}}));
  auto running = [](const std::string& node, int priority, const std::string& app) {
    json pod = WithPriority({.name = node + "0",
                             .requests = {{"nvidia.com/gpu", "1"}},
                             .annotations = {{"gpuautoscaler.io/gpu-indices", "0"}},
                             .node = node,
                             .phase = "Running"},
                            priority);
    if (!app.empty()) pod["metadata"]["labels"] = {{"app", app}};
    return View(pod);
  };
  cache->UpsertPod(running("a", a0_priority, a0_app));
  cache->UpsertPod(running("b", b0_priority, b0_app));
  return cache;
}

TEST(ExtenderPreemptionTest, AnswersWithTheOneBestCandidate) {
  auto cache = TwoFullNodes(100, 10);
  Extender extender(*cache, {});
  json pod = WithPriority({.name = "p", .requests = {{"nvidia.com/gpu", "1"}}}, 1000);
  ExtenderReply reply = extender.Handle(
      "preempt",
      MetaArgs(pod, {{"a", {"uid-a0"}}, {"b", {"uid-b0"}}, {"ghost", {"uid-g"}}}).dump());
  ASSERT_EQ(reply.status, 200);
  EXPECT_EQ(json::parse(reply.body)["NodeNameToMetaVictims"],
            json::parse(R"({"b":{"Pods":[{"UID":"uid-b0"}],"NumPDBViolations":0}})"));
  // Only the nodes kube-scheduler offered are candidates.
  reply = extender.Handle("preempt", MetaArgs(pod, {{"a", {"uid-a0"}}}).dump());
  EXPECT_EQ(json::parse(reply.body)["NodeNameToMetaVictims"],
            json::parse(R"({"a":{"Pods":[{"UID":"uid-a0"}],"NumPDBViolations":0}})"));
}

TEST(ExtenderPreemptionTest, ABudgetIsCountedAndSteersTheChoice) {
  auto cache = TwoFullNodes(10, 50, "guarded", "free");
  auto budget = ParseDisruptionBudget(R"({"metadata":{"namespace":"default","name":"guard"},
      "spec":{"selector":{"matchLabels":{"app":"guarded"}}},"status":{"disruptionsAllowed":0}})");
  ASSERT_TRUE(budget.ok()) << budget.error().message();
  Extender extender(*cache,
                    {.disruption_budgets = [&] { return std::vector<DisruptionBudget>{*budget}; }});
  json pod = WithPriority({.name = "p", .requests = {{"nvidia.com/gpu", "1"}}}, 1000);
  // The budget sends preemption to b, although b0's priority is higher.
  ExtenderReply reply =
      extender.Handle("preempt", MetaArgs(pod, {{"a", {"uid-a0"}}, {"b", {"uid-b0"}}}).dump());
  EXPECT_EQ(json::parse(reply.body)["NodeNameToMetaVictims"],
            json::parse(R"({"b":{"Pods":[{"UID":"uid-b0"}],"NumPDBViolations":0}})"));
  // On a alone, the violation is reported as kube-scheduler counts them.
  reply = extender.Handle("preempt", MetaArgs(pod, {{"a", {"uid-a0"}}}).dump());
  EXPECT_EQ(json::parse(reply.body)["NodeNameToMetaVictims"],
            json::parse(R"({"a":{"Pods":[{"UID":"uid-a0"}],"NumPDBViolations":1}})"));
}

TEST(ExtenderPreemptionTest, KubeSchedulersVictimsWithoutGpusStayVictims) {
  auto cache = std::move(ClusterCache::Create({})).value();
  cache->UpsertNode(Node({.name = "n", .cpu = 8, .allocatable_extra = {{"nvidia.com/gpu", "2"}}}));
  cache->UpsertPod(View(WithPriority({.name = "g",
                                      .requests = {{"nvidia.com/gpu", "1"}},
                                      .annotations = {{"gpuautoscaler.io/gpu-indices", "0"}},
                                      .node = "n",
                                      .phase = "Running"},
                                     1)));
  // A CPU-only pod kube-scheduler evicts for what the cache does not see
  // (a host port, say): the GPUs alone would not need it gone.
  cache->UpsertPod(View(
      WithPriority({.name = "c", .requests = {{"cpu", "1"}}, .node = "n", .phase = "Running"}, 1)));
  Extender extender(*cache, {});
  json pod = WithPriority({.name = "p", .requests = {{"nvidia.com/gpu", "2"}}}, 1000);
  ExtenderReply reply =
      extender.Handle("preempt", MetaArgs(pod, {{"n", {"uid-g", "uid-c"}}}).dump());
  json victims = json::parse(reply.body)["NodeNameToMetaVictims"]["n"]["Pods"];
  EXPECT_EQ(victims.size(), 2u) << reply.body;
  // Not chosen by kube-scheduler, the CPU-only pod is spared.
  reply = extender.Handle("preempt", MetaArgs(pod, {{"n", {"uid-g"}}}).dump());
  EXPECT_EQ(json::parse(reply.body)["NodeNameToMetaVictims"],
            json::parse(R"({"n":{"Pods":[{"UID":"uid-g"}],"NumPDBViolations":0}})"));
}

TEST(ExtenderPreemptionTest, NoPlanIsAnEmptyAnswer) {
  auto cache = TimeSlicedCluster();
  std::vector<std::string> counted;
  Extender extender(*cache, {.count_preemption = [&](std::string_view result, int) {
    counted.emplace_back(result);
  }});
  // A pod of no higher priority than any pod there, a node the extender does
  // not know, and an empty candidate list: nothing to evict.
  json low = WithPriority({.name = "low", .requests = {{"nvidia.com/gpu.shared", "2"}}}, 1);
  for (const json& args :
       {MetaArgs(low, {{"ts", {"uid-x"}}}), MetaArgs(Preemptor(), {{"ghost", {"uid-x"}}}),
        MetaArgs(Preemptor(), {})}) {
    ExtenderReply reply = extender.Handle("preempt", args.dump());
    ASSERT_EQ(reply.status, 200);
    EXPECT_EQ(reply.body, R"({"NodeNameToMetaVictims":{}})");
  }
  // A pod that already fits needs no victim: kube-scheduler must get none
  // (it refuses a node with an empty victim list).
  json small = WithPriority({.name = "s", .requests = {{"nvidia.com/gpu.shared", "1"}}}, 1000);
  cache->DeletePod("default", "y");
  ExtenderReply reply = extender.Handle("preempt", MetaArgs(small, {{"ts", {"uid-x"}}}).dump());
  EXPECT_EQ(reply.body, R"({"NodeNameToMetaVictims":{}})");
  EXPECT_EQ(counted, (std::vector<std::string>(4, "no_candidate")));

  auto full = TimeSlicedCluster();
  Extender disabled(*full, {.preemption = false});
  reply = disabled.Handle("preempt", MetaArgs(Preemptor(), {{"ts", {"uid-x", "uid-y"}}}).dump());
  EXPECT_EQ(reply.body, R"({"NodeNameToMetaVictims":{}})");
}

}  // namespace
}  // namespace gpu_autoscaler::scheduler
