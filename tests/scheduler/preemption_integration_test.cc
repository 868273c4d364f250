// Preemption in the standalone scheduler, as real processes: the scheduler
// against the embedded API server. The test plays the kubelet: it finishes a
// victim's graceful deletion when it chooses, so the waits in between are seen.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include <nlohmann/json.hpp>

#include "kube/error.h"
#include "scheduler/scheduler_process_fixture.h"

namespace gpu_autoscaler::scheduler {
namespace {

using nlohmann::json;
using testing::WaitFor;

// What a gang's members read while its victims terminate (written after
// the pass that preempted has nominated every member).
constexpr char kGroupWaits[] = "waiting for the pods the group preempted";

class PreemptionProcessTest : public SchedulerProcessTest {
 protected:
  // Priorities come from PriorityClasses, as the API server's Priority
  // admission plugin requires: "priority-<value>", or with Never, "polite-<value>".
  std::string PriorityClass(int value, bool never = false) {
    const std::string name = (never ? "polite-" : "priority-") + std::to_string(value);
    const kube::GroupVersionResource classes{"scheduling.k8s.io", "v1", "priorityclasses", false};
    json pc = {{"apiVersion", "scheduling.k8s.io/v1"},
               {"kind", "PriorityClass"},
               {"metadata", {{"name", name}}},
               {"value", value}};
    if (never) pc["preemptionPolicy"] = "Never";
    auto created = client_->Create({classes, "", "", ""}, pc);
    EXPECT_TRUE(created.ok() || kube::IsAlreadyExists(created.error()))
        << created.error().ToString();
    return name;
  }
  // A pod already running on `node` (created bound, as after a kubelet start).
  void AddRunning(const std::string& name, const std::string& node, const std::string& gpu,
                  int priority, json labels = json::object()) {
    AddPod({.name = name,
            .requests = {{"nvidia.com/gpu", "1"}},
            .annotations = {{"gpuautoscaler.io/gpu-indices", gpu}},
            .node = node,
            .spec_extra = {{"priorityClassName", PriorityClass(priority)}},
            .metadata_extra = {{"labels", labels}}});
  }
  void AddPending(const std::string& name, int priority, bool never = false) {
    json spec_extra = {{"priorityClassName", PriorityClass(priority, never)}};
    AddPod({.name = name, .requests = {{"nvidia.com/gpu", "1"}}, .spec_extra = spec_extra});
  }
  bool Terminating(const std::string& name) {
    json pod = GetPod(name);
    return pod.is_object() && pod["metadata"].contains("deletionTimestamp");
  }
  std::string Nominated(const std::string& name) {
    json pod = GetPod(name);
    return pod.is_object() ? pod["status"].value("nominatedNodeName", "") : "";
  }
  json Condition(const std::string& name, const std::string& type) {
    json pod = GetPod(name);
    if (!pod.is_object()) return json();
    for (const json& c : pod["status"].value("conditions", json::array())) {
      if (c.value("type", "") == type) return c;
    }
    return json();
  }
  // What a kubelet does once the containers stopped.
  void FinishDeletion(const std::string& name) {
    ASSERT_TRUE(
        client_->Delete({kube::resources::kPods, ns_, name, ""}, {.grace_period_seconds = 0}).ok());
  }
};

TEST_F(PreemptionProcessTest, AHigherPriorityPodEvictsOnePodWaitsAndKeepsTheRoom) {
  AddNode({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "2"}}});
  AddNode({.name = "b", .allocatable_extra = {{"nvidia.com/gpu", "2"}}});
  StartScheduler();
  AddRunning("a-low-0", "a", "0", 10);
  AddRunning("a-low-1", "a", "1", 10);
  AddRunning("b-high-0", "b", "0", 100);
  AddRunning("b-high-1", "b", "1", 100);
  AddPending("urgent", 1000);
  ASSERT_TRUE(WaitFor([&] { return Nominated("urgent") == "a"; })) << scheduler_.Log();
  // One victim on a (priority 10 there against 100 on b), and only one.
  ASSERT_TRUE(WaitFor([&] { return Terminating("a-low-0") || Terminating("a-low-1"); }));
  const std::string victim = Terminating("a-low-0") ? "a-low-0" : "a-low-1";
  const std::string spared = victim == "a-low-0" ? "a-low-1" : "a-low-0";
  const std::string victim_gpu = GpusOf(victim);
  EXPECT_FALSE(Terminating(spared));
  EXPECT_FALSE(Terminating("b-high-0"));
  EXPECT_FALSE(Terminating("b-high-1"));
  json disruption = Condition(victim, "DisruptionTarget");
  EXPECT_EQ(disruption.value("status", ""), "True");
  EXPECT_EQ(disruption.value("reason", ""), "PreemptionByScheduler");
  EXPECT_EQ(disruption.value("message", ""),
            "gpu-autoscaler: preempting to accommodate a higher priority pod");
  ASSERT_TRUE(WaitFor([&] { return !EventsFor(victim, "Preempted").empty(); }));
  EXPECT_EQ(EventsFor(victim, "Preempted")[0].value("message", ""),
            "Preempted by " + ns_ + "/urgent on node a");
  // What the pod was told (its PodScheduled message moves on at the next try).
  const std::string told =
      "0/2 nodes are available: 2 Insufficient nvidia.com/gpu. preemption: evicting 1 pod(s) of "
      "lower priority on node \"a\" (" +
      ns_ + "/" + victim + "); the pod is nominated there.";
  ASSERT_TRUE(WaitFor([&] {
    for (const json& e : EventsFor("urgent", "FailedScheduling")) {
      if (e.value("message", "") == told) return true;
    }
    return false;
  })) << told;
  // Until the victim is gone the pod waits, and does not preempt again.
  ASSERT_TRUE(WaitFor([&] {
    return Scheduled("urgent").find("waiting for the pods it preempted on node \"a\"") !=
           std::string::npos;
  })) << Scheduled("urgent");
  EXPECT_EQ(NodeOf("urgent"), "");
  EXPECT_FALSE(Terminating(spared));
  // A pod of the victims' priority, arriving now, gets nothing and evicts nothing.
  AddPending("later", 10);
  ASSERT_TRUE(WaitFor([&] { return !Scheduled("later").empty(); }));
  EXPECT_EQ(Scheduled("later"),
            "False: 0/2 nodes are available: 2 Insufficient nvidia.com/gpu. preemption: 0/2 nodes "
            "are available: 2 No preemption victims found for incoming pod.");
  FinishDeletion(victim);
  // The room goes to "urgent", on the victim's GPU, not to "later".
  ASSERT_TRUE(WaitFor([&] { return NodeOf("urgent") == "a"; })) << scheduler_.Log();
  EXPECT_EQ(GpusOf("urgent"), victim_gpu);
  EXPECT_EQ(NodeOf("later"), "");
  EXPECT_FALSE(Terminating(spared));
  const std::string metrics = Metrics();
  EXPECT_NE(metrics.find("gpu_autoscaler_scheduler_preemption_victims_total 1\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(
      metrics.find("gpu_autoscaler_scheduler_preemption_attempts_total{result=\"preempted\"} 1"),
      std::string::npos);
}

// kube-scheduler's InterPodAffinity filter answers Unschedulable, not
// UnschedulableAndUnresolvable, for a running pod's anti-affinity: preemption
// evicts a lower-priority pod whose terms keep the preemptor off a node with
// free GPUs, and only that pod.
TEST_F(PreemptionProcessTest, ALowerPriorityPodsAntiAffinityIsPreemptedAway) {
  AddNode({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "3"}}, .labels = {{"host", "a"}}});
  StartScheduler();
  const json anti = {
      {"podAntiAffinity",
       {{"requiredDuringSchedulingIgnoredDuringExecution",
         {{{"labelSelector", {{"matchLabels", {{"app", "urgent"}}}}}, {"topologyKey", "host"}}}}}}};
  AddPod({.name = "guard",
          .requests = {{"nvidia.com/gpu", "1"}},
          .annotations = {{"gpuautoscaler.io/gpu-indices", "0"}},
          .node = "a",
          .spec_extra = {{"priorityClassName", PriorityClass(10)}, {"affinity", anti}}});
  AddRunning("bystander", "a", "1", 0);  // less important than the guard, and no obstacle
  AddPod({.name = "urgent",
          .requests = {{"nvidia.com/gpu", "1"}},
          .spec_extra = {{"priorityClassName", PriorityClass(1000)}},
          .metadata_extra = {{"labels", {{"app", "urgent"}}}}});
  ASSERT_TRUE(WaitFor([&] { return Terminating("guard"); })) << scheduler_.Log();
  EXPECT_EQ(Nominated("urgent"), "a");
  const std::string told =
      "0/1 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules. "
      "preemption: evicting 1 pod(s) of lower priority on node \"a\" (" +
      ns_ + "/guard); the pod is nominated there.";
  ASSERT_TRUE(WaitFor([&] {
    for (const json& e : EventsFor("urgent", "FailedScheduling")) {
      if (e.value("message", "") == told) return true;
    }
    return false;
  })) << told;
  // A terminating pod still counts for anti-affinity, as in kube-scheduler.
  EXPECT_EQ(NodeOf("urgent"), "");
  FinishDeletion("guard");
  ASSERT_TRUE(WaitFor([&] { return NodeOf("urgent") == "a"; })) << scheduler_.Log();
  EXPECT_FALSE(Terminating("bystander"));
}

