#include "controllers/gpu_node_pool_controller.h"

#include <gtest/gtest.h>

#include "kube/object_codec.h"

namespace gpu_autoscaler::controllers {
namespace {

using autoscale::CapacityTier;
using autoscale::TierIndex;
using nlohmann::json;

kube::PodView DecodeOrDie(const json& pod) {
  auto decoded = kube::DecodePod(pod.dump());
  EXPECT_TRUE(decoded.ok());
  return std::move(*decoded);
}

json PodJson(const std::string& name, json requests, json annotations = json::object(),
             json node_selector = json::object()) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", "ml"}, {"annotations", annotations}}},
          {"spec",
           {{"nodeSelector", node_selector},
            {"containers", {{{"name", "main"}, {"resources", {{"requests", requests}}}}}}}}};
}

const json kPool = json::parse(R"({
  "metadata": {"name": "a100"},
  "spec": {
    "provider": {"type": "aws-asg", "region": "us-east-1",
                 "groups": {"spot": "a100-spot", "onDemand": "a100-od"},
                 "credentialsSecretRef": {"name": "aws"}},
    "instanceTypes": [
      {"name": "p4d.24xlarge", "gpuModel": "A100-SXM4-40GB", "gpuCount": 8, "cpu": "96",
       "memory": "1152Gi", "price": {"spot": 9.83, "onDemand": 32.77}},
      {"name": "g5.xlarge", "gpuModel": "A10G", "gpuCount": 1, "cpu": "4", "memory": "16Gi",
       "price": {"spot": 0.38, "onDemand": 1.006},
       "groups": {"spot": "a10-spot", "onDemand": "a10-od"}}],
    "minNodes": 1, "maxNodes": 8,
    "tiers": {"spot": {"weight": 0.8, "maxNodes": 4}},
    "costPerHourCeiling": 250,
    "scaleDown": {"policy": "WhenEmpty", "consolidateAfter": "5m", "utilizationThreshold": 0.4},
    "disruption": {"budgets": [{"nodes": "1"},
                               {"nodes": "0", "schedule": "0 9 * * 1-5", "duration": "8h"}]}
  }})");

TEST(ParseNodePoolTest, ReadsEveryField) {
  ParsedNodePool p = ParseNodePool(kPool, "gpu-autoscaler-system");
  ASSERT_TRUE(p.problems.empty()) << p.problems[0];
  EXPECT_EQ(p.spec.name, "a100");
  EXPECT_EQ(p.provider.type, "aws-asg");
  EXPECT_EQ(p.provider.region, "us-east-1");
  EXPECT_EQ(p.provider.secret_namespace, "gpu-autoscaler-system");
  EXPECT_EQ(p.provider.secret_name, "aws");
  ASSERT_EQ(p.spec.instance_types.size(), 2u);
  EXPECT_EQ(p.spec.instance_types[0].cpu_milli, 96000);
  EXPECT_EQ(p.spec.instance_types[0].memory_mib, 1152 * 1024);
  EXPECT_EQ(p.spec.instance_types[1].price[TierIndex(CapacityTier::kOnDemand)], 1.006);
  EXPECT_FALSE(p.spec.instance_types[1].price[TierIndex(CapacityTier::kReserved)].has_value());
  EXPECT_EQ(p.provider.Group(0, CapacityTier::kSpot), "a100-spot");
  EXPECT_EQ(p.provider.Group(1, CapacityTier::kSpot), "a10-spot");
  EXPECT_EQ(p.provider.Group(1, CapacityTier::kReserved), "");
  EXPECT_TRUE(p.spec.tiers[TierIndex(CapacityTier::kSpot)].enabled);
  EXPECT_DOUBLE_EQ(p.spec.tiers[TierIndex(CapacityTier::kSpot)].weight, 0.8);
  EXPECT_EQ(p.spec.tiers[TierIndex(CapacityTier::kSpot)].max_nodes, 4);
  EXPECT_FALSE(p.spec.tiers[TierIndex(CapacityTier::kReserved)].enabled);
  EXPECT_EQ(p.spec.min_nodes, 1);
  EXPECT_EQ(p.spec.max_nodes, 8);
  EXPECT_EQ(p.spec.cost_per_hour_ceiling, 250.0);
  EXPECT_EQ(p.spec.policy, autoscale::ConsolidationPolicy::kWhenEmpty);
  EXPECT_EQ(p.spec.consolidate_after, std::chrono::minutes(5));
  EXPECT_DOUBLE_EQ(p.spec.utilization_threshold, 0.4);
  ASSERT_EQ(p.spec.budgets.size(), 2u);
  EXPECT_EQ(p.spec.budgets[1].schedule, "0 9 * * 1-5");
  EXPECT_EQ(p.spec.budgets[1].duration_seconds, 8 * 3600);
}

