// The real gpu-autoscaler-webhook program next to the repo's test API server,
// driven only through the API (Namespaces, GPUSharingPolicies, Budgets and
// their /status) and AdmissionReviews over HTTPS:
//  - namespaceSelector by label works (the MIG example policy rewrites a pod
//    in a namespace labelled gpuautoscaler.io/tier=serving), and a namespace
//    relabelled later is seen without a restart;
//  - a policy created or edited after the webhook started applies to the next
//    review;
//  - a GPU pod under an exhausted blockNewGPUPods Budget is denied, naming the
//    Budget, its spend and amount, and allowed once the spend drops or the pod
//    is exempt;
//  - a Budget that does not parse is skipped and counted, never fatal.
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "cost/budget.h"
#include "kube/rest_client.h"
#include "support/api_server_fixture.h"
#include "support/loopback_port.h"
#include "support/secure_metrics.h"
#include "support/test_paths.h"
#include "webhooks/webhook_integration_client.h"
#include "webhooks/webhook_process.h"

namespace gpu_autoscaler::webhooks {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace wt = gpu_autoscaler::webhooks::testing;
using gpu_autoscaler::testing::TestApiServer;

const kube::GroupVersionResource kPolicies{"gpuautoscaler.io", "v1alpha1", "gpusharingpolicies",
                                           false};
const kube::GroupVersionResource kBudgets{"gpuautoscaler.io", "v1alpha1", "budgets", true};
const kube::GroupVersionResource kClusterBudgets{"gpuautoscaler.io", "v1alpha1", "clusterbudgets",
                                                 false};

json YamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node)
        out[kv.first.as<std::string>()] = YamlToJson(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : node)
        out.push_back(YamlToJson(item));
      return out;
    }
    case YAML::NodeType::Scalar: {
      // Numbers stay numbers (spec.priority is an integer in the schema).
      const std::string& s = node.Scalar();
      char* end = nullptr;
      long long v = std::strtoll(s.c_str(), &end, 10);
      if (!s.empty() && *end == '\0') return v;
      return s;
    }
    default:
      return nullptr;
  }
}

json Namespace(const std::string& name, const json& labels = json::object()) {
  return {{"apiVersion", "v1"},
          {"kind", "Namespace"},
          {"metadata", {{"name", name}, {"labels", labels}}}};
}

// An inference pod asking for one GPU and 10Gi of GPU memory: the MIG example
// policy turns it into nvidia.com/mig-1g.10gb.
json InferencePod(const std::string& ns, const json& annotations = json::object()) {
  json ann = annotations;
  ann["gpuautoscaler.io/gpu-memory"] = "10Gi";
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", "infer"},
            {"namespace", ns},
            {"labels", {{"app.kubernetes.io/component", "inference"}}},
            {"annotations", ann}}},
          {"spec",
           {{"containers",
             {{{"name", "server"},
               {"image", "triton:24.05"},
               {"resources", {{"limits", {{"nvidia.com/gpu", "1"}}}}}}}}}}};
}

