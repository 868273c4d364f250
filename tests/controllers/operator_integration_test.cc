// The operator end to end: the embedded API server, gpu-autoscaler-webhook and
// gpu-autoscaler-manager run as separate processes, with loopback receivers
// for Slack, PagerDuty and webhooks and a real SMTP server. The test creates
// nodes, pods, GPUSharingPolicies, Budgets and Secrets through the API and
// checks statuses, Events, metrics, stored costs, the notifications received
// and the pods denied, across a kill -9 and restart of the manager.
#include <libpq-fe.h>
#include <signal.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "cost/store_factory.h"
#include "kube/conditions.h"
#include "kube/rest_client.h"
#include "net/http_server.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/loopback_port.h"
#include "support/postgres_fixture.h"
#include "support/test_paths.h"

namespace gpu_autoscaler {
namespace {

using nlohmann::json;
using testing::ChildProcess;
using testing::WaitFor;

const kube::GroupVersionResource kBudgets{"gpuautoscaler.io", "v1alpha1", "budgets", true};
const kube::GroupVersionResource kClusterBudgets{"gpuautoscaler.io", "v1alpha1", "clusterbudgets",
                                                 false};
const kube::GroupVersionResource kPolicies{"gpuautoscaler.io", "v1alpha1", "gpusharingpolicies",
                                           false};

// Records every request; /flaky answers 500 to its first two.
class Receiver {
 public:
  struct Request {
    std::string path, body, idempotency_key, signature;
  };
  Receiver() {
    auto server =
        net::HttpServer::Start({}, [this](const net::ServerRequest& r, net::ResponseWriter& w) {
          std::lock_guard<std::mutex> lock(mu_);
          if (r.path == "/flaky" && flaky_failures_ < 2) {
            ++flaky_failures_;
            w.Respond(500, "text/plain", "try later");
            return;
          }
          requests_.push_back({r.path, r.body, std::string(r.Header("Idempotency-Key")),
                               std::string(r.Header("X-GPU-Autoscaler-Signature"))});
          w.Respond(200, "text/plain", "ok");
        });
    EXPECT_TRUE(server.ok());
    server_ = std::move(*server);
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
  }
  std::vector<Request> On(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Request> out;
    for (const auto& r : requests_)
      if (r.path == path) out.push_back(r);
    return out;
  }
  int flaky_failures() {
    std::lock_guard<std::mutex> lock(mu_);
    return flaky_failures_;
  }

