// Budget enforcement at /validate-pods and Budget validation at
// /validate-budgets, through the AdmissionService with a FakeClock.
#include "webhooks/budget_admission.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "webhooks/admission_service.h"

namespace gpu_autoscaler::webhooks {
namespace {

using nlohmann::json;

// FakeClock's default start, 1,800,000,000 s: 2027-01-15T08:00:00Z.
constexpr char kThisMonthStart[] = "2027-01-01T00:00:00Z";
constexpr char kThisMonthEnd[] = "2027-02-01T00:00:00Z";

json BudgetCr(const std::string& ns, const std::string& name, double amount, double spend,
              const std::string& period_start = kThisMonthStart,
              const std::string& period_end = kThisMonthEnd) {
  return {{"apiVersion", "gpuautoscaler.io/v1alpha1"},
          {"kind", "Budget"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"generation", 1}}},
          {"spec",
           {{"scope", {{"namespaces", {ns}}}},
            {"amount", amount},
            {"currency", "USD"},
            {"period", "monthly"},
            {"enforcement", "blockNewGPUPods"}}},
          {"status",
           {{"currentSpend", spend},
            {"periodStart", period_start},
            {"periodEnd", period_end},
            {"observedGeneration", 1}}}};
}

// A ClusterBudget over the namespaces labelled org=research.
json ClusterBudgetCr(const std::string& name, double amount, double spend) {
  json cr = BudgetCr("", name, amount, spend);
  cr["kind"] = "ClusterBudget";
  cr["metadata"].erase("namespace");
  cr["spec"]["scope"] = {{"namespaceSelector", {{"matchLabels", {{"org", "research"}}}}}};
  return cr;
}

json Pod(const std::string& ns, int gpus, const json& annotations = json::object()) {
  json container = {{"name", "main"}, {"image", "trainer:1"}};
  if (gpus > 0) {
    container["resources"] = {{"limits", {{"nvidia.com/gpu", std::to_string(gpus)}}}};
  }
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", "trainer"},
            {"namespace", ns},
            {"labels", {{"team", "nlp"}}},
            {"annotations", annotations}}},
          {"spec", {{"containers", {container}}}}};
}

json Review(const json& object, const std::string& operation = "CREATE", bool dry_run = false,
            const std::string& kind = "Pod", const std::string& group = "") {
  std::string ns = object["metadata"].value("namespace", "");
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", "uid-1"},
            {"kind",
             {{"group", group}, {"version", group.empty() ? "v1" : "v1alpha1"}, {"kind", kind}}},
            {"operation", operation},
            {"namespace", ns},
            {"name", object["metadata"].value("name", "")},
            {"dryRun", dry_run},
            {"object", object},
            {"oldObject", operation == "UPDATE" ? object : json(nullptr)}}}};
}

class BudgetAdmissionTest : public ::testing::Test {
 protected:
  BudgetAdmissionTest() : gate_(std::make_shared<BudgetGate>(&clock_)) {
    AdmissionConfig config;
    config.budgets = gate_;
    config.namespace_labels = [this](std::string_view ns) {
      auto it = ns_labels_.find(std::string(ns));
      return it == ns_labels_.end() ? std::map<std::string, std::string>{} : it->second;
    };
    service_ = std::make_unique<AdmissionService>(std::move(config));
  }

  void SetBudgets(const std::vector<json>& crs) {
    std::vector<std::string> texts;
    for (const json& cr : crs)
      texts.push_back(cr.dump());
    BudgetLoad load = LoadBudgets(texts);
    ASSERT_TRUE(load.errors.empty()) << load.errors[0];
    gate_->SetBudgets(std::move(load.budgets));
  }

  AdmissionOutcome Validate(const json& review) {
    return service_->Review(AdmissionEndpoint::kValidatePods, review.dump());
  }

  static std::string Message(const AdmissionOutcome& out) {
    return json::parse(out.body)["response"]["status"].value("message", "");
  }

  FakeClock clock_;
  std::map<std::string, std::map<std::string, std::string>> ns_labels_;
  std::shared_ptr<BudgetGate> gate_;
  std::unique_ptr<AdmissionService> service_;
};

