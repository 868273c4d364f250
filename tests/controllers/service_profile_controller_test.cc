#include "controllers/service_profile_controller.h"

#include <gtest/gtest.h>

#include "kube/conditions.h"

namespace gpu_autoscaler::controllers {
namespace {

using nlohmann::json;
using profiling::Resource;

ServiceProfileInput Base() {
  ServiceProfileInput in;
  in.generation = 3;
  auto spec = profiling::ParseServiceProfileSpec(
      json{{"targetRef", {{"kind", "Deployment"}, {"name", "web"}}}, {"updateMode", "Initial"}});
  in.spec = *spec;
  in.target_found = true;
  in.selector = "app=web";
  in.containers = {"server"};
  in.matched_pods = 2;
  in.gpu_memory_bytes = 80e9;
  in.now = 1'800'000'000;
  return in;
}

profiling::Recommendation CpuMemoryRec() {
  profiling::Recommendation r;
  r.cpu = profiling::Estimate{0.1, 0.25, 0.5};
  r.memory = profiling::Estimate{2e8, 3e8, std::numeric_limits<double>::infinity()};
  return r;
}

std::optional<kube::ObjectCondition> Cond(const json& status, const std::string& type) {
  return kube::FindCondition(status.value("conditions", json()), type);
}

TEST(DecideServiceProfileStatus, WritesRecommendationsSelectorAndConditions) {
  ServiceProfileInput in = Base();
  in.recommendations["server"] = CpuMemoryRec();
  in.samples["server"] = 40;
  ServiceProfilePlan plan = DecideServiceProfileStatus(in);
  EXPECT_EQ(plan.status["observedGeneration"], 3);
  EXPECT_EQ(plan.status["targetSelector"], "app=web");
  EXPECT_EQ(plan.status["lastRecommendationTime"], "2027-01-15T08:00:00Z");
  // No upper bound for memory: no confidence yet (infinite).
  EXPECT_EQ(plan.status["recommendations"], json::parse(R"([{"containerName":"server",
      "cpu":{"lowerBound":"100m","target":"250m","upperBound":"500m"},
      "memory":{"lowerBound":"200000000","target":"300000000"}}])"));
  auto c = Cond(plan.status, "RecommendationProvided");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, "True");
  EXPECT_EQ(c->message, "1 containers from 40 samples of 2 pods");
  EXPECT_EQ(Cond(plan.status, "MetricsAvailable")->status, "True");
  // A first healthy status says nothing; only changes and problems make Events.
  ASSERT_EQ(plan.events.size(), 1u);
  EXPECT_FALSE(plan.events[0].warning);

  // The same recommendation again: the time does not move, nothing to write.
  ServiceProfileInput again = in;
  again.status = plan.status;
  again.now += 60;
  EXPECT_EQ(DecideServiceProfileStatus(again).status, plan.status);
}

struct BadInputCase {
  std::string name;
  std::function<void(ServiceProfileInput&)> edit;
  std::string reason;
  std::string message;
};

class BadInputTest : public ::testing::TestWithParam<BadInputCase> {};

TEST_P(BadInputTest, ConditionWithReasonAndNoRecommendation) {
  ServiceProfileInput in = Base();
  // A previous recommendation must not survive bad input.
  in.status = {{"recommendations", json::array({{{"containerName", "server"}}})},
               {"targetSelector", "app=web"}};
  GetParam().edit(in);
  ServiceProfilePlan plan = DecideServiceProfileStatus(in);
  auto c = Cond(plan.status, "RecommendationProvided");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, "False");
  EXPECT_EQ(c->reason, GetParam().reason);
  EXPECT_NE(c->message.find(GetParam().message), std::string::npos) << c->message;
  EXPECT_FALSE(plan.status.contains("recommendations"));
  ASSERT_FALSE(plan.events.empty());
  EXPECT_TRUE(plan.events[0].warning);
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadInputTest,
    ::testing::Values(
        BadInputCase{"TargetMissing",
                     [](ServiceProfileInput& in) {
                       in.target_found = false;
                       in.target_problem = "Deployment ml/web not found";
                     },
                     "TargetNotFound", "Deployment ml/web not found"},
        BadInputCase{"InvalidSpec",
                     [](ServiceProfileInput& in) {
                       in.spec.reset();
                       in.invalid_reason = "spec.targetRef.kind: Required value";
                     },
                     "InvalidSpec", "spec.targetRef.kind: Required value"},
        BadInputCase{"NoSamples", [](ServiceProfileInput&) {}, "MetricsMissing",
                     "no usage samples yet for containers server of the 2 pods matching "
                     "\"app=web\""},
        BadInputCase{"PrometheusDown",
                     [](ServiceProfileInput& in) {
                       in.metrics_error = "prometheus query http://p/api/v1/query: refused";
                     },
                     "MetricsMissing", "(prometheus query http://p/api/v1/query: refused)"}),
    [](const ::testing::TestParamInfo<BadInputCase>& info) { return info.param.name; });

