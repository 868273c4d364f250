// The operator end to end: the embedded API server, gpu-autoscaler-webhook and
// gpu-autoscaler-manager run as separate processes, with loopback receivers
// for Slack, PagerDuty and webhooks and a real SMTP server. The test creates
// nodes, pods, GPUSharingPolicies, Budgets and Secrets through the API and
// checks statuses, Events, metrics, stored costs, the notifications received
// and the pods denied, across a kill -9 and restart of the manager.
#include <chrono>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "controllers/operator_fixture.h"
#include "cost/store_factory.h"

namespace gpu_autoscaler {
namespace {

using namespace operator_testing;  // NOLINT: the fixture's vocabulary (operator_fixture.h)

TEST_F(OperatorTest, MetersCostsEnforcesBudgetsAndReportsPolicies) {
  // The cluster: a p4d node, a GPU pod on it admitted under a policy, two
  // policies that overlap at one priority, and three Budgets.
  const std::string node_name = "gpu-node-" + ns_;
  AddGpuNode(node_name);
  AddRunningGpuPod(ns_, "trainer", node_name, {{"team", "vision"}, {"workload", "notebook"}},
                   {{"gpuautoscaler.io/policy", "notebooks-" + ns_}});
  for (const std::string& name : {"notebooks-" + ns_, "notebooks-b-" + ns_}) {
    Create(kPolicies, "",
           {{"apiVersion", "gpuautoscaler.io/v1alpha1"},
            {"kind", "GPUSharingPolicy"},
            {"metadata", {{"name", name}}},
            {"spec",
             {{"priority", 50},
              {"podSelector", {{"matchLabels", {{"workload", "notebook"}}}}},
              {"strategy", {{"type", "timeSlicing"}, {"timeSlicing", {{"replicas", 4}}}}}}}});
  }
  Create(kube::resources::kSecrets, ns_,
         {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", {{"name", "alerts"}}},
          {"data",
           {{"slack-url", Base64Encode(receiver_.url("/slack"))},
            {"webhook-url", Base64Encode(receiver_.url("/hook"))},
            {"flaky-url", Base64Encode(receiver_.url("/flaky"))},
            {"hmac-key", Base64Encode("s3cret")},
            {"routing-key", Base64Encode("R0UTING")},
            {"events-url", Base64Encode(receiver_.url("/pagerduty"))},
            {"smtp-url", Base64Encode("smtp://127.0.0.1:" + std::to_string(smtp_port_))},
            {"from", Base64Encode("gpu-budgets@example.com")}}}});
  auto budget = [&](const std::string& name, const json& channels) {
    return json{{"apiVersion", "gpuautoscaler.io/v1alpha1"},
                {"kind", "Budget"},
                {"metadata", {{"name", name}}},
                {"spec",
                 {{"scope", {{"namespaces", {ns_}}}},
                  {"amount", 0.01},
                  {"currency", "USD"},
                  {"period", "monthly"},
                  {"thresholds", {50, 100}},
                  {"notifications", channels},
                  {"enforcement", "blockNewGPUPods"}}}};
  };
  Create(
      kBudgets, ns_,
      budget("gpu-monthly",
             {{{"type", "slack"}, {"secretRef", {{"name", "alerts"}, {"key", "slack-url"}}}},
              {{"type", "webhook"}, {"secretRef", {{"name", "alerts"}, {"key", "webhook-url"}}}},
              {{"type", "pagerduty"}, {"secretRef", {{"name", "alerts"}, {"key", "routing-key"}}}},
              {{"type", "email"},
               {"secretRef", {{"name", "alerts"}, {"key", "smtp-url"}}},
               {"to", {"ml-leads@example.com"}}}}));
  Create(kBudgets, ns_,
         budget("missing-secret",
                {{{"type", "slack"}, {"secretRef", {{"name", "nope"}, {"key", "url"}}}}}));
  Create(kBudgets, ns_,
         budget("flaky-receiver", {{{"type", "webhook"},
                                    {"secretRef", {{"name", "alerts"}, {"key", "flaky-url"}}}}}));

  ASSERT_TRUE(SmtpUp()) << "python3-aiosmtpd (hack/install-deps.sh) did not start: " << smtp_.Log();
  // A real cluster cannot call a webhook served on this machine's loopback.
  const bool with_webhook = !server_->is_real_cluster();
  if (with_webhook) StartWebhook();
  if (HasFatalFailure()) return;
  StartManager();

  // GPUSharingPolicy status.
  json policy;
  ASSERT_TRUE(WaitFor([&] {
    policy = Get(kPolicies, "", "notebooks-" + ns_);
    return policy.is_object() &&
           policy.value("status", json::object()).value("matchedPods", 0) == 1 &&
           Condition(policy, "Conflicting").rfind("True", 0) == 0;
  })) << policy.dump()
      << manager_.Log();
  EXPECT_EQ(Condition(policy, "Accepted").substr(0, 4), "True");
  EXPECT_NE(Condition(policy, "Conflicting").find("notebooks-b-" + ns_), std::string::npos);
  EXPECT_EQ(policy["status"]["observedGeneration"], policy["metadata"]["generation"]);

  // Costs accrue until the Budget crosses 50% and then 100%; each threshold
  // is announced once on each channel.
  json b;
  ASSERT_TRUE(WaitFor(
      [&] {
        b = Get(kBudgets, ns_, "gpu-monthly");
        return Condition(b, "Exceeded").rfind("True", 0) == 0 &&
               receiver_.On("/slack").size() == 2 && receiver_.On("/hook").size() == 2 &&
               receiver_.On("/pagerduty").size() == 2 && Mails().size() == 2;
      },
      std::chrono::seconds(60)))
      << b.dump(2) << manager_.Log();
  EXPECT_GE(b["status"]["currentSpend"].get<double>(), 0.01);
  EXPECT_EQ(b["status"]["lastAlert"].size(), 2u);
  EXPECT_EQ(b["status"]["lastAlert"][0]["state"], "firing");
  EXPECT_FALSE(b["status"]["lastAlert"][0].contains("pending"));
  EXPECT_EQ(Condition(b, "NotificationFailed").substr(0, 5), "False");
  const auto hooks = receiver_.On("/hook");
  EXPECT_NE(hooks[0].idempotency_key, hooks[1].idempotency_key);
  EXPECT_NE(hooks[0].idempotency_key.find(ns_ + "/gpu-monthly/"), std::string::npos)
      << hooks[0].idempotency_key;
  EXPECT_EQ(hooks[0].signature.substr(0, 7), "sha256=");
  const json pd = json::parse(receiver_.On("/pagerduty")[0].body);
  EXPECT_EQ(pd["routing_key"], "R0UTING");
  EXPECT_EQ(pd["event_action"], "trigger");
  const json slack = json::parse(receiver_.On("/slack")[1].body);
  EXPECT_NE(slack.dump().find("100%"), std::string::npos) << slack.dump();
  // Email, field by field, through a real SMTP server.
  const std::vector<std::string> mails = Mails();
  ASSERT_EQ(mails.size(), 2u);
  EXPECT_NE(mails[0].find("From: gpu-budgets@example.com"), std::string::npos) << mails[0];
  EXPECT_NE(mails[0].find("To: ml-leads@example.com"), std::string::npos) << mails[0];
  EXPECT_NE(mails[0].find("Subject: [gpu-autoscaler] Budget " + ns_ + "/gpu-monthly reached 50%"),
            std::string::npos)
      << mails[0];
  EXPECT_NE(mails[1].find("reached 100%"), std::string::npos) << mails[1];
  EXPECT_NE(mails[0].find("Message-ID: <budget." + ns_ + ".gpu-monthly.50."), std::string::npos)
      << mails[0];

  // The exhausted Budget now denies new GPU pods in its namespace at
  // admission: the API server calls the webhook, which reads the status the
  // manager wrote.
  std::string denial;
  if (with_webhook) {
    denial = WaitForDenial(ns_, "late-trainer");
    ASSERT_FALSE(denial.empty()) << webhook_.Log();
    // The three Budgets cover the same pods with the same amount; the denial
    // names the first exhausted one by name (cost::BudgetEnforcer).
    bool named = false;
    for (const char* b : {"flaky-receiver", "gpu-monthly", "missing-secret"}) {
      named =
          named || denial.find("budget " + ns_ + "/" + b + " is exhausted") != std::string::npos;
    }
    EXPECT_TRUE(named) << denial;
    EXPECT_NE(denial.find("admission webhook \"pods.validate.gpuautoscaler.io\" denied"),
              std::string::npos)
        << denial;
    EXPECT_TRUE(client_
                    ->Create({kube::resources::kPods, ns_, "", ""},
                             NewPod("exempt", {{"gpuautoscaler.io/budget-exempt", "true"}}, true))
                    .ok());
    EXPECT_TRUE(client_
                    ->Create({kube::resources::kPods, ns_, "", ""},
                             NewPod("cpu-only", json::object(), false))
                    .ok());
  }

  // A missing Secret is a condition naming it, not a crash.
  json missing;
  ASSERT_TRUE(WaitFor([&] {
    missing = Get(kBudgets, ns_, "missing-secret");
    return Condition(missing, "NotificationFailed").rfind("True", 0) == 0;
  })) << missing.dump(2);
  EXPECT_NE(Condition(missing, "NotificationFailed").find("Secret " + ns_ + "/nope not found"),
            std::string::npos);

  // A receiver answering 500 is retried until it takes the alert.
  json flaky;
  ASSERT_TRUE(WaitFor(
      [&] {
        flaky = Get(kBudgets, ns_, "flaky-receiver");
        return receiver_.On("/flaky").size() == 2 &&
               Condition(flaky, "NotificationFailed").rfind("False", 0) == 0;
      },
      std::chrono::seconds(60)))
      << flaky.dump(2);
  EXPECT_EQ(receiver_.flaky_failures(), 2);

  // Events on the Budget.
  auto events = client_->List({kube::resources::kEvents, ns_, "", ""});
  ASSERT_TRUE(events.ok());
  int reached = 0;
  for (const json& e : events->at("items"))
    if (e["involvedObject"]["name"] == "gpu-monthly" && e["reason"] == "BudgetThresholdReached")
      ++reached;
  EXPECT_GE(reached, 1);

  // Metrics with controller-runtime's names, and cost by attribution.
  const int metrics_port = manager_.PortFromLog("metrics_port");
  auto metrics =
      kube::RestClient::Create({.server = "http://127.0.0.1:" + std::to_string(metrics_port)});
  ASSERT_TRUE(metrics.ok());
  auto scraped = (*metrics)->Request("GET", "/metrics");
  ASSERT_TRUE(scraped.ok());
  EXPECT_NE(scraped->body.find("controller_runtime_reconcile_total{controller=\"budget\""),
            std::string::npos);
  EXPECT_NE(scraped->body.find("gpu_autoscaler_cost_per_hour{"), std::string::npos);
  EXPECT_NE(scraped->body.find("namespace=\"" + ns_ + "\""), std::string::npos);
  // Each Budget's amount and spend: gpu-monthly has spent at least its amount.
  const std::string labels =
      "{budget=\"gpu-monthly\",currency=\"USD\",kind=\"Budget\",namespace=\"" + ns_ + "\"} ";
  EXPECT_NE(scraped->body.find("gpu_autoscaler_budget_amount" + labels + "0.01\n"),
            std::string::npos)
      << scraped->body;
  const size_t spent_at = scraped->body.find("gpu_autoscaler_budget_spent" + labels);
  ASSERT_NE(spent_at, std::string::npos) << scraped->body;
  EXPECT_GE(std::stod(scraped->body.substr(spent_at + 27 + labels.size())), 0.01);

  // The Secrets' values never reach the log, Events, Budget status or metrics.
  std::string emitted = manager_.Log() + events->dump() + scraped->body;
  for (const char* b : {"gpu-monthly", "flaky-receiver", "missing-secret"})
    emitted += Get(kBudgets, ns_, b).dump();
  for (const std::string& secret :
       {receiver_.url("/slack"), receiver_.url("/hook"), receiver_.url("/flaky"),
        receiver_.url("/pagerduty"), std::string("s3cret"), std::string("R0UTING")}) {
    EXPECT_EQ(emitted.find(secret), std::string::npos) << "leaked: " << secret;
  }

  // kill -9 mid-run, stay down a few seconds, restart: the stored seconds
  // stay contiguous (the gap is metered), and no alert is sent again.
  Seconds before = StoredSeconds("trainer");
  ASSERT_GT(before.count, 0);
  EXPECT_EQ(before.count, before.last - before.first + 1);
  manager_.Kill(SIGKILL);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  StartManager();
  Seconds after;
  ASSERT_TRUE(WaitFor([&] {
    after = StoredSeconds("trainer");
    return after.last > before.last + 5;
  })) << manager_.Log();
  EXPECT_EQ(after.first, before.first);
  EXPECT_EQ(after.count, after.last - after.first + 1) << "a second was lost or doubled";
  std::this_thread::sleep_for(std::chrono::seconds(2));  // a few evaluations after restart
  EXPECT_EQ(receiver_.On("/slack").size(), 2u);
  EXPECT_EQ(receiver_.On("/hook").size(), 2u);
  EXPECT_EQ(receiver_.On("/pagerduty").size(), 2u);
  EXPECT_EQ(Mails().size(), 2u);
}

// A ClusterBudget over two namespaces picked by a label: its spend is what
// the pods of both cost (not the unselected namespace's, not idle capacity),
// each threshold is announced once to a loopback receiver with the
// ClusterBudget's own idempotency keys (its Secret in the operator's
// namespace), and once exhausted a new GPU pod in either namespace is
// denied, naming it, while one in an unselected namespace is admitted.
TEST_F(OperatorTest, AClusterBudgetSpendsAcrossLabelledNamespacesAlertsOnceAndBlocksThem) {
  const std::string node_name = "cb-node-" + ns_;
  AddGpuNode(node_name);
  const std::vector<std::string> selected = {server_->CreateTestNamespace("cb-a"),
                                             server_->CreateTestNamespace("cb-b")};
  for (const std::string& ns : selected) {
    json object = Get(kube::resources::kNamespaces, "", ns);
    object["metadata"]["labels"]["cost-center"] = ns_;
    ASSERT_TRUE(client_->Replace({kube::resources::kNamespaces, "", ns, ""}, object).ok());
    AddRunningGpuPod(ns, "trainer", node_name, {{"team", "vision"}});
  }
  AddRunningGpuPod(ns_, "outsider", node_name, {{"team", "vision"}});  // not selected
  // The manager's operator namespace is its --leader-election-namespace: ns_.
  Create(kube::resources::kSecrets, ns_,
         {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", {{"name", "cluster-alerts"}}},
          {"data",
           {{"webhook-url", Base64Encode(receiver_.url("/cluster-hook"))},
            {"hmac-key", Base64Encode("s3cret")}}}});
  const std::string name = "research-" + ns_;
  Create(kClusterBudgets, "",
         {{"apiVersion", "gpuautoscaler.io/v1alpha1"},
          {"kind", "ClusterBudget"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"scope", {{"namespaceSelector", {{"matchLabels", {{"cost-center", ns_}}}}}}},
            {"amount", 0.01},
            {"period", "monthly"},
            {"thresholds", {50, 100}},
            {"notifications",
             {{{"type", "webhook"},
               {"secretRef", {{"name", "cluster-alerts"}, {"key", "webhook-url"}}}}}},
            {"enforcement", "blockNewGPUPods"}}}});
  const bool with_webhook = !server_->is_real_cluster();
  if (with_webhook) StartWebhook();
  if (HasFatalFailure()) return;
  StartManager();

