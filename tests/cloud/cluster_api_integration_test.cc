// The Cluster API provider against the repository's API server (a real
// process over HTTP): Cluster API's CRDs with their scale subresource, a
// MachineDeployment annotated the way Cluster Autoscaler expects, and its
// Machines. Checks what the provider reads and exactly what it writes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <thread>

#include "apiserver/yaml_json.h"
#include "cloud/cluster_api.h"
#include "common/failpoint.h"
#include "kube/conditions.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/crd_apply.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::cloud {
namespace {

using nlohmann::json;

const kube::GroupVersionResource kMachineDeployments{"cluster.x-k8s.io", "v1beta1",
                                                     "machinedeployments"};
const kube::GroupVersionResource kMachines{"cluster.x-k8s.io", "v1beta1", "machines"};

const json kSized = {{"cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size", "1"},
                     {"cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size", "5"}};

class ClusterApiProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::shared_ptr<kube::RestClient>(std::move(client).value());
    auto docs = apiserver::YamlDocumentsToJson(
        testing::ReadFileOrDie(testing::SourcePath("tests/data/capi/crds.yaml")));
    ASSERT_TRUE(docs.ok());
    for (const json& crd : *docs) {
      ASSERT_TRUE(testing::ApplyCrdAndWait(*client_, crd).ok()) << crd["metadata"]["name"];
    }
    ns_ = server_->CreateTestNamespace("capi");
    provider_ = NewClusterApiProvider(client_, {});
  }

  void CreateDeployment(const std::string& name, int replicas, json annotations) {
    json md = {{"apiVersion", "cluster.x-k8s.io/v1beta1"},
               {"kind", "MachineDeployment"},
               {"metadata", {{"name", name}, {"namespace", ns_}, {"annotations", annotations}}},
               {"spec", {{"clusterName", "work"}, {"replicas", replicas}}}};
    auto created = client_->Create({kMachineDeployments, ns_}, md);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
  }

  // `joined`: its Node has registered (status.nodeRef), as Cluster API
  // records it; until then the MachineSet deletes the Machine first.
  void CreateMachine(const std::string& name, const std::string& deployment,
                     const std::string& provider_id, const std::string& zone, bool joined = true) {
    json m = {
        {"apiVersion", "cluster.x-k8s.io/v1beta1"},
        {"kind", "Machine"},
        {"metadata",
         {{"name", name},
          {"namespace", ns_},
          {"labels", {{"cluster.x-k8s.io/deployment-name", deployment}}}}},
        {"spec", {{"clusterName", "work"}, {"providerID", provider_id}, {"failureDomain", zone}}}};
    auto created = client_->Create({kMachines, ns_}, m);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    if (!joined) return;
    (*created)["status"] = {{"nodeRef", {{"kind", "Node"}, {"name", name}}}};
    auto status = client_->Replace({kMachines, ns_, name, "status"}, *created);
    ASSERT_TRUE(status.ok()) << status.error().ToString();
  }

  json GetDeployment(const std::string& name) {
    auto got = client_->Get({kMachineDeployments, ns_, name});
    EXPECT_TRUE(got.ok());
    return got.ok() ? *got : json();
  }

  std::string Group(const std::string& name) { return "MachineDeployment/" + ns_ + "/" + name; }

  bool IsMarked(const std::string& machine) {
    auto m = client_->Get({kMachines, ns_, machine});
    EXPECT_TRUE(m.ok()) << machine;
    return m.ok() && (*m)["metadata"]
                         .value("annotations", json::object())
                         .contains("cluster.x-k8s.io/delete-machine");
  }

  void Mark(const std::string& machine) {
    auto patched = client_->Patch(
        {kMachines, ns_, machine}, kube::PatchType::kMerge,
        R"({"metadata":{"annotations":{"cluster.x-k8s.io/delete-machine":"by hand"}}})");
    ASSERT_TRUE(patched.ok()) << patched.error().ToString();
  }

  void SetReplicas(const std::string& deployment, int replicas) {
    auto patched = client_->Patch({kMachineDeployments, ns_, deployment}, kube::PatchType::kMerge,
                                  json{{"spec", {{"replicas", replicas}}}}.dump());
    ASSERT_TRUE(patched.ok()) << patched.error().ToString();
  }

  // Terminating `ids` (b by default) waits: Unavailable, saying `why`; b is
  // not marked and the replicas are still 3.
  void ExpectShrinkWaits(const std::string& why,
                         const std::vector<std::string>& ids = {"gce://p/z/b"}) {
    Status waits = provider_->TerminateInstances(Group("gpu"), ids, true);
    EXPECT_EQ(ClassifyProviderError(waits), ProviderErrorKind::kUnavailable);
    EXPECT_NE(waits.message().find(why), std::string::npos) << waits.message();
    EXPECT_FALSE(IsMarked("gpu-b"));
    EXPECT_EQ(GetDeployment("gpu")["spec"]["replicas"], 3);
  }

  // Three Machines a, b, c of a MachineDeployment "gpu" at 3 replicas.
  void CreateThreeMachines() {
    CreateDeployment("gpu", 3, kSized);
    for (const char* name : {"a", "b", "c"}) {
      CreateMachine(std::string("gpu-") + name, "gpu", std::string("gce://p/z/") + name, "z");
    }
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::shared_ptr<kube::RestClient> client_;
  std::unique_ptr<NodeGroupProvider> provider_;
  std::string ns_;
};

