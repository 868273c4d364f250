// The ServiceProfile CRD in crds/ against the repository's API server (a real
// process that registers every CRD in crds/ and enforces structural schemas):
// the example is accepted, bad values are refused with the field named, and
// status (recommendations, conditions) is a subresource.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "apiserver/yaml_json.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "support/api_server_fixture.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::profiling {
namespace {

using nlohmann::json;

const kube::GroupVersionResource kProfiles{"gpuautoscaler.io", "v1alpha1", "serviceprofiles",
                                           /*namespaced=*/true};

json Example() {
  auto docs = apiserver::YamlDocumentsToJson(
      testing::ReadFileOrDie(testing::SourcePath("docs/examples/serviceprofile.yaml")));
  EXPECT_TRUE(docs.ok());
  EXPECT_EQ(docs->size(), 1u);
  return docs->at(0);
}

class ServiceProfileCrdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(client).value();
    ns_ = server_->CreateTestNamespace("sprof");
  }

  kube::Result<json> Create(json profile, const std::string& name) {
    profile["metadata"]["name"] = name;
    return client_->Create({kProfiles, ns_}, profile);
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::string ns_;
};

TEST_F(ServiceProfileCrdTest, CrdIsRegisteredWithPrinterColumns) {
  auto crd = client_->Get(
      {kube::resources::kCustomResourceDefinitions, "", "serviceprofiles.gpuautoscaler.io"});
  ASSERT_TRUE(crd.ok()) << crd.error().message();
  EXPECT_EQ((*crd)["spec"]["scope"], "Namespaced");
  const json& version = (*crd)["spec"]["versions"][0];
  std::vector<std::string> columns;
  for (const json& c : version["additionalPrinterColumns"])
    columns.push_back(c["name"]);
  EXPECT_EQ(columns,
            (std::vector<std::string>{"Target", "Workload", "Mode", "Pods", "Ready", "Age"}));
  EXPECT_TRUE(version["subresources"].contains("status"));
}

TEST_F(ServiceProfileCrdTest, ExampleIsAccepted) {
  auto created = Create(Example(), "llm-server");
  ASSERT_TRUE(created.ok()) << created.error().message();
  EXPECT_EQ((*created)["spec"]["targetRef"]["kind"], "Deployment");
  EXPECT_EQ((*created)["spec"]["updateMode"], "Initial");
}

TEST_F(ServiceProfileCrdTest, SchemaRefusesBadValues) {
  const json base = Example();
  struct Case {
    std::string pointer;
    json value;
    std::string field;  // named in the error
  };
  int i = 0;
  for (const Case& c : std::vector<Case>{
           {"/spec/updateMode", "Sometimes", "spec.updateMode"},
           {"/spec/targetRef/name", "", "spec.targetRef.name"},
           {"/spec/metrics/0", "disk", "spec.metrics"},
           {"/spec/halfLife", "one day", "spec.halfLife"},
           {"/spec/allowedShares", json::array({"vgpu"}), "spec.allowedShares"},
       }) {
    json bad = base;
    bad[json::json_pointer(c.pointer)] = c.value;
    auto created = Create(bad, "bad-" + std::to_string(i++));
    ASSERT_FALSE(created.ok()) << c.pointer << " = " << c.value.dump();
    EXPECT_EQ(created.error().code(), 422) << created.error().message();
    EXPECT_NE(created.error().message().find(c.field), std::string::npos)
        << created.error().message();
  }
  json no_target = base;
  no_target["spec"].erase("targetRef");
  auto created = Create(no_target, "no-target");
  ASSERT_FALSE(created.ok());
  EXPECT_NE(created.error().message().find("spec.targetRef"), std::string::npos)
      << created.error().message();
}

TEST_F(ServiceProfileCrdTest, RecommendationsLiveInTheStatusSubresource) {
  auto created = Create(Example(), "llm-server");
  ASSERT_TRUE(created.ok()) << created.error().message();
  json with_status = *created;
  with_status["status"] = {
      {"observedGeneration", 1},
      {"lastRecommendationTime", "2026-12-04T00:00:00Z"},
      {"recommendations",
       {{{"containerName", "server"},
         {"memory", {{"lowerBound", "2Gi"}, {"target", "3Gi"}, {"upperBound", "6Gi"}}},
         {"gpuMemory", {{"lowerBound", "30G"}, {"target", "38G"}}},
         {"gpu",
          {{"share", "mig"},
           {"migProfile", "3g.40gb"},
           {"gpuMemoryLimit", "40G"},
           {"gpuFraction", 0.5},
           {"reason", "fits a MIG slice with headroom"}}}}}},
      {"conditions",
       {{{"type", "RecommendationProvided"},
         {"status", "True"},
         {"reason", "Profiled"},
         {"lastTransitionTime", "2026-12-04T00:00:00Z"}}}}};
  auto updated = client_->Replace({kProfiles, ns_, "llm-server", "status"}, with_status);
  ASSERT_TRUE(updated.ok()) << updated.error().message();
  EXPECT_EQ((*updated)["status"]["recommendations"][0]["gpu"]["migProfile"], "3g.40gb");

  json bad = *updated;
  bad["status"]["recommendations"][0]["gpu"]["mpsThreadPercent"] = 150;
  auto refused = client_->Replace({kProfiles, ns_, "llm-server", "status"}, bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), 422);
  EXPECT_NE(refused.error().message().find("mpsThreadPercent"), std::string::npos)
      << refused.error().message();

  // A status written through the main resource is ignored.
  json spec_write = *updated;
  spec_write["status"]["observedGeneration"] = 99;
  auto replaced = client_->Replace({kProfiles, ns_, "llm-server"}, spec_write);
  ASSERT_TRUE(replaced.ok()) << replaced.error().message();
  EXPECT_EQ((*replaced)["status"]["observedGeneration"], 1);
}

}  // namespace
}  // namespace gpu_autoscaler::profiling