std::string PodReview(const json& pod, const std::string& uid) {
  return json{{"apiVersion", "admission.k8s.io/v1"},
              {"kind", "AdmissionReview"},
              {"request",
               {{"uid", uid},
                {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
                {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
                {"operation", "CREATE"},
                {"namespace", pod["metadata"]["namespace"]},
                {"name", pod["metadata"]["name"]},
                {"dryRun", false},
                {"object", pod},
                {"oldObject", nullptr}}}}
      .dump();
}

class WebhookBudgetIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    api_ = TestApiServer::Start();
    ASSERT_TRUE(api_) << "api server did not start";
    ASSERT_TRUE(api_->supports_faults()) << "needs the repo's API server (creates namespaces)";
    auto client = kube::RestClient::Create(api_->config());
    ASSERT_TRUE(client.ok()) << client.error().ToString();
    client_ = std::move(client).value();
  }

  void StartWebhook() {
    files_ = wt::WriteServingCertificate(dir_, "tls.crt", "tls.key");
    // /metrics on its own loopback port, plain HTTP (the authorised HTTPS
    // scrape is tests/e2e/secure_metrics_programs_integration_test.cc).
    auto port = gpu_autoscaler::testing::FreeLoopbackPort();
    ASSERT_TRUE(port.ok()) << port.error().ToString();
    metrics_port_ = *port;
    webhook_ = wt::WebhookProcess::Start(
        {"--kubeconfig", wt::WriteKubeconfig(dir_, api_->config()), "--tls-cert-file",
         files_.cert_file, "--tls-key-file", files_.key_file,
         "--metrics-bind-address=127.0.0.1:" + std::to_string(metrics_port_),
         "--metrics-secure=false"});
    ASSERT_TRUE(webhook_);
    ASSERT_TRUE(wt::PollUntil([&] {
      return wt::Https(webhook_->url() + "/readyz", "GET", "", files_.ca_pem).status == 200;
    })) << "informers never synced";
  }

  void Create(const kube::GroupVersionResource& gvr, const std::string& ns, const json& obj) {
    auto created = client_->Create({gvr, ns, ""}, obj);
    ASSERT_TRUE(created.ok()) << created.error().ToString() << "\n" << obj.dump();
  }

  // The AdmissionReview response of `path` for `body` ({} when not HTTP 200).
  json Post(const std::string& path, const std::string& body) {
    auto r = wt::Https(webhook_->url() + path, "POST", body, files_.ca_pem);
    if (r.status != 200) {
      ADD_FAILURE() << path << ": HTTP " << r.status << " " << r.error << " " << r.body;
      return json::object();
    }
    auto doc = json::parse(r.body, nullptr, false);
    return doc.is_discarded() ? json::object() : doc["response"];
  }

  // The decoded JSONPatch the webhook answers for `pod`, or "" when none.
  std::string MutationPatch(const json& pod) {
    json resp = Post("/mutate-pods?timeout=5s", PodReview(pod, "mutate-uid"));
    if (!resp.contains("patch")) return "";
    return Base64Decode(resp["patch"].get<std::string>()).value_or("bad base64");
  }

  // "" when /validate-pods allows `pod`, else the denial message.
  std::string Denial(const json& pod) {
    json resp = Post("/validate-pods?timeout=5s", PodReview(pod, "validate-uid"));
    if (resp.value("allowed", false)) return "";
    return resp["status"].value("message", std::string("denied without a message"));
  }

  double Metric(const std::string& series) {
    kube::HttpResponse r = gpu_autoscaler::testing::ScrapeMetrics("http", metrics_port_, "", "");
    return wt::MetricValue(r.body, series);
  }

  Status SetBudgetStatus(const std::string& ns, const std::string& name, double spend,
                         int64_t generation) {
    int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    json patch = {{"status",
                   {{"currentSpend", spend},
                    {"periodStart", cost::FormatRfc3339(now - 3600)},
                    {"periodEnd", cost::FormatRfc3339(now + 24 * 3600)},
                    {"observedGeneration", generation}}}};
    // No namespace: a ClusterBudget.
    auto r = client_->Patch({ns.empty() ? kClusterBudgets : kBudgets, ns, name, "status"},
                            kube::PatchType::kMerge, patch.dump());
    if (!r.ok()) return InvalidArgumentError(r.error().ToString());
    return Status::Ok();
  }

  std::unique_ptr<TestApiServer> api_;
  std::unique_ptr<kube::RestClient> client_;
  wt::TempDir dir_;
  wt::ServingFiles files_;
  int metrics_port_ = -1;
  std::unique_ptr<wt::WebhookProcess> webhook_;
};