TEST_F(ClusterApiProviderTest, DescribesSizeLimitsReplicasAndMachines) {
  CreateDeployment("gpu-a100", 2, kSized);
  CreateMachine("gpu-a100-x1", "gpu-a100", "aws:///us-east-1a/i-01", "us-east-1a");
  CreateMachine("gpu-a100-x2", "gpu-a100", "aws:///us-east-1b/i-02", "us-east-1b");
  CreateMachine("other-x1", "other", "aws:///us-east-1a/i-99", "us-east-1a");

  auto group = provider_->Describe(Group("gpu-a100"));
  ASSERT_TRUE(group.ok()) << group.error().ToString();
  EXPECT_EQ(group->min, 1);
  EXPECT_EQ(group->max, 5);
  EXPECT_EQ(group->desired, 2);
  ASSERT_EQ(group->instances.size(), 2u);  // not the other deployment's Machine
  std::set<std::string> ids, zones;
  for (const Instance& i : group->instances) {
    ids.insert(i.id);
    zones.insert(i.zone);
    EXPECT_EQ(i.id, i.provider_id);
  }
  EXPECT_EQ(ids, (std::set<std::string>{"aws:///us-east-1a/i-01", "aws:///us-east-1b/i-02"}));
  EXPECT_EQ(zones, (std::set<std::string>{"us-east-1a", "us-east-1b"}));
  EXPECT_EQ(*provider_->InstanceIdFromProviderId("aws:///us-east-1a/i-01"),
            "aws:///us-east-1a/i-01");
}

TEST_F(ClusterApiProviderTest, ScalesThroughTheScaleSubresourceWithinLimits) {
  CreateDeployment("gpu-h100", 1, kSized);
  ASSERT_TRUE(provider_->SetDesiredSize(Group("gpu-h100"), 4).ok());
  EXPECT_EQ(GetDeployment("gpu-h100")["spec"]["replicas"], 4);
  EXPECT_EQ((*provider_->Describe(Group("gpu-h100"))).desired, 4);
  // Zero replicas must be written, not omitted.
  CreateDeployment("gpu-zero", 1,
                   {{"cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size", "0"},
                    {"cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size", "3"}});
  ASSERT_TRUE(provider_->SetDesiredSize(Group("gpu-zero"), 0).ok());
  EXPECT_EQ(GetDeployment("gpu-zero")["spec"]["replicas"], 0);

  Status above = provider_->SetDesiredSize(Group("gpu-h100"), 6);
  EXPECT_EQ(ClassifyProviderError(above), ProviderErrorKind::kInvalid);
  EXPECT_NE(above.message().find("outside [1, 5]"), std::string::npos) << above.message();
  EXPECT_EQ(GetDeployment("gpu-h100")["spec"]["replicas"], 4);  // unchanged
}

