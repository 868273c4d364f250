// File: tests/webhooks/webhook_process.h
//
// The real gpu-autoscaler-webhook program as a child process of an
// integration test, bound to 127.0.0.1 on a free port, plus the kubeconfig it
// needs to reach the test API server and a bounded poll for informers to
// catch up. /metrics is off unless the test's flags turn it on (later flags
// win), so runs without a cluster need no secure-metrics setup:
//   WebhookProcess::Start({..., "--metrics-bind-address=127.0.0.1:9999",
//                          "--metrics-secure=false"});
//
//   auto webhook = WebhookProcess::Start({"--kubeconfig", WriteKubeconfig(dir, api->config()),
//                                         "--tls-cert-file", crt, "--tls-key-file", key});
//   ASSERT_TRUE(PollUntil([&] { return Https(webhook->url() + "/readyz", ...).status == 200; }));
//
// Thread-safety: use from the test's main thread.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/base64.h"
#include "kube/config.h"
#include "support/test_paths.h"
#include "webhooks/webhook_integration_client.h"

extern char** environ;

namespace gpu_autoscaler::webhooks::testing {

using namespace std::chrono_literals;

// The webhook program as a child process; SIGTERM and reaped on destruction.
class WebhookProcess {
 public:
  static std::unique_ptr<WebhookProcess> Start(std::vector<std::string> flags) {
    auto process = std::unique_ptr<WebhookProcess>(new WebhookProcess());
    std::vector<std::string> args = {gpu_autoscaler::testing::BinaryPath("gpu-autoscaler-webhook"),
                                     "--bind-address",
                                     "127.0.0.1",
                                     "--port",
                                     "0",
                                     "--metrics-bind-address",
                                     "0"};
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

// Carries the cluster's CA, so the programs verify a TLS API server.
inline std::string WriteKubeconfig(const TempDir& dir, const kube::ClientConfig& cfg) {
  std::string path = dir.File("kubeconfig");
  const std::string ca = cfg.ca_pem.empty()
                             ? ""
                             : "    certificate-authority-data: " + Base64Encode(cfg.ca_pem) + "\n";
  WriteFile(path, "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n" + ca +
                      "    server: " + cfg.server +
                      "\nusers:\n- name: test\n  user:\n    token: " + cfg.bearer_token +
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

}  // namespace gpu_autoscaler::webhooks::testing
