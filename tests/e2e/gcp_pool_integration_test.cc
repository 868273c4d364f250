// A gcp-mig GPUNodePool whose spot MIG is stocked out, driven by the manager
// process against the loopback GCP fake (OAuth token endpoint and Compute v1
// over HTTPS, in this test binary). The spot MIG takes the new size; its
// instances stay CREATING with ZONE_RESOURCE_POOL_EXHAUSTED, which the resize
// already reports: the controller marks spot unavailable and falls back to
// on-demand. The spot MIG still asks for 2; on the next pass the controller
// reads the failure through NodeGroupProvider::LaunchFailure and shrinks it
// back, deleting exactly the instances it failed to create.
#include <signal.h>

#include <filesystem>
#include <iostream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "kube/conditions.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/fake_gcp.h"
#include "support/test_paths.h"

namespace gpu_autoscaler {
namespace {

using nlohmann::json;
using testing::ChildProcess;
using testing::WaitFor;
using namespace std::chrono_literals;

const kube::GroupVersionResource kPools{"gpuautoscaler.io", "v1alpha1", "gpunodepools", false};
constexpr char kProject[] = "ml-prod";
constexpr char kZone[] = "us-central1-a";

TEST(GcpPoolTest, AStockedOutSpotMigFallsBackToOnDemandAndIsShrunkBack) {
  auto gcp = testing::FakeGcp::Start();
  ASSERT_TRUE(gcp);
  gcp->AddMig(kProject, kZone, "gpu-spot", 0, /*spot=*/true);
  gcp->AddMig(kProject, kZone, "gpu-od", 0, /*spot=*/false);
  gcp->SetMigCapacity("gpu-spot", 0);

  auto server = testing::TestApiServer::Start();
  ASSERT_TRUE(server) << "api server did not start";
  if (server->is_real_cluster()) GTEST_SKIP() << "uses cluster-scoped pools";
  auto made = kube::RestClient::Create(server->config());
  ASSERT_TRUE(made.ok());
  std::unique_ptr<kube::RestClient> client = std::move(*made);
  const std::string ns = server->CreateTestNamespace("gcp");
  const std::string dir = testing::MakeTempDir("gpa-gcp-pool");
  json secret = {{"apiVersion", "v1"},
                 {"kind", "Secret"},
                 {"metadata", {{"name", "gcp-credentials"}, {"namespace", ns}}},
                 {"data",
                  {{"key.json", Base64Encode(testing::ReadFileOrDie(gcp->key_file()))},
                   {"endpoint", Base64Encode(gcp->compute_endpoint())},
                   {"ca.crt", Base64Encode(gcp->ca_pem())}}}};
  ASSERT_TRUE(client->Create({kube::resources::kSecrets, ns, "gcp-credentials"}, secret).ok());

  ChildProcess manager;
  ASSERT_TRUE(manager.Spawn({testing::BinaryPath("gpu-autoscaler-manager"),
                             "--kubeconfig=" + testing::WriteKubeconfig(server->config(), dir),
                             "--controllers=gpunodepool", "--metrics-bind-address=127.0.0.1:0",
                             "--metrics-secure=false", "--health-probe-bind-address=127.0.0.1:0"},
                            dir + "/manager.log"));

  json pool = json::parse(R"({
    "apiVersion": "gpuautoscaler.io/v1alpha1", "kind": "GPUNodePool",
    "metadata": {"name": "l4-gcp"},
    "spec": {
      "provider": {"type": "gcp-mig", "project": "ml-prod", "zone": "us-central1-a",
                   "groups": {"spot": "gpu-spot", "onDemand": "gpu-od"}},
      "instanceTypes": [{"name": "g2-standard-8", "gpuModel": "NVIDIA-L4", "gpuCount": 1,
                         "cpu": "8", "memory": "32Gi", "price": {"spot": 0.31, "onDemand": 0.85}}],
      "maxNodes": 4,
      "scaleDown": {"policy": "WhenEmpty", "consolidateAfter": "Never"}
    }})");
  pool["spec"]["provider"]["credentialsSecretRef"] = {{"namespace", ns},
                                                      {"name", "gcp-credentials"}};
  ASSERT_TRUE(client->Create({kPools, "", "l4-gcp"}, pool).ok());

  // Two whole-GPU pods that kube-scheduler left Unschedulable.
  for (const std::string name : {"infer-0", "infer-1"}) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", ns}}},
                {"spec",
                 {{"containers",
                   {{{"name", "main"},
                     {"image", "registry.example/infer:1"},
                     {"resources",
                      {{"requests", {{"nvidia.com/gpu", "1"}}},
                       {"limits", {{"nvidia.com/gpu", "1"}}}}}}}}}}};
    auto created = client->Create({kube::resources::kPods, ns, name}, pod);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    (*created)["status"] = {{"phase", "Pending"},
                            {"conditions",
                             {{{"type", "PodScheduled"},
                               {"status", "False"},
                               {"reason", "Unschedulable"},
                               {"message", "0/0 nodes are available"}}}}};
    ASSERT_TRUE(
        client
            ->Replace(kube::ObjectRef{kube::resources::kPods, ns, name}.WithSub("status"), *created)
            .ok());
  }

  json status;
  // The shortage is seen twice: right after the resize (SetDesiredSize), then
  // on a later pass through LaunchFailure, which shrinks the group.
  bool at_resize = false, later = false;
  auto read_shortages = [&] {
    at_resize = later = false;
    for (const json& a : status.value("recentActions", json::array())) {
      const std::string m = a.value("message", "");
      if (m.find("ZONE_RESOURCE_POOL_EXHAUSTED") == std::string::npos) continue;
      (m.find("resized to 2 but creating") != std::string::npos ? at_resize : later) = true;
    }
  };
  auto actions = [&] {
    std::set<std::string> out;
    for (const json& a : status.value("recentActions", json::array()))
      out.insert(a.value("action", "") + ":" + a.value("tier", ""));
    return out;
  };
  ASSERT_TRUE(WaitFor(
      [&] {
        auto got = client->Get({kPools, "", "l4-gcp"});
        status = got.ok() ? (*got).value("status", json::object()) : json::object();
        read_shortages();
        return gcp->target_size("gpu-od") == 2 && gcp->target_size("gpu-spot") == 0 && later &&
               status.value("tiers", json::object())
                       .value("spot", json::object())
                       .value("desired", -1) == 0;
      },
      90s))
      << status.dump(2) << manager.Log();
  EXPECT_TRUE(gcp->instance_names("gpu-spot").empty());
  EXPECT_EQ(gcp->instance_names("gpu-od").size(), 2u);
  EXPECT_TRUE(actions().count("CapacityError:spot")) << status.dump(2);
  EXPECT_TRUE(actions().count("ScaleUp:onDemand")) << status.dump(2);
  ASSERT_FALSE(status["unavailableOfferings"].empty()) << status.dump(2);
  EXPECT_EQ(status["unavailableOfferings"][0]["tier"], "spot");
  EXPECT_TRUE(at_resize) << status.dump(2);
  // The stocked-out instances went by name, not by a resize that lets the MIG choose.
  bool deleted = false;
  for (const std::string& r : gcp->requests())
    deleted =
        deleted || r.find("instanceGroupManagers/gpu-spot/deleteInstances") != std::string::npos;
  EXPECT_TRUE(deleted);
  std::cout << "--- gcp-mig pool after the spot stockout ---\n" << status.dump(2) << "\n";

  manager.Kill(SIGTERM);
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gpu_autoscaler
