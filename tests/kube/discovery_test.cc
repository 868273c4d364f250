#include "kube/discovery.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "kube/rest_client.h"
#include "support/fake_transport.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::kube {
namespace {

using nlohmann::json;
using testing::FakeTransport;
using namespace std::chrono_literals;

std::string Golden(const std::string& file) {
  json golden =
      json::parse(testing::ReadFileOrDie(testing::SourcePath("tests/golden/kube/" + file)));
  return golden["response"]["body"].dump();
}

std::string PathOf(const HttpRequest& req) {
  return req.url.substr(req.url.find("/", 8));
}

// Serves discovery documents from the recorded kube-apiserver responses.
class DiscoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto transport = std::make_unique<FakeTransport>();
    fake_ = transport.get();
    ClientConfig cfg;
    cfg.server = "https://h";
    cfg.qps = 0;
    client_ = RestClient::WithTransport(cfg, std::move(transport), {.clock = &clock_});
    fake_->SetHandler([this](const HttpRequest& req) {
      std::string path = PathOf(req);
      ++fetches_[path];
      if (path == "/api") {
        return FakeTransport::Reply{.body = R"({"kind":"APIVersions","versions":["v1"]})"};
      }
      if (path == "/api/v1") return FakeTransport::Reply{.body = Golden("02-discovery-core.json")};
      if (path == "/apis") return FakeTransport::Reply{.body = apis_};
      if (path == "/apis/coordination.k8s.io/v1") {
        return FakeTransport::Reply{.body = Golden("04-discovery-coordination.json")};
      }
      if (path == "/apis/apps/v1") {
        return FakeTransport::Reply{
            .body = R"({"kind":"APIResourceList","groupVersion":"apps/v1","resources":[
                {"name":"deployments","namespaced":true,"kind":"Deployment","shortNames":["deploy"]},
                {"name":"deployments/scale","namespaced":true,"kind":"Scale","group":"autoscaling"}]})"};
      }
      if (path == "/apis/example.gpuautoscaler.io/v1alpha1" && crd_installed_) {
        return FakeTransport::Reply{.body = Golden("51-discovery-crd-group.json")};
      }
      return FakeTransport::Reply{
          .status = 404,
          .body = R"({"kind":"Status","code":404,"reason":"NotFound","message":"not found"})"};
    });
    apis_ = Golden("03-discovery-groups.json");
  }

  void InstallCrd() {
    json apis = json::parse(apis_);
    apis["groups"].push_back(
        {{"name", "example.gpuautoscaler.io"},
         {"preferredVersion",
          {{"groupVersion", "example.gpuautoscaler.io/v1alpha1"}, {"version", "v1alpha1"}}},
         {"versions",
          {{{"groupVersion", "example.gpuautoscaler.io/v1alpha1"}, {"version", "v1alpha1"}}}}});
    apis_ = apis.dump();
    crd_installed_ = true;
  }

  FakeClock clock_;
  FakeTransport* fake_ = nullptr;
  std::unique_ptr<RestClient> client_;
  std::string apis_;
  bool crd_installed_ = false;
  std::map<std::string, int> fetches_;
};

TEST_F(DiscoveryTest, ResolvesCoreNamesKindsAndShortNames) {
  Discovery discovery(*client_, clock_);
  for (std::string_view name : {"pods", "pod", "Pod", "po"}) {
    auto gvr = discovery.Resolve(name);
    ASSERT_TRUE(gvr.ok()) << name << ": " << gvr.error().ToString();
    EXPECT_EQ(*gvr, resources::kPods) << name;
    EXPECT_TRUE(gvr->namespaced);
  }
  auto nodes = discovery.Resolve("nodes");
  ASSERT_TRUE(nodes.ok());
  EXPECT_FALSE(nodes->namespaced);
  auto cm = discovery.Resolve("cm");
  ASSERT_TRUE(cm.ok());
  EXPECT_EQ(cm->resource, "configmaps");
}

TEST_F(DiscoveryTest, ResolvesGroupsAtPreferredVersion) {
  Discovery discovery(*client_, clock_);
  auto leases = discovery.Resolve("leases");
  ASSERT_TRUE(leases.ok()) << leases.error().ToString();
  EXPECT_EQ(*leases, resources::kLeases);
  auto deploy = discovery.Resolve("deployments.apps");
  ASSERT_TRUE(deploy.ok()) << deploy.error().ToString();
  EXPECT_EQ(*deploy, resources::kDeployments);
  auto by_kind = discovery.Resolve("Deployment.apps");
  ASSERT_TRUE(by_kind.ok());
  EXPECT_EQ(by_kind->resource, "deployments");
  auto by_gvk = discovery.ResolveKind({"coordination.k8s.io", "", "Lease"});
  ASSERT_TRUE(by_gvk.ok());
  EXPECT_EQ(*by_gvk, resources::kLeases);
  auto versions = discovery.PreferredVersions();
  ASSERT_TRUE(versions.ok());
  ASSERT_FALSE(versions->empty());
  EXPECT_EQ(versions->front(), (GroupVersion{"", "v1"}));
}