TEST_F(WebhookBudgetIntegration, NamespaceLabelsPoliciesAndBudgetsFromTheCluster) {
  Create(kube::resources::kNamespaces, "",
         Namespace("serving-a", {{"gpuautoscaler.io/tier", "serving"}}));
  Create(kube::resources::kNamespaces, "", Namespace("research"));
  Create(kube::resources::kNamespaces, "", Namespace("ml"));
  Create(kube::resources::kNamespaces, "",
         Namespace("ml-ops", {{"gpuautoscaler.io/budget-exempt", "true"}}));
  json mig_policy = YamlToJson(YAML::LoadFile(
      gpu_autoscaler::testing::SourcePath("docs/examples/gpusharingpolicy-mig.yaml")));
  Create(kPolicies, "", mig_policy);
  StartWebhook();
  if (HasFatalFailure()) return;

  // (a) Regression: the MIG example selects namespaces by label.
  std::string patch;
  EXPECT_TRUE(wt::PollUntil([&] {
    patch = MutationPatch(InferencePod("serving-a"));
    return !patch.empty();
  })) << "a pod in a tier=serving namespace was not rewritten";
  EXPECT_NE(patch.find("nvidia.com~1mig-1g.10gb"), std::string::npos) << patch;
  EXPECT_EQ(MutationPatch(InferencePod("research")), "") << "research is not labelled serving";

  // A namespace relabelled after start is seen at the next reviews.
  auto relabelled =
      client_->Patch({kube::resources::kNamespaces, "", "research"}, kube::PatchType::kMerge,
                     R"({"metadata":{"labels":{"gpuautoscaler.io/tier":"serving"}}})");
  ASSERT_TRUE(relabelled.ok()) << relabelled.error().ToString();
  EXPECT_TRUE(wt::PollUntil([&] { return !MutationPatch(InferencePod("research")).empty(); }))
      << "the webhook never saw the new namespace label";

  // (b) A policy created after the webhook started applies to the next review...
  json ts_policy = {
      {"apiVersion", "gpuautoscaler.io/v1alpha1"},
      {"kind", "GPUSharingPolicy"},
      {"metadata", {{"name", "ml-time-slicing"}}},
      {"spec",
       {{"priority", 5},
        {"namespaceSelector", {{"matchLabels", {{"kubernetes.io/metadata.name", "ml"}}}}},
        {"strategy", {{"type", "timeSlicing"}, {"timeSlicing", {{"replicas", 4}}}}}}}};
  EXPECT_EQ(MutationPatch(InferencePod("ml")), "");
  Create(kPolicies, "", ts_policy);
  EXPECT_TRUE(wt::PollUntil([&] {
    return MutationPatch(InferencePod("ml")).find("nvidia.com~1gpu.shared") != std::string::npos;
  })) << "the webhook never applied the new policy";
  // ...and so does an edit (here: it stops selecting ml).
  auto edited = client_->Patch(
      {kPolicies, "", "ml-time-slicing"}, kube::PatchType::kMerge,
      R"({"spec":{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"other"}}}})");
  ASSERT_TRUE(edited.ok()) << edited.error().ToString();
  EXPECT_TRUE(wt::PollUntil([&] { return MutationPatch(InferencePod("ml")).empty(); }))
      << "the webhook never applied the edited policy";

  // (c) Budgets.
  EXPECT_EQ(Denial(InferencePod("ml")), "") << "no Budget yet";
  json budget = {{"apiVersion", "gpuautoscaler.io/v1alpha1"},
                 {"kind", "Budget"},
                 {"metadata", {{"name", "gpu-monthly"}, {"namespace", "ml"}}},
                 {"spec",
                  {{"scope", {{"namespaces", {"ml"}}}},
                   {"amount", 1000},
                   {"currency", "USD"},
                   {"period", "monthly"},
                   {"enforcement", "blockNewGPUPods"}}}};
  auto created = client_->Create({kBudgets, "ml", ""}, budget);
  ASSERT_TRUE(created.ok()) << created.error().ToString() << " (is crds/budget.yaml registered?)";
  int64_t generation = (*created)["metadata"].value("generation", int64_t{1});
  ASSERT_TRUE(SetBudgetStatus("ml", "gpu-monthly", 1012.40, generation).ok());

  std::string denial;
  EXPECT_TRUE(wt::PollUntil([&] {
    denial = Denial(InferencePod("ml"));
    return !denial.empty();
  })) << "the exhausted Budget never blocked a GPU pod";
  for (const char* part :
       {"GPU pod denied", "ml/gpu-monthly", "1012.40 of 1000.00 USD", "blockNewGPUPods"}) {
    EXPECT_NE(denial.find(part), std::string::npos) << part << " not in: " << denial;
  }
  EXPECT_GE(Metric(R"(gpu_autoscaler_webhook_denials_total{reason="budget"})"), 1);
  // Exempt pods and exempt namespaces.
  EXPECT_EQ(Denial(InferencePod("ml", {{"gpuautoscaler.io/budget-exempt", "true"}})), "");
  // Out of scope: a Budget covers its own namespace only.
  EXPECT_EQ(Denial(InferencePod("serving-a")), "");

  // A ClusterBudget over the whole cluster, from its own informer: it blocks
  // every namespace but the exempt one.
  json cluster = {{"apiVersion", "gpuautoscaler.io/v1alpha1"},
                  {"kind", "ClusterBudget"},
                  {"metadata", {{"name", "org-wide"}}},
                  {"spec", {{"amount", 10}, {"enforcement", "blockNewGPUPods"}}}};
  created = client_->Create({kClusterBudgets, "", ""}, cluster);
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  ASSERT_TRUE(
      SetBudgetStatus("", "org-wide", 12.5, (*created)["metadata"].value("generation", int64_t{1}))
          .ok());
  EXPECT_TRUE(wt::PollUntil([&] {
    denial = Denial(InferencePod("serving-a"));
    return !denial.empty();
  })) << "the exhausted ClusterBudget never blocked a GPU pod";
  EXPECT_NE(denial.find("ClusterBudget org-wide is exhausted (12.50 of 10.00 USD"),
            std::string::npos)
      << denial;
  EXPECT_EQ(Denial(InferencePod("ml-ops")), "") << "ml-ops is labelled budget-exempt";
  ASSERT_TRUE(client_->Delete({kClusterBudgets, "", "org-wide"}).ok());
  EXPECT_TRUE(wt::PollUntil([&] { return Denial(InferencePod("serving-a")).empty(); }));

  // The controller writes a spend below the amount: allowed again.
  ASSERT_TRUE(SetBudgetStatus("ml", "gpu-monthly", 999.99, generation).ok());
  EXPECT_TRUE(wt::PollUntil([&] { return Denial(InferencePod("ml")).empty(); }))
      << "still denied after the spend dropped: " << Denial(InferencePod("ml"));
}