TEST(ParseNodePoolTest, NamesEachProblem) {
  json bad = kPool;
  bad["spec"]["minNodes"] = 9;
  bad["spec"]["provider"]["type"] = "ibm-vpc";
  bad["spec"]["scaleDown"]["consolidateAfter"] = "soon";
  bad["spec"]["disruption"]["budgets"][0]["nodes"] = "lots";
  bad["spec"]["instanceTypes"][1].erase("groups");  // both types now share the pool's groups
  ParsedNodePool p = ParseNodePool(bad);
  const std::vector<std::string> want = {
      "spec.provider.type \"ibm-vpc\" is not one of aws-asg, gcp-mig, azure-vmss, cluster-api, "
      "simulated",
      "group \"a100-spot\" serves both p4d.24xlarge/spot and g5.xlarge/spot; give each instance "
      "type its own groups",
      "group \"a100-od\" serves both p4d.24xlarge/onDemand and g5.xlarge/onDemand; give each "
      "instance type its own groups",
      "spec.scaleDown.consolidateAfter \"soon\" is not a duration or Never",
      "spec.disruption.budgets[0]: disruption budget nodes \"lots\": want a count (\"3\") or a "
      "percent (\"10%\")",
      "minNodes 9 > maxNodes 8"};
  EXPECT_EQ(p.problems, want);
}

TEST(ParseNodePoolTest, PredictiveDefaultsAndProblems) {
  ParsedNodePool none = ParseNodePool(kPool);
  EXPECT_FALSE(none.predictive.enabled);
  EXPECT_TRUE(none.predictive.problems.empty());

  json pool = kPool;
  pool["spec"]["predictive"] = {{"enabled", true}};
  ParsedNodePool p = ParseNodePool(pool);
  ASSERT_TRUE(p.predictive.problems.empty()) << p.predictive.problems[0];
  EXPECT_TRUE(p.predictive.enabled);
  EXPECT_EQ(p.predictive.method, "Auto");
  EXPECT_FALSE(p.predictive.options.method.has_value());
  EXPECT_EQ(p.predictive.options.step_seconds, 300);
  EXPECT_EQ(p.predictive.options.season_seconds, 86400);
  EXPECT_EQ(p.predictive.options.horizon_seconds, 90);  // the provisioning delay
  EXPECT_EQ(p.predictive.options.min_history_seconds, 86400);
  EXPECT_EQ(p.predictive.options.headroom_gpus, 0);

  pool["spec"]["predictive"] = {{"enabled", true},     {"step", "1m"},
                                {"seasonality", "7d"}, {"horizon", "3m"},
                                {"headroom", "20%"},   {"method", "SeasonalNaive"},
                                {"minHistory", "2d"}};
  p = ParseNodePool(pool);
  ASSERT_TRUE(p.predictive.problems.empty()) << p.predictive.problems[0];
  EXPECT_EQ(p.predictive.options.season_seconds, 7 * 86400);
  EXPECT_EQ(p.predictive.options.horizon_seconds, 180);
  EXPECT_DOUBLE_EQ(p.predictive.options.headroom_fraction, 0.2);
  ASSERT_TRUE(p.predictive.options.method.has_value());
  EXPECT_EQ(p.predictive.options.method->method, autoscale::ForecastMethod::kSeasonalNaive);
  pool["spec"]["predictive"]["headroom"] = "1.5";
  EXPECT_DOUBLE_EQ(ParseNodePool(pool).predictive.options.headroom_gpus, 1.5);

  pool["spec"]["predictive"] = {{"enabled", true},    {"step", "5s"},       {"seasonality", "1h1m"},
                                {"horizon", "2h"},    {"headroom", "lots"}, {"method", "Magic"},
                                {"minHistory", "30d"}};
  p = ParseNodePool(pool);
  EXPECT_TRUE(p.problems.empty()) << p.problems[0];  // the pool itself is fine
  const std::vector<std::string> want = {
      "spec.predictive.step must be between 10s and 1h",
      "spec.predictive.seasonality must be a multiple of step, at least two steps and at most "
      "168h",
      "spec.predictive.horizon is longer than the seasonality",
      "spec.predictive.minHistory is longer than the 168h of history kept",
      "spec.predictive.method \"Magic\" is not Auto, HoltWinters, SeasonalNaive or RecentPeak",
      "spec.predictive.headroom \"lots\" is not a number of GPUs or a percentage"};
  EXPECT_EQ(p.predictive.problems, want);
}