 private:
  std::mutex mu_;
  std::vector<Request> requests_;
  int flaky_failures_ = 0;
  std::unique_ptr<net::HttpServer> server_;
};

class OperatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client);
    ns_ = server_->CreateTestNamespace("operator");
    dir_ = testing::MakeTempDir("gpa-operator");
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);
    config_ = dir_ + "/config.yaml";
    // A real SMTP server (Debian's python3-aiosmtpd) writing each message to a Maildir.
    smtp_port_ = testing::FreeLoopbackPort().value();
    maildir_ = dir_ + "/maildir";
    if (std::filesystem::exists("/usr/bin/python3")) {
      smtp_.Spawn(
          {"/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l",
           "127.0.0.1:" + std::to_string(smtp_port_), "-c", "aiosmtpd.handlers.Mailbox", maildir_},
          dir_ + "/smtp.log");
    }
    std::ofstream(config_) << "apiVersion: gpuautoscaler.io/v1alpha1\nkind: ManagerConfig\n"
                              "budgets:\n  evaluationPeriod: 1s\nsharingPolicies:\n  resync: 2s\n";
  }
  void TearDown() override {
    manager_.Kill(SIGKILL);
    webhook_.Kill(SIGTERM);
    smtp_.Kill(SIGTERM);
    if (!dir_.empty() && !HasFailure()) std::filesystem::remove_all(dir_);
  }

  void StartManager() {
    ASSERT_TRUE(manager_.Spawn(
        {testing::BinaryPath("gpu-autoscaler-manager"), "--kubeconfig=" + kubeconfig_,
         "--metrics-bind-address=127.0.0.1:0", "--metrics-secure=false",
         "--health-probe-bind-address=127.0.0.1:0", "--leader-elect",
         "--leader-election-namespace=" + ns_, "--leader-election-id=operator-test",
         "--config=" + config_, "--cost-db=" + dir_ + "/cost.db"},
        dir_ + "/manager.log"));
    ASSERT_TRUE(WaitFor([&] { return manager_.PortFromLog("metrics_port") > 0; }))
        << manager_.Log();
  }

  // The admission webhook, registered as a cluster has it: a
  // ValidatingWebhookConfiguration whose caBundle the webhook patches itself.
  void StartWebhook() {
    const int port = testing::FreeLoopbackPort().value();
    Create({"admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", false}, "",
           {{"apiVersion", "admissionregistration.k8s.io/v1"},
            {"kind", "ValidatingWebhookConfiguration"},
            {"metadata", {{"name", "gpu-autoscaler-webhook"}}},
            {"webhooks",
             {{{"name", "pods.validate.gpuautoscaler.io"},
               {"admissionReviewVersions", {"v1"}},
               {"sideEffects", "None"},
               {"failurePolicy", "Fail"},
               {"clientConfig",
                {{"url", "https://127.0.0.1:" + std::to_string(port) + "/validate-pods"}}},
               // Only this test's pods: never anything else on a shared server.
               {"objectSelector", {{"matchLabels", {{"operator-test", ns_}}}}},
               {"rules",
                {{{"operations", {"CREATE"}},
                  {"apiGroups", {""}},
                  {"apiVersions", {"v1"}},
                  {"resources", {"pods"}}}}}}}}});
    ASSERT_TRUE(webhook_.Spawn(
        {testing::BinaryPath("gpu-autoscaler-webhook"), "--bind-address", "127.0.0.1", "--port",
         std::to_string(port), "--kubeconfig", kubeconfig_, "--self-signed", "--self-signed-ip",
         "127.0.0.1", "--metrics-bind-address", "0"},
        dir_ + "/webhook.log"));
    ASSERT_TRUE(WaitFor([&] {
      const json config =
          Get({"admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", false}, "",
              "gpu-autoscaler-webhook");
      return config.is_object() &&
             !config["webhooks"][0]["clientConfig"].value("caBundle", "").empty();
    })) << webhook_.Log();
  }

  // A Ready p4d node with 8 GPUs.
  void AddGpuNode(const std::string& name) {
    json node = Create(kube::resources::kNodes, "",
                       {{"apiVersion", "v1"},
                        {"kind", "Node"},
                        {"metadata",
                         {{"name", name},
                          {"labels",
                           {{"node.kubernetes.io/instance-type", "p4d.24xlarge"},
                            {"nvidia.com/gpu.product", "A100-SXM4-40GB"}}}}}});
    SetStatus(kube::resources::kNodes, "", node,
              {{"allocatable", {{"cpu", "96"}, {"memory", "1152Gi"}, {"nvidia.com/gpu", "8"}}},
               {"capacity", {{"cpu", "96"}, {"memory", "1152Gi"}, {"nvidia.com/gpu", "8"}}},
               {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}});
  }
  // A pod running on `node` with one GPU, 4 CPUs and 16Gi.
  void AddRunningGpuPod(const std::string& ns, const std::string& name, const std::string& node,
                        const json& labels, const json& annotations = json::object()) {
    json pod =
        Create(kube::resources::kPods, ns,
               {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"labels", labels}, {"annotations", annotations}}},
                {"spec",
                 {{"nodeName", node},
                  {"containers",
                   {{{"name", "main"},
                     {"image", "cuda"},
                     {"resources",
                      {{"requests", {{"cpu", "4"}, {"memory", "16Gi"}, {"nvidia.com/gpu", "1"}}},
                       {"limits", {{"nvidia.com/gpu", "1"}}}}}}}}}}});
    SetStatus(kube::resources::kPods, ns, pod, {{"phase", "Running"}});
  }
  // A new pod the test's webhook configuration sends to the webhook.
  json NewPod(const std::string& name, const json& annotations, bool gpu) {
    json requests = gpu ? json{{"nvidia.com/gpu", "1"}} : json{{"cpu", "1"}};
    return json{
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata",
         {{"name", name}, {"labels", {{"operator-test", ns_}}}, {"annotations", annotations}}},
        {"spec",
         {{"containers",
           {{{"name", "main"}, {"image", "cuda"}, {"resources", {{"limits", requests}}}}}}}}};
  }
  // The webhook's denial of a new GPU pod in `ns`, once it denies (403); "" if it never does.
  std::string WaitForDenial(const std::string& ns, const std::string& name) {
    std::string denial;
    const bool denied = WaitFor([&] {
      auto created =
          client_->Create({kube::resources::kPods, ns, "", ""}, NewPod(name, json::object(), true));
      if (created.ok()) {
        (void)client_->Delete({kube::resources::kPods, ns, name, ""});
        return false;
      }
      denial = created.error().ToString();
      return created.error().code() == 403;
    });
    return denied ? denial : "";
  }

  json Create(const kube::GroupVersionResource& gvr, const std::string& ns, const json& obj) {
    auto created = client_->Create({gvr, ns, "", ""}, obj);
    EXPECT_TRUE(created.ok()) << created.error().ToString();
    return created.ok() ? *created : json();
  }
  void SetStatus(const kube::GroupVersionResource& gvr, const std::string& ns, json obj,
                 const json& status) {
    obj["status"] = status;
    auto r = client_->Replace(
        kube::ObjectRef{gvr, ns, obj["metadata"]["name"].get<std::string>(), ""}.WithSub("status"),
        obj);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
  }
  json Get(const kube::GroupVersionResource& gvr, const std::string& ns, const std::string& name) {
    auto got = client_->Get({gvr, ns, name, ""});
    return got.ok() ? *got : json();
  }
  std::string Condition(const json& obj, const std::string& type) {
    if (!obj.is_object()) return "";
    auto c =
        kube::FindCondition(obj.value("status", json::object()).value("conditions", json()), type);
    return c ? c->status + ": " + c->message : "";
  }

  // Stored seconds of a pod: count, first and last.
  struct Seconds {
    int64_t count = 0, first = 0, last = 0;
  };
  // Everything a namespace's pods cost, as stored.
  double StoredCost(const std::string& ns) {
    auto store = cost::OpenCostStore(dir_ + "/cost.db");
    if (!store.ok()) return -1;
    cost::CostQuery q{.window = {0, 4'000'000'000},
                      .resolution = cost::Resolution::kSecond,
                      .group_by = {cost::Dimension::kNamespace},
                      .filters = {{cost::Dimension::kNamespace, ns}},
                      .bucket = cost::Resolution::kSecond};
    auto report = (*store)->Query(q);
    if (!report.ok()) return -1;
    double sum = 0;
    for (const auto& row : report->rows)
      if (!row.idle) sum += row.totals.total_cost();
    return sum;
  }
  Seconds StoredSeconds(const std::string& pod) {
    auto store = cost::OpenCostStore(dir_ + "/cost.db");
    if (!store.ok()) return {};
    cost::CostQuery q{.window = {0, 4'000'000'000},
                      .resolution = cost::Resolution::kSecond,
                      .group_by = {cost::Dimension::kPod},
                      .filters = {{cost::Dimension::kPod, ns_ + "/" + pod}},
                      .bucket = cost::Resolution::kSecond};
    auto report = (*store)->Query(q);
    if (!report.ok()) return {};
    Seconds s;
    for (const auto& row : report->rows) {
      if (row.idle) continue;
      s.count += row.totals.samples;
      if (s.first == 0 || row.bucket < s.first) s.first = row.bucket;
      s.last = std::max(s.last, row.bucket);
    }
    return s;
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::string ns_, dir_, kubeconfig_, config_;
  // Messages the SMTP server stored, oldest first.
  std::vector<std::string> Mails() {
    std::vector<std::pair<std::filesystem::file_time_type, std::string>> files;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(maildir_ + "/new", ec))
      files.emplace_back(e.last_write_time(), testing::ReadFileOrDie(e.path().string()));
    std::sort(files.begin(), files.end());
    std::vector<std::string> out;
    for (auto& f : files)
      out.push_back(std::move(f.second));
    return out;
  }
  bool SmtpUp() {
    return smtp_.running() && testing::WaitFor([&] {
             return smtp_.Log().find("rror") == std::string::npos &&
                    std::filesystem::exists(maildir_ + "/new");
           });
  }

  ChildProcess manager_;
  ChildProcess webhook_;
  ChildProcess smtp_;
  int smtp_port_ = 0;
  std::string maildir_;
  Receiver receiver_;
};

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

// Runs one SQL statement as the server's superuser; "" or the error.
std::string AdminSql(int port, const std::string& sql) {
  const std::string conninfo =
      "postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/postgres";
  PGconn* conn = PQconnectdb(conninfo.c_str());
  std::string error;
  if (PQstatus(conn) != CONNECTION_OK) {
    error = PQerrorMessage(conn);
  } else {
    PGresult* r = PQexec(conn, sql.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
      error = PQerrorMessage(conn);
    PQclear(r);
  }
  PQfinish(conn);
  return error;
}

// The cost history in PostgreSQL, its URL read from a Secret. The database
// goes away mid-run (connections refused, open ones terminated), the manager
// is killed with SIGKILL during the outage, the database comes back, the
// manager restarts: every second is stored once, none is missing.
TEST_F(OperatorTest, PostgresFromASecretSurvivesAnOutageAndACrashWithoutLosingASecond) {
  std::string why;
  testing::TestPostgres* pg = testing::TestPostgres::Shared(&why);
  if (pg == nullptr) GTEST_SKIP() << "no PostgreSQL: " << why;
  auto url = pg->CreateDatabase("operator");
  ASSERT_TRUE(url.ok()) << url.error().ToString();
  const std::string db = url->substr(url->rfind('/') + 1);
  Create(kube::resources::kSecrets, ns_,
         {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", {{"name", "cost-db"}}},
          {"data", {{"url", Base64Encode(*url)}}}});
  const std::string node_name = "pg-node-" + ns_;
  json node = Create(kube::resources::kNodes, "",
                     {{"apiVersion", "v1"},
                      {"kind", "Node"},
                      {"metadata",
                       {{"name", node_name},
                        {"labels", {{"node.kubernetes.io/instance-type", "p4d.24xlarge"}}}}}});
  SetStatus(kube::resources::kNodes, "", node,
            {{"allocatable", {{"cpu", "96"}, {"memory", "1152Gi"}, {"nvidia.com/gpu", "8"}}}});
  json pod = Create(kube::resources::kPods, ns_,
                    {{"apiVersion", "v1"},
                     {"kind", "Pod"},
                     {"metadata", {{"name", "trainer"}}},
                     {"spec",
                      {{"nodeName", node_name},
                       {"containers",
                        {{{"name", "main"},
                          {"image", "cuda"},
                          {"resources", {{"limits", {{"nvidia.com/gpu", "2"}}}}}}}}}}});
  SetStatus(kube::resources::kPods, ns_, pod, {{"phase", "Running"}});

  auto start = [&] {
    ASSERT_TRUE(manager_.Spawn({testing::BinaryPath("gpu-autoscaler-manager"),
                                "--kubeconfig=" + kubeconfig_, "--metrics-bind-address=127.0.0.1:0",
                                "--metrics-secure=false", "--health-probe-bind-address=127.0.0.1:0",
                                "--controllers=cost", "--cost-db-secret=" + ns_ + "/cost-db/url"},
                               dir_ + "/manager.log"));
  };
  auto stored = [&] {
    Seconds s;
    auto store = cost::OpenCostStore(*url);
    if (!store.ok()) return s;
    auto report = (*store)->Query({.window = {0, 4'000'000'000},
                                   .resolution = cost::Resolution::kSecond,
                                   .group_by = {cost::Dimension::kPod},
                                   .filters = {{cost::Dimension::kPod, ns_ + "/trainer"}},
                                   .bucket = cost::Resolution::kSecond});
    if (!report.ok()) return s;
    for (const auto& row : report->rows) {
      s.count += row.totals.samples;
      if (s.first == 0 || row.bucket < s.first) s.first = row.bucket;
      s.last = std::max(s.last, row.bucket);
    }
    return s;
  };
  start();
  Seconds before;
  ASSERT_TRUE(WaitFor([&] { return (before = stored()).count >= 3; })) << manager_.Log();

  // The outage: no new connections, the open ones cut.
  ASSERT_EQ(AdminSql(pg->port(), "ALTER DATABASE " + db + " ALLOW_CONNECTIONS false"), "");
  ASSERT_EQ(AdminSql(pg->port(),
                     "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = '" +
                         db + "'"),
            "");
  ASSERT_TRUE(WaitFor([&] {
    return manager_.Log().find("cost metering failed") != std::string::npos;
  })) << manager_.Log();
  std::this_thread::sleep_for(std::chrono::seconds(2));  // seconds pile up unstored
  manager_.Kill(SIGKILL);                                // and the manager dies meanwhile
  ASSERT_EQ(AdminSql(pg->port(), "ALTER DATABASE " + db + " ALLOW_CONNECTIONS true"), "");
  const int64_t back = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  start();
  Seconds after;
  ASSERT_TRUE(WaitFor([&] { return (after = stored()).last >= back + 2; })) << manager_.Log();
  EXPECT_EQ(after.first, before.first);
  EXPECT_EQ(after.count, after.last - after.first + 1)
      << "seconds lost or doubled across the outage and the crash: " << after.count << " stored "
      << "for " << after.first << ".." << after.last;
  EXPECT_NE(manager_.Log().find("resuming cost metering after the newest stored second"),
            std::string::npos);
  // The database URL (with its credentials) never reaches the log, even
  // through the outage's connection errors.
  EXPECT_EQ(manager_.Log().find(*url), std::string::npos) << manager_.Log();
  const size_t at = url->find('@');
  if (at != std::string::npos) {
    EXPECT_EQ(manager_.Log().find(url->substr(0, at)), std::string::npos) << manager_.Log();
  }
}

// The configuration from a watched ConfigMap: a bad version gets a Warning
// Event and changes nothing; a good one is applied.
TEST_F(OperatorTest, AWatchedConfigMapRejectsABadVersionWithAnEvent) {
  if (!server_->supports_faults()) GTEST_SKIP() << "reads Events of our own server";
  const json configmap = {{"apiVersion", "v1"},
                          {"kind", "ConfigMap"},
                          {"metadata", {{"name", "manager-config"}}},
                          {"data", {{"config.yaml", "cost:\n  pricing: |\n    currency: USD\n"}}}};
  Create(kube::resources::kConfigMaps, ns_, configmap);
  ASSERT_TRUE(manager_.Spawn(
      {testing::BinaryPath("gpu-autoscaler-manager"), "--kubeconfig=" + kubeconfig_,
       "--metrics-bind-address=127.0.0.1:0", "--metrics-secure=false",
       "--health-probe-bind-address=127.0.0.1:0", "--controllers=cost",
       "--config-configmap=" + ns_ + "/manager-config", "--cost-db=" + dir_ + "/cost.db"},
      dir_ + "/manager.log"));
  auto event_reasons = [&] {
    std::vector<std::string> reasons;
    auto events = client_->List({kube::resources::kEvents, ns_, "", ""});
    if (!events.ok()) return reasons;
    for (const json& e : events->at("items"))
      if (e["involvedObject"]["name"] == "manager-config")
        reasons.push_back(e["reason"].get<std::string>() + ": " + e.value("message", ""));
    return reasons;
  };
  auto has = [&](const std::string& prefix) {
    for (const std::string& r : event_reasons())
      if (r.rfind(prefix, 0) == 0) return true;
    return false;
  };
  ASSERT_TRUE(WaitFor([&] { return has("ConfigApplied"); })) << manager_.Log();
  json bad = Get(kube::resources::kConfigMaps, ns_, "manager-config");
  bad["data"]["config.yaml"] = "cost:\n  pricng: oops\n";
  ASSERT_TRUE(
      client_->Replace({kube::resources::kConfigMaps, ns_, "manager-config", ""}, bad).ok());
  ASSERT_TRUE(WaitFor([&] { return has("InvalidConfig"); })) << manager_.Log();
  bool named = false;
  for (const std::string& r : event_reasons())
    named |= r.find("cost.pricng: unknown field") != std::string::npos &&
             r.find("last good configuration stays in force") != std::string::npos;
  EXPECT_TRUE(named);
  EXPECT_TRUE(manager_.running());
  EXPECT_FALSE(manager_.TryWait().has_value()) << "the manager must keep running";
}

TEST_F(OperatorTest, RejectsABadConfigurationAtStartWithTheFieldPath) {
  std::ofstream(config_, std::ios::trunc) << "cost:\n  intervall: 1s\n";
  ChildProcess bad;
  ASSERT_TRUE(bad.Spawn({testing::BinaryPath("gpu-autoscaler-manager"),
                         "--kubeconfig=" + kubeconfig_, "--config=" + config_},
                        dir_ + "/bad.log"));
  std::optional<int> status;
  ASSERT_TRUE(WaitFor([&] { return (status = bad.TryWait()).has_value(); })) << bad.Log();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << bad.Log();
  EXPECT_NE(bad.Log().find("cost.intervall: unknown field"), std::string::npos) << bad.Log();
}

}  // namespace
}  // namespace gpu_autoscaler