TEST_F(BudgetAdmissionTest, ExhaustedBudgetDeniesNewGpuPodsInScope) {
  SetBudgets({BudgetCr("ml", "gpu-monthly", 1000, 1012.4)});
  AdmissionOutcome out = Validate(Review(Pod("ml", 1)));
  ASSERT_EQ(out.verdict, AdmissionVerdict::kDenied) << out.body;
  EXPECT_EQ(out.denial_reason, AdmissionDenialReason::kBudget);
  json resp = json::parse(out.body);
  EXPECT_EQ(resp["response"]["allowed"], false);
  EXPECT_EQ(resp["response"]["status"]["code"], 403);
  std::string message = Message(out);
  EXPECT_EQ(message.rfind("GPU pod denied: ", 0), 0u) << message;
  for (const char* part : {"ml/gpu-monthly", "1012.40 of 1000.00 USD", "blockNewGPUPods"}) {
    EXPECT_NE(message.find(part), std::string::npos) << part << " not in: " << message;
  }
}

TEST_F(BudgetAdmissionTest, DecisionTable) {
  json exempt_ann = {{"gpuautoscaler.io/budget-exempt", "true"}};
  json not_exempt_ann = {{"gpuautoscaler.io/budget-exempt", "yes"}};
  ns_labels_["ml-system"] = {{"gpuautoscaler.io/budget-exempt", "true"}};
  struct Case {
    std::string name;
    json budget;
    json review;
    bool denied;
  };
  json ml_exhausted = BudgetCr("ml", "gpu-monthly", 1000, 1012.4);
  json system_exhausted = BudgetCr("ml-system", "sys", 10, 20);
  json alert_only = ml_exhausted;
  alert_only["spec"]["enforcement"] = "alert";
  json stale_generation = ml_exhausted;
  stale_generation["metadata"]["generation"] = 2;
  json no_status = ml_exhausted;
  no_status.erase("status");
  json excluded = BudgetCr("kube-system", "sys", 10, 20);
  std::vector<Case> cases = {
      {"in scope, exhausted", ml_exhausted, Review(Pod("ml", 1)), true},
      {"spend exactly the amount", BudgetCr("ml", "b", 1000, 1000), Review(Pod("ml", 1)), true},
      {"in scope, not exhausted", BudgetCr("ml", "b", 1000, 999.99), Review(Pod("ml", 1)), false},
      {"out of scope", ml_exhausted, Review(Pod("research", 1)), false},
      {"stale period (last month)",
       BudgetCr("ml", "b", 1000, 5000, "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"),
       Review(Pod("ml", 1)), false},
      {"period not started",
       BudgetCr("ml", "b", 1000, 5000, "2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z"),
       Review(Pod("ml", 1)), false},
      {"status for an older spec", stale_generation, Review(Pod("ml", 1)), false},
      {"not evaluated yet", no_status, Review(Pod("ml", 1)), false},
      {"alert only", alert_only, Review(Pod("ml", 1)), false},
      {"exempt annotation", ml_exhausted, Review(Pod("ml", 1, exempt_ann)), false},
      {"exemption must be \"true\"", ml_exhausted, Review(Pod("ml", 1, not_exempt_ann)), true},
      {"exempt namespace label", system_exhausted, Review(Pod("ml-system", 1)), false},
      {"excluded namespace", excluded, Review(Pod("kube-system", 1)), false},
      {"non-GPU pod", ml_exhausted, Review(Pod("ml", 0)), false},
      {"annotation-only GPU pod", ml_exhausted,
       Review(Pod("ml", 0, {{"gpuautoscaler.io/gpu-memory", "10Gi"}})), true},
      {"dry run is denied the same", ml_exhausted, Review(Pod("ml", 1), "CREATE", true), true},
      {"UPDATE of a running pod", ml_exhausted, Review(Pod("ml", 1), "UPDATE"), false},
      {"DELETE", ml_exhausted, Review(Pod("ml", 1), "DELETE"), false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    SetBudgets({c.budget});
    AdmissionOutcome out = Validate(c.review);
    EXPECT_EQ(out.verdict, c.denied ? AdmissionVerdict::kDenied : AdmissionVerdict::kAllowed)
        << out.body;
  }
}

TEST_F(BudgetAdmissionTest, MigPodsCountAsGpuPods) {
  SetBudgets({BudgetCr("ml", "gpu-monthly", 1000, 1500)});
  json pod = Pod("ml", 0);
  pod["spec"]["containers"][0]["resources"] = {{"requests", {{"nvidia.com/mig-1g.10gb", "1"}}}};
  EXPECT_EQ(Validate(Review(pod)).verdict, AdmissionVerdict::kDenied);
  pod["spec"]["containers"][0]["resources"] = {{"limits", {{"nvidia.com/gpu.shared", "2"}}}};
  EXPECT_EQ(Validate(Review(pod)).verdict, AdmissionVerdict::kDenied);
}

TEST_F(BudgetAdmissionTest, MutationNeverDeniesForBudgets) {
  SetBudgets({BudgetCr("ml", "gpu-monthly", 1000, 1500)});
  AdmissionOutcome out =
      service_->Review(AdmissionEndpoint::kMutatePods, Review(Pod("ml", 1)).dump());
  EXPECT_EQ(out.verdict, AdmissionVerdict::kAllowed) << out.body;
}

TEST_F(BudgetAdmissionTest, PeriodEndLiftsTheBlockWithoutANewEvent) {
  // Spend written for a period that ends in one hour.
  SetBudgets({BudgetCr("ml", "b", 100, 200, kThisMonthStart, "2027-01-15T09:00:00Z")});
  EXPECT_EQ(Validate(Review(Pod("ml", 1))).verdict, AdmissionVerdict::kDenied);
  clock_.Step(std::chrono::minutes(59));
  EXPECT_EQ(Validate(Review(Pod("ml", 1))).verdict, AdmissionVerdict::kDenied);
  clock_.Step(std::chrono::minutes(1));
  EXPECT_EQ(Validate(Review(Pod("ml", 1))).verdict, AdmissionVerdict::kAllowed)
      << "a stale period must not block";
}

TEST_F(BudgetAdmissionTest, ScopeSelectorUsesPodLabels) {
  json b = ClusterBudgetCr("team-nlp", 100, 200);
  b["spec"]["scope"] = {{"selector", {{"matchLabels", {{"team", "nlp"}}}}}};
  SetBudgets({b});
  EXPECT_EQ(Validate(Review(Pod("anywhere", 1))).verdict, AdmissionVerdict::kDenied);
  json vision = Pod("anywhere", 1);
  vision["metadata"]["labels"]["team"] = "vision";
  EXPECT_EQ(Validate(Review(vision)).verdict, AdmissionVerdict::kAllowed);
}

TEST(LoadBudgets, SkipsObjectsThatDoNotParseAndNamesThem) {
  json good = BudgetCr("ml", "good", 100, 1);
  json bad_spec = BudgetCr("ml", "bad-spec", 100, 1);
  bad_spec["spec"]["thresholds"] = {50, -1};
  json bad_status = BudgetCr("ml", "bad-status", 100, 1);
  bad_status["status"]["periodStart"] = "yesterday";
  json wrong_type = BudgetCr("ml", "wrong-type", 100, 1);
  wrong_type["status"]["currentSpend"] = "a lot";
  std::vector<std::string> texts = {good.dump(),       bad_spec.dump(),   "{not json",
                                    bad_status.dump(), wrong_type.dump(), "[]"};
  BudgetLoad load = LoadBudgets(texts);
  ASSERT_EQ(load.budgets.size(), 1u);
  EXPECT_EQ(load.budgets[0].budget.name, "good");
  ASSERT_EQ(load.errors.size(), 5u);
  EXPECT_NE(load.errors[0].find("Budget ml/bad-spec: spec.thresholds[1]"), std::string::npos)
      << load.errors[0];
  EXPECT_NE(load.errors[2].find("Budget ml/bad-status: status.periodStart"), std::string::npos)
      << load.errors[2];
  EXPECT_NE(load.errors[3].find("status.currentSpend"), std::string::npos) << load.errors[3];
}

TEST(GpuCount, SumsContainersAndCoversInitContainers) {
  auto pod = DecodePod(R"({"metadata":{"name":"p","namespace":"ml"},"spec":{
    "initContainers":[{"name":"warm","resources":{"limits":{"nvidia.com/gpu":"4"}}}],
    "containers":[{"name":"a","resources":{"limits":{"nvidia.com/gpu":"1"}}},
                  {"name":"b","resources":{"requests":{"nvidia.com/mig-2g.20gb":"2"}}},
                  {"name":"c","resources":{"limits":{"cpu":"1"}}}]}})");
  ASSERT_TRUE(pod.ok()) << pod.error().ToString();
  EXPECT_EQ(GpuCount(*pod), 4);
  auto cpu = DecodePod(R"({"metadata":{"name":"p"},"spec":{"containers":[{"name":"a"}]}})");
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ(GpuCount(*cpu), 0);
}

