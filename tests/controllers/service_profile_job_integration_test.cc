// ServiceProfiles of batch/v1 Jobs end to end through real processes (the
// embedded API server, gpu-autoscaler-manager, gpu-autoscaler-webhook; the
// fixture of service_profile_integration_test.cc): a Job's profile resolves
// the Job's generated selector, gets a recommendation, and a new pod of the
// Job is admitted with it; a profile of a missing Job says so; and with a
// one-hour refresh, a pod created or deleted under the Job (or under a
// Deployment's ReplicaSet) shows in status.pods at once, which only the pod
// watch can explain.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "controllers/service_profile_fixture.h"
#include "profiling/histogram.h"
#include "profiling/service_profile.h"

namespace gpu_autoscaler {
namespace {

using nlohmann::json;
using testing::kCpuCores;
using testing::kOriginalResources;
using testing::kProfiles;
using testing::WaitFor;

const kube::GroupVersionResource kJobs{"batch", "v1", "jobs", true};

class ServiceProfileJobTest : public testing::ServiceProfileTest {
 protected:
  // A Job as kubectl would create it; returns the stored object (its uid
  // and generated selector).
  json CreateJob(const std::string& name, int parallelism) {
    return Create(
        kJobs, ns_,
        {{"apiVersion", "batch/v1"},
         {"kind", "Job"},
         {"metadata", {{"name", name}, {"namespace", ns_}}},
         {"spec",
          {{"parallelism", parallelism},
           {"template",
            {{"spec",
              {{"restartPolicy", "Never"},
               {"containers", json::array({{{"name", "server"}, {"image", "web:1"}}})}}}}}}}});
  }
  // A pod as the Job controller makes it: the template's labels and a
  // controller reference to the Job. `test_label` opts it into the webhooks.
  json JobPod(const json& job, const std::string& name, const std::string& test_label) {
    json pod = testing::Pod(name, ns_, test_label, kOriginalResources);
    const json& meta = job["metadata"];
    pod["metadata"]["labels"].update(job["spec"]["template"]["metadata"]["labels"]);
    pod["metadata"]["ownerReferences"] = json::array({{{"apiVersion", "batch/v1"},
                                                       {"kind", "Job"},
                                                       {"name", meta["name"]},
                                                       {"uid", meta["uid"]},
                                                       {"controller", true},
                                                       {"blockOwnerDeletion", true}}});
    return pod;
  }
  int64_t PodsInStatus(const std::string& profile) {
    const json p = Get(kProfiles, ns_, profile);
    if (!p.is_object()) return -1;
    return p.value("status", json::object()).value("pods", int64_t{-1});
  }
};

TEST_F(ServiceProfileJobTest, JobProfileRecommendsAndNewJobPodIsAdmitted) {
  prometheus_.SetPods({"train-a", "train-b", "train-c"});
  const json job = CreateJob("train", 2);
  ASSERT_TRUE(job.is_object());
  const std::string uid = job["metadata"]["uid"];
  for (const char* name : {"train-a", "train-b"})
    Create(kube::resources::kPods, ns_, JobPod(job, name, "none"));
  CreateProfile("train", "train", "Initial", "Job", "batch/v1");
  CreateProfile("ghost", "no-such-job", "Initial", "Job", "batch/v1");
  StartManager();

  // 0.2 core: the same 241m target as the Deployment case (by hand in
  // service_profile_integration_test.cc).
  const auto cpu = profiling::ExponentialBuckets::CpuCores();
  const std::string cpu_target =
      profiling::FormatMilliCpu(cpu.BucketStart(cpu.FindBucket(kCpuCores) + 1) * 1.15);
  ASSERT_EQ(cpu_target, "241m");
  json profile;
  ASSERT_TRUE(WaitFor([&] {
    profile = Get(kProfiles, ns_, "train");
    auto c = Condition(profile, "RecommendationProvided");
    return c && c->status == "True";
  })) << profile.dump(2)
      << manager_.Log();
  // The Job's generated selector, and only its two pods.
  EXPECT_EQ(profile["status"]["targetSelector"], "controller-uid=" + uid);
  EXPECT_EQ(profile["status"]["pods"], 2);
  EXPECT_EQ(profile["status"]["recommendations"][0]["cpu"]["target"], cpu_target);

  // Bad input: the missing Job is named in the condition.
  json ghost;
  ASSERT_TRUE(WaitFor([&] {
    ghost = Get(kProfiles, ns_, "ghost");
    return Condition(ghost, "RecommendationProvided").has_value();
  })) << manager_.Log();
  EXPECT_EQ(Condition(ghost, "RecommendationProvided")->reason, "TargetNotFound");
  EXPECT_EQ(Condition(ghost, "RecommendationProvided")->message,
            "Job " + ns_ + "/no-such-job not found");
  EXPECT_FALSE(ghost["status"].contains("pods"));

  StartWebhook();
  // A new pod of the Job (retried until the webhook's cache has the profile).
  json created;
  ASSERT_TRUE(WaitFor([&] {
    auto r = client_->Create({kube::resources::kPods, ns_, "", ""}, JobPod(job, "train-c", ns_));
    if (!r.ok()) return false;
    created = *r;
    if (created["metadata"]["annotations"].contains("gpuautoscaler.io/service-profile")) {
      return true;
    }
    (void)client_->Delete({kube::resources::kPods, ns_, "train-c", ""});
    return false;
  })) << webhook_.Log();
  EXPECT_EQ(created["metadata"]["annotations"]["gpuautoscaler.io/service-profile"], "train");
  EXPECT_EQ(created["spec"]["containers"][0]["resources"]["requests"]["cpu"], cpu_target);
  EXPECT_EQ(created["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            std::to_string(2 * std::stoi(cpu_target)) + "m");
}

TEST_F(ServiceProfileJobTest, PodEventsReachTheProfileBeforeTheRefresh) {
  WriteConfig("1h");  // the periodic refresh cannot explain anything below
  const json job = CreateJob("train", 3);
  ASSERT_TRUE(job.is_object());
  Create(kube::resources::kPods, ns_, JobPod(job, "train-a", "none"));
  // A pod of another workload: its events reach no profile.
  Create(kube::resources::kPods, ns_, testing::Pod("other", ns_, "none", kOriginalResources));
  CreateProfile("train", "train", "Off", "Job", "batch/v1");
  StartManager();
  ASSERT_TRUE(WaitFor([&] { return PodsInStatus("train") == 1; }))
      << Get(kProfiles, ns_, "train").dump(2) << manager_.Log();

  Create(kube::resources::kPods, ns_, JobPod(job, "train-b", "none"));
  ASSERT_TRUE(WaitFor([&] { return PodsInStatus("train") == 2; }))
      << Get(kProfiles, ns_, "train").dump(2) << manager_.Log();

  kube::DeleteOptions now;
  now.grace_period_seconds = 0;
  auto deleted = client_->Delete({kube::resources::kPods, ns_, "train-a", ""}, now);
  ASSERT_TRUE(deleted.ok()) << deleted.error().ToString();
  ASSERT_TRUE(WaitFor([&] { return PodsInStatus("train") == 1; }))
      << Get(kProfiles, ns_, "train").dump(2) << manager_.Log();
}

// Pod -> ReplicaSet -> Deployment: the ReplicaSet need not be cached (or
// even exist here); its name less the pod-template hash names the Deployment.
TEST_F(ServiceProfileJobTest, DeploymentPodReachesTheProfileThroughItsReplicaSet) {
  WriteConfig("1h");
  CreateDeployment("web", 2);
  auto replica_set_pod = [&](const std::string& name) {
    json pod = testing::Pod(name, ns_, "none", kOriginalResources);
    pod["metadata"]["labels"]["pod-template-hash"] = "5c7f9b6d8";
    pod["metadata"]["ownerReferences"] = json::array({{{"apiVersion", "apps/v1"},
                                                       {"kind", "ReplicaSet"},
                                                       {"name", "web-5c7f9b6d8"},
                                                       {"uid", "rs-uid"},
                                                       {"controller", true}}});
    return pod;
  };
  Create(kube::resources::kPods, ns_, replica_set_pod("web-5c7f9b6d8-aaaaa"));
  CreateProfile("web", "web", "Off");
  StartManager();
  ASSERT_TRUE(WaitFor([&] { return PodsInStatus("web") == 1; }))
      << Get(kProfiles, ns_, "web").dump(2) << manager_.Log();
  Create(kube::resources::kPods, ns_, replica_set_pod("web-5c7f9b6d8-bbbbb"));
  ASSERT_TRUE(WaitFor([&] { return PodsInStatus("web") == 2; }))
      << Get(kProfiles, ns_, "web").dump(2) << manager_.Log();
}

}  // namespace
}  // namespace gpu_autoscaler