// The recorded v1.20 server: its policy group is policy/v1beta1 only, and so
// is the Eviction that pods/eviction takes. One GET of /api/v1, no /apis.
TEST_F(DiscoveryTest, EvictionGroupVersionComesFromPodsEviction) {
  auto gv = EvictionGroupVersion(*client_);
  ASSERT_TRUE(gv.ok()) << gv.error().ToString();
  EXPECT_EQ(*gv, (GroupVersion{"policy", "v1beta1"}));
  EXPECT_EQ(fetches_["/api/v1"], 1);
  EXPECT_EQ(fetches_.size(), 1u);
}

TEST_F(DiscoveryTest, EvictionGroupVersionIsEmptyWithoutPodsEvictionAndFailuresAreErrors) {
  fake_->Respond(200, R"({"kind":"APIResourceList","groupVersion":"v1","resources":[
      {"name":"pods","namespaced":true,"kind":"Pod"},
      {"name":"pods/eviction","namespaced":true,"kind":"Eviction"}]})");
  auto none = EvictionGroupVersion(*client_);
  ASSERT_TRUE(none.ok()) << none.error().ToString();
  EXPECT_EQ(*none, GroupVersion{});

  fake_->Respond(403, R"({"kind":"Status","code":403,"reason":"Forbidden","message":"no"})");
  auto forbidden = EvictionGroupVersion(*client_);
  ASSERT_FALSE(forbidden.ok());
  EXPECT_TRUE(IsForbidden(forbidden.error()));
}

TEST_F(DiscoveryTest, SubresourcesAreNotResources) {
  Discovery discovery(*client_, clock_);
  auto resources = discovery.Resources({"apps", "v1"});
  ASSERT_TRUE(resources.ok());
  ASSERT_EQ(resources->size(), 1u);
  EXPECT_EQ((*resources)[0].gvr.resource, "deployments");
  EXPECT_EQ((*resources)[0].singular, "deployment");
  EXPECT_EQ((*resources)[0].short_names, std::vector<std::string>{"deploy"});
}

TEST_F(DiscoveryTest, CachesUntilTtl) {
  Discovery discovery(*client_, clock_, 10min);
  ASSERT_TRUE(discovery.Resolve("pods").ok());
  ASSERT_TRUE(discovery.Resolve("pods").ok());
  EXPECT_EQ(fetches_["/api"], 1);
  EXPECT_EQ(fetches_["/api/v1"], 1);
  clock_.Step(10min);
  ASSERT_TRUE(discovery.Resolve("pods").ok());
  EXPECT_EQ(fetches_["/api"], 2);
  EXPECT_EQ(fetches_["/api/v1"], 2);
}

TEST_F(DiscoveryTest, MissRefreshesOnceToFindNewCrd) {
  Discovery discovery(*client_, clock_);
  auto before = discovery.Resolve("widgets");
  ASSERT_FALSE(before.ok());
  EXPECT_TRUE(IsNotFound(before.error()));
  EXPECT_EQ(before.error().message(), "the server doesn't have a resource type \"widgets\"");
  InstallCrd();
  auto after = discovery.Resolve("widgets");
  ASSERT_TRUE(after.ok()) << after.error().ToString();
  EXPECT_EQ(after->group, "example.gpuautoscaler.io");
  EXPECT_EQ(after->version, "v1alpha1");
  EXPECT_TRUE(after->namespaced);
}

TEST_F(DiscoveryTest, UnknownKindIsNotFound) {
  Discovery discovery(*client_, clock_);
  auto gvr = discovery.ResolveKind({"apps", "v1", "Nope"});
  ASSERT_FALSE(gvr.ok());
  EXPECT_TRUE(IsNotFound(gvr.error()));
}

TEST_F(DiscoveryTest, ServerErrorsPropagate) {
  fake_->Respond(403, R"({"kind":"Status","code":403,"reason":"Forbidden","message":"no"})");
  Discovery discovery(*client_, clock_);
  auto gvr = discovery.Resolve("pods");
  ASSERT_FALSE(gvr.ok());
  EXPECT_TRUE(IsForbidden(gvr.error()));
}

}  // namespace
}  // namespace gpu_autoscaler::kube