  json b;
  ASSERT_TRUE(WaitFor(
      [&] {
        b = Get(kClusterBudgets, "", name);
        return Condition(b, "Exceeded").rfind("True", 0) == 0 &&
               receiver_.On("/cluster-hook").size() == 2;
      },
      std::chrono::seconds(60)))
      << b.dump(2) << manager_.Log();
  EXPECT_EQ(b["status"]["observedGeneration"], b["metadata"]["generation"]);
  ASSERT_EQ(b["status"]["lastAlert"].size(), 2u);
  const auto hooks = receiver_.On("/cluster-hook");
  EXPECT_NE(hooks[0].idempotency_key, hooks[1].idempotency_key);
  EXPECT_EQ(hooks[0].idempotency_key.rfind("gpu-autoscaler/clusterbudget/" + name + "/50/", 0), 0u)
      << hooks[0].idempotency_key;
  EXPECT_EQ(json::parse(hooks[1].body)["budget"]["kind"], "ClusterBudget");
  EXPECT_EQ(hooks[1].signature.substr(0, 7), "sha256=");

  if (with_webhook) {
    for (const std::string& ns : selected) {
      const std::string denial = WaitForDenial(ns, "late-trainer");
      ASSERT_FALSE(denial.empty()) << ns << webhook_.Log();
      EXPECT_NE(denial.find("ClusterBudget " + name + " is exhausted ("), std::string::npos)
          << denial;
      EXPECT_NE(denial.find(" of 0.01 USD spent in the monthly period"), std::string::npos)
          << denial;
    }
    auto outside = client_->Create({kube::resources::kPods, ns_, "", ""},
                                   NewPod("free", json::object(), true));
    EXPECT_TRUE(outside.ok()) << outside.error().ToString();
  }