TEST(DecideServiceProfileStatus, HistoryStillRecommendsWhilePrometheusFails) {
  ServiceProfileInput in = Base();
  in.recommendations["server"] = CpuMemoryRec();
  in.metrics_error = "refused";
  ServiceProfilePlan plan = DecideServiceProfileStatus(in);
  EXPECT_EQ(Cond(plan.status, "RecommendationProvided")->status, "True");
  auto metrics = Cond(plan.status, "MetricsAvailable");
  EXPECT_EQ(metrics->status, "False");
  EXPECT_EQ(metrics->reason, "QueryFailed");
}

TEST(DecideServiceProfileStatus, LeavesOutMetricsNotProfiled) {
  ServiceProfileInput in = Base();
  in.spec->metrics = {Resource::kMemory};
  in.recommendations["server"] = CpuMemoryRec();
  ServiceProfilePlan plan = DecideServiceProfileStatus(in);
  EXPECT_FALSE(plan.status["recommendations"][0].contains("cpu"));
  EXPECT_TRUE(plan.status["recommendations"][0].contains("memory"));
}

TEST(BoundsFromStatus, ParsesQuantities) {
  auto bounds = BoundsFromStatus(json::parse(R"({"recommendations":[{"containerName":"server",
      "cpu":{"lowerBound":"100m","target":"250m","upperBound":"1"},
      "memory":{"lowerBound":"200Mi","target":"300Mi"}}]})"));
  ASSERT_TRUE(bounds.contains("server"));
  EXPECT_EQ(bounds["server"].cpu_millis->lower, 100);
  EXPECT_EQ(bounds["server"].cpu_millis->upper, 1000);
  EXPECT_EQ(bounds["server"].memory_bytes->lower, 200.0 * 1024 * 1024);
  EXPECT_FALSE(bounds["server"].memory_bytes->upper.has_value());
}

// ---------------------------------------------------------------------------
// Updater

UpdaterPod Pod(const std::string& name, int64_t cpu_millis, bool running = true) {
  return {.name = name, .running = running, .cpu_millis = {{"server", cpu_millis}}};
}

struct EvictionCase {
  std::string name;
  std::vector<UpdaterPod> pods;
  int64_t replicas;
  UpdaterLimits limits;
  std::vector<std::string> want;
  std::string held_back;  // substring; "" = none
};

class EvictionTest : public ::testing::TestWithParam<EvictionCase> {};

