// The GPUNodePool reconciler in process: informer stores filled by the test,
// an injected clock, the simulated cloud as the provider and a scripted API
// server that takes the status writes. Each Reconcile is one pass; the
// requeue it returns is what the controller would wait.
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <map>

#include "cloud/simulated_provider.h"
#include "controllers/gpu_node_pool_controller.h"
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
    GpuNodePoolOptions options;
    options.build_provider =
        [this](const ParsedNodePool&,
               const ProviderContext&) -> Result<std::shared_ptr<cloud::NodeGroupProvider>> {
      return std::shared_ptr<cloud::NodeGroupProvider>(cloud_);
    };
    reconciler_ = std::make_unique<GpuNodePoolReconciler>(pools_, nodes_, pods_, nullptr, *client_,
                                                          clock_, nullptr, registry_, options);
    pools_.Upsert(std::make_shared<const kube::GenericObject>(
        std::move(*kube::DecodeGenericObject(kLatePool.dump()))));
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

}  // namespace
}  // namespace gpu_autoscaler::controllers
