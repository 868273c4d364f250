// The GPUNodePool reconciler in process: informer stores filled by the test,
// an injected clock, the simulated cloud as the provider and a scripted API
// server that takes the status writes. Each Reconcile is one pass; the
// requeue it returns is what the controller would wait.
#include <map>
#include <mutex>

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <map>

#include "autoscale/demand_history.h"
#include "cloud/simulated_provider.h"
#include "controllers/gpu_node_pool_controller.h"
#include "kube/conditions.h"
#include "kube/object_codec.h"
#include "kube/rest_client.h"
#include "support/fake_transport.h"

namespace gpu_autoscaler::controllers {
namespace {

using nlohmann::json;
using std::chrono::seconds;

const json kLatePool = json::parse(R"({
  "apiVersion": "gpuautoscaler.io/v1alpha1", "kind": "GPUNodePool",
  "metadata": {"name": "late", "generation": 1},
  "spec": {
    "provider": {"type": "simulated", "groups": {"spot": "late-spot", "onDemand": "late-od"}},
    "instanceTypes": [{"name": "sim.a10x1", "gpuModel": "A10G", "gpuCount": 1,
                       "cpu": "4", "memory": "16Gi", "price": {"spot": 0.38, "onDemand": 1.01}}],
    "maxNodes": 4,
    "scaleDown": {"policy": "WhenEmpty", "consolidateAfter": "Never"}
  }})");

class GpuNodePoolReconcileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto transport = std::make_unique<testing::FakeTransport>();
    api_ = transport.get();
    // The API server takes every status write as it is.
    api_->SetHandler([](const kube::HttpRequest& req) {
      return testing::FakeTransport::Reply{.status = 200, .body = req.body};
    });
    kube::ClientConfig cfg;
    cfg.server = "https://api.test";
    client_ = kube::RestClient::WithTransport(cfg, std::move(transport), {});
    cloud_ = std::make_shared<cloud::SimulatedCloud>(
        nullptr, clock_, cloud::SimulatedCloudOptions{.provisioning_delay = seconds(90)});
    cloud_->AddGroup({.name = "late-spot",
                      .instance_type = "sim.a10x1",
                      .gpu_model = "A10G",
                      .lifecycle = cloud::Lifecycle::kSpot});
    cloud_->AddGroup({.name = "late-od", .instance_type = "sim.a10x1", .gpu_model = "A10G"});
    reconciler_ = NewReconciler();
    pools_.Upsert(std::make_shared<const kube::GenericObject>(
        std::move(*kube::DecodeGenericObject(kLatePool.dump()))));
  }

  // A reconciler as a (new) manager builds it, over the test's simulated cloud.
  std::unique_ptr<GpuNodePoolReconciler> NewReconciler() {
    GpuNodePoolOptions options;
    options.build_provider =
        [this](const ParsedNodePool&,
               const ProviderContext&) -> Result<std::shared_ptr<cloud::NodeGroupProvider>> {
      return std::shared_ptr<cloud::NodeGroupProvider>(cloud_);
    };
    return std::make_unique<GpuNodePoolReconciler>(pools_, nodes_, pods_, nullptr, *client_, clock_,
                                                   nullptr, registry_, options);
  }

  void AddPendingPod(const std::string& name) {
    const json pod = {
        {"metadata", {{"name", name}, {"namespace", "ml"}}},
        {"spec",
         {{"containers",
           {{{"name", "main"}, {"resources", {{"requests", {{"nvidia.com/gpu", "1"}}}}}}}}}},
        {"status",
         {{"phase", "Pending"},
          {"conditions",
           {{{"type", "PodScheduled"}, {"status", "False"}, {"reason", "Unschedulable"}}}}}}};
    auto decoded = kube::DecodePod(pod.dump());
    ASSERT_TRUE(decoded.ok()) << decoded.error().ToString();
    pods_.Upsert(std::make_shared<const kube::PodView>(std::move(*decoded)));
  }

  // One pass; the requeue it asks for.
  Clock::Duration Pass() {
    auto result = reconciler_->Reconcile({"", "late"}, {});
    auto* requeue = std::get_if<reconcile::RequeueAfter>(&result);
    EXPECT_NE(requeue, nullptr) << result.index();
    return requeue == nullptr ? Clock::Duration{} : requeue->after;
  }

  int Desired(const std::string& group) {
    auto g = cloud_->Describe(group);
    EXPECT_TRUE(g.ok());
    return g.ok() ? g->desired : -1;
  }

  // "action:tier" of the recentActions in the last status written.
  std::set<std::string> Actions() {
    std::set<std::string> out;
    const json body = json::parse(api_->last_request().body);
    for (const json& a : body["status"]["recentActions"])
      out.insert(a["action"].get<std::string>() + ":" + a["tier"].get<std::string>());
    return out;
  }

  FakeClock clock_;
  prometheus::Registry registry_;
  testing::FakeTransport* api_ = nullptr;
  std::unique_ptr<kube::RestClient> client_;
  std::shared_ptr<cloud::SimulatedCloud> cloud_;
  kube::Store<kube::GenericObject> pools_;
  kube::Store<kube::NodeView> nodes_;
  kube::Store<kube::PodView> pods_;
  std::unique_ptr<GpuNodePoolReconciler> reconciler_;
};