// /validate-budgets

json BudgetReview(const json& budget, const std::string& operation = "CREATE") {
  return Review(budget, operation, false, "Budget", "gpuautoscaler.io");
}

TEST(ValidateBudgets, RejectsInvalidSpecsNamingTheField) {
  AdmissionService service(AdmissionConfig{});
  json good = BudgetCr("ml", "gpu-monthly", 1000, 0);
  good.erase("status");
  AdmissionOutcome out =
      service.Review(AdmissionEndpoint::kValidateBudgets, BudgetReview(good).dump());
  EXPECT_EQ(out.verdict, AdmissionVerdict::kAllowed) << out.body;

  struct Case {
    std::string field;
    std::string value;  // JSON
    std::string want;
  };
  std::vector<Case> cases = {
      {"thresholds", "[50, 2000]",
       "Budget \"ml/gpu-monthly\" is invalid: spec.thresholds[1]: must be a percentage in (0, "
       "1000]"},
      {"thresholds", "[80, 50]", "spec.thresholds: must be strictly ascending"},
      {"amount", "0", "spec.amount: must be greater than 0"},
      {"period", R"("fortnightly")", "spec.period: \"fortnightly\" is not one of daily"},
      {"enforcement", R"("panic")",
       "spec.enforcement: \"panic\" is not one of alert, blockNewGPUPods"},
      {"notifications", R"([{"type": "email", "secretRef": {"name": "s", "key": "k"}}])",
       "spec.notifications[0].to: an email channel needs at least one recipient"},
      {"scope", R"({"selector": {"matchExpressions": [{"key": "team", "operator": "In"}]}})",
       "spec.scope.selector.matchExpressions[0].values: required for In and NotIn"},
      {"scope", R"({"selector": {"matchLabels": {"app": "x"}}})",
       "spec.scope.selector.matchLabels: label key \"app\" is not an attribution label"},
      // A misspelling is refused with its path instead of silently meaning "alert".
      {"enforcment", R"("blockNewGPUPods")",
       "Budget \"ml/gpu-monthly\" is invalid: unknown field \"spec.enforcment\" (the Budget schema "
       "does not declare it)"},
      {"notifications", R"([{"type": "slack", "secretRef": {"nmae": "s", "key": "k"}}])",
       "unknown field \"spec.notifications[0].secretRef.nmae\""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.field + " = " + c.value);
    json bad = good;
    bad["spec"][c.field] = json::parse(c.value);
    for (const char* op : {"CREATE", "UPDATE"}) {
      out = service.Review(AdmissionEndpoint::kValidateBudgets, BudgetReview(bad, op).dump());
      ASSERT_EQ(out.verdict, AdmissionVerdict::kDenied) << out.body;
      EXPECT_EQ(out.denial_reason, AdmissionDenialReason::kInvalidObject);
      json resp = json::parse(out.body);
      EXPECT_EQ(resp["response"]["status"]["code"], 422);
      std::string message = resp["response"]["status"].value("message", "");
      EXPECT_NE(message.find(c.want), std::string::npos) << message;
    }
  }
}

