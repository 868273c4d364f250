// The ReschedulePolicy CRD in crds/ against the repository's API server (a
// real process that registers every CRD in crds/ and enforces structural
// schemas): cluster-scoped with printer columns, the example is accepted,
// bad values are refused with the field named, status is a subresource.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/resources.h"
#include "apiserver/yaml_json.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "support/api_server_fixture.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::controllers {
namespace {

using nlohmann::json;

json Example() {
  auto docs = apiserver::YamlDocumentsToJson(
      testing::ReadFileOrDie(testing::SourcePath("docs/examples/reschedulepolicy.yaml")));
  EXPECT_TRUE(docs.ok());
  EXPECT_EQ(docs->size(), 1u);
  return docs->at(0);
}

class ReschedulePolicyCrdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(client).value();
    prefix_ = server_->CreateTestNamespace("rsp");
  }
  void TearDown() override {
    for (const std::string& name : created_)
      (void)client_->Delete({api::kReschedulePolicies, "", name});
  }

  kube::Result<json> Create(json policy, const std::string& name) {
    policy["metadata"]["name"] = prefix_ + "-" + name;
    auto created = client_->Create({api::kReschedulePolicies, ""}, policy);
    if (created.ok()) created_.push_back(prefix_ + "-" + name);
    return created;
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::string prefix_;
  std::vector<std::string> created_;
};

TEST_F(ReschedulePolicyCrdTest, CrdIsClusterScopedWithPrinterColumns) {
  auto crd = client_->Get(
      {kube::resources::kCustomResourceDefinitions, "", "reschedulepolicies.gpuautoscaler.io"});
  ASSERT_TRUE(crd.ok()) << crd.error().message();
  EXPECT_EQ((*crd)["spec"]["scope"], "Cluster");
  const json& version = (*crd)["spec"]["versions"][0];
  std::vector<std::string> columns;
  for (const json& c : version["additionalPrinterColumns"])
    columns.push_back(c["name"]);
  EXPECT_EQ(columns,
            (std::vector<std::string>{"DryRun", "Planned", "Executed", "Accepted", "Age"}));
  EXPECT_TRUE(version["subresources"].contains("status"));
}

TEST_F(ReschedulePolicyCrdTest, ExampleIsAccepted) {
  auto created = Create(Example(), "example");
  ASSERT_TRUE(created.ok()) << created.error().message();
  EXPECT_EQ((*created)["spec"]["defragmentation"]["maxMovesPerRun"], 2);
  EXPECT_EQ((*created)["spec"]["dryRun"], true);
}

TEST_F(ReschedulePolicyCrdTest, SchemaRefusesBadValues) {
  const json base = Example();
  struct Case {
    std::string pointer;
    json value;
    std::string field;  // named in the error
  };
  int i = 0;
  for (const Case& c : std::vector<Case>{
           {"/spec/intervalSeconds", 0, "spec.intervalSeconds"},
           {"/spec/defragmentation/maxMovesPerRun", -1, "spec.defragmentation.maxMovesPerRun"},
           {"/spec/evictionLimits/perHour", "ten", "spec.evictionLimits.perHour"},
           {"/spec/usageBalancing",
            {{"thresholds", {{"nvidia.com/gpu", 120}}}},
            "spec.usageBalancing.thresholds"},
           {"/spec/dryRun", "yes", "spec.dryRun"},
       }) {
    json bad = base;
    bad[json::json_pointer(c.pointer)] = c.value;
    auto created = Create(bad, "bad-" + std::to_string(i++));
    ASSERT_FALSE(created.ok()) << c.pointer << " = " << c.value.dump();
    EXPECT_EQ(created.error().code(), 422) << created.error().message();
    EXPECT_NE(created.error().message().find(c.field), std::string::npos)
        << created.error().message();
  }
}

TEST_F(ReschedulePolicyCrdTest, PlannedMovesLiveInTheStatusSubresource) {
  auto created = Create(Example(), "status");
  ASSERT_TRUE(created.ok()) << created.error().message();
  json with_status = *created;
  with_status["status"] = {{"observedGeneration", 1},
                           {"lastRun",
                            {{"time", "2026-12-04T00:00:00Z"},
                             {"dryRun", true},
                             {"planned", 1},
                             {"executed", 0},
                             {"recoveredMilliGPU", 667}}},
                           {"plannedMoves",
                            {{{"kind", "Defragmentation"},
                              {"namespace", "inference"},
                              {"pod", "llm-0"},
                              {"fromNode", "gpu-a"},
                              {"toNode", "gpu-b"},
                              {"gainMilliGPU", 667},
                              {"result", "Planned"}}}},
                           {"conditions",
                            {{{"type", "Accepted"},
                              {"status", "True"},
                              {"reason", "Valid"},
                              {"lastTransitionTime", "2026-12-04T00:00:00Z"}}}}};
  const std::string name = (*created)["metadata"]["name"];
  auto updated = client_->Replace({api::kReschedulePolicies, "", name, "status"}, with_status);
  ASSERT_TRUE(updated.ok()) << updated.error().message();
  EXPECT_EQ((*updated)["status"]["plannedMoves"][0]["toNode"], "gpu-b");
  // The main resource ignores status; /status ignores spec.
  json spec_change = *updated;
  spec_change["spec"]["dryRun"] = false;
  auto via_status = client_->Replace({api::kReschedulePolicies, "", name, "status"}, spec_change);
  ASSERT_TRUE(via_status.ok()) << via_status.error().message();
  EXPECT_EQ((*via_status)["spec"]["dryRun"], true);

  json bad = *via_status;
  bad["status"]["plannedMoves"][0]["kind"] = "Teleport";
  auto refused = client_->Replace({api::kReschedulePolicies, "", name, "status"}, bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("status.plannedMoves[0].kind"), std::string::npos)
      << refused.error().message();
}

}  // namespace
}  // namespace gpu_autoscaler::controllers