// The issue's required case, from Pod objects as the webhook leaves them.
TEST(PoolDemandTest, TimeSlicedQuarterPodsNeedTwoGpus) {
  json pool = kPool;
  pool["spec"]["instanceTypes"] = json::parse(R"([{"name": "g4dn.xlarge", "gpuModel": "Tesla-T4",
      "gpuCount": 1, "cpu": "4", "memory": "16Gi", "price": {"spot": 0.16, "onDemand": 0.53}}])");
  pool["spec"]["tiers"] = json::object();
  ParsedNodePool parsed = ParseNodePool(pool);
  ASSERT_TRUE(parsed.problems.empty()) << parsed.problems[0];
  std::vector<autoscale::PodSpec> pending;
  for (int i = 0; i < 8; ++i) {
    kube::PodView pod = DecodeOrDie(PodJson("p" + std::to_string(i),
                                            {{"cpu", "500m"}, {"nvidia.com/gpu.shared", "1"}},
                                            {{"gpuautoscaler.io/replicas", "4"}}));
    auto demand = PoolDemandOf(pod);
    ASSERT_TRUE(demand.has_value());
    EXPECT_EQ(demand->gpu_milli, 250);
    pending.push_back(*demand);
  }
  auto plan = autoscale::PlanPoolScaleUp(
      {.pool = &parsed.spec, .pending = pending, .now = Clock::TimePoint{}});
  ASSERT_TRUE(plan.ok()) << plan.error().ToString();
  EXPECT_EQ(plan->new_gpus, 2);
  EXPECT_EQ(plan->new_nodes(), 2);
}

TEST(PoolDemandTest, MigAndWholeAndModelSelection) {
  auto mig = PoolDemandOf(DecodeOrDie(PodJson("m", {{"nvidia.com/mig-3g.40gb", "1"}})));
  ASSERT_TRUE(mig.has_value());
  EXPECT_EQ(mig->num_gpu, 1);
  EXPECT_EQ(mig->gpu_milli, 429);  // ceil(3000 / 7)
  auto whole = PoolDemandOf(DecodeOrDie(PodJson("w", {{"nvidia.com/gpu", "2"}}, json::object(),
                                                {{"nvidia.com/gpu.product", "A10G"}})));
  ASSERT_TRUE(whole.has_value());
  EXPECT_EQ(whole->num_gpu, 2);
  EXPECT_EQ(whole->gpu_milli, 1000);
  EXPECT_EQ(whole->gpu_models, std::vector<std::string>{"A10G"});
  EXPECT_FALSE(PoolDemandOf(DecodeOrDie(PodJson("cpu", {{"cpu", "1"}}))).has_value());
  EXPECT_FALSE(PoolDemandOf(DecodeOrDie(PodJson("mixed", {{"nvidia.com/gpu", "1"},
                                                          {"nvidia.com/gpu.shared", "1"}})))
                   .has_value());
}

