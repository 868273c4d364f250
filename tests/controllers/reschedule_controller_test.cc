// The rescheduler's pure decision: when a policy is due, which pods may move,
// limits, usage that is missing, and the status it writes.
#include "controllers/reschedule_controller.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "apiserver/yaml_json.h"
#include "kube/conditions.h"
#include "kube/object_codec.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::controllers {
namespace {

using nlohmann::json;

constexpr int64_t kNow = 1'800'000'000;  // 2027-01-15T08:00:00Z

std::shared_ptr<const kube::NodeView> Node(const std::string& name, int gpus) {
  json node = {
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata", {{"name", name}}},
      {"status",
       {{"allocatable",
         {{"cpu", "16"}, {"memory", "64Gi"}, {"pods", "110"}, {"nvidia.com/gpu", gpus}}}}}};
  auto view = kube::DecodeNode(node.dump());
  EXPECT_TRUE(view.ok());
  return std::make_shared<const kube::NodeView>(std::move(*view));
}

std::shared_ptr<const kube::PodView> Pod(const std::string& ns, const std::string& name,
                                         const std::string& node, const std::string& gpu_indices,
                                         int gpus, const std::string& owner = "ReplicaSet") {
  json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", name}, {"namespace", ns}, {"uid", name + "-uid"}}},
      {"spec",
       {{"containers",
         {{{"name", "main"},
           {"resources",
            {{"requests", {{"cpu", "1"}, {"memory", "1Gi"}, {"nvidia.com/gpu", gpus}}}}}}}}}},
      {"status", {{"phase", node.empty() ? "Pending" : "Running"}}}};
  if (!owner.empty()) {
    pod["metadata"]["ownerReferences"] = {{{"apiVersion", "apps/v1"},
                                           {"kind", owner},
                                           {"name", "o"},
                                           {"uid", "u"},
                                           {"controller", true}}};
  }
  if (!node.empty()) {
    pod["spec"]["nodeName"] = node;
    pod["metadata"]["annotations"] = {{"gpuautoscaler.io/gpu-indices", gpu_indices}};
  }
  auto view = kube::DecodePod(pod.dump());
  EXPECT_TRUE(view.ok());
  return std::make_shared<const kube::PodView>(std::move(*view));
}

json PolicyObject(json spec, int64_t generation = 1) {
  return {{"apiVersion", "gpuautoscaler.io/v1alpha1"},
          {"kind", "ReschedulePolicy"},
          {"metadata", {{"name", "p"}, {"generation", generation}}},
          {"spec", std::move(spec)}};
}

// The integration test's cluster, in two namespaces: a/b hold one 1-GPU pod
// each (GPU 0 and GPU 1), a 2-GPU pod waits. Moving ml/pod-a to b frees a.
RescheduleInput FragmentedCluster(json spec) {
  RescheduleInput in;
  in.policy = ParseReschedulePolicy(PolicyObject(std::move(spec)));
  in.status = json::object();
  in.now = kNow;
  in.nodes = {Node("a", 2), Node("b", 2)};
  in.pods = {Pod("ml", "pod-a", "a", "0", 1), Pod("ml", "pod-b", "b", "1", 1),
             Pod("ml", "train", "", "", 2)};
  return in;
}

TEST(RescheduleDecideTest, PlansTheMoveThatFreesAWholeGpu) {
  ReschedulePlan plan = DecideReschedule(FragmentedCluster(json::object()));
  ASSERT_TRUE(plan.due);
  ASSERT_EQ(plan.moves.size(), 1u);
  EXPECT_EQ(plan.moves[0].pod, "pod-a");
  EXPECT_EQ(plan.moves[0].to_node, "b");
  EXPECT_EQ(plan.moves[0].gain_milli, 667);
  EXPECT_EQ(plan.moves[0].reason,
            "GPU defragmentation: frees 1 whole GPU on node a; pod fits on node b (GPU 0); "
            "usable GPU capacity +0.67");
  EXPECT_EQ(plan.status["lastRun"]["planned"], 1);
  EXPECT_EQ(plan.status["lastRun"]["time"], "2027-01-15T08:00:00Z");
  EXPECT_EQ(plan.status["observedGeneration"], 1);
  EXPECT_EQ(plan.requeue_after_s, 300);
}