  // The selected namespaces' pods finish: their cost stops growing, and the
  // ClusterBudget's spend settles on exactly what both cost (the outsider
  // keeps running, so counting it would never settle).
  for (const std::string& ns : selected)
    SetStatus(kube::resources::kPods, ns, Get(kube::resources::kPods, ns, "trainer"),
              {{"phase", "Succeeded"}});
  double a = 0, c = 0, spend = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        a = StoredCost(selected[0]);
        c = StoredCost(selected[1]);
        b = Get(kClusterBudgets, "", name);
        spend = b["status"].value("currentSpend", 0.0);
        return a > 0 && c > 0 && std::abs(spend - (a + c)) < 2e-6;
      },
      std::chrono::seconds(60)))
      << "spend " << spend << ", stored " << a << " + " << c << "\n"
      << manager_.Log();
  EXPECT_GT(StoredCost(ns_), 0) << "the outsider is metered, just not in scope";

  // Events on the ClusterBudget (cluster-scoped: in "default"), and metrics with kind.
  auto events = client_->List({kube::resources::kEvents, "default", "", ""});
  ASSERT_TRUE(events.ok());
  int reached = 0;
  for (const json& e : events->at("items"))
    if (e["involvedObject"].value("kind", "") == "ClusterBudget" &&
        e["involvedObject"].value("name", "") == name && e["reason"] == "BudgetThresholdReached")
      ++reached;
  EXPECT_EQ(reached, 2);
  auto metrics = kube::RestClient::Create(
      {.server = "http://127.0.0.1:" + std::to_string(manager_.PortFromLog("metrics_port"))});
  ASSERT_TRUE(metrics.ok());
  auto scraped = (*metrics)->Request("GET", "/metrics");
  ASSERT_TRUE(scraped.ok());
  EXPECT_NE(scraped->body.find("gpu_autoscaler_budget_amount{budget=\"" + name +
                               "\",currency=\"USD\",kind=\"ClusterBudget\",namespace=\"\"} 0.01\n"),
            std::string::npos)
      << scraped->body;
  // Still one alert per threshold after the settling evaluations.
  EXPECT_EQ(receiver_.On("/cluster-hook").size(), 2u);
  (void)client_->Delete({kClusterBudgets, "", name, ""});
}

