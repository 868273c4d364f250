// ServiceProfiles end to end through real processes: the embedded API server
// (which calls the admission webhooks), gpu-autoscaler-webhook and
// gpu-autoscaler-manager, with usage served by a loopback
// Prometheus-compatible server. A Deployment's profile gets a recommendation
// in status, a new pod of the Deployment is created with it, QoS-invalid pods
// are rejected with their reason, the histograms survive a manager restart
// (checkpoint ConfigMap), and under Auto a drifted pod is evicted within
// the eviction tolerance.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "controllers/service_profile_fixture.h"
#include "profiling/histogram.h"
#include "profiling/service_profile.h"

namespace gpu_autoscaler {
namespace {

using nlohmann::json;
using testing::kCpuCores;
using testing::kMemoryBytes;
using testing::kOriginalResources;
using testing::kProfiles;
using testing::Pod;
using testing::ServiceProfileTest;
using testing::WaitFor;

TEST_F(ServiceProfileTest, RecommendationReachesNewPodsAndSurvivesRestart) {
  CreateDeployment("web", 2);
  for (const char* name : {"web-a", "web-b"})
    Create(kube::resources::kPods, ns_, Pod(name, ns_, "none", kOriginalResources));
  CreateProfile("web", "web", "Initial");
  CreateProfile("ghost", "no-such-deployment", "Initial");
  StartManager();

  // Expected targets, by hand from the histogram rules: the end of the
  // bucket holding the sample (CPU p90, memory p100) × (1 + 15 % margin).
  const auto cpu = profiling::ExponentialBuckets::CpuCores();
  const auto memory = profiling::ExponentialBuckets::MemoryBytes();
  const std::string cpu_target =
      profiling::FormatMilliCpu(cpu.BucketStart(cpu.FindBucket(kCpuCores) + 1) * 1.15);
  const std::string memory_target =
      profiling::FormatBytes(memory.BucketStart(memory.FindBucket(kMemoryBytes) + 1) * 1.15);
  // 0.2 core lies in bucket 49, which ends at 0.001 × (1.05^50 − 1) / 0.05 =
  // 0.20934 core; × 1.15 = 0.2407 -> 241m. 300Mi lies in bucket 19, which
  // ends at 1e7 × (1.05^20 − 1) / 0.05 = 330.66 MB; × 1.15 = 380.26 MB.
  EXPECT_EQ(cpu_target, "241m");
  EXPECT_EQ(memory_target.substr(0, 5), "38025");

  json profile;
  ASSERT_TRUE(WaitFor([&] {
    profile = Get(kProfiles, ns_, "web");
    auto c = Condition(profile, "RecommendationProvided");
    return c && c->status == "True";
  })) << profile.dump(2)
      << manager_.Log();
  const json rec = profile["status"]["recommendations"][0];
  EXPECT_EQ(rec["containerName"], "server");
  EXPECT_EQ(rec["cpu"]["target"], cpu_target);
  EXPECT_EQ(rec["memory"]["target"], memory_target);
  EXPECT_EQ(profile["status"]["targetSelector"], "app=web");
  EXPECT_EQ(profile["status"]["observedGeneration"], profile["metadata"]["generation"]);

  json ghost;
  ASSERT_TRUE(WaitFor([&] {
    ghost = Get(kProfiles, ns_, "ghost");
    return Condition(ghost, "RecommendationProvided").has_value();
  })) << manager_.Log();
  EXPECT_EQ(Condition(ghost, "RecommendationProvided")->reason, "TargetNotFound");
  EXPECT_NE(Condition(ghost, "RecommendationProvided")->message.find("no-such-deployment"),
            std::string::npos);
  EXPECT_FALSE(ghost["status"].contains("recommendations"));

  StartWebhook();
  // A new pod of the Deployment (retried until the webhook's cache has the profile).
  json created;
  ASSERT_TRUE(WaitFor([&] {
    auto r = client_->Create({kube::resources::kPods, ns_, "", ""},
                             Pod("web-c", ns_, ns_, kOriginalResources));
    if (!r.ok()) return false;
    created = *r;
    if (created["metadata"]["annotations"].contains("gpuautoscaler.io/service-profile")) {
      return true;
    }
    (void)client_->Delete({kube::resources::kPods, ns_, "web-c", ""});
    return false;
  })) << webhook_.Log();
  const json resources = created["spec"]["containers"][0]["resources"];
  EXPECT_EQ(resources["requests"]["cpu"], cpu_target);
  EXPECT_EQ(resources["requests"]["memory"], memory_target);
  // Limits keep the 2:1 ratio the pod was created with.
  const int cpu_millis = std::stoi(cpu_target);
  EXPECT_EQ(resources["limits"]["cpu"], std::to_string(2 * cpu_millis) + "m");
  EXPECT_EQ(resources["limits"]["memory"], std::to_string(2 * std::stoll(memory_target)));
  EXPECT_EQ(created["metadata"]["annotations"]["gpuautoscaler.io/service-profile"], "web");
  EXPECT_EQ(json::parse(created["metadata"]["annotations"]["gpuautoscaler.io/original-resources"]
                            .get<std::string>()),
            json({{"server", kOriginalResources}}));

  // QoS: an invalid combination is rejected with its reason ...
  auto denied = client_->Create(
      {kube::resources::kPods, ns_, "", ""},
      Pod("bad-qos", ns_, ns_, kOriginalResources,
          {{"katalyst.kubewharf.io/qos_level", "dedicated_cores"},
           {"katalyst.kubewharf.io/cpu_enhancement", R"({"cpuset_pool":"batch"})"}}));
  ASSERT_FALSE(denied.ok());
  // Quoted in docs/profiling.md.
  EXPECT_EQ(denied.error().message(),
            "admission webhook \"pods.validate.gpuautoscaler.io\" denied the request: pod does "
            "not fit its QoS level (katalyst.kubewharf.io/qos_level=dedicated_cores): "
            "metadata.annotations[katalyst.kubewharf.io/cpu_enhancement].cpuset_pool: Forbidden: "
            "cpuset_pool is only allowed with katalyst.kubewharf.io/qos_level=shared_cores, not "
            "dedicated_cores")
      << denied.error().ToString();
  // ... and a dedicated_cores pod is made Guaranteed with whole CPUs.
  json dedicated = Create(
      kube::resources::kPods, ns_,
      Pod("dedicated", ns_, ns_,
          {{"requests", {{"cpu", "1500m"}, {"memory", "1Gi"}}}, {"limits", {{"memory", "2Gi"}}}},
          {{"katalyst.kubewharf.io/qos_level", "dedicated_cores"},
           {"katalyst.kubewharf.io/memory_enhancement", R"({"numa_binding":"true"})"},
           {"gpuautoscaler.io/service-profile", "none"}}));
  const json dres = dedicated["spec"]["containers"][0]["resources"];
  EXPECT_EQ(dres["requests"], json({{"cpu", "2"}, {"memory", "2Gi"}})) << dedicated.dump();
  EXPECT_EQ(dres["limits"], json({{"cpu", "2"}, {"memory", "2Gi"}}));

  // The histograms are checkpointed, and a restarted manager recommends from
  // them while Prometheus has nothing new.
  ASSERT_TRUE(WaitFor([&] {
    const json cm = Get(kube::resources::kConfigMaps, ns_, "serviceprofile-web-checkpoint");
    return cm.is_object() &&
           cm["data"].value("checkpoint.json", "").find("\"server\"") != std::string::npos;
  })) << manager_.Log();
  manager_.Kill(SIGKILL);
  prometheus_.SetServing(false);
  StartManager();
  ASSERT_TRUE(WaitFor([&] {
    return manager_.Log().find("restored profile checkpoint") != std::string::npos;
  })) << manager_.Log();
  profile = Get(kProfiles, ns_, "web");
  EXPECT_EQ(Condition(profile, "RecommendationProvided")->status, "True") << profile.dump(2);
  EXPECT_EQ(profile["status"]["recommendations"][0]["cpu"]["target"], cpu_target);
}

TEST_F(ServiceProfileTest, AutoModeEvictsOneDriftedPodWithinTolerance) {
  CreateDeployment("web", 3);
  // Requests far below anything the usage supports.
  const json tiny = {{"requests", {{"cpu", "10m"}, {"memory", "16Mi"}}}};
  for (const char* name : {"web-a", "web-b", "web-c"}) {
    Create(kube::resources::kPods, ns_, Pod(name, ns_, "none", tiny));
    SetRunning(name);
  }
  CreateProfile("web", "web", "Auto");
  StartManager();

  // 3 replicas, tolerance 0.5: int(1.5) = 1 may go; then 2 running is the floor.
  auto live = [&] {
    auto list = client_->List({kube::resources::kPods, ns_, "", ""});
    return list.ok() ? (*list)["items"].size() : size_t{0};
  };
  ASSERT_TRUE(WaitFor([&] { return live() == 2; })) << manager_.Log();
  json events;
  ASSERT_TRUE(WaitFor([&] {
    auto list = client_->List({kube::resources::kEvents, ns_, "", ""});
    if (!list.ok()) return false;
    for (const json& e : (*list)["items"]) {
      if (e.value("reason", "") == "EvictedByServiceProfile") {
        events = e;
        return true;
      }
    }
    return false;
  })) << manager_.Log();
  EXPECT_NE(events.value("message", "").find("cpu request 10m outside"), std::string::npos)
      << events.dump();
  EXPECT_EQ(live(), 2u);
}

}  // namespace
}  // namespace gpu_autoscaler