TEST(RescheduleDecideTest, NotDueUntilTheIntervalPassesOrTheSpecChanges) {
  RescheduleInput in = FragmentedCluster(json::object());
  in.status = {{"observedGeneration", 1}, {"lastRun", {{"time", "2027-01-15T07:59:00Z"}}}};
  ReschedulePlan plan = DecideReschedule(in);
  EXPECT_FALSE(plan.due);
  EXPECT_EQ(plan.requeue_after_s, 240);
  in.policy.spec.generation = 2;
  EXPECT_TRUE(DecideReschedule(in).due);
}

TEST(RescheduleDecideTest, OnlyPodsTheSelectorsAndOwnersAllowMove) {
  // pod-a is a bare pod (no controller): pod-b moves instead, onto a's GPU 1.
  RescheduleInput in = FragmentedCluster(json::object());
  in.pods[0] = Pod("ml", "pod-a", "a", "0", 1, /*owner=*/"");
  ReschedulePlan plan = DecideReschedule(in);
  ASSERT_EQ(plan.moves.size(), 1u);
  EXPECT_EQ(plan.moves[0].pod, "pod-b");
  EXPECT_EQ(plan.moves[0].to_node, "a");
  // Neither: nothing.
  in.pods[1] = Pod("ml", "pod-b", "b", "1", 1, "DaemonSet");
  EXPECT_TRUE(DecideReschedule(in).moves.empty());
  // Excluded namespace.
  RescheduleInput excluded = FragmentedCluster({{"namespaces", {{"exclude", {"ml"}}}}});
  EXPECT_TRUE(DecideReschedule(excluded).moves.empty());
}

TEST(RescheduleDecideTest, TheHourlyLimitSkipsMoves) {
  RescheduleInput in = FragmentedCluster({{"evictionLimits", {{"perHour", 2}}}});
  in.status = {{"recentEvictions",
                {{{"pod", "x"}, {"time", "2027-01-15T07:30:00Z"}},
                 {{"pod", "y"}, {"time", "2027-01-15T07:45:00Z"}},
                 {{"pod", "old"}, {"time", "2027-01-15T06:00:00Z"}}}}};
  ReschedulePlan plan = DecideReschedule(in);
  ASSERT_EQ(plan.moves.size(), 1u);
  EXPECT_EQ(plan.moves[0].result, "Skipped");
  EXPECT_EQ(plan.status["lastRun"]["planned"], 0);
  EXPECT_EQ(plan.status["recentEvictions"].size(), 2u);  // the 06:00 one is over an hour old
  EXPECT_EQ(plan.status["plannedMoves"][0]["result"], "Skipped");
}

TEST(RescheduleDecideTest, MissingUsageEvictsNothingAndSaysWhy) {
  json spec = {{"defragmentation", {{"enabled", false}}},
               {"usageBalancing",
                {{"enabled", true},
                 {"thresholds", {{"nvidia.com/gpu", 30}}},
                 {"targetThresholds", {{"nvidia.com/gpu", 40}}}}}};
  RescheduleInput in = FragmentedCluster(spec);
  in.usage_error = "no GPU utilisation source";
  ReschedulePlan plan = DecideReschedule(in);
  EXPECT_TRUE(plan.moves.empty());
  auto c = kube::FindCondition(plan.status["conditions"], "UsageAvailable");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, "False");
  EXPECT_EQ(c->reason, "NoUsageSource");
  ASSERT_EQ(plan.policy_events.size(), 1u);
  EXPECT_TRUE(plan.policy_events[0].warning);

  // A source that knows pod-a only: node b is unmeasured, a (50% > 40%) has
  // no underutilized partner, so nothing moves, and the condition names pod-b.
  in.gpu_usage = std::map<std::string, double>{{"ml/pod-a", 1.0}};
  plan = DecideReschedule(in);
  EXPECT_TRUE(plan.moves.empty());
  c = kube::FindCondition(plan.status["conditions"], "UsageAvailable");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->reason, "UsageMissing");
  EXPECT_NE(c->message.find("b: pod ml/pod-b has no nvidia.com/gpu usage"), std::string::npos)
      << c->message;

  // With both measured: a at 50% (over 40%), b at 5% (under 30%): pod-a goes.
  in.gpu_usage = std::map<std::string, double>{{"ml/pod-a", 1.0}, {"ml/pod-b", 0.1}};
  plan = DecideReschedule(in);
  ASSERT_EQ(plan.moves.size(), 1u);
  EXPECT_EQ(plan.moves[0].kind, "UsageBalancing");
  EXPECT_EQ(plan.moves[0].pod, "pod-a");
  EXPECT_EQ(plan.moves[0].reason,
            "Usage balancing: node a is over its target: nvidia.com/gpu 50% > 40% (measured "
            "usage)");
}

