// The real gpu-autoscaler-webhook program, spawned on 127.0.0.1 next to the
// repo's test API server: policies arrive through the informer, --self-signed
// patches the webhook configurations' caBundle, and rotated certificate files
// are served without a restart.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/rest_client.h"
#include "support/api_server_fixture.h"
#include "support/test_paths.h"
#include "webhooks/cert_bundle_patcher.h"
#include "webhooks/webhook_integration_client.h"

extern char** environ;

namespace gpu_autoscaler::webhooks {
namespace {

using namespace std::chrono_literals;
namespace wt = gpu_autoscaler::webhooks::testing;
using gpu_autoscaler::testing::TestApiServer;

const kube::GroupVersionResource kPolicies{"gpuautoscaler.io", "v1alpha1", "gpusharingpolicies",
                                           false};
const kube::GroupVersionResource kMutatingConfigs{"admissionregistration.k8s.io", "v1",
                                                  "mutatingwebhookconfigurations", false};
const kube::GroupVersionResource kValidatingConfigs{"admissionregistration.k8s.io", "v1",
                                                    "validatingwebhookconfigurations", false};

// The webhook program as a child process; SIGTERM and reaped on destruction.
class WebhookProcess {
 public:
  static std::unique_ptr<WebhookProcess> Start(std::vector<std::string> flags) {
    auto process = std::unique_ptr<WebhookProcess>(new WebhookProcess());
    std::vector<std::string> args = {gpu_autoscaler::testing::BinaryPath("gpu-autoscaler-webhook"),
                                     "--bind-address", "127.0.0.1", "--port", "0"};
    args.insert(args.end(), flags.begin(), flags.end());
    if (!process->Launch(args)) return nullptr;
    return process;
  }
  ~WebhookProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      auto deadline = std::chrono::steady_clock::now() + 20s;
      int status = 0;
      while (::waitpid(pid_, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
          ::kill(pid_, SIGKILL);
          ::waitpid(pid_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(10ms);
      }
    }
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
  }
  int port() const { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }

 private:
  WebhookProcess() = default;

  bool Launch(const std::vector<std::string>& args) {
    int fds[2];
    if (::pipe(fds) != 0) return false;
    std::vector<char*> argv;
    for (const auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    // The child must not pick up a developer's cluster from the environment.
    std::vector<char*> env;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, "KUBECONFIG=", 11) == 0 ||
          std::strncmp(*e, "KUBERNETES_SERVICE_HOST=", 24) == 0) {
        continue;
      }
      env.push_back(*e);
    }
    env.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), env.data());
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    stdout_fd_ = fds[0];
    if (rc != 0) {
      pid_ = -1;
      ADD_FAILURE() << "cannot run " << args[0] << ": " << std::strerror(rc);
      return false;
    }
    std::string out;
    const std::string marker = "listening on 127.0.0.1:";
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto at = out.find(marker);
      if (at != std::string::npos && out.find('\n', at) != std::string::npos) {
        port_ = std::atoi(out.c_str() + at + marker.size());
        return port_ > 0;
      }
      pollfd p{stdout_fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[512];
      ssize_t n = ::read(stdout_fd_, buf, sizeof(buf));
      if (n <= 0) break;  // exited
      out.append(buf, static_cast<size_t>(n));
    }
    ADD_FAILURE() << "webhook did not report its port; output: " << out;
    return false;
  }

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int port_ = 0;
};

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

std::string WriteKubeconfig(const wt::TempDir& dir, const kube::ClientConfig& cfg) {
  std::string path = dir.File("kubeconfig");
  wt::WriteFile(path,
                "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n"
                "    server: " +
                    cfg.server + "\nusers:\n- name: test\n  user:\n    token: " + cfg.bearer_token +
                    "\ncontexts:\n- name: test\n  context:\n    cluster: test\n"
                    "    user: test\ncurrent-context: test\n");
  return path;
}

template <typename Pred>
bool PollUntil(Pred pred, std::chrono::seconds deadline = 30s) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return pred();
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
  auto api = TestApiServer::Start();
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