TEST(WaitsForCapacityTest, UnschedulableYesGatedOrPreemptingNo) {
  auto with_status = [](json status) {
    json pod = PodJson("p", {{"nvidia.com/gpu", "1"}});
    pod["status"] = std::move(status);
    return DecodeOrDie(pod);
  };
  auto scheduled = [](std::string status, std::string reason) {
    return json{
        {"phase", "Pending"},
        {"conditions", {{{"type", "PodScheduled"}, {"status", status}, {"reason", reason}}}}};
  };
  EXPECT_TRUE(WaitsForCapacity(with_status(scheduled("False", "Unschedulable"))));
  EXPECT_FALSE(WaitsForCapacity(with_status(scheduled("False", "SchedulingGated"))));
  EXPECT_FALSE(WaitsForCapacity(with_status(scheduled("True", ""))));
  EXPECT_FALSE(WaitsForCapacity(with_status({{"phase", "Pending"}})));  // not tried yet
  EXPECT_FALSE(WaitsForCapacity(with_status({{"phase", "Running"}})));
  // Preempting: its victims are making room on the nominated node.
  json preempting = scheduled("False", "Unschedulable");
  preempting["nominatedNodeName"] = "gpu-1";
  EXPECT_FALSE(WaitsForCapacity(with_status(preempting)));
}

TEST(PoolForPodTest, NodeSelectorNamesThePoolOrItsModel) {
  ParsedNodePool a100 = ParseNodePool(kPool);
  json t4 = kPool;
  t4["metadata"]["name"] = "t4";
  t4["spec"]["instanceTypes"] = json::parse(R"([{"name": "g4dn.xlarge", "gpuModel": "Tesla-T4",
      "gpuCount": 1, "cpu": "4", "memory": "16Gi", "price": {"spot": 0.16, "onDemand": 0.53}}])");
  ParsedNodePool t4_pool = ParseNodePool(t4);
  const std::vector<std::pair<std::string, const ParsedNodePool*>> pools = {{"a100", &a100},
                                                                            {"t4", &t4_pool}};
  const json gpu = {{"nvidia.com/gpu", "1"}};
  EXPECT_EQ(PoolForPod(DecodeOrDie(PodJson("any", gpu)), pools), "a100");
  EXPECT_EQ(PoolForPod(DecodeOrDie(PodJson("t4", gpu, json::object(),
                                           {{"nvidia.com/gpu.product", "Tesla-T4"}})),
                       pools),
            "t4");
  EXPECT_EQ(PoolForPod(DecodeOrDie(PodJson("named", gpu, json::object(),
                                           {{"gpuautoscaler.io/node-pool", "t4"}})),
                       pools),
            "t4");
  EXPECT_EQ(PoolForPod(DecodeOrDie(PodJson("h100", gpu, json::object(),
                                           {{"nvidia.com/gpu.product", "H100"}})),
                       pools),
            "");
}

TEST(BudgetsAskingSpotScaleDownTest, ConditionAndScope) {
  auto budget = [](std::string ns, std::string name, json namespaces, std::string requested) {
    return json{{"metadata", {{"name", name}, {"namespace", ns}}},
                {"spec", {{"scope", {{"namespaces", namespaces}}}}},
                {"status",
                 {{"conditions", {{{"type", "ScaleDownSpotRequested"}, {"status", requested}}}}}}};
  };
  // A Budget covers its own namespace only: one in "finance" never shrinks
  // ml's spot capacity, whatever its scope says.
  const std::vector<json> budgets = {
      budget("ml", "own", json::array(), "True"), budget("ml", "listed", {"ml"}, "True"),
      budget("finance", "empty-scope", json::array(), "True"),
      budget("finance", "lists-ml", {"ml"}, "True"), budget("ml", "calm", json::array(), "False")};
  EXPECT_EQ(BudgetsAskingSpotScaleDown(budgets, {"ml"}),
            (std::vector<std::string>{"ml/listed", "ml/own"}));
  EXPECT_EQ(BudgetsAskingSpotScaleDown({budgets[2], budgets[3], budgets[4]}, {"ml"}),
            std::vector<std::string>{});
}

