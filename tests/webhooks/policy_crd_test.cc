// The GPUSharingPolicy CRD in crds/ against the repository's API server (the
// one tests start; it registers every CRD in crds/ and enforces structural
// schemas): the examples in docs/examples are accepted and parse as policies,
// out-of-range values are refused by the schema, and status is a subresource.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "apiserver/yaml_json.h"
#include "kube/conditions.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/crd_apply.h"
#include "support/test_paths.h"
#include "webhooks/admission_service.h"

namespace gpu_autoscaler::webhooks {
namespace {

using nlohmann::json;

const kube::GroupVersionResource kPolicies{"gpuautoscaler.io", "v1alpha1", "gpusharingpolicies",
                                           /*namespaced=*/false};

json LoadYaml(const std::string& relative) {
  auto docs = apiserver::YamlDocumentsToJson(testing::ReadFileOrDie(testing::SourcePath(relative)));
  EXPECT_TRUE(docs.ok()) << relative;
  EXPECT_EQ(docs->size(), 1u);
  return docs->at(0);
}

class PolicyCrdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(client).value();
    // Apply the CRD from crds/ (a real cluster may not have it yet) and wait
    // until it is Established, as kubectl wait --for=condition=Established.
    json crd = LoadYaml("crds/gpusharingpolicy.yaml");
    ASSERT_TRUE(testing::ApplyCrdAndWait(*client_, crd).ok());
  }

  // A unique name, so that a shared real cluster is not disturbed.
  std::string Unique(const std::string& name) {
    return name + "-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
           std::to_string(counter_++);
  }

  void TearDown() override {
    for (const std::string& name : created_)
      (void)client_->Delete({kPolicies, "", name});
  }

  kube::Result<json> Create(json policy) {
    policy["metadata"]["name"] = Unique(policy["metadata"]["name"]);
    auto out = client_->Create({kPolicies}, policy);
    if (out.ok()) created_.push_back((*out)["metadata"]["name"]);
    return out;
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::vector<std::string> created_;
  int counter_ = 0;
};

TEST_F(PolicyCrdTest, CrdIsRegisteredWithPrinterColumns) {
  auto crd = client_->Get(
      {kube::resources::kCustomResourceDefinitions, "", "gpusharingpolicies.gpuautoscaler.io"});
  ASSERT_TRUE(crd.ok()) << crd.error().message();
  const json& version = (*crd)["spec"]["versions"][0];
  EXPECT_EQ(version["name"], "v1alpha1");
  EXPECT_EQ((*crd)["spec"]["scope"], "Cluster");
  std::vector<std::string> columns;
  for (const json& c : version["additionalPrinterColumns"])
    columns.push_back(c["name"]);
  EXPECT_EQ(columns, (std::vector<std::string>{"Strategy", "Priority", "Matched", "Age"}));
  EXPECT_TRUE(version["subresources"].contains("status"));
}

TEST_F(PolicyCrdTest, ExamplesAreAcceptedAndParse) {
  for (const char* file :
       {"docs/examples/gpusharingpolicy-mig.yaml", "docs/examples/gpusharingpolicy-mps.yaml",
        "docs/examples/gpusharingpolicy-timeslicing.yaml",
        "docs/examples/gpusharingpolicy-exclusive.yaml"}) {
    json example = LoadYaml(file);
    auto created = Create(example);
    ASSERT_TRUE(created.ok()) << file << ": " << created.error().message();
    EXPECT_EQ((*created)["spec"]["strategy"], example["spec"]["strategy"]);
    // What the informer will hand to the webhook parses without problems.
    auto policy = AdmissionService::ParsePolicy(created->dump());
    EXPECT_TRUE(policy.ok()) << file << ": " << policy.error().message();
  }
}

TEST_F(PolicyCrdTest, SchemaRefusesOutOfRangeValues) {
  json base = LoadYaml("docs/examples/gpusharingpolicy-timeslicing.yaml");
  struct Case {
    std::string pointer;
    json value;
    std::string field;  // named in the error
  };
  for (const Case& c : std::vector<Case>{
           {"/spec/strategy/timeSlicing/replicas", 65, "spec.strategy.timeSlicing.replicas"},
           {"/spec/strategy/timeSlicing/replicas", 1, "spec.strategy.timeSlicing.replicas"},
           {"/spec/strategy/type", "vgpu", "spec.strategy.type"},
           // The real server names the list for an enum value in it.
           {"/spec/gpuModels/0", "T4", "spec.gpuModels: Unsupported value: \"T4\""},
           {"/spec/strategy/mps", json{{"maxClients", 49}}, "spec.strategy.mps.maxClients"},
           {"/spec/strategy/mps", json{{"maxClients", 4}, {"activeThreadPercentage", 0}},
            "spec.strategy.mps.activeThreadPercentage"},
       }) {
    json bad = base;
    bad[json::json_pointer(c.pointer)] = c.value;
    auto created = Create(bad);
    ASSERT_FALSE(created.ok()) << c.pointer << " = " << c.value.dump();
    EXPECT_EQ(created.error().code(), 422) << created.error().message();
    EXPECT_NE(created.error().message().find(c.field), std::string::npos)
        << created.error().message();
  }
}

TEST_F(PolicyCrdTest, StatusIsASubresource) {
  auto created = Create(LoadYaml("docs/examples/gpusharingpolicy-mig.yaml"));
  ASSERT_TRUE(created.ok()) << created.error().message();
  json with_status = *created;
  with_status["status"] = {{"matchedPods", 3},
                           {"observedGeneration", 1},
                           {"conditions",
                            {{{"type", "Ready"},
                              {"status", "True"},
                              {"reason", "Serving"},
                              {"lastTransitionTime", "2026-01-01T00:00:00Z"}}}}};
  const std::string name = (*created)["metadata"]["name"];
  auto updated = client_->Replace({kPolicies, "", name, "status"}, with_status);
  ASSERT_TRUE(updated.ok()) << updated.error().message();
  EXPECT_EQ((*updated)["status"]["matchedPods"], 3);
  // A status written through the main resource is ignored.
  json spec_write = *updated;
  spec_write["status"]["matchedPods"] = 99;
  auto replaced = client_->Replace({kPolicies, "", name}, spec_write);
  ASSERT_TRUE(replaced.ok()) << replaced.error().message();
  EXPECT_EQ((*replaced)["status"]["matchedPods"], 3);
}

}  // namespace
}  // namespace gpu_autoscaler::webhooks