TEST(RescheduleDecideTest, AnInvalidSpecPlansNothing) {
  RescheduleInput in = FragmentedCluster({{"usageBalancing",
                                           {{"enabled", true},
                                            {"thresholds", {{"cpu", 150}}},
                                            {"targetThresholds", {{"cpu", 160}}}}}});
  ReschedulePlan plan = DecideReschedule(in);
  EXPECT_FALSE(plan.accepted);
  EXPECT_TRUE(plan.moves.empty());
  auto c = kube::FindCondition(plan.status["conditions"], "Accepted");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->message,
            "spec.usageBalancing: thresholds.cpu is 150%; percentages must be in [0, 100]. "
            "Nothing is evicted.");
}

TEST(RescheduleDecideTest, StatusAfterApplyCountsResults) {
  RescheduleInput in = FragmentedCluster(json::object());
  ReschedulePlan plan = DecideReschedule(in);
  json status = StatusAfterApply(plan, {"Blocked"}, false, kNow);
  EXPECT_EQ(status["lastRun"]["blocked"], 1);
  EXPECT_EQ(status["lastRun"]["executed"], 0);
  EXPECT_TRUE(status["recentEvictions"].empty());
  status = StatusAfterApply(plan, {"Evicted"}, false, kNow);
  EXPECT_EQ(status["lastRun"]["executed"], 1);
  ASSERT_EQ(status["recentEvictions"].size(), 1u);
  EXPECT_EQ(status["recentEvictions"][0]["node"], "a");
  EXPECT_EQ(status["plannedMoves"][0]["result"], "Evicted");
}

// Every spec field the CRD declares, each away from its default.
const json kFullSpec = {
    {"dryRun", true},
    {"intervalSeconds", 90},
    {"respectPDBs", false},
    {"defragmentation", {{"enabled", true}, {"maxMovesPerRun", 7}, {"minGainMilliGPU", 250}}},
    {"usageBalancing",
     {{"enabled", true},
      {"thresholds", {{"nvidia.com/gpu", 20}, {"pods", 30}}},
      {"targetThresholds", {{"nvidia.com/gpu", 70}, {"pods", 80}}}}},
    {"evictionLimits", {{"perNode", 3}, {"perNamespace", 2}, {"perHour", 4}}},
    {"namespaces", {{"include", {"ml", "infer"}}, {"exclude", {"ml-canary"}}}},
    {"podSelector",
     {{"matchLabels", {{"tier", "serving"}}},
      {"matchExpressions",
       {{{"key", "pinned"}, {"operator", "DoesNotExist"}, {"values", json::array()}}}}}}};

// Leaf paths of the schema's spec ("defragmentation.maxMovesPerRun"); maps
// (additionalProperties) and the label selector count as one leaf each.
void SchemaLeaves(const json& schema, const std::string& path, std::vector<std::string>* out) {
  if (!schema.contains("properties") || path == "podSelector") {
    out->push_back(path);
    return;
  }
  for (const auto& [name, child] : schema["properties"].items())
    SchemaLeaves(child, path.empty() ? name : path + "." + name, out);
}