TEST_F(PreemptionProcessTest, BudgetsAndPreemptionPolicyNeverAreRespected) {
  AddNode({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  AddNode({.name = "b", .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  // web's budget allows no disruption (status.disruptionsAllowed 0). The
  // API server is v1.20's: policy/v1beta1, which the scheduler finds itself.
  const kube::GroupVersionResource v1beta1{"policy", "v1beta1", "poddisruptionbudgets", true};
  auto pdb = client_->Create(
      {v1beta1, ns_, "", ""},
      json{{"apiVersion", "policy/v1beta1"},
           {"kind", "PodDisruptionBudget"},
           {"metadata", {{"name", "web"}}},
           {"spec", {{"minAvailable", 1}, {"selector", {{"matchLabels", {{"app", "web"}}}}}}}});
  ASSERT_TRUE(pdb.ok()) << pdb.error().ToString();
  StartScheduler();
  AddRunning("web-0", "a", "0", 1, {{"app", "web"}});
  AddRunning("batch-0", "b", "0", 50);
  AddPending("polite", 1000, /*never=*/true);
  ASSERT_TRUE(WaitFor([&] { return !Scheduled("polite").empty(); })) << scheduler_.Log();
  EXPECT_EQ(Scheduled("polite"),
            "False: 0/2 nodes are available: 2 Insufficient nvidia.com/gpu. preemption: not "
            "eligible due to preemptionPolicy=Never.");
  AddPending("urgent", 1000);
  ASSERT_TRUE(WaitFor([&] { return Nominated("urgent") == "b"; })) << scheduler_.Log();
  // The nomination is written first, then the victims go.
  EXPECT_TRUE(WaitFor([&] { return Terminating("batch-0"); }));  // no budget stands in the way
  EXPECT_FALSE(Terminating("web-0"));
  FinishDeletion("batch-0");
  ASSERT_TRUE(WaitFor([&] { return NodeOf("urgent") == "b"; })) << scheduler_.Log();
  EXPECT_EQ(NodeOf("polite"), "");
  EXPECT_FALSE(Terminating("web-0")) << scheduler_.Log();
}

// The extender's preemptVerb, as kube-scheduler v1.20.10+, v1.21.4+ and
// v1.22+ call it, over HTTP to the extender process. On a time-sliced node
// kube-scheduler counts replicas, so it offers the two least important pods,
// one on each GPU, which free no whole GPU: the extender answers with the two
// that share GPU 0. A budget is counted as kube-scheduler counts it.
TEST_F(PreemptionProcessTest, TheExtenderChoosesVictimsOnTheGpusForKubeScheduler) {
  AddNode({.name = "ts",
           .allocatable_extra = {{"nvidia.com/gpu.shared", "4"}},
           .labels = {{"nvidia.com/gpu.replicas", "2"}}});
  AddNode({.name = "whole", .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  auto shared = [&](const std::string& name, const std::string& gpu, int priority) {
    AddPod({.name = name,
            .requests = {{"nvidia.com/gpu.shared", "1"}},
            .annotations = {{"gpuautoscaler.io/gpu-indices", gpu}},
            .node = "ts",
            .spec_extra = {{"priorityClassName", PriorityClass(priority)}}});
  };
  shared("z", "0", 5);
  shared("x", "0", 1);
  shared("w", "1", 9);
  shared("y", "1", 2);
  AddRunning("guarded-0", "whole", "0", 3, {{"app", "guarded"}});
  const kube::GroupVersionResource v1beta1{"policy", "v1beta1", "poddisruptionbudgets", true};
  ASSERT_TRUE(client_
                  ->Create({v1beta1, ns_, "", ""},
                           json{{"apiVersion", "policy/v1beta1"},
                                {"kind", "PodDisruptionBudget"},
                                {"metadata", {{"name", "guarded"}}},
                                {"spec",
                                 {{"minAvailable", 1},
                                  {"selector", {{"matchLabels", {{"app", "guarded"}}}}}}}})
                  .ok());
  StartScheduler({"--mode=extender"});
  auto uid = [&](const std::string& name) {
    return GetPod(name)["metadata"]["uid"].get<std::string>();
  };
  // The preemptor as kube-scheduler sends it: admitted, so with spec.priority.
  auto preemptor = [&](const std::string& resource, const std::string& count) {
    json pod = testutil::PodJson({.name = "urgent", .requests = {{resource, count}}});
    pod["metadata"]["namespace"] = ns_;
    pod["spec"]["priority"] = 1000;
    return pod;
  };
  auto args = [](const json& pod, const std::string& node, const std::vector<std::string>& uids) {
    json pods = json::array();
    for (const std::string& u : uids)
      pods.push_back({{"UID", u}});
    return json{{"Pod", pod},
                {"NodeNameToVictims", nullptr},
                {"NodeNameToMetaVictims", {{node, {{"Pods", pods}, {"NumPDBViolations", 0}}}}}}
        .dump();
  };

  auto [status, body] =
      Post("preempt", args(preemptor("nvidia.com/gpu.shared", "2"), "ts", {uid("y"), uid("x")}));
  ASSERT_EQ(status, 200) << body;
  EXPECT_EQ(
      json::parse(body)["NodeNameToMetaVictims"],
      (json{
          {"ts", {{"Pods", {{{"UID", uid("z")}}, {{"UID", uid("x")}}}}, {"NumPDBViolations", 0}}}}))
      << body;

  // The budget is seen once its informer has synced (readiness does not wait for it).
  const std::string guarded = args(preemptor("nvidia.com/gpu", "1"), "whole", {uid("guarded-0")});
  ASSERT_TRUE(WaitFor([&] {
    auto [s, b] = Post("preempt", guarded);
    return s == 200 &&
           json::parse(b)["NodeNameToMetaVictims"]["whole"].value("NumPDBViolations", 0) == 1;
  })) << scheduler_.Log();
  // Every answer with a plan is counted (the series starts at 0).
  const std::string metrics = Metrics();
  const std::string series =
      "gpu_autoscaler_scheduler_preemption_attempts_total{result=\"preempted\"} ";
  const size_t at = metrics.find(series);
  ASSERT_NE(at, std::string::npos) << metrics;
  EXPECT_GE(std::atof(metrics.c_str() + at + series.size()), 2.0) << metrics;
  // The extender only answers: kube-scheduler evicts.
  EXPECT_FALSE(Terminating("x"));
  EXPECT_FALSE(Terminating("guarded-0"));

  auto [bad_status, bad_body] = Post("preempt", R"({"Pod":{},"NodeNameToMetaVictims":[]})");
  EXPECT_EQ(bad_status, 400);
  EXPECT_NE(bad_body.find("must be an object"), std::string::npos) << bad_body;
}

// A role that may not list PodDisruptionBudgets (here: every list answered
// 403) must not stop scheduling: the loop starts 10 s after pods and nodes
// are synced, says so, and preempts without budgets.
TEST_F(PreemptionProcessTest, BudgetsThatCannotBeListedDelayButDoNotStopScheduling) {
  AddNode({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  ASSERT_TRUE(
      server_
          ->InjectError(
              {.verb = "list", .resource = "poddisruptionbudgets", .code = 403, .count = -1})
          .ok());
  AddRunning("low", "a", "0", 0);
  StartScheduler();
  AddPending("urgent", 1000);
  ASSERT_TRUE(WaitFor([&] { return Nominated("urgent") == "a"; }, std::chrono::seconds(40)))
      << scheduler_.Log();
  EXPECT_TRUE(WaitFor([&] { return Terminating("low"); }));
  EXPECT_NE(scheduler_.Log().find("PodDisruptionBudgets not synced after 10 s"), std::string::npos)
      << scheduler_.Log();
  FinishDeletion("low");
  ASSERT_TRUE(WaitFor([&] { return NodeOf("urgent") == "a"; })) << scheduler_.Log();
}

// A gang that does not fit preempts as a whole: one member alone would find
// room on either node, but both need a GPU, so both low pods go, both
// members are nominated, and they bind together once the victims are gone.
TEST_F(PreemptionProcessTest, AGangPreemptsForAllItsMembersAndBindsTogether) {
  AddNode({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  AddNode({.name = "b", .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  StartScheduler();
  AddRunning("low-a", "a", "0", 10);
  AddRunning("low-b", "b", "0", 20);
  const json gang = {{"gpuautoscaler.io/pod-group", "train"},
                     {"gpuautoscaler.io/pod-group-min-member", "2"}};
  for (const char* name : {"w0", "w1"}) {
    AddPod({.name = name,
            .requests = {{"nvidia.com/gpu", "1"}},
            .annotations = gang,
            .spec_extra = {{"priorityClassName", PriorityClass(1000)}}});
  }
  ASSERT_TRUE(WaitFor([&] { return !Nominated("w0").empty() && !Nominated("w1").empty(); }))
      << Scheduled("w0") << "\n"
      << scheduler_.Log();
  EXPECT_NE(Nominated("w0"), Nominated("w1"));
  EXPECT_TRUE(WaitFor([&] { return Terminating("low-a") && Terminating("low-b"); }));
  // The message says so once (the status then says the group waits); the
  // Events are recorded in the background, so they are waited for.
  const std::string evicting =
      "preemption: evicting 2 pod(s) of lower priority for pod group " + ns_ + "/train";
  EXPECT_TRUE(WaitFor([&] {
    for (const json& e : EventsFor("w0", "FailedScheduling")) {
      if (e.value("message", "").find(evicting) != std::string::npos) return true;
    }
    return false;
  })) << Scheduled("w0");
  ASSERT_TRUE(WaitFor([&] { return !EventsFor("low-a", "Preempted").empty(); }));
  EXPECT_EQ(EventsFor("low-a", "Preempted").size(), 1u);
  // One victim gone is not enough: the group waits, all or none.
  FinishDeletion("low-a");
  ASSERT_TRUE(WaitFor([&] { return Scheduled("w0").find(kGroupWaits) != std::string::npos; }))
      << Scheduled("w0");
  EXPECT_EQ(NodeOf("w0"), "");
  EXPECT_EQ(NodeOf("w1"), "");
  FinishDeletion("low-b");
  ASSERT_TRUE(WaitFor([&] { return !NodeOf("w0").empty() && !NodeOf("w1").empty(); }))
      << scheduler_.Log();
  EXPECT_NE(NodeOf("w0"), NodeOf("w1"));
}

// Members of different priorities: the higher one's nomination must not drop
// the lower one's, made for the same plan on the same node.
TEST_F(PreemptionProcessTest, AGangOfMixedPrioritiesKeepsEveryMembersNomination) {
  AddNode({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "2"}}});
  StartScheduler();
  AddRunning("low-0", "a", "0", 10);
  AddRunning("low-1", "a", "1", 10);
  const json gang = {{"gpuautoscaler.io/pod-group", "mixed"},
                     {"gpuautoscaler.io/pod-group-min-member", "2"}};
  // w0 sorts first but ranks lower.
  AddPod({.name = "w0",
          .requests = {{"nvidia.com/gpu", "1"}},
          .annotations = gang,
          .spec_extra = {{"priorityClassName", PriorityClass(500)}}});
  AddPod({.name = "w1",
          .requests = {{"nvidia.com/gpu", "1"}},
          .annotations = gang,
          .spec_extra = {{"priorityClassName", PriorityClass(1000)}}});
  ASSERT_TRUE(WaitFor([&] { return Terminating("low-0") && Terminating("low-1"); }))
      << scheduler_.Log();
  ASSERT_TRUE(WaitFor([&] { return Scheduled("w0").find(kGroupWaits) != std::string::npos; }))
      << Scheduled("w0");
  EXPECT_EQ(Nominated("w0"), "a");
  EXPECT_EQ(Nominated("w1"), "a");
  FinishDeletion("low-0");
  FinishDeletion("low-1");
  ASSERT_TRUE(WaitFor([&] { return NodeOf("w0") == "a" && NodeOf("w1") == "a"; }))
      << scheduler_.Log();
}

// A running gang is not broken: the member in the way goes with the rest
// of its group, on the other node too, and the Events say why.
TEST_F(PreemptionProcessTest, ARunningGangGoesWholeOrNotAtAll) {
  AddNode({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  AddNode({.name = "b", .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  StartScheduler();
  for (const auto& [name, node] : {std::pair{"t0", "a"}, std::pair{"t1", "b"}}) {
    AddPod({.name = name,
            .requests = {{"nvidia.com/gpu", "1"}},
            .annotations = {{"gpuautoscaler.io/gpu-indices", "0"},
                            {"gpuautoscaler.io/pod-group", "train"}},
            .node = node,
            .spec_extra = {{"priorityClassName", PriorityClass(10)}}});
  }
  AddPending("urgent", 1000);
  ASSERT_TRUE(WaitFor([&] { return Terminating("t0") && Terminating("t1"); }))
      << Scheduled("urgent") << "\n"
      << scheduler_.Log();
  ASSERT_TRUE(WaitFor([&] { return !Nominated("urgent").empty(); }));
  const std::string node = Nominated("urgent");
  EXPECT_TRUE(node == "a" || node == "b") << node;
  const std::string whole = "with all of pod group " + ns_ + "/train, which cannot run without";
  for (const char* member : {"t0", "t1"}) {
    ASSERT_TRUE(WaitFor([&] { return !EventsFor(member, "Preempted").empty(); })) << member;
    const std::string message = EventsFor(member, "Preempted")[0].value("message", "");
    EXPECT_NE(message.find("on node " + node + ", " + whole), std::string::npos) << message;
  }
  EXPECT_TRUE(WaitFor([&] {
    for (const json& e : EventsFor("urgent", "FailedScheduling")) {
      if (e.value("message", "").find("all of pod group(s) " + ns_ + "/train") !=
          std::string::npos) {
        return true;
      }
    }
    return false;
  })) << Scheduled("urgent");
  FinishDeletion("t0");
  FinishDeletion("t1");
  ASSERT_TRUE(WaitFor([&] { return NodeOf("urgent") == node; })) << scheduler_.Log();
}

// The victims are evicted in parallel. One DELETE fails: the pod says which
// victim and why, the other victim still goes, and the next attempt, once
// that one is gone, evicts the rest.
// kube-scheduler deletes the last victim only once the others are gone
// (kubernetes#135495): with the first DELETE failing, the pod cannot fit this
// time, so the second victim keeps running until the next attempt.
TEST_F(PreemptionProcessTest, AFailedEvictionIsSaidSparesTheLastVictimAndTheNextAttemptEvicts) {
  AddNode({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "2"}}});
  StartScheduler();
  AddRunning("low-0", "a", "0", 10);
  AddRunning("low-1", "a", "1", 10);
  ASSERT_TRUE(
      server_->InjectError({.verb = "delete", .resource = "pods", .code = 500, .count = 1}).ok());
  AddPod({.name = "urgent",
          .requests = {{"nvidia.com/gpu", "2"}},
          .spec_extra = {{"priorityClassName", PriorityClass(1000)}}});
  ASSERT_TRUE(WaitFor([&] {
    for (const json& e : EventsFor("urgent", "FailedScheduling")) {
      const std::string m = e.value("message", "");
      if (m.find("preemption: evicting " + ns_ + "/low-") != std::string::npos &&
          m.find("\" failed: ") != std::string::npos) {
        return true;
      }
    }
    return false;
  })) << Scheduled("urgent");
  // Nothing went, so the next attempt evicts both at once. Had the second
  // been evicted the first time, the pod would now wait for it to be gone
  // before evicting the other (nobody finishes its deletion here).
  ASSERT_TRUE(WaitFor([&] { return Terminating("low-0") && Terminating("low-1"); }))
      << scheduler_.Log();
  FinishDeletion("low-0");
  FinishDeletion("low-1");
  ASSERT_TRUE(WaitFor([&] { return NodeOf("urgent") == "a"; })) << scheduler_.Log();
  const std::string metrics = Metrics();
  EXPECT_NE(metrics.find("gpu_autoscaler_scheduler_preemption_attempts_total{result=\"error\"} 1"),
            std::string::npos);
  EXPECT_NE(
      metrics.find("gpu_autoscaler_scheduler_preemption_attempts_total{result=\"preempted\"} 1"),
      std::string::npos)
      << metrics;
}

// The queue is kube-scheduler's activeQ with PrioritySort: the pod of higher
// priority is tried first and takes the one free GPU, though five of lower
// priority were there before it; nothing needs preempting.
TEST_F(PreemptionProcessTest, HigherPriorityPodsAreTriedFirst) {
  AddNode({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  for (int i = 0; i < 5; ++i)
    AddPending("low-" + std::to_string(i), 10);
  AddPending("urgent", 1000);
  StartScheduler();
  ASSERT_TRUE(WaitFor([&] { return NodeOf("urgent") == "a"; })) << scheduler_.Log();
  for (int i = 0; i < 5; ++i) {
    const std::string low = "low-" + std::to_string(i);
    ASSERT_TRUE(WaitFor([&] { return !Scheduled(low).empty(); })) << low;
    EXPECT_EQ(NodeOf(low), "") << low;
    EXPECT_TRUE(EventsFor(low, "Preempted").empty()) << low;
  }
  EXPECT_NE(
      Metrics().find("gpu_autoscaler_scheduler_preemption_attempts_total{result=\"preempted\"} 0"),
      std::string::npos);
}

// A pod whose Binding is in flight, changed meanwhile (here a label; in
// practice its own status write), is not tried again: its own room would
// make it fit nowhere, and it would preempt the pod on the other node.
TEST_F(PreemptionProcessTest, APodWhoseBindingIsInFlightDoesNotPreempt) {
  AddNode({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  AddNode({.name = "b", .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  AddRunning("low", "b", "0", 10);
  StartScheduler();
  const std::string urgent = PriorityClass(1000);
  ASSERT_TRUE(server_->SetLatency(std::chrono::seconds(2), "create", "pods").ok());
  AddPod({.name = "urgent",
          .requests = {{"nvidia.com/gpu", "1"}},
          .spec_extra = {{"priorityClassName", urgent}}});
  // The scheduler has seen it (its create was the slow part) and sent the
  // Binding, which the server holds; the pod changes meanwhile.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(client_
                  ->Patch({kube::resources::kPods, ns_, "urgent", ""}, kube::PatchType::kMerge,
                          R"({"metadata":{"labels":{"touched":"yes"}}})")
                  .ok());
  ASSERT_TRUE(WaitFor([&] { return NodeOf("urgent") == "a"; })) << scheduler_.Log();
  ASSERT_TRUE(server_->ClearFaults().ok());
  EXPECT_FALSE(Terminating("low"));
  EXPECT_TRUE(EventsFor("low", "Preempted").empty());
}

// Preemption's API writes run beside the loop: while the victims' DELETEs
// hang, a pod queued behind the preemptor is bound elsewhere, the preemptor
// is not tried again, and once the writes end it binds as before.
TEST_F(PreemptionProcessTest, SlowEvictionsHoldUpThePreemptorOnly) {
  AddNode({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "2"}}});
  AddNode({.name = "b", .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  AddRunning("low-0", "a", "0", 10);
  AddRunning("low-1", "a", "1", 10);
  StartScheduler();
  ASSERT_TRUE(server_->SetLatency(std::chrono::seconds(4), "delete", "pods").ok());
  AddPod({.name = "urgent",
          .requests = {{"nvidia.com/gpu", "2"}},
          .spec_extra = {{"priorityClassName", PriorityClass(1000)}}});
  ASSERT_TRUE(WaitFor([&] { return !EventsFor("urgent", "FailedScheduling").empty(); }))
      << scheduler_.Log();
  // "plain" fits on b, behind the preemptor in the queue.
  AddPod({.name = "plain", .requests = {{"nvidia.com/gpu", "1"}}});
  ASSERT_TRUE(WaitFor([&] { return NodeOf("plain") == "b"; })) << scheduler_.Log();
  // Bound while the victims' DELETEs are still held by the server.
  EXPECT_FALSE(Terminating("low-0"));
  EXPECT_FALSE(Terminating("low-1"));
  ASSERT_TRUE(WaitFor([&] { return Terminating("low-0") && Terminating("low-1"); }));
  ASSERT_TRUE(WaitFor([&] { return Nominated("urgent") == "a"; }));
  // One plan, one Event each (seen once: an Event repeated is counted),
  // though the preemptor's backoff ended meanwhile.
  for (const char* victim : {"low-0", "low-1"}) {
    ASSERT_EQ(EventsFor(victim, "Preempted").size(), 1u) << victim;
    EXPECT_EQ(EventsFor(victim, "Preempted")[0].value("count", 0), 1) << victim;
  }
  ASSERT_TRUE(server_->ClearFaults().ok());
  FinishDeletion("low-0");
  FinishDeletion("low-1");
  ASSERT_TRUE(WaitFor([&] { return NodeOf("urgent") == "a"; })) << scheduler_.Log();
  const std::string metrics = Metrics();
  EXPECT_NE(
      metrics.find("gpu_autoscaler_scheduler_preemption_attempts_total{result=\"preempted\"} 1"),
      std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("gpu_autoscaler_scheduler_preemption_write_duration_seconds_count{"
                         "result=\"success\"} 1"),
            std::string::npos)
      << metrics;
}

// With --async-preemption=false the loop waits for the writes, as
// kube-scheduler's before v1.33: nothing behind the preemptor is bound until
// its victims are terminating.
TEST_F(PreemptionProcessTest, SynchronousPreemptionHoldsUpTheLoop) {
  AddNode({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "2"}}});
  AddNode({.name = "b", .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  AddRunning("low-0", "a", "0", 10);
  AddRunning("low-1", "a", "1", 10);
  StartScheduler({"--async-preemption=false"});
  ASSERT_TRUE(server_->SetLatency(std::chrono::seconds(2), "delete", "pods").ok());
  AddPod({.name = "urgent",
          .requests = {{"nvidia.com/gpu", "2"}},
          .spec_extra = {{"priorityClassName", PriorityClass(1000)}}});
  ASSERT_TRUE(WaitFor([&] { return Condition("low-0", "DisruptionTarget").is_object(); }))
      << scheduler_.Log();
  AddPod({.name = "plain", .requests = {{"nvidia.com/gpu", "1"}}});
  ASSERT_TRUE(WaitFor([&] { return NodeOf("plain") == "b"; })) << scheduler_.Log();
  EXPECT_TRUE(Terminating("low-0")) << scheduler_.Log();
  EXPECT_TRUE(Terminating("low-1"));
}

// A measurement, not a test (docs/benchmarks.md, "Preemption's API writes"):
// how long eight victims take to be evicted when every API call takes
// 50 ms. Run with --gtest_also_run_disabled_tests.
TEST_F(PreemptionProcessTest, DISABLED_MeasureEightEvictionsUnderApiLatency) {
  AddNode({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "8"}}});
  StartScheduler();
  for (int i = 0; i < 8; ++i)
    AddRunning("low-" + std::to_string(i), "a", std::to_string(i), 10);
  const std::string urgent_class = PriorityClass(1000);
  ASSERT_TRUE(server_->SetLatency(std::chrono::milliseconds(50)).ok());
  const auto start = std::chrono::steady_clock::now();
  AddPod({.name = "urgent",
          .requests = {{"nvidia.com/gpu", "8"}},
          .spec_extra = {{"priorityClassName", urgent_class}}});
  ASSERT_TRUE(WaitFor(
      [&] {
        auto list = client_->List({kube::resources::kPods, ns_, "", ""});
        if (!list.ok()) return false;
        int terminating = 0;
        for (const json& p : (*list)["items"])
          terminating += p["metadata"].contains("deletionTimestamp");
        return terminating == 8;
      },
      std::chrono::seconds(60)));
  std::printf("eight victims terminating %.2f s after the preemptor was created\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

// A measurement, not a test (docs/benchmarks.md, "Preemption's API writes"):
// with every PATCH and DELETE of a pod 50 ms late, eight pods that preempt
// (one victim each, on eight nodes) arrive just before eight that fit on a
// free node; how long until those eight are bound, with the writes beside
// the loop and in it (the pods' PodScheduled writes too). Run with --gtest_also_run_disabled_tests
// --gtest_repeat=N: the two alternate.
class PreemptionMeasurement : public PreemptionProcessTest {
 protected:
  void Measure(bool async, bool async_status_writes = false) {
    for (int i = 0; i < 8; ++i) {
      const std::string node = "busy-" + std::to_string(i);
      AddNode({.name = node,
               .allocatable_extra = {{"nvidia.com/gpu", "1"}},
               .labels = {{"pool", "busy"}}});
      AddRunning("low-" + std::to_string(i), node, "0", 10);
    }
    AddNode({.name = "free", .allocatable_extra = {{"nvidia.com/gpu", "8"}}});
    const std::string urgent = PriorityClass(1000);
    StartScheduler({std::string("--async-preemption=") + (async ? "true" : "false"),
                    std::string("--async-status-writes=") +
                        (async || async_status_writes ? "true" : "false")});
    // Creations and Bindings stay quick, so the pods arrive in this order.
    ASSERT_TRUE(server_->SetLatency(std::chrono::milliseconds(50), "patch", "pods").ok());
    ASSERT_TRUE(server_->SetLatency(std::chrono::milliseconds(50), "delete", "pods").ok());
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 8; ++i) {
      AddPod({.name = "urgent-" + std::to_string(i),
              .requests = {{"nvidia.com/gpu", "1"}},
              .spec_extra = {{"priorityClassName", urgent}, {"nodeSelector", {{"pool", "busy"}}}}});
    }
    for (int i = 0; i < 8; ++i)
      AddPod({.name = "plain-" + std::to_string(i), .requests = {{"nvidia.com/gpu", "1"}}});
    ASSERT_TRUE(WaitFor(
        [&] {
          for (int i = 0; i < 8; ++i) {
            if (NodeOf("plain-" + std::to_string(i)) != "free") return false;
          }
          return true;
        },
        std::chrono::seconds(60)));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(server_->ClearFaults().ok());
    int terminating = 0;
    for (int i = 0; i < 8; ++i)
      terminating += Terminating("low-" + std::to_string(i));
    std::printf(
        "%s: eight pods behind eight preemptions bound %.2f s after the first was "
        "created (%d victims terminating by then)\n",
        async                 ? "every write beside the loop"
        : async_status_writes ? "preemption's writes in the loop"
                              : "every write in the loop",
        seconds, terminating);
  }
};

TEST_F(PreemptionMeasurement, DISABLED_Async) {
  Measure(true);
}
TEST_F(PreemptionMeasurement, DISABLED_Sync) {
  Measure(false);
}
// Preemption's writes in the loop, the pods' PodScheduled writes beside it.
TEST_F(PreemptionMeasurement, DISABLED_SyncPreemptionOnly) {
  Measure(false, /*async_status_writes=*/true);
}

TEST_F(PreemptionProcessTest, OffByFlagNothingIsEvicted) {
  AddNode({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "1"}}});
  StartScheduler({"--preemption=false"});
  AddRunning("low", "a", "0", 0);
  AddPending("urgent", 1000);
  ASSERT_TRUE(WaitFor([&] { return !Scheduled("urgent").empty(); })) << scheduler_.Log();
  EXPECT_EQ(Scheduled("urgent"), "False: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu.");
  EXPECT_FALSE(Terminating("low"));
  EXPECT_EQ(Nominated("urgent"), "");
}

}  // namespace
}  // namespace gpu_autoscaler::scheduler
