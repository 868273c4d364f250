// File: tests/support/api_server_fixture.h
//
// The API server that integration tests talk to over real sockets.
//
// By default it launches the `gpu-autoscaler-apiserver` program as a child
// process on 127.0.0.1 (free port, fault injection enabled, CRDs from crds/
// registered) and stops it in the destructor. When the environment variable
// GPU_AUTOSCALER_TEST_KUBECONFIG names a kubeconfig, it targets that cluster
// instead: tests then work in a fresh namespace and must skip fault-injection
// cases (`GTEST_SKIP()` when `!supports_faults()`).
//
//   auto server = TestApiServer::Start();
//   ASSERT_TRUE(server) << "api server did not start";
//   auto client = kube::RestClient::Create(server->config());
//   std::string ns = server->CreateTestNamespace("informer");
//   server->InjectError({.verb = "list", .resource = "pods", .code = 500, .count = 2});
//
// Thread-safety: not thread-safe; use from the test's main thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "kube/config.h"

namespace gpu_autoscaler::testing {

struct TestApiServerOptions {
  bool tls = false;                       // serve HTTPS with a generated self-signed CA
  int watch_history = 10'000;             // events kept for watch resumption; older -> 410
  std::vector<std::string> extra_args{};  // passed to the server program
};

struct InjectedError {
  std::string verb{};      // get|list|watch|create|update|patch|delete|deletecollection; "" any
  std::string resource{};  // plural resource ("pods"); "" any
  int code = 500;
  int count = 1;                // how many matching requests fail; -1 forever
  int retry_after_seconds = 0;  // adds a Retry-After header (use with 429)
};

class TestApiServer {
 public:
  static std::unique_ptr<TestApiServer> Start(const TestApiServerOptions& opts = {});
  ~TestApiServer();

  // Client configuration pointing at this server (CA included when TLS).
  kube::ClientConfig config() const;
  std::string url() const;
  bool is_real_cluster() const { return real_cluster_; }
  bool supports_faults() const { return !real_cluster_; }

  // Creates namespace "<prefix>-<random>" and remembers it for cleanup.
  std::string CreateTestNamespace(const std::string& prefix);

  // Fault injection (our server only).
  Status InjectError(const InjectedError& e);
  Status SetLatency(std::chrono::milliseconds latency);
  // Only the calls of this verb and resource (either "" for any) wait, this
  // long more; 0 removes the rule.
  Status SetLatency(std::chrono::milliseconds latency, const std::string& verb,
                    const std::string& resource);
  Status DropWatches();  // closes every open watch stream
  Status Compact();      // forgets watch history: any older resourceVersion gets 410
  // Simulates a server restart: connections drop, the port refuses
  // connections for `downtime`, then serving resumes with the same objects and
  // an empty watch cache.
  Status Restart(std::chrono::milliseconds downtime = std::chrono::milliseconds(200));
  Status ClearFaults();

 private:
  TestApiServer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool real_cluster_ = false;
};

}  // namespace gpu_autoscaler::testing
