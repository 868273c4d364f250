// The real gpu-autoscaler-webhook program, spawned on 127.0.0.1 next to the
// repo's test API server: policies arrive through the informer, --self-signed
// patches the webhook configurations' caBundle, and rotated certificate files
// are served without a restart.
#include <sys/wait.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/rest_client.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/test_paths.h"
#include "webhooks/cert_bundle_patcher.h"
#include "webhooks/webhook_integration_client.h"
#include "webhooks/webhook_process.h"

namespace gpu_autoscaler::webhooks {
namespace {

using namespace std::chrono_literals;
namespace wt = gpu_autoscaler::webhooks::testing;
using gpu_autoscaler::testing::TestApiServer;
using wt::PollUntil;
using wt::WebhookProcess;
using wt::WriteKubeconfig;

const kube::GroupVersionResource kPolicies{"gpuautoscaler.io", "v1alpha1", "gpusharingpolicies",
                                           false};
const kube::GroupVersionResource kMutatingConfigs{"admissionregistration.k8s.io", "v1",
                                                  "mutatingwebhookconfigurations", false};
const kube::GroupVersionResource kValidatingConfigs{"admissionregistration.k8s.io", "v1",
                                                    "validatingwebhookconfigurations", false};

// Runs the program to completion; returns its exit code and stdout.
int RunToCompletion(const std::vector<std::string>& flags, std::string* out) {
  std::string cmd = gpu_autoscaler::testing::BinaryPath("gpu-autoscaler-webhook");
  for (const auto& f : flags)
    cmd += " '" + f + "'";
  cmd += " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[1024];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0)
    out->append(buf, n);
  int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(WebhookBinary, HelpAndBadFlags) {
  std::string out;
  EXPECT_EQ(RunToCompletion({"--help"}, &out), 0);
  EXPECT_NE(out.find("--self-signed"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(RunToCompletion({"--port", "70000", "--self-signed"}, &out), 2);
  EXPECT_NE(out.find("bad --port 70000"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(RunToCompletion({"--port", "0"}, &out), 2) << "no certificate source";
  EXPECT_NE(out.find("--self-signed"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(RunToCompletion({"--self-signed", "--metrics-secure=maybe"}, &out), 2);
  EXPECT_NE(out.find("--metrics-secure: want true or false"), std::string::npos) << out;
}

// Secure /metrics (the default) reviews each scrape with the API server, so
// without a cluster the program says what to do instead of serving it open.
TEST(WebhookBinary, SecureMetricsWithoutAClusterAreRefused) {
  auto run = gpu_autoscaler::testing::RunCommand(
      {"/usr/bin/env", "-u", "KUBECONFIG", "-u", "KUBERNETES_SERVICE_HOST",
       gpu_autoscaler::testing::BinaryPath("gpu-autoscaler-webhook"), "--bind-address", "127.0.0.1",
       "--port", "0", "--self-signed", "--metrics-bind-address", "127.0.0.1:0"});
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_NE(run.err.find("--metrics-secure needs a cluster"), std::string::npos) << run.err;
}

TEST(WebhookBinary, AppliesGpuSharingPoliciesFromTheCluster) {
  auto api = TestApiServer::Start();
  ASSERT_TRUE(api) << "api server did not start";
  wt::TempDir dir;
  auto files = wt::WriteServingCertificate(dir, "tls.crt", "tls.key");
  auto webhook =
      WebhookProcess::Start({"--kubeconfig", WriteKubeconfig(dir, api->config()), "--tls-cert-file",
                             files.cert_file, "--tls-key-file", files.key_file});
  ASSERT_TRUE(webhook);
  ASSERT_TRUE(PollUntil([&] {
    return wt::Https(webhook->url() + "/readyz", "GET", "", files.ca_pem).status == 200;
  })) << "policy informer never synced";

  auto patch_type = [&] {
    auto r = wt::Https(webhook->url() + "/mutate-pods?timeout=5s", "POST", wt::GoldenReview(2),
                       files.ca_pem);
    if (r.status != 200) return std::string("HTTP ") + std::to_string(r.status) + r.error;
    auto json = nlohmann::json::parse(r.body, nullptr, false);
    if (json.is_discarded()) return std::string("bad JSON");
    EXPECT_EQ(json["response"]["uid"], wt::GoldenUid(2));
    return json["response"].value("patchType", std::string("none"));
  };
  EXPECT_EQ(patch_type(), "none") << "no policy yet, nothing to rewrite";

  auto client = kube::RestClient::Create(api->config());
  ASSERT_TRUE(client.ok());
  auto policy = nlohmann::json::parse(R"({
    "apiVersion": "gpuautoscaler.io/v1alpha1", "kind": "GPUSharingPolicy",
    "metadata": {"name": "time-slice-all"},
    "spec": {"priority": 1, "strategy": {"type": "timeSlicing", "timeSlicing": {"replicas": 4}}}
  })");
  auto created = (*client)->Create({kPolicies, "", ""}, policy);
  ASSERT_TRUE(created.ok()) << created.error().ToString()
                            << " (is crds/gpusharingpolicy.yaml registered?)";
  EXPECT_TRUE(PollUntil([&] { return patch_type() == "JSONPatch"; }))
      << "the webhook never saw the new policy";

  ASSERT_TRUE((*client)->Delete({kPolicies, "", "time-slice-all"}).ok());
  EXPECT_TRUE(PollUntil([&] { return patch_type() == "none"; }))
      << "the webhook never forgot the deleted policy";
}

TEST(WebhookBinary, SelfSignedModePatchesTheCaBundleOfBothConfigurations) {
  // An HTTPS API server: the webhook must verify it with the CA from its kubeconfig.
  auto api = TestApiServer::Start({.tls = true});
  ASSERT_TRUE(api) << "api server did not start";
  auto client = kube::RestClient::Create(api->config());
  ASSERT_TRUE(client.ok());
  auto hook = [](const std::string& name, const std::string& path) {
    return nlohmann::json{{"name", name},
                          {"admissionReviewVersions", {"v1"}},
                          {"sideEffects", "None"},
                          {"clientConfig",
                           {{"service",
                             {{"name", "gpu-autoscaler-webhook"},
                              {"namespace", "gpu-autoscaler-system"},
                              {"path", path}}}}}};
  };
  nlohmann::json mutating = {{"apiVersion", "admissionregistration.k8s.io/v1"},
                             {"kind", "MutatingWebhookConfiguration"},
                             {"metadata", {{"name", "gpa-test-webhook"}}},
                             {"webhooks", {hook("pods.mutate.gpuautoscaler.io", "/mutate-pods")}}};
  nlohmann::json validating = {
      {"apiVersion", "admissionregistration.k8s.io/v1"},
      {"kind", "ValidatingWebhookConfiguration"},
      {"metadata", {{"name", "gpa-test-webhook"}}},
      {"webhooks",
       {hook("pods.validate.gpuautoscaler.io", "/validate-pods"),
        hook("gpusharingpolicies.validate.gpuautoscaler.io", "/validate-gpusharingpolicies")}}};
  // Cluster-scoped: removed even when an assertion fails, so a real cluster
  // is not left calling a webhook that no longer runs.
  struct DeleteConfigurations {
    kube::RestClient* client;
    ~DeleteConfigurations() {
      (void)client->Delete({kMutatingConfigs, "", "gpa-test-webhook"});
      (void)client->Delete({kValidatingConfigs, "", "gpa-test-webhook"});
    }
  } cleanup{client->get()};
  ASSERT_TRUE((*client)->Create({kMutatingConfigs, "", ""}, mutating).ok());
  ASSERT_TRUE((*client)->Create({kValidatingConfigs, "", ""}, validating).ok());

  wt::TempDir dir;
  std::string ca_file = dir.File("ca.crt");
  auto webhook = WebhookProcess::Start(
      {"--self-signed", "--self-signed-ip", "127.0.0.1", "--write-ca-file", ca_file, "--kubeconfig",
       WriteKubeconfig(dir, api->config()), "--webhook-config-name", "gpa-test-webhook"});
  ASSERT_TRUE(webhook);
  std::string ca_pem = gpu_autoscaler::testing::ReadFileOrDie(ca_file);
  std::string bundle = EncodeCaBundle(ca_pem);

  auto all_patched = [&](const kube::GroupVersionResource& gvr) {
    auto obj = (*client)->Get({gvr, "", "gpa-test-webhook"});
    if (!obj.ok()) return false;
    for (const auto& h : (*obj)["webhooks"]) {
      if (h["clientConfig"].value("caBundle", "") != bundle) return false;
    }
    return true;
  };
  EXPECT_TRUE(PollUntil([&] { return all_patched(kMutatingConfigs); }));
  EXPECT_TRUE(PollUntil([&] { return all_patched(kValidatingConfigs); }));
  // Untouched fields survive the patch.
  auto validating_now = (*client)->Get({kValidatingConfigs, "", "gpa-test-webhook"});
  ASSERT_TRUE(validating_now.ok());
  EXPECT_EQ((*validating_now)["webhooks"].size(), 2u);
  EXPECT_EQ((*validating_now)["webhooks"][1]["clientConfig"]["service"]["path"],
            "/validate-gpusharingpolicies");

  // The CA in the bundle verifies the served certificate (SAN 127.0.0.1).
  auto r = wt::Https(webhook->url() + "/healthz", "GET", "", ca_pem);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.status, 200);
}

// The "listening on ADDRESS:PORT" line, once the program has printed it; "" until then.
std::string ListeningLine(const gpu_autoscaler::testing::ChildProcess& webhook) {
  const std::string log = webhook.Log();
  const size_t at = log.find("listening on ");
  if (at == std::string::npos) return "";
  const size_t end = log.find('\n', at);
  return end == std::string::npos ? "" : log.substr(at, end - at);
}

// It used to print "listening on 127.0.0.1:PORT" while serving on 0.0.0.0 (and
// then the --bind-address text as typed, "::1:PORT" for IPv6): the line now
// names the socket actually bound.
TEST(WebhookBinary, PrintsTheAddressItReallyListensOn) {
  wt::TempDir dir;
  auto files = wt::WriteServingCertificate(dir, "tls.crt", "tls.key");
  // No cluster from a developer's environment: the program then serves without informers.
  const std::vector<std::string> common = {
      "/usr/bin/env",
      "-u",
      "KUBECONFIG",
      "-u",
      "KUBERNETES_SERVICE_HOST",
      gpu_autoscaler::testing::BinaryPath("gpu-autoscaler-webhook"),
      "--port",
      "0",
      "--tls-cert-file",
      files.cert_file,
      "--tls-key-file",
      files.key_file,
      "--metrics-bind-address",
      "0"};

  // Default bind address: every IPv4 interface, so loopback answers too.
  gpu_autoscaler::testing::ChildProcess all;
  ASSERT_TRUE(all.Spawn(common, dir.File("all.log")));
  std::string line;
  ASSERT_TRUE(PollUntil([&] { return !(line = ListeningLine(all)).empty(); })) << all.Log();
  const std::string prefix = "listening on 0.0.0.0:";
  ASSERT_EQ(line.rfind(prefix, 0), 0u) << line;
  const int port = std::atoi(line.c_str() + prefix.size());
  ASSERT_GT(port, 0) << line;
  EXPECT_EQ(line, prefix + std::to_string(port));
  EXPECT_EQ(
      wt::Https("https://127.0.0.1:" + std::to_string(port) + "/healthz", "GET", "", files.ca_pem)
          .status,
      200);

  gpu_autoscaler::testing::ChildProcess v6;
  std::vector<std::string> args = common;
  args.insert(args.end(), {"--bind-address", "::1"});
  ASSERT_TRUE(v6.Spawn(args, dir.File("v6.log")));
  bool exited = false;
  ASSERT_TRUE(PollUntil([&] {
    if (!ListeningLine(v6).empty()) return true;
    exited = v6.TryWait().has_value();
    return exited;
  })) << v6.Log();
  if (exited) GTEST_SKIP() << "no IPv6 loopback here: " << v6.Log();
  line = ListeningLine(v6);
  EXPECT_EQ(line.rfind("listening on [::1]:", 0), 0u) << line;
  EXPECT_GT(std::atoi(line.c_str() + std::string("listening on [::1]:").size()), 0) << line;
}

TEST(WebhookBinary, ServesRotatedCertificateFilesWithoutRestart) {
  wt::TempDir dir;
  auto first = wt::WriteServingCertificate(dir, "tls.crt", "tls.key");
  auto webhook = WebhookProcess::Start({"--tls-cert-file", first.cert_file, "--tls-key-file",
                                        first.key_file, "--cert-check-interval", "100ms"});
  ASSERT_TRUE(webhook);
  std::string first_serial = wt::ServedSerial(webhook->port());
  ASSERT_FALSE(first_serial.empty());
  EXPECT_EQ(wt::Https(webhook->url() + "/healthz", "GET", "", first.ca_pem).status, 200);

  auto second = wt::WriteServingCertificate(dir, "tls.crt", "tls.key");
  EXPECT_TRUE(PollUntil([&] { return wt::ServedSerial(webhook->port()) != first_serial; }))
      << "still serving serial " << first_serial;
  auto r = wt::Https(webhook->url() + "/mutate-pods", "POST", wt::GoldenReview(1), second.ca_pem);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.status, 200);
}

}  // namespace
}  // namespace gpu_autoscaler::webhooks
