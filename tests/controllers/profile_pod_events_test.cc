// Pod events -> ServiceProfile keys: the owner chain, the target index, and
// which pod updates matter. Expected keys worked out by hand from the
// owner-reference rules in controllers/profile_pod_events.h.
#include "controllers/profile_pod_events.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "controllers/service_profile_controller.h"
#include "kube/object_codec.h"

namespace gpu_autoscaler::controllers {
namespace {

using nlohmann::json;
using reconcile::OwnerInfo;

std::vector<std::string> Keys(std::vector<OwnerInfo> owners) {
  return PodTargetKeys("ml", owners);
}

TEST(PodTargetKeys, FollowsTheControllerOwner) {
  EXPECT_EQ(Keys({{"batch/v1", "Job", "train", true}}), std::vector<std::string>{"ml/Job/train"});
  EXPECT_EQ(Keys({{"apps/v1", "StatefulSet", "db", true}}),
            std::vector<std::string>{"ml/StatefulSet/db"});
  // Pod -> ReplicaSet -> Deployment: the ReplicaSet's name less its hash.
  EXPECT_EQ(Keys({{"apps/v1", "ReplicaSet", "web-api-7d9f8b6c5", true}}),
            (std::vector<std::string>{"ml/ReplicaSet/web-api-7d9f8b6c5", "ml/Deployment/web-api"}));
  // A controller reference wins over other owners; without one, all count.
  EXPECT_EQ(Keys({{"v1", "ConfigMap", "c", false}, {"batch/v1", "Job", "train", true}}),
            std::vector<std::string>{"ml/Job/train"});
  EXPECT_EQ(Keys({{"example.com/v1", "Trainer", "t", false}}),
            std::vector<std::string>{"ml/Trainer/t"});
  EXPECT_TRUE(Keys({}).empty());
  // A ReplicaSet name without a suffix names no Deployment.
  EXPECT_EQ(Keys({{"apps/v1", "ReplicaSet", "plain", true}}),
            std::vector<std::string>{"ml/ReplicaSet/plain"});
}

std::shared_ptr<const kube::GenericObject> Profile(const std::string& name, json target) {
  json obj = {{"apiVersion", "gpuautoscaler.io/v1alpha1"},
              {"kind", "ServiceProfile"},
              {"metadata", {{"name", name}, {"namespace", "ml"}, {"resourceVersion", "1"}}},
              {"spec", {{"targetRef", std::move(target)}}}};
  auto decoded = kube::DecodeGenericObject(obj.dump());
  EXPECT_TRUE(decoded.ok());
  return std::make_shared<const kube::GenericObject>(std::move(*decoded));
}

TEST(ProfilesOwningPod, FindsTheProfileOfTheOwningWorkloadByIndex) {
  kube::Store<kube::GenericObject> profiles;
  ASSERT_TRUE(profiles.AddIndex(kProfilesByTargetIndex, ProfileTargetIndexFunc()).ok());
  profiles.Upsert(Profile("train", {{"apiVersion", "batch/v1"}, {"kind", "Job"}, {"name", "t1"}}));
  profiles.Upsert(Profile("web", {{"kind", "Deployment"}, {"name", "web"}}));
  profiles.Upsert(Profile("broken", {{"kind", 7}}));  // indexed under nothing
  auto mapper = ProfilesOwningPod(profiles);

  auto requests = mapper({"ml", "t1-abcde", {{"batch/v1", "Job", "t1", true}}});
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].Key(), "ml/train");
  requests = mapper({"ml", "web-5c7f9-x", {{"apps/v1", "ReplicaSet", "web-5c7f9", true}}});
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].Key(), "ml/web");
  // Same names in another namespace, and pods of unprofiled workloads: nothing.
  EXPECT_TRUE(mapper({"other", "t1-x", {{"batch/v1", "Job", "t1", true}}}).empty());
  EXPECT_TRUE(mapper({"ml", "db-0", {{"apps/v1", "StatefulSet", "db", true}}}).empty());
  EXPECT_TRUE(mapper({"ml", "bare", {}}).empty());
}

kube::PodView Pod(json patch) {
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata",
               {{"name", "t1-abcde"},
                {"namespace", "ml"},
                {"uid", "p1"},
                {"resourceVersion", "5"},
                {"labels", {{"job-name", "t1"}}},
                {"ownerReferences", json::array({{{"apiVersion", "batch/v1"},
                                                  {"kind", "Job"},
                                                  {"name", "t1"},
                                                  {"uid", "j1"},
                                                  {"controller", true}}})}}},
              {"spec", {{"containers", json::array({{{"name", "main"}, {"image", "x"}}})}}},
              {"status", {{"phase", "Pending"}}}};
  pod.merge_patch(patch);
  auto decoded = kube::DecodePod(pod.dump());
  EXPECT_TRUE(decoded.ok()) << decoded.error().ToString() << " " << pod.dump();
  return std::move(*decoded);
}

TEST(PodChangeMatters, OnlyWhatAProfileReads) {
  const kube::PodView base = Pod(json::object());
  EXPECT_FALSE(PodChangeMatters(base, Pod(json::object())));
  EXPECT_FALSE(PodChangeMatters(
      base, Pod({{"status", {{"conditions", json::parse(R"([{"type":"Ready","status":"True"}])")}}},
                 {"metadata", {{"resourceVersion", "6"}}}})));
  EXPECT_TRUE(PodChangeMatters(base, Pod({{"status", {{"phase", "Running"}}}})));
  EXPECT_TRUE(PodChangeMatters(base, Pod({{"metadata", {{"labels", {{"job-name", "t2"}}}}}})));
  EXPECT_TRUE(
      PodChangeMatters(base, Pod({{"metadata", {{"deletionTimestamp", "2027-01-15T08:00:00Z"}}}})));
  EXPECT_TRUE(PodChangeMatters(base, Pod({{"spec", {{"nodeName", "gpu-1"}}}})));
  EXPECT_TRUE(PodChangeMatters(base, Pod({{"metadata", {{"ownerReferences", nullptr}}}})));
}

TEST(DecideServiceProfileStatus, PodsCountFollowsTheTarget) {
  ServiceProfileInput in;
  in.generation = 1;
  in.spec = *profiling::ParseServiceProfileSpec(
      json{{"targetRef", {{"apiVersion", "batch/v1"}, {"kind", "Job"}, {"name", "t1"}}}});
  in.target_found = true;
  in.selector = "controller-uid=j1";
  in.matched_pods = 3;
  in.now = 1'800'000'000;
  ServiceProfilePlan plan = DecideServiceProfileStatus(in);
  EXPECT_EQ(plan.status["pods"], 3);
  EXPECT_EQ(plan.status["targetSelector"], "controller-uid=j1");

  in.status = plan.status;
  in.matched_pods = 4;  // a new pod: a status change to write
  plan = DecideServiceProfileStatus(in);
  EXPECT_EQ(plan.status["pods"], 4);
  EXPECT_NE(plan.status, in.status);

  in.status = plan.status;
  in.target_found = false;
  in.target_problem = "Job ml/t1 not found";
  plan = DecideServiceProfileStatus(in);
  EXPECT_FALSE(plan.status.contains("pods"));
  EXPECT_FALSE(plan.status.contains("targetSelector"));
}

}  // namespace
}  // namespace gpu_autoscaler::controllers