TEST(ValidateBudgets, OtherKindsDeletesStatusAndGenerateName) {
  AdmissionService service(AdmissionConfig{});
  json bad = BudgetCr("ml", "b", -5, 0);
  json del = BudgetReview(bad, "DELETE");
  EXPECT_EQ(service.Review(AdmissionEndpoint::kValidateBudgets, del.dump()).verdict,
            AdmissionVerdict::kAllowed);
  json status = BudgetReview(bad, "UPDATE");
  status["request"]["subResource"] = "status";
  EXPECT_EQ(service.Review(AdmissionEndpoint::kValidateBudgets, status.dump()).verdict,
            AdmissionVerdict::kAllowed);
  json generated = BudgetCr("ml", "b", 100, 0);
  generated["metadata"].erase("name");
  generated["metadata"]["generateName"] = "team-";
  EXPECT_EQ(
      service.Review(AdmissionEndpoint::kValidateBudgets, BudgetReview(generated).dump()).verdict,
      AdmissionVerdict::kAllowed);
  // Malformed reviews are 400 like at the other endpoints.
  AdmissionOutcome out = service.Review(AdmissionEndpoint::kValidateBudgets, "{\"kind\":");
  EXPECT_EQ(out.http_status, 400);
}

}  // namespace
}  // namespace gpu_autoscaler::webhooks