TEST(RescheduleDecideTest, ReadsEveryFieldTheCrdDeclares) {
  auto docs = apiserver::YamlDocumentsToJson(
      testing::ReadFileOrDie(testing::SourcePath("crds/reschedulepolicy.yaml")));
  ASSERT_TRUE(docs.ok());
  const json spec_schema =
      (*docs)[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
  std::vector<std::string> leaves;
  SchemaLeaves(spec_schema, "", &leaves);
  EXPECT_EQ(leaves.size(), 15u);
  for (const std::string& leaf : leaves) {
    EXPECT_TRUE(kFullSpec.contains(json::json_pointer("/" +
                                                      [&] {
                                                        std::string p = leaf;
                                                        std::replace(p.begin(), p.end(), '.', '/');
                                                        return p;
                                                      }())))
        << leaf << " is in the schema but not in this test";
  }
  ParsedReschedulePolicy p = ParseReschedulePolicy(PolicyObject(kFullSpec, 4));
  ASSERT_TRUE(p.problems.empty()) << p.problems[0];
  const ReschedulePolicySpec& s = p.spec;
  EXPECT_EQ(s.name, "p");
  EXPECT_EQ(s.generation, 4);
  EXPECT_TRUE(s.dry_run);
  EXPECT_EQ(s.interval_seconds, 90);
  EXPECT_FALSE(s.respect_pdbs);
  EXPECT_TRUE(s.defrag_enabled);
  EXPECT_EQ(s.max_moves, 7);
  EXPECT_EQ(s.min_gain_milli, 250);
  EXPECT_TRUE(s.usage_enabled);
  EXPECT_EQ(s.thresholds.thresholds,
            (std::map<std::string, double>{{"nvidia.com/gpu", 20}, {"pods", 30}}));
  EXPECT_EQ(s.thresholds.target_thresholds.at("pods"), 80);
  EXPECT_EQ(s.per_node, 3);
  EXPECT_EQ(s.per_namespace, 2);
  EXPECT_EQ(s.per_hour, 4);
  EXPECT_EQ(s.include_namespaces, (std::vector<std::string>{"ml", "infer"}));
  EXPECT_EQ(s.exclude_namespaces, std::vector<std::string>{"ml-canary"});
  EXPECT_FALSE(s.NamespaceAllowed("ml-canary"));
  EXPECT_FALSE(s.NamespaceAllowed("default"));
  EXPECT_TRUE(s.NamespaceAllowed("infer"));
  EXPECT_EQ(s.pod_selector.requirements().size(), 2u);
}

TEST(RescheduleDecideTest, ParsesDefaultsAndRejectsNothingToDo) {
  ParsedReschedulePolicy p = ParseReschedulePolicy(PolicyObject(json::object()));
  EXPECT_TRUE(p.problems.empty());
  EXPECT_FALSE(p.spec.dry_run);
  EXPECT_TRUE(p.spec.respect_pdbs);
  EXPECT_EQ(p.spec.max_moves, 5);
  EXPECT_EQ(p.spec.min_gain_milli, 100);
  EXPECT_EQ(p.spec.per_node, 1);
  EXPECT_EQ(p.spec.per_hour, 10);
  EXPECT_FALSE(p.spec.NamespaceAllowed("kube-system"));
  ParsedReschedulePolicy off =
      ParseReschedulePolicy(PolicyObject({{"defragmentation", {{"enabled", false}}}}));
  ASSERT_EQ(off.problems.size(), 1u);
  EXPECT_NE(off.problems[0].find("nothing to do"), std::string::npos);
  ParsedReschedulePolicy typo =
      ParseReschedulePolicy(PolicyObject({{"evictionLimits", {{"perHour", "ten"}}}}));
  ASSERT_EQ(typo.problems.size(), 1u);
  EXPECT_EQ(typo.problems[0], "spec.evictionLimits.perHour must be an integer");
}

}  // namespace
}  // namespace gpu_autoscaler::controllers
