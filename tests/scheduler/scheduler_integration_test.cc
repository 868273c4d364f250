// gpu-autoscaler-scheduler as a real process against the embedded API server
// (a separate process too): standalone binding with GPU annotations, reasons
// on unschedulable pods, a 409 on bind, a node that disappears, gangs, and
// the extender over HTTP answering kube-scheduler's recorded requests, and
// over HTTPS with a certificate that rotates without a restart.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "kube/conditions.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "net/self_signed_cert.h"
#include "scheduler/gpu_demand.h"
#include "scheduler/scheduler_process_fixture.h"
#include "scheduler/scheduler_test_util.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::scheduler {
namespace {

using nlohmann::json;
using testing::ChildProcess;
using testing::WaitFor;

TEST_F(SchedulerProcessTest, BindsPendingPodsWithDisjointGpusInNvlinkIslands) {
  AddNode({.name = "island",
           .allocatable_extra = {{"nvidia.com/gpu", "4"}},
           .labels = {{"gpuautoscaler.io/nvlink-islands", "0.2_1.3"}}});
  AddNode({.name = "flat", .allocatable_extra = {{"nvidia.com/gpu", "4"}}});
  StartScheduler();
  for (int i = 0; i < 2; ++i)
    AddPod({.name = "pair-" + std::to_string(i), .requests = {{"nvidia.com/gpu", "2"}}});
  for (int i = 0; i < 4; ++i)
    AddPod({.name = "one-" + std::to_string(i), .requests = {{"nvidia.com/gpu", "1"}}});
  AddPod({.name = "cpu-only"});
  AddPod({.name = "not-ours", .requests = {{"nvidia.com/gpu", "1"}}}, "default-scheduler");
  const std::vector<std::string> ours = {"pair-0", "pair-1", "one-0",   "one-1",
                                         "one-2",  "one-3",  "cpu-only"};
  ASSERT_TRUE(WaitFor([&] {
    for (const std::string& p : ours)
      if (NodeOf(p).empty()) return false;
    return true;
  })) << scheduler_.Log();
  std::map<std::string, std::set<int>> used;
  for (const std::string& p : ours) {
    EXPECT_EQ(Scheduled(p), "True: ");
    if (p == "cpu-only") {
      EXPECT_EQ(GpusOf(p), "");
      continue;
    }
    auto gpus = ParseGpuIndices(GpusOf(p));
    ASSERT_TRUE(gpus.ok()) << p << ": " << GpusOf(p);
    EXPECT_EQ(gpus->size(), p.starts_with("pair") ? 2u : 1u);
    for (int g : *gpus) {
      EXPECT_LT(g, 4);
      EXPECT_TRUE(used[NodeOf(p)].insert(g).second)
          << "GPU " << g << " of " << NodeOf(p) << " twice";
    }
    if (p.starts_with("pair") && NodeOf(p) == "island") {
      EXPECT_TRUE(*gpus == std::vector<int>({0, 2}) || *gpus == std::vector<int>({1, 3}))
          << GpusOf(p);
    }
  }
  EXPECT_EQ(NodeOf("not-ours"), "");
  ASSERT_TRUE(WaitFor([&] { return !EventsFor("pair-0", "Scheduled").empty(); }));
  const std::string message = EventsFor("pair-0", "Scheduled")[0].value("message", "");
  EXPECT_NE(message.find("on GPUs"), std::string::npos) << message;
  EXPECT_NE(message.find("FragLookahead score"), std::string::npos) << message;
  EXPECT_NE(Metrics().find("gpu_autoscaler_scheduler_bind_total{result=\"bound\"} 7"),
            std::string::npos);
}

// PodScheduled=False is written off the loop; a Binding waits for the pod's
// write under way, so the late write never marks a bound pod unschedulable.
TEST_F(SchedulerProcessTest, AnUnschedulableWriteNeverLandsAfterTheBinding) {
  StartScheduler();
  ASSERT_TRUE(server_->SetLatency(std::chrono::seconds(3), "patch", "pods").ok());
  AddPod({.name = "p", .requests = {{"nvidia.com/gpu", "1"}}});
  ASSERT_TRUE(WaitFor([&] { return !EventsFor("p", "FailedScheduling").empty(); }))
      << scheduler_.Log();
  // Its PATCH is held by the server for 3 s from about now.
  const auto held_until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  AddNode({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  ASSERT_TRUE(WaitFor([&] { return NodeOf("p") == "a"; })) << scheduler_.Log();
  // Past the moment a write sent before the Binding would land.
  std::this_thread::sleep_until(held_until + std::chrono::seconds(1));
  EXPECT_EQ(Scheduled("p").substr(0, 4), "True") << Scheduled("p");
  ASSERT_TRUE(server_->ClearFaults().ok());
}

// Required pod anti-affinity: three replicas created at once go to three
// nodes, though the policy would pack them on one (each sees the ones
// assumed before it), and a fourth has nowhere to go, in kube-scheduler's
// words. Topology spread: four workers over two zones, two in each.
TEST_F(SchedulerProcessTest, AntiAffinityAndTopologySpreadAreHonoured) {
  for (const char* name : {"a", "b", "c"}) {
    AddNode({.name = name,
             .allocatable_extra = {{"nvidia.com/gpu", "8"}},
             .labels = {{"host", name}, {"zone", std::string(name) == "a" ? "z1" : "z2"}}});
  }
  const json anti = {
      {"podAntiAffinity",
       {{"requiredDuringSchedulingIgnoredDuringExecution",
         {{{"labelSelector", {{"matchLabels", {{"app", "web"}}}}}, {"topologyKey", "host"}}}}}}};
  for (int i = 0; i < 3; ++i) {
    AddPod({.name = "web-" + std::to_string(i),
            .requests = {{"nvidia.com/gpu", "1"}},
            .spec_extra = {{"affinity", anti}},
            .metadata_extra = {{"labels", {{"app", "web"}}}}});
  }
  StartScheduler();
  ASSERT_TRUE(WaitFor([&] {
    return !NodeOf("web-0").empty() && !NodeOf("web-1").empty() && !NodeOf("web-2").empty();
  })) << scheduler_.Log();
  EXPECT_EQ((std::set<std::string>{NodeOf("web-0"), NodeOf("web-1"), NodeOf("web-2")}),
            (std::set<std::string>{"a", "b", "c"}));
  AddPod({.name = "web-3",
          .requests = {{"nvidia.com/gpu", "1"}},
          .spec_extra = {{"affinity", anti}},
          .metadata_extra = {{"labels", {{"app", "web"}}}}});
  ASSERT_TRUE(WaitFor([&] { return !Scheduled("web-3").empty(); }));
  // The replicas' anti-affinity selects it too, and kube-scheduler names the
  // pod's own terms first. Preemption could clear anti-affinity, but the
  // replicas are of the pod's own priority.
  EXPECT_EQ(Scheduled("web-3"),
            "False: 0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. "
            "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming "
            "pod.");

  const json spread = {{{"maxSkew", 1},
                        {"topologyKey", "zone"},
                        {"whenUnsatisfiable", "DoNotSchedule"},
                        {"labelSelector", {{"matchLabels", {{"app", "train"}}}}}}};
  for (int i = 0; i < 4; ++i) {
    AddPod({.name = "train-" + std::to_string(i),
            .requests = {{"nvidia.com/gpu", "1"}},
            .spec_extra = {{"topologySpreadConstraints", spread}},
            .metadata_extra = {{"labels", {{"app", "train"}}}}});
  }
  std::map<std::string, int> per_zone;
  ASSERT_TRUE(WaitFor([&] {
    per_zone.clear();
    for (int i = 0; i < 4; ++i) {
      const std::string node = NodeOf("train-" + std::to_string(i));
      if (node.empty()) return false;
      ++per_zone[node == "a" ? "z1" : "z2"];
    }
    return true;
  })) << scheduler_.Log();
  EXPECT_EQ(per_zone, (std::map<std::string, int>{{"z1", 2}, {"z2", 2}}));
}

TEST_F(SchedulerProcessTest, UnschedulablePodsGetTheReasonAndRetryWhenCapacityFrees) {
  AddNode({.name = "m",
           .allocatable_extra = {{"nvidia.com/gpu", "1"}, {"nvidia.com/mig-1g.10gb", "7"}}});
  StartScheduler();
  AddPod({.name = "mig-7g", .requests = {{"nvidia.com/mig-7g.80gb", "1"}}});
  AddPod({.name = "holder",
          .requests = {{"nvidia.com/gpu", "1"}},
          .annotations = {{"gpuautoscaler.io/gpu-indices", "0"}}});
  ASSERT_TRUE(WaitFor([&] { return NodeOf("holder") == "m"; })) << scheduler_.Log();
  EXPECT_EQ(GpusOf("holder"), "0");
  AddPod({.name = "pinned",
          .requests = {{"nvidia.com/gpu", "1"}},
          .annotations = {{"gpuautoscaler.io/gpu-indices", "0"}}});
  ASSERT_TRUE(WaitFor([&] { return !Scheduled("mig-7g").empty() && !Scheduled("pinned").empty(); }))
      << scheduler_.Log();
  EXPECT_EQ(Scheduled("mig-7g"),
            "False: no node offers nvidia.com/mig-7g.80gb (MIG profiles in the cluster: 1g.10gb)");
  // As kube-scheduler since v1.24, what preemption found follows (every pod
  // here has priority 0: nothing to evict).
  EXPECT_EQ(Scheduled("pinned"),
            "False: 0/1 nodes are available: 1 GPU(s) named by gpuautoscaler.io/gpu-indices are "
            "busy. preemption: 0/1 nodes are available: 1 No preemption victims found for "
            "incoming pod.");
  ASSERT_TRUE(WaitFor([&] { return !EventsFor("pinned", "FailedScheduling").empty(); }));
  EXPECT_EQ(NodeOf("pinned"), "");
  // The holder goes away: the pinned pod gets its GPU.
  ASSERT_TRUE(
      client_->Delete({kube::resources::kPods, ns_, "holder", ""}, {.grace_period_seconds = 0})
          .ok());
  ASSERT_TRUE(WaitFor([&] { return NodeOf("pinned") == "m"; })) << scheduler_.Log();
  EXPECT_EQ(GpusOf("pinned"), "0");
  EXPECT_EQ(NodeOf("mig-7g"), "");
}

TEST_F(SchedulerProcessTest, AConflictOnBindIsRetriedAndAPodBoundByOthersIsCounted) {
  AddNode({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  AddNode({.name = "b", .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  StartScheduler();
  ASSERT_TRUE(
      server_->InjectError({.verb = "create", .resource = "pods/binding", .code = 409, .count = 2})
          .ok());
  AddPod({.name = "contested", .requests = {{"nvidia.com/gpu", "1"}}});
  // Two refused bindings (backoff 1 s, then 2 s); then someone else binds it.
  ASSERT_TRUE(WaitFor([&] {
    auto events = EventsFor("contested", "FailedBinding");
    return !events.empty() && events[0].value("count", 0) >= 2;
  })) << scheduler_.Log();
  EXPECT_EQ(NodeOf("contested"), "");
  const std::string other = "b";
  json binding = {{"apiVersion", "v1"},
                  {"kind", "Binding"},
                  {"metadata", {{"name", "contested"}}},
                  {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", other}}}};
  auto bound = client_->Create({kube::resources::kPods, ns_, "contested", "binding"}, binding);
  ASSERT_TRUE(bound.ok()) << bound.error().ToString();
  // The scheduler drops it (no third binding) and counts its GPU on b.
  AddPod({.name = "next", .requests = {{"nvidia.com/gpu", "1"}}});
  ASSERT_TRUE(WaitFor([&] { return !NodeOf("next").empty(); })) << scheduler_.Log();
  EXPECT_EQ(NodeOf("next"), "a");
  EXPECT_EQ(NodeOf("contested"), other);
  EXPECT_EQ(GpusOf("contested"), "");  // bound by someone else, not by us
  const std::string metrics = Metrics();
  EXPECT_NE(metrics.find("gpu_autoscaler_scheduler_bind_total{result=\"conflict\"} 2"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("gpu_autoscaler_scheduler_bind_total{result=\"bound\"} 1"),
            std::string::npos)
      << metrics;
}

// The CPU-only pods of a ReplicaSet are part of the target workload, a
// DaemonSet's are not (cluster_cache_test.cc's
// LearnsCpuOnlyWorkloadShapesAndKeepsCpuAndMemoryInProportion has the
// arithmetic): the GPU pod goes to b, where it strands less CPU behind memory.
TEST_F(SchedulerProcessTest, CpuOnlyWorkloadPodsShapeWhereGpuPodsGo) {
  AddNode(
      {.name = "a", .cpu = 16, .memory_gi = 256, .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  AddNode(
      {.name = "b", .cpu = 16, .memory_gi = 80, .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  AddNode(
      {.name = "c", .cpu = 64, .memory_gi = 512, .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  StartScheduler();
  AddPod({.name = "trainer", .requests = {{"cpu", "4"}, {"nvidia.com/gpu", "1"}}, .node = "c"});
  auto owned_by = [](const std::string& kind, const std::string& name) {
    return json{{"ownerReferences",
                 {{{"apiVersion", "apps/v1"},
                   {"kind", kind},
                   {"name", name},
                   {"uid", "uid-" + name},
                   {"controller", true}}}}};
  };
  for (int i = 0; i < 12; ++i) {
    AddPod({.name = "web-" + std::to_string(i),
            .requests = {{"cpu", "4"}, {"memory", "32Gi"}},
            .node = "c",
            .metadata_extra = owned_by("ReplicaSet", "web-7f9c")});
  }
  AddPod({.name = "agent-c", .node = "c", .metadata_extra = owned_by("DaemonSet", "agent")});
  ASSERT_TRUE(WaitFor([&] {
    return Metrics().find("gpu_autoscaler_scheduler_cache_pods 14\n") != std::string::npos;
  })) << Metrics();
  AddPod({.name = "p", .requests = {{"cpu", "4"}, {"nvidia.com/gpu", "1"}}});
  ASSERT_TRUE(WaitFor([&] { return !NodeOf("p").empty(); })) << scheduler_.Log();
  EXPECT_EQ(NodeOf("p"), "b");
  const std::string metrics = Metrics();
  EXPECT_NE(metrics.find("gpu_autoscaler_scheduler_target_workload_shapes{class=\"cpu_only\"} 1\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("gpu_autoscaler_scheduler_target_workload_shapes{class=\"gpu\"} 1\n"),
            std::string::npos)
      << metrics;
}

// Where the learnt workload's CPU exceeds the cluster's (ρ ≥ 1), a CPU-only
// pod that scores the same everywhere goes to the node with the most memory
// to spare beyond its idle GPUs' needs (FragLookahead's CPU-only tie-break;
// frag_lookahead_test.cc has the arithmetic), not to the first by name.
// Workload: a GPU pod of 8 cores and 16 GiB and a CPU-only ReplicaSet pod of
// 12 cores and 8 GiB, 20 milli-CPU per GPU milli against the cluster's 56
// cores for 3 GPUs: ρ = 1.07. A 4-core pod changes nothing in the measure on
// a, b or c, so all three score alike: a (64 GiB, idle GPU) has 43 GiB to
// spare after it, b (128 GiB, idle GPU) 107 and c (40 GiB free, GPU taken) 35.
TEST_F(SchedulerProcessTest, CpuOnlyPodsGoWhereMemoryIsToSpareWhenCpuIsOversubscribed) {
  AddNode(
      {.name = "a", .cpu = 12, .memory_gi = 64, .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  AddNode(
      {.name = "b", .cpu = 12, .memory_gi = 128, .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  AddNode(
      {.name = "c", .cpu = 32, .memory_gi = 64, .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  StartScheduler();
  AddPod({.name = "trainer",
          .requests = {{"cpu", "8"}, {"memory", "16Gi"}, {"nvidia.com/gpu", "1"}},
          .node = "c"});
  AddPod({.name = "web-0",
          .requests = {{"cpu", "12"}, {"memory", "8Gi"}},
          .node = "c",
          .metadata_extra = json{{"ownerReferences",
                                  {{{"apiVersion", "apps/v1"},
                                    {"kind", "ReplicaSet"},
                                    {"name", "web-7f9c"},
                                    {"uid", "uid-web"},
                                    {"controller", true}}}}}});
  ASSERT_TRUE(WaitFor([&] {
    return Metrics().find("gpu_autoscaler_scheduler_cache_pods 2\n") != std::string::npos;
  })) << Metrics();
  AddPod({.name = "p", .requests = {{"cpu", "4"}, {"memory", "4Gi"}}});
  ASSERT_TRUE(WaitFor([&] { return !NodeOf("p").empty(); })) << scheduler_.Log();
  EXPECT_EQ(NodeOf("p"), "b");
  EXPECT_NE(
      Metrics().find("gpu_autoscaler_scheduler_target_workload_shapes{class=\"cpu_only\"} 1\n"),
      std::string::npos)
      << Metrics();
}

// A pod held to a GPU model by node affinity makes that model scarce in the
// learnt workload (cluster_cache_test.cc's
// UnconstrainedPodsLeaveScarceModelsToPodsThatNeedThem has the arithmetic):
// an unconstrained pod then goes to the other model's node, though the
// scarce model's node comes first by name.
TEST_F(SchedulerProcessTest, UnconstrainedPodsLeaveScarceModelsFree) {
  for (const char* name : {"a1", "a2", "b1", "b2"}) {
    const bool scarce = name[0] == 'a';
    AddNode({.name = name,
             .allocatable_extra = {{"nvidia.com/gpu", "2"}},
             .labels = {{"nvidia.com/gpu.product", scarce ? "Scarce" : "Plenty"}}});
  }
  StartScheduler();
  const json held = json::parse(R"({"affinity": {"nodeAffinity": {
      "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
        "matchExpressions": [
          {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["Scarce"]}]}]}}}})");
  AddPod({.name = "needs-scarce",
          .requests = {{"nvidia.com/gpu", "1"}},
          .node = "a1",
          .spec_extra = held});
  AddPod({.name = "any", .requests = {{"nvidia.com/gpu", "1"}}, .node = "b1"});
  ASSERT_TRUE(WaitFor([&] {
    return Metrics().find("gpu_autoscaler_scheduler_cache_pods 2\n") != std::string::npos;
  })) << Metrics();
  AddPod({.name = "p", .requests = {{"nvidia.com/gpu", "1"}}});
  ASSERT_TRUE(WaitFor([&] { return !NodeOf("p").empty(); })) << scheduler_.Log();
  EXPECT_EQ(NodeOf("p"), "b1");
  AddPod({.name = "q", .requests = {{"nvidia.com/gpu", "1"}}, .spec_extra = held});
  ASSERT_TRUE(WaitFor([&] { return !NodeOf("q").empty(); })) << scheduler_.Log();
  EXPECT_EQ(NodeOf("q"), "a1");
  EXPECT_NE(Metrics().find("gpu_autoscaler_scheduler_target_workload_shapes{class=\"gpu\"} 2\n"),
            std::string::npos)
      << Metrics();
}

TEST_F(SchedulerProcessTest, ANodeThatDisappearsGetsNothing) {
  AddNode({.name = "doomed", .allocatable_extra = {{"nvidia.com/gpu", "8"}}});
  AddNode({.name = "stays", .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  StartScheduler();
  ASSERT_TRUE(client_->Delete({kube::resources::kNodes, "", "doomed", ""}).ok());
  // Pods and nodes arrive through separate watches; create the pods once the
  // scheduler has seen the node go (a scheduler that has not cannot know).
  ASSERT_TRUE(WaitFor([&] {
    return Metrics().find("gpu_autoscaler_scheduler_cache_nodes 1\n") != std::string::npos;
  })) << Metrics();
  for (int i = 0; i < 3; ++i)
    AddPod({.name = "p" + std::to_string(i), .requests = {{"nvidia.com/gpu", "1"}}});
  ASSERT_TRUE(WaitFor([&] {
    int bound = 0;
    int refused = 0;
    for (int i = 0; i < 3; ++i) {
      bound += !NodeOf("p" + std::to_string(i)).empty();
      refused += Scheduled("p" + std::to_string(i)).starts_with("False");
    }
    return bound == 1 && refused == 2;
  })) << scheduler_.Log();
  for (int i = 0; i < 3; ++i) {
    const std::string p = "p" + std::to_string(i);
    EXPECT_NE(NodeOf(p), "doomed");
    if (NodeOf(p).empty()) {
      EXPECT_EQ(Scheduled(p),
                "False: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: 0/1 "
                "nodes are available: 1 No preemption victims found for incoming pod.");
    }
  }
  // A new node: the waiting pods go there without waiting for their backoff.
  AddNode({.name = "fresh", .allocatable_extra = {{"nvidia.com/gpu", "2"}}});
  ASSERT_TRUE(WaitFor([&] {
    for (int i = 0; i < 3; ++i)
      if (NodeOf("p" + std::to_string(i)).empty()) return false;
    return true;
  })) << scheduler_.Log();
}

TEST_F(SchedulerProcessTest, GangsAreBoundAllOrNone) {
  AddNode({.name = "n1", .allocatable_extra = {{"nvidia.com/gpu", "4"}}});
  StartScheduler();
  const json gang = {{"gpuautoscaler.io/pod-group", "train"},
                     {"gpuautoscaler.io/pod-group-min-member", "3"}};
  AddPod({.name = "w0", .requests = {{"nvidia.com/gpu", "2"}}, .annotations = gang});
  AddPod({.name = "w1", .requests = {{"nvidia.com/gpu", "2"}}, .annotations = gang});
  // w0 may first be tried alone ("1 of 3"); once w1 exists both read 2 of 3.
  const std::string waiting =
      "False: pod group " + ns_ + "/train: 2 of 3 members exist; waiting for 1 more";
  ASSERT_TRUE(WaitFor([&] { return Scheduled("w0") == waiting && Scheduled("w1") == waiting; }))
      << Scheduled("w0") << "\n"
      << scheduler_.Log();
  AddPod({.name = "w2", .requests = {{"nvidia.com/gpu", "2"}}, .annotations = gang});
  ASSERT_TRUE(WaitFor([&] { return Scheduled("w2").find("all together") != std::string::npos; }))
      << scheduler_.Log();
  for (const char* p : {"w0", "w1", "w2"})
    EXPECT_EQ(NodeOf(p), "") << p;  // 6 GPUs asked, 4 exist: none bound
  AddNode({.name = "n2", .allocatable_extra = {{"nvidia.com/gpu", "2"}}});
  ASSERT_TRUE(WaitFor([&] {
    return !NodeOf("w0").empty() && !NodeOf("w1").empty() && !NodeOf("w2").empty();
  })) << scheduler_.Log();
}

json GoldenBody(const std::string& file) {
  return json::parse(testing::ReadFileOrDie(
      testing::SourcePath("tests/golden/extender/" + file)))["request"]["body"];
}

TEST_F(SchedulerProcessTest, ExtenderAnswersKubeSchedulerRequestsAndBinds) {
  for (const char* name : {"gpu-node-a", "gpu-node-b", "gpu-node-bad"})
    AddNode({.name = name, .cpu = 32, .allocatable_extra = {{"nvidia.com/gpu", "8"}}});
  AddPod({.name = "filler", .requests = {{"nvidia.com/gpu", "8"}}}, "");
  json fill = {{"apiVersion", "v1"},
               {"kind", "Binding"},
               {"metadata", {{"name", "filler"}}},
               {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", "gpu-node-bad"}}}};
  ASSERT_TRUE(client_->Create({kube::resources::kPods, ns_, "filler", "binding"}, fill).ok());
  StartScheduler({"--mode=extender"});

  // The recorded filter request, as kube-scheduler sent it.
  auto [status, body] = Post("filter", GoldenBody("01-filter-cache.json").dump());
  ASSERT_EQ(status, 200) << body;
  json filtered = json::parse(body);
  EXPECT_EQ(filtered["NodeNames"], json({"gpu-node-a", "gpu-node-b"}));
  EXPECT_EQ(filtered["FailedNodes"], json({{"gpu-node-bad", "Insufficient nvidia.com/gpu"}}));
  EXPECT_TRUE(filtered["Nodes"].is_null());
  EXPECT_EQ(filtered["Error"], "");

  auto [pstatus, pbody] = Post("prioritize", GoldenBody("02-prioritize-cache.json").dump());
  ASSERT_EQ(pstatus, 200) << pbody;
  json scores = json::parse(pbody);
  ASSERT_EQ(scores.size(), 2u);
  EXPECT_EQ(scores[0]["Host"], "gpu-node-a");

  // Unknown nodes are failed, never kept.
  json unknown = GoldenBody("01-filter-cache.json");
  unknown["NodeNames"] = {"gpu-node-a", "no-such-node"};
  auto [ustatus, ubody] = Post("filter", unknown.dump());
  ASSERT_EQ(ustatus, 200);
  EXPECT_EQ(json::parse(ubody)["NodeNames"], json({"gpu-node-a"}));
  EXPECT_TRUE(json::parse(ubody)["FailedNodes"].contains("no-such-node"));

  auto [bad_status, bad_body] = Post("filter", "{\"Pod\":");
  EXPECT_EQ(bad_status, 400);
  EXPECT_NE(json::parse(bad_body)["Error"].get<std::string>().find("ExtenderArgs"),
            std::string::npos);

  // Bind the recorded pod, created here, on the node kube-scheduler chose.
  json pod = GoldenBody("01-filter-cache.json")["Pod"];
  pod["spec"]["containers"][0].erase("volumeMounts");  // the recorded token Secret is not here
  json create = {{"apiVersion", "v1"},
                 {"kind", "Pod"},
                 {"metadata", {{"name", "gpu-1"}, {"namespace", ns_}}},
                 {"spec", {{"containers", pod["spec"]["containers"]}}}};
  auto created = client_->Create({kube::resources::kPods, ns_, "", ""}, create);
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  json bind = GoldenBody("03-bind-cache.json");
  bind["PodNamespace"] = ns_;
  bind["PodUID"] = (*created)["metadata"]["uid"];
  auto [bstatus, bbody] = Post("bind", bind.dump());
  ASSERT_EQ(bstatus, 200);
  EXPECT_EQ(bbody, R"({"Error":""})");
  EXPECT_EQ(NodeOf("gpu-1"), "gpu-node-b");
  EXPECT_EQ(GpusOf("gpu-1"), "0");
  ASSERT_TRUE(WaitFor([&] { return !EventsFor("gpu-1", "GPUsAssigned").empty(); }));
  // Binding it again is refused by the API server (409) and said in Error.
  auto [again_status, again] = Post("bind", bind.dump());
  EXPECT_EQ(again_status, 200);
  EXPECT_NE(json::parse(again)["Error"].get<std::string>().find("already"), std::string::npos)
      << again;
}

// A kube-scheduler whose extender lists no managedResources sends it every pod,
// CPU-only ones too (docs/scheduler.md: what that is worth). The extender
// filters them on CPU, memory and pod slots, gives 10 to the node standalone
// would pick and binds them with no GPUs. Workload: 8-GPU pods of 4 cores. A
// 6-core pod on "idle" (8 cores, 8 free GPUs) would leave no CPU for them;
// on "full" (GPUs taken) it costs nothing; "small" has 4 cores, too few.
TEST_F(SchedulerProcessTest, ExtenderPlacesCpuOnlyPodsWhenKubeSchedulerSendsThem) {
  AddNode({.name = "idle", .cpu = 8, .allocatable_extra = {{"nvidia.com/gpu", "8"}}});
  AddNode({.name = "full", .cpu = 32, .allocatable_extra = {{"nvidia.com/gpu", "8"}}});
  AddNode({.name = "small", .cpu = 4, .allocatable_extra = {{"nvidia.com/gpu", "8"}}});
  AddPod({.name = "trainer", .requests = {{"cpu", "4"}, {"nvidia.com/gpu", "8"}}, .node = "full"},
         "");
  StartScheduler({"--mode=extender"});
  ASSERT_TRUE(WaitFor([&] {
    return Metrics().find("gpu_autoscaler_scheduler_cache_pods 1\n") != std::string::npos;
  })) << Metrics();
  AddPod({.name = "etl", .requests = {{"cpu", "6"}}}, "");
  json pod = GetPod("etl");
  ASSERT_TRUE(pod.is_object());
  const json args = {{"Pod", pod}, {"NodeNames", {"small", "idle", "full"}}};

  auto [fstatus, fbody] = Post("filter", args.dump());
  ASSERT_EQ(fstatus, 200) << fbody;
  const json filtered = json::parse(fbody);
  EXPECT_EQ(filtered["NodeNames"], json({"idle", "full"}));
  EXPECT_EQ(filtered["FailedNodes"], json({{"small", "Insufficient cpu"}}));

  json kept = args;
  kept["NodeNames"] = {"idle", "full"};
  auto [pstatus, pbody] = Post("prioritize", kept.dump());
  ASSERT_EQ(pstatus, 200) << pbody;
  const json priorities = json::parse(pbody);
  ASSERT_EQ(priorities.size(), 2u);
  EXPECT_EQ(priorities[0]["Host"], "idle");
  EXPECT_LT(priorities[0]["Score"].get<int>(), 10);
  EXPECT_EQ(priorities[1]["Host"], "full");
  EXPECT_EQ(priorities[1]["Score"], 10);

  const json bind = {{"PodName", "etl"},
                     {"PodNamespace", ns_},
                     {"PodUID", pod["metadata"]["uid"]},
                     {"Node", "full"}};
  auto [bstatus, bbody] = Post("bind", bind.dump());
  ASSERT_EQ(bstatus, 200);
  EXPECT_EQ(bbody, R"({"Error":""})");
  EXPECT_EQ(NodeOf("etl"), "full");
  EXPECT_EQ(GpusOf("etl"), "");
}

// A serving pair for 127.0.0.1 from a fresh CA; returns the CA's PEM file.
std::string WriteExtenderCertificate(const std::string& dir, const std::string& name,
                                     const std::string& cert_file, const std::string& key_file) {
  net::SelfSignedRequest req;
  req.dns_names = {"localhost"};
  req.ip_addresses = {"127.0.0.1"};
  req.ca_common_name = "extender-ca-" + name;
  auto certs = net::GenerateSelfSignedCertificates(req);
  EXPECT_TRUE(certs.ok()) << certs.error().ToString();
  if (!certs.ok()) return "";
  const std::string ca = dir + "/" + name + "-ca.crt";
  std::ofstream(ca) << certs->ca_cert_pem;
  // Written beside and renamed into place, as a Secret's projected volume swaps files.
  std::ofstream(key_file + ".new") << certs->serving_key_pem;
  std::ofstream(cert_file + ".new") << certs->serving_cert_pem;
  std::filesystem::rename(key_file + ".new", key_file);
  std::filesystem::rename(cert_file + ".new", cert_file);
  return ca;
}

// kube-scheduler's `enableHTTPS: true`: the extender serves TLS from
// --tls-cert-file/--tls-key-file and picks up a rotated pair (cert-manager
// renewing the Secret) for new connections without a restart.
TEST_F(SchedulerProcessTest, ExtenderOverHttpsReloadsARotatedCertificate) {
  AddNode({.name = "gpu-node-a", .cpu = 32, .allocatable_extra = {{"nvidia.com/gpu", "8"}}});
  const std::string cert = dir_ + "/tls.crt";
  const std::string key = dir_ + "/tls.key";
  const std::string first_ca = WriteExtenderCertificate(dir_, "first", cert, key);
  ASSERT_FALSE(first_ca.empty());
  StartScheduler({"--mode=extender", "--tls-cert-file=" + cert, "--tls-key-file=" + key});
  const std::string body_file = dir_ + "/filter.json";
  json request = GoldenBody("01-filter-cache.json");
  request["NodeNames"] = {"gpu-node-a"};
  std::ofstream(body_file) << request.dump();
  const std::string url =
      "https://127.0.0.1:" + std::to_string(scheduler_.PortFromLog("extender_port")) + "/filter";
  // curl's exit code: 0 on a verified 2xx, 60 when the peer's certificate is not
  // signed by the given CA.
  auto filter_with_ca = [&](const std::string& ca) {
    return testing::RunCommand({"/usr/bin/curl", "-sf", "--cacert", ca, "-XPOST", "-H",
                                "Content-Type: application/json", "--data-binary", "@" + body_file,
                                url});
  };
  testing::CommandResult first = filter_with_ca(first_ca);
  ASSERT_EQ(first.exit_code, 0) << first.err << scheduler_.Log();
  EXPECT_EQ(json::parse(first.out)["NodeNames"], json({"gpu-node-a"}));
  // Plain HTTP on the TLS port is not answered as an extender.
  EXPECT_NE(
      testing::RunCommand({"/usr/bin/curl", "-sf", "-XPOST", "--data-binary", "@" + body_file,
                           "http://127.0.0.1:" +
                               std::to_string(scheduler_.PortFromLog("extender_port")) + "/filter"})
          .exit_code,
      0);
  // TLS below 1.2 is refused.
  EXPECT_NE(
      testing::RunCommand({"/usr/bin/curl", "-sf", "--cacert", first_ca, "--tlsv1.0", "--tls-max",
                           "1.1", "-XPOST", "--data-binary", "@" + body_file, url})
          .exit_code,
      0);

  const std::string second_ca = WriteExtenderCertificate(dir_, "second", cert, key);
  ASSERT_FALSE(second_ca.empty());
  ASSERT_TRUE(WaitFor([&] { return filter_with_ca(second_ca).exit_code == 0; }))
      << "the extender still serves the first certificate\n"
      << scheduler_.Log();
  EXPECT_EQ(filter_with_ca(first_ca).exit_code, 60);
  EXPECT_TRUE(scheduler_.running()) << "a rotation must not restart the scheduler";
}

TEST(SchedulerProgramTest, HelpAndBadFlags) {
  testing::CommandResult help =
      testing::RunCommand({testing::BinaryPath("gpu-autoscaler-scheduler"), "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--mode=standalone|extender"), std::string::npos);
  testing::CommandResult bad =
      testing::RunCommand({testing::BinaryPath("gpu-autoscaler-scheduler"), "--mode=both"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--mode: want standalone or extender"), std::string::npos) << bad.err;
  testing::CommandResult policy = testing::RunCommand(
      {testing::BinaryPath("gpu-autoscaler-scheduler"), "--policy=Nope", "--kubeconfig=/dev/null"});
  EXPECT_EQ(policy.exit_code, 2);
  EXPECT_NE((policy.err + policy.out).find("--policy"), std::string::npos);
}

}  // namespace
}  // namespace gpu_autoscaler::scheduler