// AWS takes a new desired size and finds the shortage later. The pool is
// looked at again one second after the scale-up (not at the 15 s resync), the
// failed launch is read, and the same pass falls back to on-demand.
TEST_F(GpuNodePoolReconcileTest, ALateShortageIsSeenWithinSecondsAndFallsBack) {
  cloud_->SetLaunchFailure("late-spot", true);
  AddPendingPod("train-0");
  EXPECT_EQ(Pass(), seconds(1));  // the batching window: idle 1 s
  EXPECT_EQ(Desired("late-spot"), 0);

  clock_.Step(seconds(1));
  EXPECT_EQ(Pass(), seconds(1));  // scaled up; launching: look again in 1 s
  EXPECT_EQ(Desired("late-spot"), 1);
  EXPECT_TRUE(Actions().count("ScaleUp:spot"));

  clock_.Step(seconds(1));
  EXPECT_EQ(Pass(), seconds(1));
  EXPECT_EQ(Desired("late-spot"), 0);  // stopped asking for what the cloud lacks
  EXPECT_EQ(Desired("late-od"), 1);    // and the pod's GPU comes from on-demand now
  const std::set<std::string> actions = Actions();
  EXPECT_TRUE(actions.count("CapacityError:spot"));
  EXPECT_TRUE(actions.count("ScaleUp:onDemand"));
  const json status = json::parse(api_->last_request().body)["status"];
  ASSERT_EQ(status["unavailableOfferings"].size(), 1u);
  EXPECT_EQ(status["unavailableOfferings"][0]["tier"], "spot");
}

// A pod held by its scheduling gates does not ask for capacity.
TEST_F(GpuNodePoolReconcileTest, SchedulingGatedPodsAreNotPending) {
  const json pod = {
      {"metadata", {{"name", "gated"}, {"namespace", "ml"}}},
      {"spec",
       {{"schedulingGates", {{{"name", "example.com/quota"}}}},
        {"containers",
         {{{"name", "main"}, {"resources", {{"requests", {{"nvidia.com/gpu", "1"}}}}}}}}}},
      {"status",
       {{"phase", "Pending"},
        {"conditions",
         {{{"type", "PodScheduled"}, {"status", "False"}, {"reason", "SchedulingGated"}}}}}}};
  pods_.Upsert(std::make_shared<const kube::PodView>(std::move(*kube::DecodePod(pod.dump()))));
  EXPECT_EQ(Pass(), seconds(15));
  clock_.Step(seconds(11));
  EXPECT_EQ(Pass(), seconds(15));
  EXPECT_EQ(Desired("late-spot") + Desired("late-od"), 0);
  EXPECT_EQ(json::parse(api_->last_request().body)["status"]["pendingGPUPods"], 0);
}