namespace gpu_autoscaler::webhooks {
namespace {

// Whoever may create a Budget in one namespace must not be able to stop GPU
// pods in another, wherever that namespace is: only a ClusterBudget blocks
// across namespaces.
TEST_F(BudgetAdmissionTest, ABudgetBlocksOnlyItsOwnNamespace) {
  json greedy = BudgetCr("team-a", "everything", 1, 5);
  greedy["spec"].erase("scope");  // its own namespace, not the cluster
  json in_operator_ns = BudgetCr("platform", "cluster", 1, 5);
  in_operator_ns["spec"].erase("scope");
  SetBudgets({greedy, in_operator_ns});
  EXPECT_EQ(Validate(Review(Pod("ml", 1))).verdict, AdmissionVerdict::kAllowed);
  EXPECT_EQ(Validate(Review(Pod("team-a", 1))).verdict, AdmissionVerdict::kDenied);
  EXPECT_EQ(Validate(Review(Pod("platform", 1))).verdict, AdmissionVerdict::kDenied);

  // One that names another namespace is not loaded at all, and says why.
  json other_ns = BudgetCr("team-a", "other-ns", 1, 5);
  other_ns["spec"]["scope"]["namespaces"] = {"ml"};
  const std::vector<std::string> texts = {other_ns.dump()};
  BudgetLoad load = LoadBudgets(texts);
  EXPECT_TRUE(load.budgets.empty());
  ASSERT_EQ(load.errors.size(), 1u);
  EXPECT_NE(load.errors[0].find("Budget team-a/other-ns: spec.scope.namespaces[0]: a Budget "
                                "covers only its own namespace \"team-a\", not \"ml\""),
            std::string::npos)
      << load.errors[0];
}

TEST_F(BudgetAdmissionTest, AClusterBudgetBlocksTheNamespacesItsSelectorPicks) {
  ns_labels_["vision"] = {{"org", "research"}};
  ns_labels_["speech"] = {{"org", "research"}};
  ns_labels_["web"] = {{"org", "product"}};
  ns_labels_["exempt"] = {{"org", "research"}, {"gpuautoscaler.io/budget-exempt", "true"}};
  SetBudgets({ClusterBudgetCr("research-gpus", 500, 512.5)});
  for (const char* ns : {"vision", "speech"}) {
    for (bool dry_run : {false, true}) {
      SCOPED_TRACE(std::string(ns) + (dry_run ? " dry-run" : ""));
      AdmissionOutcome out = Validate(Review(Pod(ns, 1), "CREATE", dry_run));
      ASSERT_EQ(out.verdict, AdmissionVerdict::kDenied) << out.body;
      EXPECT_EQ(out.denial_reason, AdmissionDenialReason::kBudget);
      EXPECT_EQ(Message(out),
                "GPU pod denied: ClusterBudget research-gpus is exhausted (512.50 of 500.00 USD "
                "spent in the monthly period from 2027-01-01T00:00:00Z); new GPU pods are "
                "blocked until 2027-02-01T00:00:00Z (enforcement blockNewGPUPods)");
    }
  }
  // Not selected, unknown, exempt, not a GPU pod, or already running: admitted.
  EXPECT_EQ(Validate(Review(Pod("web", 1))).verdict, AdmissionVerdict::kAllowed);
  EXPECT_EQ(Validate(Review(Pod("nowhere", 1))).verdict, AdmissionVerdict::kAllowed);
  EXPECT_EQ(Validate(Review(Pod("exempt", 1))).verdict, AdmissionVerdict::kAllowed);
  EXPECT_EQ(
      Validate(Review(Pod("vision", 1, {{"gpuautoscaler.io/budget-exempt", "true"}}))).verdict,
      AdmissionVerdict::kAllowed);
  EXPECT_EQ(Validate(Review(Pod("vision", 0))).verdict, AdmissionVerdict::kAllowed);
  EXPECT_EQ(Validate(Review(Pod("vision", 1), "UPDATE")).verdict, AdmissionVerdict::kAllowed);
  // The Namespace's own name label selects too (kubernetes.io/metadata.name).
  json by_name = ClusterBudgetCr("web-gpus", 1, 2);
  by_name["spec"]["scope"] = {
      {"namespaceSelector", {{"matchLabels", {{"kubernetes.io/metadata.name", "web"}}}}}};
  SetBudgets({by_name});
  EXPECT_EQ(Validate(Review(Pod("web", 1))).verdict, AdmissionVerdict::kDenied);
  EXPECT_EQ(Validate(Review(Pod("vision", 1))).verdict, AdmissionVerdict::kAllowed);
}

TEST(ValidateBudgets, ClusterBudgetsAreValidatedWithTheirOwnSchema) {
  AdmissionService service(AdmissionConfig{});
  auto review = [&](const json& cr, const std::string& kind) {
    json r = Review(cr, "CREATE", false, kind, "gpuautoscaler.io");
    return service.Review(AdmissionEndpoint::kValidateBudgets, r.dump());
  };
  json good = ClusterBudgetCr("research-gpus", 1000, 0);
  good.erase("status");
  EXPECT_EQ(review(good, "ClusterBudget").verdict, AdmissionVerdict::kAllowed);

  json typo = good;
  typo["spec"]["scope"]["namespaceSelector"]["matchLabel"] = {{"org", "x"}};
  AdmissionOutcome out = review(typo, "ClusterBudget");
  ASSERT_EQ(out.verdict, AdmissionVerdict::kDenied);
  EXPECT_NE(json::parse(out.body)["response"]["status"]
                .value("message", "")
                .find("ClusterBudget \"research-gpus\" is invalid: unknown field "
                      "\"spec.scope.namespaceSelector.matchLabel\" (the ClusterBudget schema"),
            std::string::npos)
      << out.body;

  json no_values = good;
  no_values["spec"]["scope"]["namespaceSelector"] = {
      {"matchExpressions", {{{"key", "org"}, {"operator", "NotIn"}}}}};
  out = review(no_values, "ClusterBudget");
  ASSERT_EQ(out.verdict, AdmissionVerdict::kDenied);
  EXPECT_NE(out.body.find("spec.scope.namespaceSelector.matchExpressions[0].values: required"),
            std::string::npos)
      << out.body;

  // A Budget may neither select namespaces nor name another one; the review's
  // namespace counts when the body leaves it out.
  json budget = BudgetCr("team-a", "b", 10, 0);
  budget.erase("status");
  budget["spec"]["scope"] = {{"namespaceSelector", {{"matchLabels", {{"org", "research"}}}}}};
  out = review(budget, "Budget");
  ASSERT_EQ(out.verdict, AdmissionVerdict::kDenied);
  EXPECT_NE(json::parse(out.body)["response"]["status"]
                .value("message", "")
                .find("unknown field \"spec.scope.namespaceSelector\""),
            std::string::npos)
      << out.body;
  budget["spec"]["scope"] = {{"namespaces", {"ml"}}};
  json r = Review(budget, "CREATE", false, "Budget", "gpuautoscaler.io");
  r["request"]["object"]["metadata"].erase("namespace");
  out = service.Review(AdmissionEndpoint::kValidateBudgets, r.dump());
  ASSERT_EQ(out.verdict, AdmissionVerdict::kDenied);
  EXPECT_NE(out.body.find("spec.scope.namespaces[0]: a Budget covers only its own namespace "
                          "\\\"team-a\\\""),
            std::string::npos)
      << out.body;
}

}  // namespace
}  // namespace gpu_autoscaler::webhooks
