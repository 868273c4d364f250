#include "controllers/sharing_policy_controller.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <map>

#include "kube/conditions.h"
#include "kube/object_codec.h"
#include "kube/rest_client.h"
#include "support/fake_transport.h"

namespace gpu_autoscaler::controllers {
namespace {

using nlohmann::json;

webhooks::GpuSharingPolicy Policy(const std::string& name, int priority,
                                  const std::string& workload, int replicas = 4) {
  json obj = {
      {"apiVersion", "gpuautoscaler.io/v1alpha1"},
      {"kind", "GPUSharingPolicy"},
      {"metadata", {{"name", name}, {"generation", 1}}},
      {"spec",
       {{"priority", priority},
        {"podSelector", {{"matchLabels", {{"workload", workload}}}}},
        {"strategy", {{"type", "timeSlicing"}, {"timeSlicing", {{"replicas", replicas}}}}}}}};
  auto p = webhooks::ParseGpuSharingPolicy(obj.dump());
  EXPECT_TRUE(p.ok()) << p.error().ToString();
  return *p;
}

std::optional<kube::ObjectCondition> Cond(const json& status, const std::string& type) {
  return kube::FindCondition(status["conditions"], type);
}

TEST(SharingPolicyDecisionTest, AcceptedWithMatchedPodsAndNoConflict) {
  SharingPolicyInput in{.name = "notebooks",
                        .generation = 4,
                        .policy = Policy("notebooks", 50, "notebook"),
                        .others = {Policy("training", 50, "trainer")},
                        .matched_pods = 7,
                        .now = 1000};
  SharingPolicyPlan plan = DecideSharingPolicyStatus(in);
  EXPECT_EQ(plan.status["observedGeneration"], 4);
  EXPECT_EQ(plan.status["matchedPods"], 7);
  EXPECT_EQ(Cond(plan.status, "Accepted")->status, "True");
  EXPECT_EQ(Cond(plan.status, "Conflicting")->status, "False");
  EXPECT_TRUE(plan.events.empty());  // a healthy first status says nothing
}

TEST(SharingPolicyDecisionTest, SamePriorityOverlapNamesTheOtherPolicies) {
  SharingPolicyInput in{
      .name = "a",
      .generation = 1,
      .policy = Policy("a", 10, "notebook"),
      .others = {Policy("c", 10, "notebook"), Policy("b", 10, "notebook"),
                 Policy("higher", 20, "notebook"), Policy("disjoint", 10, "trainer")},
      .now = 1000};
  SharingPolicyPlan plan = DecideSharingPolicyStatus(in);
  auto c = Cond(plan.status, "Conflicting");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, "True");
  EXPECT_EQ(c->reason, "SamePriorityOverlap");
  EXPECT_EQ(c->message,
            "may match the same pods as b, c at priority 10; the first by name wins. Give one a "
            "higher priority.");
  ASSERT_EQ(plan.events.size(), 1u);
  EXPECT_TRUE(plan.events[0].warning);
  // Unchanged on the next pass: no new event.
  in.status = plan.status;
  EXPECT_TRUE(DecideSharingPolicyStatus(in).events.empty());
}

TEST(SharingPolicyDecisionTest, UnusableSpecIsNotAccepted) {
  SharingPolicyInput in{.name = "broken",
                        .generation = 2,
                        .invalid_reason = "spec.strategy.type: \"share\" is not a strategy",
                        .now = 1000};
  SharingPolicyPlan plan = DecideSharingPolicyStatus(in);
  auto accepted = Cond(plan.status, "Accepted");
  ASSERT_TRUE(accepted);
  EXPECT_EQ(accepted->status, "False");
  EXPECT_EQ(accepted->reason, "InvalidSpec");
  EXPECT_EQ(accepted->message, in.invalid_reason);
  ASSERT_EQ(plan.events.size(), 1u);
  EXPECT_EQ(plan.events[0].reason, "InvalidSpec");
}

// With a registry, the reconciler exports the policy's matched pods under its
// strategy, and drops the series when the policy goes.
TEST(SharingPolicyReconcilerTest, ExportsMatchedPodsByStrategy) {
  auto transport = std::make_unique<testing::FakeTransport>();
  transport->SetHandler([](const kube::HttpRequest& req) {
    return testing::FakeTransport::Reply{.status = 200, .body = req.body};
  });
  kube::ClientConfig cfg;
  cfg.server = "https://api.test";
  auto client = kube::RestClient::WithTransport(cfg, std::move(transport), {});
  kube::Store<kube::GenericObject> policies;
  kube::Store<kube::PodView> pods;
  ASSERT_TRUE(pods.AddIndex(kPodsByPolicyIndex, PolicyIndexFunc()).ok());
  FakeClock clock;
  prometheus::Registry registry;
  SharingPolicyReconciler r(policies, pods, *client, clock, nullptr, std::chrono::seconds(30),
                            &registry);
  const json policy = {
      {"apiVersion", "gpuautoscaler.io/v1alpha1"},
      {"kind", "GPUSharingPolicy"},
      {"metadata", {{"name", "notebooks"}, {"generation", 1}}},
      {"spec",
       {{"podSelector", {{"matchLabels", {{"workload", "notebook"}}}}},
        {"strategy", {{"type", "timeSlicing"}, {"timeSlicing", {{"replicas", 4}}}}}}}};
  policies.Upsert(std::make_shared<const kube::GenericObject>(
      std::move(*kube::DecodeGenericObject(policy.dump()))));
  for (const char* name : {"nb-0", "nb-1"}) {
    const json pod = {{"metadata",
                       {{"name", name},
                        {"namespace", "ml"},
                        {"annotations", {{std::string(api::kPolicyAnnotation), "notebooks"}}}}},
                      {"status", {{"phase", "Running"}}}};
    pods.Upsert(std::make_shared<const kube::PodView>(std::move(*kube::DecodePod(pod.dump()))));
  }
  auto exported = [&]() -> std::map<std::string, double> {
    std::map<std::string, double> out;
    for (const prometheus::MetricFamily& f : registry.Collect()) {
      if (f.name != "gpu_autoscaler_sharing_policy_pods") continue;
      for (const prometheus::ClientMetric& m : f.metric) {
        std::string key;
        for (const auto& l : m.label)
          key += l.name + "=" + l.value + ",";
        out[key] = m.gauge.value;
      }
    }
    return out;
  };
  (void)r.Reconcile({"", "notebooks"}, {});
  EXPECT_EQ(exported(),
            (std::map<std::string, double>{{"policy=notebooks,strategy=timeSlicing,", 2}}));
  policies.Delete("notebooks");
  auto gone = r.Reconcile({"", "notebooks"}, {});
  EXPECT_NE(std::get_if<reconcile::Done>(&gone), nullptr);
  EXPECT_TRUE(exported().empty());
}

// A status write that loses the optimistic-concurrency race (409) is retried
// as a Requeue, which is not counted as an error; any other failure is one.
TEST(SharingPolicyReconcilerTest, AStatusWriteConflictIsARequeueOtherFailuresAreErrors) {
  auto transport = std::make_unique<testing::FakeTransport>();
  int code = 409;
  transport->SetHandler([&code](const kube::HttpRequest&) {
    const json status = {{"kind", "Status"},
                         {"apiVersion", "v1"},
                         {"status", "Failure"},
                         {"message", "the object has been modified"},
                         {"reason", code == 409 ? "Conflict" : "Invalid"},
                         {"code", code}};
    return testing::FakeTransport::Reply{.status = code, .body = status.dump()};
  });
  kube::ClientConfig cfg;
  cfg.server = "https://api.test";
  auto client = kube::RestClient::WithTransport(cfg, std::move(transport), {});
  kube::Store<kube::GenericObject> policies;
  kube::Store<kube::PodView> pods;
  ASSERT_TRUE(pods.AddIndex(kPodsByPolicyIndex, PolicyIndexFunc()).ok());
  FakeClock clock;
  SharingPolicyReconciler r(policies, pods, *client, clock, nullptr, std::chrono::seconds(30),
                            nullptr);
  const json policy = {
      {"apiVersion", "gpuautoscaler.io/v1alpha1"},
      {"kind", "GPUSharingPolicy"},
      {"metadata", {{"name", "notebooks"}, {"generation", 1}, {"resourceVersion", "7"}}},
      {"spec",
       {{"podSelector", {{"matchLabels", {{"workload", "notebook"}}}}},
        {"strategy", {{"type", "timeSlicing"}, {"timeSlicing", {{"replicas", 4}}}}}}}};
  policies.Upsert(std::make_shared<const kube::GenericObject>(
      std::move(*kube::DecodeGenericObject(policy.dump()))));
  auto conflicted = r.Reconcile({"", "notebooks"}, {});
  const auto* requeue = std::get_if<reconcile::Requeue>(&conflicted);
  ASSERT_NE(requeue, nullptr) << reconcile::ResultLabel(conflicted);
  EXPECT_NE(requeue->reason.find("writing status"), std::string::npos) << requeue->reason;
  code = 422;
  auto failed = r.Reconcile({"", "notebooks"}, {});
  EXPECT_NE(std::get_if<reconcile::TransientError>(&failed), nullptr)
      << reconcile::ResultLabel(failed);
}

}  // namespace
}  // namespace gpu_autoscaler::controllers