TEST_F(WebhookBudgetIntegration, BudgetThatDoesNotParseIsSkippedAndCounted) {
  Create(kube::resources::kNamespaces, "", Namespace("ml"));
  StartWebhook();
  if (HasFatalFailure()) return;
  // Thresholds out of order: the schema cannot say so, cost::ParseBudget does.
  json broken = {
      {"apiVersion", "gpuautoscaler.io/v1alpha1"},
      {"kind", "Budget"},
      {"metadata", {{"name", "broken"}, {"namespace", "ml"}}},
      {"spec", {{"amount", 10}, {"thresholds", {80, 50}}, {"enforcement", "blockNewGPUPods"}}}};
  Create(kBudgets, "ml", broken);
  ASSERT_TRUE(SetBudgetStatus("ml", "broken", 50, 1).ok());
  const std::string invalid = R"(gpu_autoscaler_webhook_budgets{state="invalid"})";
  EXPECT_TRUE(wt::PollUntil([&] { return Metric(invalid) == 1; })) << Metric(invalid);
  EXPECT_EQ(wt::Https(webhook_->url() + "/healthz", "GET", "", files_.ca_pem).status, 200);
  EXPECT_EQ(Denial(InferencePod("ml")), "") << "an unparsable Budget must not block";

  // The same object at /validate-budgets is rejected, naming the field.
  json review = {
      {"apiVersion", "admission.k8s.io/v1"},
      {"kind", "AdmissionReview"},
      {"request",
       {{"uid", "budget-uid"},
        {"kind", {{"group", "gpuautoscaler.io"}, {"version", "v1alpha1"}, {"kind", "Budget"}}},
        {"operation", "CREATE"},
        {"namespace", "ml"},
        {"name", "broken"},
        {"object", broken},
        {"oldObject", nullptr}}}};
  json resp = Post("/validate-budgets?timeout=5s", review.dump());
  EXPECT_EQ(resp.value("allowed", true), false);
  EXPECT_NE(resp["status"].value("message", "").find("spec.thresholds: must be strictly ascending"),
            std::string::npos)
      << resp.dump();
  EXPECT_EQ(Metric(R"(gpu_autoscaler_webhook_denials_total{reason="invalid_object"})"), 1);
}

}  // namespace
}  // namespace gpu_autoscaler::webhooks