TEST_P(EvictionTest, FollowsVpaLimits) {
  UpdaterInput in;
  in.bounds["server"].cpu_millis = RequestBounds{100, 500};
  in.pods = GetParam().pods;
  in.replicas = GetParam().replicas;
  in.limits = GetParam().limits;
  EvictionPlan plan = DecideProfileEvictions(in);
  std::vector<std::string> got;
  for (const auto& e : plan.evictions)
    got.push_back(e.pod);
  EXPECT_EQ(got, GetParam().want);
  if (GetParam().held_back.empty()) {
    EXPECT_EQ(plan.held_back, "");
  } else {
    EXPECT_NE(plan.held_back.find(GetParam().held_back), std::string::npos) << plan.held_back;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, EvictionTest,
    ::testing::Values(
        EvictionCase{"InsideBoundsStays", {Pod("a", 100), Pod("b", 500)}, 2, {}, {}, ""},
        // 4 replicas × 0.5 = 2 may go: the two furthest out (50m is 50 % under
        // 100m; 2000m is 300 % over 500m).
        EvictionCase{"ToleranceAndOrder",
                     {Pod("a", 50), Pod("b", 2000), Pod("c", 80), Pod("d", 300)},
                     4,
                     {},
                     {"b", "a"},
                     "eviction tolerance: 2 of 4"},
        EvictionCase{"TooFewReplicas", {Pod("a", 50)}, 1, {}, {}, "fewer than minReplicas 2"},
        // Not running pods do not count towards minReplicas.
        EvictionCase{"PendingDoesNotCount",
                     {Pod("a", 50), Pod("b", 50, false)},
                     2,
                     {},
                     {},
                     "1 running pods"},
        // 3 × 0.1 rounds to 0, but all replicas run: one may go (VPA's special case).
        EvictionCase{"SmallToleranceOneWhenAllRun",
                     {Pod("a", 50), Pod("b", 60), Pod("c", 300)},
                     3,
                     {.min_replicas = 2, .eviction_tolerance = 0.1},
                     {"a"},
                     "eviction tolerance"},
        EvictionCase{"SmallToleranceNoneWhenOneMissing",
                     {Pod("a", 50), Pod("b", 60)},
                     3,
                     {.min_replicas = 2, .eviction_tolerance = 0.1},
                     {},
                     "eviction tolerance"},
        EvictionCase{"RateLimit",
                     {Pod("a", 50), Pod("b", 2000), Pod("c", 80), Pod("d", 300)},
                     4,
                     {.min_replicas = 2, .eviction_tolerance = 0.5, .rate_tokens = 1},
                     {"b"},
                     "rate limit"}),
    [](const ::testing::TestParamInfo<EvictionCase>& info) { return info.param.name; });

TEST(DecideProfileEvictions, MessageNamesContainerRequestAndBounds) {
  UpdaterInput in;
  in.bounds["server"].cpu_millis = RequestBounds{100, 500};
  in.bounds["server"].memory_bytes = RequestBounds{2e8, std::nullopt};
  in.pods = {Pod("a", 2000), Pod("b", 200)};
  in.pods[0].memory_bytes["server"] = 1e8;
  in.pods[1].memory_bytes["server"] = 3e8;
  EvictionPlan plan = DecideProfileEvictions(in);
  ASSERT_EQ(plan.evictions.size(), 1u);
  EXPECT_EQ(plan.evictions[0].message,
            "container server: cpu request 2000m outside [100m, 500m]; container server: memory "
            "request 100000000 outside [200000000, ∞]");
}

// ---------------------------------------------------------------------------
// Usage from Prometheus answers

TEST(UsageFromPrometheus, SamplesPerContainer) {
  using cost::PromSample;
  std::vector<PromSample> cpu = {
      {{{"namespace", "ml"}, {"pod", "web-1"}, {"container", "server"}}, 1800000000, 0.25},
      {{{"namespace", "ml"}, {"pod", "web-1"}}, 1800000000, 9},  // no container: dropped
  };
  std::vector<PromSample> memory = {
      {{{"namespace", "ml"}, {"pod", "web-1"}, {"container", "server"}}, 1800000000, 3e8}};
  // One GPU shared by two containers (virtual-GPU mode duplicates the
  // figures): 80 % busy and 20000 MiB used -> 0.4 and 10000 MiB each.
  auto gpu = [](const char* name, double v, const char* vgpu, const char* container) {
    return PromSample{{{"__name__", name},
                       {"namespace", "ml"},
                       {"pod", "web-1"},
                       {"container", container},
                       {"UUID", "GPU-1"},
                       {"Hostname", "n1"},
                       {"vgpu", vgpu}},
                      1800000060,
                      v};
  };
  std::vector<PromSample> dcgm = {gpu("DCGM_FI_DEV_GPU_UTIL", 80, "0", "server"),
                                  gpu("DCGM_FI_DEV_GPU_UTIL", 80, "1", "sidecar"),
                                  gpu("DCGM_FI_DEV_FB_USED", 20000, "0", "server"),
                                  gpu("DCGM_FI_DEV_FB_USED", 20000, "1", "sidecar")};
  auto samples = UsageFromPrometheus(cpu, memory, dcgm);
  ASSERT_EQ(samples.size(), 6u);
  EXPECT_EQ(samples[0].resource, Resource::kCpu);
  EXPECT_DOUBLE_EQ(samples[0].value, 0.25);
  EXPECT_EQ(samples[1].resource, Resource::kMemory);
  EXPECT_EQ(samples[2].container, "server");
  EXPECT_EQ(samples[2].resource, Resource::kGpuUtilization);
  EXPECT_DOUBLE_EQ(samples[2].value, 0.4);
  EXPECT_EQ(samples[2].timestamp, 1800000060);
  EXPECT_EQ(samples[3].resource, Resource::kGpuMemory);
  EXPECT_DOUBLE_EQ(samples[3].value, 10000.0 * 1024 * 1024);
  EXPECT_EQ(samples[4].container, "sidecar");
}

}  // namespace
}  // namespace gpu_autoscaler::controllers