// A namespace relabelled into a ClusterBudget's namespaceSelector counts at
// once, and relabelled out stops counting at once: the manager watches
// Namespaces. The evaluation period here is an hour, so nothing but that
// watch can bring the change into the status within the test's minute.
TEST_F(OperatorTest, AClusterBudgetFollowsNamespaceLabelsWithoutWaitingForItsPeriod) {
  std::ofstream(config_) << "apiVersion: gpuautoscaler.io/v1alpha1\nkind: ManagerConfig\n"
                            "budgets:\n  evaluationPeriod: 1h\n";
  const std::string node_name = "relabel-node-" + ns_;
  AddGpuNode(node_name);
  const std::string late = server_->CreateTestNamespace("cb-late");
  AddRunningGpuPod(late, "trainer", node_name, {{"team", "vision"}});
  const std::string name = "relabel-" + ns_;
  Create(kClusterBudgets, "",
         {{"apiVersion", "gpuautoscaler.io/v1alpha1"},
          {"kind", "ClusterBudget"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"scope", {{"namespaceSelector", {{"matchLabels", {{"cost-center", ns_}}}}}}},
            {"amount", 1000},
            {"period", "monthly"}}}});
  StartManager();
  if (HasFatalFailure()) return;

  auto spend = [&] {
    const json b = Get(kClusterBudgets, "", name);
    if (!b.is_object() || !b.contains("status")) return -1.0;
    if (b["status"].value("observedGeneration", 0) != b["metadata"].value("generation", 0))
      return -1.0;
    return b["status"].value("currentSpend", 0.0);
  };
  // Evaluated once at start, with nothing in scope, while the pod is metered.
  ASSERT_TRUE(
      WaitFor([&] { return spend() == 0.0 && StoredCost(late) > 0; }, std::chrono::seconds(60)))
      << Get(kClusterBudgets, "", name).dump(2) << manager_.Log();
  // The budget controller reuses a spend read for 5 s across budgets; past
  // that, the next evaluation reads the store again and sees the pod's cost.
  std::this_thread::sleep_for(std::chrono::seconds(6));

  auto relabel = [&](const json& labels) {
    json object = Get(kube::resources::kNamespaces, "", late);
    object["metadata"]["labels"] = labels;
    auto r = client_->Replace({kube::resources::kNamespaces, "", late, ""}, object);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
  };
  relabel({{"cost-center", ns_}});
  ASSERT_TRUE(WaitFor([&] { return spend() > 0; }, std::chrono::seconds(30)))
      << "the relabelled namespace did not count before the next period\n"
      << Get(kClusterBudgets, "", name).dump(2) << manager_.Log();

  relabel({{"cost-center", "elsewhere"}});
  EXPECT_TRUE(WaitFor([&] { return spend() == 0.0; }, std::chrono::seconds(30)))
      << "the namespace relabelled out still counts\n"
      << Get(kClusterBudgets, "", name).dump(2) << manager_.Log();
  (void)client_->Delete({kClusterBudgets, "", name, ""});
}

}  // namespace
}  // namespace gpu_autoscaler
