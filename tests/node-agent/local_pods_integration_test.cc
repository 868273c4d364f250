// LocalPodCache over a real watch on the embedded API server: only pods bound
// to this node arrive, a new pod appears, a graceful delete marks it
// terminating and then removes it, and the change handler fires for each.
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>

#include "kube/resource.h"
#include "kube/rest_client.h"
#include "node-agent/local_pods.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"

namespace gpu_autoscaler::node_agent {
namespace {

using nlohmann::json;

json PodOn(const std::string& ns, const std::string& name, const std::string& node,
           const std::string& level) {
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"namespace", ns}, {"name", name}}},
              {"spec",
               {{"containers",
                 {{{"name", "main"},
                   {"image", "busybox"},
                   {"resources", {{"requests", {{"cpu", "500m"}, {"memory", "128Mi"}}}}}}}}}}};
  if (!node.empty()) pod["spec"]["nodeName"] = node;
  if (!level.empty()) pod["metadata"]["annotations"] = {{std::string(kQosLevelAnnotation), level}};
  return pod;
}

TEST(LocalPodCacheIntegration, WatchesOnlyThisNode) {
  auto server = testing::TestApiServer::Start();
  ASSERT_TRUE(server) << "api server did not start";
  auto client = kube::RestClient::Create(server->config());
  ASSERT_TRUE(client.ok());
  const std::string ns = server->CreateTestNamespace("local-pods");
  kube::ObjectRef pods{kube::resources::kPods, ns, "", ""};
  ASSERT_TRUE((*client)->Create(pods, PodOn(ns, "mine", "node-a", "dedicated_cores")).ok());
  ASSERT_TRUE((*client)->Create(pods, PodOn(ns, "theirs", "node-b", "")).ok());

  LocalPodCache cache(client->get(), {.node_name = "node-a"});
  std::atomic<int> changes{0};
  cache.AddChangeHandler([&](uint64_t) { ++changes; });
  cache.Start();
  ASSERT_TRUE(cache.WaitForSync({}, std::chrono::seconds(30)));
  auto snap = cache.Snapshot();
  ASSERT_EQ(snap->pods.size(), 1u);
  EXPECT_EQ(snap->pods[0].name, "mine");
  EXPECT_EQ(snap->pods[0].qos_level, QosLevel::kDedicated);
  EXPECT_EQ(snap->pods[0].requests.cpu_millis, 500);
  const std::string uid = snap->pods[0].uid;
  EXPECT_EQ(cache.UidToPod(uid)->name, "mine");

  ASSERT_TRUE((*client)->Create(pods, PodOn(ns, "late", "node-a", "reclaimed_cores")).ok());
  ASSERT_TRUE(testing::WaitFor([&] { return cache.Snapshot()->pods.size() == 2; },
                               std::chrono::seconds(30)));
  // Bound pods are deleted gracefully: first terminating, then gone.
  ASSERT_TRUE((*client)->Delete({kube::resources::kPods, ns, "mine", ""}).ok());
  ASSERT_TRUE(
      testing::WaitFor([&] { return cache.UidToPod(uid)->terminating; }, std::chrono::seconds(30)));
  ASSERT_TRUE((*client)
                  ->Delete({kube::resources::kPods, ns, "mine", ""}, {.grace_period_seconds = 0})
                  .ok());
  ASSERT_TRUE(
      testing::WaitFor([&] { return !cache.UidToPod(uid).has_value(); }, std::chrono::seconds(30)));
  auto last = cache.Snapshot();
  ASSERT_EQ(last->pods.size(), 1u);
  EXPECT_EQ(last->pods[0].qos_level, QosLevel::kReclaimed);
  // mine, late, mine terminating, mine gone (handlers run just after publishing)
  EXPECT_TRUE(testing::WaitFor([&] { return changes.load() == 4; }, std::chrono::seconds(30)));
  cache.Stop();
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