TEST(BudgetsAskingSpotScaleDownTest, ClusterBudgetsByListAndNamespaceSelector) {
  auto cluster_budget = [](std::string name, json scope, std::string requested) {
    return json{{"apiVersion", "gpuautoscaler.io/v1alpha1"},
                {"kind", "ClusterBudget"},
                {"metadata", {{"name", name}}},
                {"spec",
                 {{"scope", scope},
                  {"amount", 100},
                  {"period", "monthly"},
                  {"enforcement", "scaleDownSpot"}}},
                {"status",
                 {{"conditions", {{{"type", "ScaleDownSpotRequested"}, {"status", requested}}}}}}};
  };
  const std::vector<json> budgets = {
      cluster_budget("everything", json::object(), "True"),
      cluster_budget("lists-ml", {{"namespaces", {"ml"}}}, "True"),
      cluster_budget("lists-web", {{"namespaces", {"web"}}}, "True"),
      cluster_budget("research", {{"namespaceSelector", {{"matchLabels", {{"org", "research"}}}}}},
                     "True"),
      cluster_budget("calm", json::object(), "False")};
  const cost::NamespaceLabelIndex labels = {{"ml", {{"org", "research"}}}, {"web", {}}};
  EXPECT_EQ(BudgetsAskingSpotScaleDown(budgets, {"ml"}, labels),
            (std::vector<std::string>{"everything", "lists-ml", "research"}));
  EXPECT_EQ(BudgetsAskingSpotScaleDown(budgets, {"web"}, labels),
            (std::vector<std::string>{"everything", "lists-web"}));
  // A namespace whose labels are unknown is not selected.
  EXPECT_EQ(BudgetsAskingSpotScaleDown({budgets[3]}, {"ml"}), std::vector<std::string>{});
}

TEST(DecideScaleConditionsTest, Table) {
  struct Row {
    ScaleConditionInput in;
    std::string scaling, at_limit;  // "status/reason"
  };
  const Row rows[] = {
      {{.registered = 0, .desired = 0, .max_nodes = 4},
       "False/NoPendingPods",
       "False/WithinLimits"},
      {{.registered = 0, .desired = 0, .max_nodes = 4, .pending = 3},
       "False/Waiting",
       "False/WithinLimits"},
      {{.scaled_up = true, .registered = 0, .desired = 2, .max_nodes = 4, .pending = 8},
       "True/Launching",
       "False/WithinLimits"},
      {{.launching = 1, .registered = 3, .desired = 4, .max_nodes = 4},
       "True/Launching",
       "True/MaxNodes"},
      {{.registered = 2,
        .desired = 2,
        .max_nodes = 4,
        .pending = 5,
        .limit = autoscale::ScaleUpLimit::kCostCeiling},
       "False/Waiting",
       "True/CostCeiling"},
  };
  for (const Row& row : rows) {
    auto conditions = DecideScaleConditions(row.in);
    ASSERT_EQ(conditions.size(), 2u);
    EXPECT_EQ(conditions[0].type, "ScalingUp");
    EXPECT_EQ(std::string(conditions[0].status ? "True" : "False") + "/" + conditions[0].reason,
              row.scaling);
    EXPECT_EQ(conditions[1].type, "AtLimit");
    EXPECT_EQ(std::string(conditions[1].status ? "True" : "False") + "/" + conditions[1].reason,
              row.at_limit);
  }
  EXPECT_EQ(DecideScaleConditions(
                {.scaled_up = true, .registered = 0, .desired = 2, .max_nodes = 4, .pending = 8})[0]
                .message,
            "2 nodes launching for 8 pending GPU pods");
}

}  // namespace
}  // namespace gpu_autoscaler::controllers