// The value of `name`{labels} in `registry` (-1 when there is no such series).
double MetricValue(prometheus::Registry& registry, const std::string& name,
                   const std::map<std::string, std::string>& labels) {
  for (const prometheus::MetricFamily& f : registry.Collect()) {
    if (f.name != name) continue;
    for (const prometheus::ClientMetric& m : f.metric) {
      std::map<std::string, std::string> got;
      for (const auto& l : m.label)
        got[l.name] = l.value;
      if (got == labels)
        return f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
  }
  return -1;
}

// Someone else resizes the group between the pass's read and its resize:
// the pass does not overwrite their size, records ResizeConflict, and looks
// again soon (not at the 15 s resync), planning from what is there.
class ResizedByOthers : public cloud::NodeGroupProvider {
 public:
  explicit ResizedByOthers(std::shared_ptr<cloud::SimulatedCloud> cloud)
      : cloud_(std::move(cloud)) {}
  std::string_view Name() const override { return "simulated"; }
  Result<cloud::NodeGroup> Describe(const std::string& group) override {
    return cloud_->Describe(group);
  }
  Status SetDesiredSize(const std::string& group, int desired) override {
    return cloud_->SetDesiredSize(group, desired);
  }
  Status ResizeFrom(const std::string& group, int expected, int desired) override {
    if (!raced_) {
      raced_ = true;
      GPU_RETURN_IF_ERROR(cloud_->SetDesiredSize(group, expected + 2));  // another writer
    }
    return cloud_->ResizeFrom(group, expected, desired);
  }
  Status TerminateInstances(const std::string& group, const std::vector<std::string>& ids,
                            bool decrement) override {
    return cloud_->TerminateInstances(group, ids, decrement);
  }
  Result<std::string> InstanceIdFromProviderId(std::string_view id) const override {
    return cloud_->InstanceIdFromProviderId(id);
  }

 private:
  std::shared_ptr<cloud::SimulatedCloud> cloud_;
  bool raced_ = false;
};

TEST_F(GpuNodePoolReconcileTest, AGroupResizedByOthersMeanwhileIsNotOverwritten) {
  GpuNodePoolOptions options;
  auto racing = std::make_shared<ResizedByOthers>(cloud_);
  options.build_provider =
      [racing](const ParsedNodePool&,
               const ProviderContext&) -> Result<std::shared_ptr<cloud::NodeGroupProvider>> {
    return std::shared_ptr<cloud::NodeGroupProvider>(racing);
  };
  prometheus::Registry registry;
  GpuNodePoolReconciler reconciler(pools_, nodes_, pods_, nullptr, *client_, clock_, nullptr,
                                   registry, options);
  AddPendingPod("p0");
  (void)reconciler.Reconcile({"", "late"}, {});  // the batching window
  clock_.Step(seconds(1));
  auto result = reconciler.Reconcile({"", "late"}, {});
  auto* requeue = std::get_if<reconcile::RequeueAfter>(&result);
  ASSERT_NE(requeue, nullptr);
  EXPECT_EQ(requeue->after, seconds(1));
  EXPECT_EQ(Desired("late-spot"), 2);  // the other writer's size stands
  EXPECT_TRUE(Actions().count("ResizeConflict:spot")) << api_->last_request().body;
  EXPECT_FALSE(Actions().count("ScaleUp:spot"));
  const json body = json::parse(api_->last_request().body);
  EXPECT_FALSE(kube::IsConditionTrue(body["status"]["conditions"], "ProviderError"));
}

// Each pass that meets a provider error counts once under the condition's
// reason; the interruption counter is exported at 0 for every enabled tier.
TEST_F(GpuNodePoolReconcileTest, ProviderErrorsAndInterruptionsAreExported) {
  EXPECT_EQ(Pass(), seconds(15));
  EXPECT_EQ(MetricValue(registry_, "gpu_autoscaler_node_pool_interruption_replacements_total",
                        {{"pool", "late"}, {"tier", "spot"}}),
            0);
  EXPECT_EQ(MetricValue(registry_, "gpu_autoscaler_node_pool_provider_errors_total",
                        {{"pool", "late"}, {"reason", "ProviderUnavailable"}}),
            -1);

  prometheus::Registry registry;
  GpuNodePoolOptions options;
  options.build_provider =
      [](const ParsedNodePool&,
         const ProviderContext&) -> Result<std::shared_ptr<cloud::NodeGroupProvider>> {
    return Status(StatusCode::kUnavailable, "no route to the cloud");
  };
  GpuNodePoolReconciler failing(pools_, nodes_, pods_, nullptr, *client_, clock_, nullptr, registry,
                                options);
  for (int pass = 1; pass <= 2; ++pass) {
    auto result = failing.Reconcile({"", "late"}, {});
    EXPECT_NE(std::get_if<reconcile::RequeueAfter>(&result), nullptr);
    EXPECT_EQ(MetricValue(registry, "gpu_autoscaler_node_pool_provider_errors_total",
                          {{"pool", "late"}, {"reason", "ProviderUnavailable"}}),
              pass);
  }
}

// Predictive scaling in the reconciler: the API server keeps ConfigMaps (the
// demand history checkpoint); the clock's wall time starts at 1800000000, a
// multiple of the 5 m step.
class GpuNodePoolPredictiveTest : public GpuNodePoolReconcileTest {
 protected:
  static constexpr int64_t kNow = 1'800'000'000;
  static constexpr char kConfigMaps[] = "/api/v1/namespaces/default/configmaps";

  void SetUp() override {
    GpuNodePoolReconcileTest::SetUp();
    api_->SetHandler([this](const kube::HttpRequest& req) {
      const size_t at = req.url.find(kConfigMaps);
      if (at == std::string::npos)
        return testing::FakeTransport::Reply{.status = 200, .body = req.body};
      std::lock_guard<std::mutex> lock(mu_);
      const std::string rest = req.url.substr(at + std::string(kConfigMaps).size());
      if (req.method == "GET") {
        auto it = configmaps_.find(rest.empty() ? "" : rest.substr(1));
        if (it == configmaps_.end()) {
          return testing::FakeTransport::Reply{
              .status = 404,
              .body = R"({"kind":"Status","apiVersion":"v1","status":"Failure",)"
                      R"("reason":"NotFound","code":404})"};
        }
        return testing::FakeTransport::Reply{.status = 200, .body = it->second.dump()};
      }
      json cm = json::parse(req.body);
      cm["metadata"]["resourceVersion"] = std::to_string(++writes_);
      configmaps_[cm["metadata"]["name"].get<std::string>()] = cm;
      return testing::FakeTransport::Reply{.status = 200, .body = cm.dump()};
    });
  }

  // kLatePool with spec.predictive (and `edit` applied to the spec).
  void UsePool(const json& predictive, const json& edit = json::object()) {
    json pool = kLatePool;
    pool["metadata"]["uid"] = "uid-late";
    pool["spec"]["predictive"] = predictive;
    pool["spec"].merge_patch(edit);
    pools_.Upsert(std::make_shared<const kube::GenericObject>(
        std::move(*kube::DecodeGenericObject(pool.dump()))));
  }
  // A checkpoint ConfigMap holding `text`.
  void Seed(const std::string& text) {
    configmaps_["gpunodepool-late-demand"] = {
        {"apiVersion", "v1"},
        {"kind", "ConfigMap"},
        {"metadata", {{"name", "gpunodepool-late-demand"}, {"namespace", "default"}}},
        {"data", {{"history.json", text}}}};
  }
  // Two seasons of four 5 m steps ending now: 0, 3, 1, 0 GPUs.
  static std::string TwoSeasons() {
    return autoscale::EncodeDemandHistory(
        {.step_seconds = 300, .start = kNow - 8 * 300, .gpus = {0, 3, 1, 0, 0, 3, 1, 0}});
  }
  static json SeasonalNaive() {
    return {{"enabled", true}, {"step", "5m"},        {"seasonality", "20m"},
            {"horizon", "5m"}, {"minHistory", "40m"}, {"method", "SeasonalNaive"}};
  }
  json Status() { return json::parse(api_->last_request().body)["status"]; }
  std::optional<kube::ObjectCondition> Predicting() {
    return kube::FindCondition(Status()["conditions"], "Predicting");
  }

  std::mutex mu_;
  std::map<std::string, json> configmaps_;
  int writes_ = 0;
};

// No pod waits, but a season ago demand rose to 3 GPUs in the next step:
// the pool grows to 3 one-GPU spot nodes at once.
TEST_F(GpuNodePoolPredictiveTest, ScalesUpAheadOfTheSeasonalRise) {
  Seed(TwoSeasons());
  UsePool(SeasonalNaive());
  Pass();
  EXPECT_EQ(Desired("late-spot"), 3) << Status().dump(2);
  EXPECT_EQ(Desired("late-od"), 0);
  const json status = Status();
  EXPECT_EQ(status["predictive"]["method"], "seasonal-naive(season=4)");
  EXPECT_EQ(status["predictive"]["forecastGPUs"], 3.0);
  EXPECT_EQ(status["predictive"]["floorNodes"], 3);
  EXPECT_EQ(status["predictive"]["historyPoints"], 8);
  EXPECT_EQ(status["predictive"]["horizonSteps"], 2);
  ASSERT_TRUE(Predicting());
  EXPECT_EQ(Predicting()->status, "True");
  EXPECT_EQ(Predicting()->reason, "Forecasting");
  EXPECT_TRUE(Actions().count("ScaleUp:spot"));
  EXPECT_EQ(writes_, 0);  // nothing new to checkpoint yet

  // A step later the step just ended (0 GPUs observed) joins the checkpoint, once.
  clock_.Step(seconds(300));
  Pass();
  clock_.Step(seconds(10));
  Pass();
  EXPECT_EQ(writes_, 1);
  auto saved = autoscale::DecodeDemandHistory(
      configmaps_["gpunodepool-late-demand"]["data"]["history.json"].get<std::string>());
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->gpus.size(), 9u);
  EXPECT_EQ(saved->gpus.back(), 0);
  EXPECT_EQ(configmaps_["gpunodepool-late-demand"]["metadata"]["ownerReferences"][0]["uid"],
            "uid-late");
}