// A resize from the size the caller read: refused when the group has been
// resized since (before the write, or between the read and the write).
TEST_F(ClusterApiProviderTest, AResizeFromAStaleSizeLeavesTheOtherWritersSize) {
  CreateDeployment("gpu-h100", 1, kSized);
  ASSERT_TRUE(provider_->ResizeFrom(Group("gpu-h100"), 1, 3).ok());
  EXPECT_EQ(GetDeployment("gpu-h100")["spec"]["replicas"], 3);

  Status stale = provider_->ResizeFrom(Group("gpu-h100"), 1, 2);
  EXPECT_EQ(ClassifyProviderError(stale), ProviderErrorKind::kConflict);
  EXPECT_NE(stale.message().find("replicas are 3, not the 1 read before"), std::string::npos)
      << stale.message();
  EXPECT_EQ(GetDeployment("gpu-h100")["spec"]["replicas"], 3);

  // Someone scales between the provider's read and its write: the write's
  // resourceVersion precondition fails, and their size stands.
  ASSERT_TRUE(failpoint::Configure("cluster_api.resize.before_scale=sleep(2000)").ok());
  Status raced;
  std::thread provider([&] { raced = provider_->ResizeFrom(Group("gpu-h100"), 3, 4); });
  while (failpoint::HitCount("cluster_api.resize.before_scale") == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  SetReplicas("gpu-h100", 5);
  provider.join();
  ASSERT_TRUE(failpoint::Configure("").ok());
  EXPECT_EQ(ClassifyProviderError(raced), ProviderErrorKind::kConflict) << raced.message();
  EXPECT_EQ(GetDeployment("gpu-h100")["spec"]["replicas"], 5);

  Status above = provider_->ResizeFrom(Group("gpu-h100"), 5, 6);
  EXPECT_EQ(ClassifyProviderError(above), ProviderErrorKind::kInvalid);
}

TEST_F(ClusterApiProviderTest, TerminatingWithDecrementMarksMachinesThenShrinks) {
  CreateDeployment("gpu-l4", 3, kSized);
  CreateMachine("gpu-l4-a", "gpu-l4", "gce://p/us-central1-a/a", "us-central1-a");
  CreateMachine("gpu-l4-b", "gpu-l4", "gce://p/us-central1-a/b", "us-central1-a");
  CreateMachine("gpu-l4-c", "gpu-l4", "gce://p/us-central1-a/c", "us-central1-a");

  ASSERT_TRUE(provider_
                  ->TerminateInstances(Group("gpu-l4"), {"gce://p/us-central1-a/b"},
                                       /*decrement_desired=*/true)
                  .ok());
  EXPECT_EQ(GetDeployment("gpu-l4")["spec"]["replicas"], 2);
  for (const char* name : {"gpu-l4-a", "gpu-l4-b", "gpu-l4-c"}) {
    auto m = client_->Get({kMachines, ns_, name});
    ASSERT_TRUE(m.ok());
    const bool marked = (*m)["metadata"]
                            .value("annotations", json::object())
                            .contains("cluster.x-k8s.io/delete-machine");
    EXPECT_EQ(marked, std::string(name) == "gpu-l4-b") << name;
  }

  // Without decrementing, the Machine goes and the MachineSet would replace it.
  ASSERT_TRUE(provider_
                  ->TerminateInstances(Group("gpu-l4"), {"gce://p/us-central1-a/c"},
                                       /*decrement_desired=*/false)
                  .ok());
  EXPECT_FALSE(client_->Get({kMachines, ns_, "gpu-l4-c"}).ok());
  EXPECT_EQ(GetDeployment("gpu-l4")["spec"]["replicas"], 2);

  // Below the minimum is refused before anything is marked.
  Status below = provider_->TerminateInstances(
      Group("gpu-l4"), {"gce://p/us-central1-a/a", "gce://p/us-central1-a/b"}, true);
  EXPECT_EQ(ClassifyProviderError(below), ProviderErrorKind::kInvalid);
  EXPECT_NE(below.message().find("below the minimum size 1"), std::string::npos);
  auto a = client_->Get({kMachines, ns_, "gpu-l4-a"});
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE((*a)["metadata"]
                   .value("annotations", json::object())
                   .contains("cluster.x-k8s.io/delete-machine"));

  Status unknown = provider_->TerminateInstances(Group("gpu-l4"), {"gce://p/z/nope"}, true);
  EXPECT_EQ(ClassifyProviderError(unknown), ProviderErrorKind::kNotFound);
}

// The replicas read before marking are a precondition of the shrink: a writer
// that changes them in between wins, and the mark is taken back.
TEST_F(ClusterApiProviderTest, AReplicaChangeBetweenMarkAndShrinkWinsAndTheMarkIsTakenBack) {
  CreateThreeMachines();
  ASSERT_TRUE(failpoint::Configure("cluster_api.terminate.before_scale=sleep(2000)").ok());
  Status terminated;
  std::thread provider(
      [&] { terminated = provider_->TerminateInstances(Group("gpu"), {"gce://p/z/b"}, true); });
  while (failpoint::HitCount("cluster_api.terminate.before_scale") == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(IsMarked("gpu-b"));  // marked, replicas not yet lowered
  SetReplicas("gpu", 4);           // another writer scales up meanwhile
  provider.join();
  ASSERT_TRUE(failpoint::Configure("").ok());

  EXPECT_EQ(ClassifyProviderError(terminated), ProviderErrorKind::kConflict);
  EXPECT_NE(terminated.message().find("scale MachineDeployment " + ns_ + "/gpu to 2"),
            std::string::npos)
      << terminated.message();
  EXPECT_EQ(GetDeployment("gpu")["spec"]["replicas"], 4);  // not 2: the writer's value stands
  EXPECT_FALSE(IsMarked("gpu-b"));
}

TEST_F(ClusterApiProviderTest, AFailedShrinkTakesBackOnlyTheMarksItWrote) {
  CreateThreeMachines();
  SetReplicas("gpu", 2);
  Mark("gpu-a");  // someone's scale-down in progress: a marked, replicas lowered
  ASSERT_TRUE(failpoint::Configure("cluster_api.terminate.before_scale=error").ok());
  Status failed = provider_->TerminateInstances(Group("gpu"), {"gce://p/z/b"}, true);
  ASSERT_TRUE(failpoint::Configure("").ok());
  EXPECT_FALSE(failed.ok());
  EXPECT_FALSE(IsMarked("gpu-b"));
  EXPECT_TRUE(IsMarked("gpu-a"));
  EXPECT_EQ(GetDeployment("gpu")["spec"]["replicas"], 2);

  // The same call without the failure: a's mark is paid for by the replicas,
  // so b is marked and the replicas go down by one.
  ASSERT_TRUE(provider_->TerminateInstances(Group("gpu"), {"gce://p/z/b"}, true).ok());
  EXPECT_TRUE(IsMarked("gpu-b"));
  EXPECT_EQ(GetDeployment("gpu")["spec"]["replicas"], 1);
}

// A mark the replicas do not pay for: lowering them would let the MachineSet
// delete that Machine rather than the one asked for.
TEST_F(ClusterApiProviderTest, AnUnpaidMarkStopsTheShrinkUntilItsScaleDownIsDone) {
  CreateThreeMachines();
  Mark("gpu-a");  // annotated by hand; the replicas are still 3
  ExpectShrinkWaits("delete Machine(s) gpu-a first");

  // Asking for the marked Machine itself is fine.
  ASSERT_TRUE(provider_->TerminateInstances(Group("gpu"), {"gce://p/z/a"}, true).ok());
  EXPECT_EQ(GetDeployment("gpu")["spec"]["replicas"], 2);
  // Now the replicas count a as going, and b may follow.
  ASSERT_TRUE(provider_->TerminateInstances(Group("gpu"), {"gce://p/z/b"}, true).ok());
  EXPECT_EQ(GetDeployment("gpu")["spec"]["replicas"], 1);
  EXPECT_FALSE(IsMarked("gpu-c"));
}

TEST_F(ClusterApiProviderTest, WhileMachinesAreOwedAShrinkWouldDeleteNothingAndWaits) {
  CreateDeployment("gpu", 3, kSized);
  CreateMachine("gpu-a", "gpu", "gce://p/z/a", "z");
  CreateMachine("gpu-b", "gpu", "gce://p/z/b", "z");  // the third is not created yet
  ExpectShrinkWaits("replicas is 3 but 2 Machines exist");

  // Created but its Node not registered yet: the MachineSet would delete it
  // before the marked one, so the shrink waits for the Node.
  CreateMachine("gpu-c", "gpu", "gce://p/z/c", "z", /*joined=*/false);
  ExpectShrinkWaits("delete Machine(s) gpu-c first");
}

TEST_F(ClusterApiProviderTest, AnUnhealthyMachineGoesFirstSoTheShrinkWaits) {
  CreateThreeMachines();
  auto c = client_->Get({kMachines, ns_, "gpu-c"});
  ASSERT_TRUE(c.ok());
  (*c)["status"]["conditions"] = {{{"type", "NodeHealthy"}, {"status", "False"}}};
  ASSERT_TRUE(client_->Replace({kMachines, ns_, "gpu-c", "status"}, *c).ok());
  ExpectShrinkWaits("delete Machine(s) gpu-c first");
  // Asked for the unhealthy one itself, nothing stands ahead of it.
  ASSERT_TRUE(provider_->TerminateInstances(Group("gpu"), {"gce://p/z/c"}, true).ok());
  EXPECT_EQ(GetDeployment("gpu")["spec"]["replicas"], 2);
}

TEST_F(ClusterApiProviderTest, AMachineAlreadyBeingDeletedIsNotCountedTwice) {
  CreateThreeMachines();
  // Cluster API's finalizer keeps a deleted Machine while its Node drains.
  ASSERT_TRUE(client_
                  ->Patch({kMachines, ns_, "gpu-c"}, kube::PatchType::kMerge,
                          R"({"metadata":{"finalizers":["machine.cluster.x-k8s.io"]}})")
                  .ok());
  ASSERT_TRUE(client_->Delete({kMachines, ns_, "gpu-c"}).ok());
  auto group = provider_->Describe(Group("gpu"));
  ASSERT_TRUE(group.ok()) << group.error().ToString();
  for (const Instance& i : group->instances) {
    EXPECT_EQ(i.state, i.id == "gce://p/z/c" ? "Deleting" : "") << i.id;
  }
  ASSERT_TRUE(provider_->TerminateInstances(Group("gpu"), {"gce://p/z/c"}, true).ok());
  EXPECT_EQ(GetDeployment("gpu")["spec"]["replicas"], 3);  // its MachineSet replaces it
  EXPECT_FALSE(IsMarked("gpu-c"));
  // The MachineSet still counts c against the replicas and would take it
  // first, so b waits until c is gone.
  ExpectShrinkWaits("delete Machine(s) gpu-c first", {"gce://p/z/c", "gce://p/z/b"});
}

TEST_F(ClusterApiProviderTest, UnmanagedMissingAndMalformedGroupsGetReasons) {
  CreateDeployment("no-annotations", 1, json::object());
  Status unmanaged = provider_->Describe(Group("no-annotations")).error();
  EXPECT_EQ(ClassifyProviderError(unmanaged), ProviderErrorKind::kInvalid);
  EXPECT_NE(unmanaged.message().find("is not managed"), std::string::npos);

  CreateDeployment("inverted", 1,
                   {{"cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size", "4"},
                    {"cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size", "2"}});
  EXPECT_NE(provider_->Describe(Group("inverted")).error().message().find("above max size"),
            std::string::npos);

  EXPECT_EQ(ClassifyProviderError(provider_->Describe(Group("missing")).error()),
            ProviderErrorKind::kNotFound);
  EXPECT_EQ(ClassifyProviderError(provider_->Describe("Deployment/x/y").error()),
            ProviderErrorKind::kInvalid);
  EXPECT_EQ(ClassifyProviderError(provider_->Describe("only-a-name").error()),
            ProviderErrorKind::kInvalid);
}

}  // namespace
}  // namespace gpu_autoscaler::cloud