TEST_F(GpuNodePoolPredictiveTest, TheFloorStopsAtMaxNodesAndTheCostCeiling) {
  Seed(TwoSeasons());
  UsePool(SeasonalNaive(), {{"costPerHourCeiling", 0.8}});  // floor(0.8 / 0.38) = 2 spot nodes
  Pass();
  EXPECT_EQ(Desired("late-spot"), 2);
  EXPECT_EQ(Status()["predictive"]["floorNodes"], 2);
  EXPECT_EQ(Status()["predictive"]["limitedBy"], "CostCeiling");
  clock_.Step(seconds(5));
  Pass();
  EXPECT_EQ(Desired("late-spot") + Desired("late-od"), 2);
}

TEST_F(GpuNodePoolPredictiveTest, DisabledDoesNothing) {
  Seed(TwoSeasons());
  json off = SeasonalNaive();
  off["enabled"] = false;
  UsePool(off);
  Pass();
  EXPECT_EQ(Desired("late-spot") + Desired("late-od"), 0);
  EXPECT_FALSE(Status().contains("predictive"));
  ASSERT_TRUE(Predicting());
  EXPECT_EQ(Predicting()->status, "False");
  EXPECT_EQ(Predicting()->reason, "Disabled");
  clock_.Step(seconds(600));
  Pass();
  EXPECT_EQ(writes_, 0);
}

TEST_F(GpuNodePoolPredictiveTest, AnInvalidBlockIsAConditionAndThePoolStillWorks) {
  json bad = SeasonalNaive();
  bad["seasonality"] = "7m";  // not a multiple of 5m
  UsePool(bad);
  AddPendingPod("train-0");
  Pass();
  clock_.Step(seconds(1));
  Pass();
  EXPECT_EQ(Desired("late-spot"), 1);  // reactive scale-up as before
  ASSERT_TRUE(Predicting());
  EXPECT_EQ(Predicting()->reason, "InvalidSpec");
  EXPECT_NE(Predicting()->message.find("spec.predictive.seasonality must be a multiple of step"),
            std::string::npos)
      << Predicting()->message;
  EXPECT_EQ(kube::FindCondition(Status()["conditions"], "Ready")->status, "True");
}

// The history outlives the manager: a new one (a restart, another leader)
// reads the checkpoint the first wrote.
TEST_F(GpuNodePoolPredictiveTest, ANewManagerReadsTheHistoryBack) {
  UsePool(SeasonalNaive());
  AddPendingPod("train-0");  // 1 GPU of demand
  Pass();
  clock_.Step(seconds(300));
  Pass();  // the step ended: written
  ASSERT_EQ(writes_, 1);
  EXPECT_EQ(Status()["predictive"]["historyPoints"], 1);

  reconciler_.reset();
  reconciler_ = NewReconciler();
  clock_.Step(seconds(10));
  Pass();
  EXPECT_EQ(Status()["predictive"]["historyPoints"], 1);
  EXPECT_EQ(writes_, 1);  // nothing new until this step ends
  clock_.Step(seconds(300));
  Pass();
  auto saved = autoscale::DecodeDemandHistory(
      configmaps_["gpunodepool-late-demand"]["data"]["history.json"].get<std::string>());
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->gpus, (std::vector<double>{1, 1}));
}

// A checkpoint that does not decode: reported, and replaced by a new history.
TEST_F(GpuNodePoolPredictiveTest, ACorruptCheckpointRestartsTheHistory) {
  Seed(R"({"version":1,"stepSeconds":300,"start":0,"gpus":"1,2,zebra"})");
  UsePool(SeasonalNaive());
  AddPendingPod("train-0");  // 1 GPU of demand
  Pass();
  EXPECT_EQ(Desired("late-spot"), 0);
  ASSERT_TRUE(Predicting());
  EXPECT_EQ(Predicting()->status, "False");
  EXPECT_EQ(Predicting()->reason, "HistoryReset");
  EXPECT_NE(Predicting()->message.find("ConfigMap default/gpunodepool-late-demand was unreadable "
                                       "and starts over: demand history: point 2 \"zebra\""),
            std::string::npos)
      << Predicting()->message;
  clock_.Step(seconds(300));
  Pass();
  auto saved = autoscale::DecodeDemandHistory(
      configmaps_["gpunodepool-late-demand"]["data"]["history.json"].get<std::string>());
  ASSERT_TRUE(saved.ok()) << saved.error().ToString();
  EXPECT_EQ(saved->start, kNow);
  EXPECT_EQ(saved->gpus, (std::vector<double>{1}));
  EXPECT_EQ(Predicting()->reason, "HistoryReset");  // until there is enough history again
}

}  // namespace
}  // namespace gpu_autoscaler::controllers
