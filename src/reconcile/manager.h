// File: src/reconcile/manager.h
//
// The process runtime: runs controllers and other runnables, gates the ones
// that need it behind leader election (webhooks, informers and the like run
// on every replica), and serves /metrics (Prometheus text), /healthz and
// /readyz. On stop (SIGTERM/SIGINT via SignalStopper) it shuts down in order:
// leader-elected runnables first (controllers drain in-flight reconciles),
// then the Lease is released, then everything else, then the HTTP servers.
//
//   Manager mgr({.metrics_bind_address = ":8080", .leader_election = true,
//                .client = client.get()});
//   mgr.AddController(node_controller);                    // leader only
//   mgr.Add(MakeRunnable("informers", false, RunInformers)); // every replica
//   mgr.AddReadyzCheck("informers", [&] { return synced ? Status() : ...; });
//   std::stop_source stop;
//   SignalStopper signals(stop);                            // before other threads
//   return mgr.Run(stop.get_token()).ok() ? 0 : 1;
//
// Thread-safety: configure (Add*, Serve) before Run; Run once. Ports,
// IsLeader and the HTTP endpoints are safe from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace prometheus {
class Registry;
}
namespace gpu_autoscaler::kube {
class RestClient;
class LeaseClient;
}  // namespace gpu_autoscaler::kube
namespace gpu_autoscaler::net {
class HttpServer;
}

namespace gpu_autoscaler::reconcile {

class Controller;

class Runnable {
 public:
  virtual ~Runnable() = default;
  virtual std::string name() const = 0;
  // Runs until `stop`. An error stops the whole manager.
  virtual Status Run(std::stop_token stop) = 0;
  // Whether only the elected leader runs it.
  virtual bool NeedsLeaderElection() const { return true; }
};

std::unique_ptr<Runnable> MakeRunnable(std::string name, bool needs_leader_election,
                                       std::function<Status(std::stop_token)> run);

// Splits "host:port", ":port" (all interfaces) or "[v6]:port". "0" or ""
// means disabled (port -1).
Status ParseBindAddress(std::string_view address, std::string* host, int* port);

// Plain-HTTP metrics (--metrics-secure=false) serve /metrics to anyone who
// reaches the port, so only on a loopback address (127.0.0.1, ::1, localhost);
// a disabled address ("0") passes. Shared by every program's flag check.
Status CheckPlainMetricsOnLoopback(bool metrics_secure, std::string_view metrics_bind_address);

struct ManagerOptions {
  std::string metrics_bind_address = ":8080";  // "0" disables
  std::string health_probe_bind_address = ":8081";
  // Secure metrics, as controller-runtime serves them: /metrics over HTTPS,
  // each request authenticated with a TokenReview and authorised with a
  // SubjectAccessReview through `client` (reconcile/request_auth.h). The
  // probes then need their own address. The certificate is tls.crt/tls.key in
  // `metrics_cert_dir` (reloaded when they change), or a generated
  // self-signed pair when empty.
  bool metrics_secure = false;
  std::string metrics_cert_dir{};
  bool leader_election = false;
  std::string leader_election_namespace = "default";
  std::string leader_election_id = "gpu-autoscaler-manager";
  std::string identity{};  // default "<hostname>_<random>"
  // Where the Lease lives: `lease_client` if set, else a Lease over `client`.
  kube::RestClient* client = nullptr;
  kube::LeaseClient* lease_client = nullptr;
  Clock::Duration lease_duration = std::chrono::seconds(15);
  Clock::Duration renew_deadline = std::chrono::seconds(10);
  Clock::Duration retry_period = std::chrono::seconds(2);
  Clock* clock = &RealClock::Instance();
  std::shared_ptr<prometheus::Registry> registry = nullptr;  // created when null
};

class Manager {
 public:
  explicit Manager(ManagerOptions options);
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  prometheus::Registry& registry() { return *registry_; }
  const std::string& identity() const { return identity_; }

  void Add(std::unique_ptr<Runnable> runnable);
  // Runs `controller` as a leader-elected runnable and refreshes its queue's
  // unfinished-work metrics at each scrape. It must outlive the manager's Run.
  void AddController(Controller& controller);
  // /readyz fails while any check fails (e.g. informers not yet synced).
  void AddReadyzCheck(std::string name, std::function<Status()> check);
  void AddHealthzCheck(std::string name, std::function<Status()> check);
  // Runs before every /metrics scrape.
  void AddMetricsHook(std::function<void()> hook);

  // Binds the endpoints now, so ports are known before Run (Run calls it
  // if needed). Errors on a bad or busy address.
  Status Serve();
  int metrics_port() const;  // -1 when disabled or not serving
  int health_port() const;
  // The CA of the generated metrics certificate (PEM), "" when not generated.
  const std::string& generated_metrics_ca() const;

  // Runs until `stop`, a runnable fails, or leadership is lost; then shuts
  // down gracefully. Returns the first error (leadership loss is an error).
  Status Run(std::stop_token stop);

  bool IsLeader() const;

 private:
  struct Check {
    std::string name;
    std::function<Status()> check;
  };
  struct Impl;

  std::string RenderChecks(const std::vector<Check>& checks, bool verbose, bool* ok) const;
  Status PrepareSecureMetrics(std::string* cert_file, std::string* key_file);

  ManagerOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::string identity_;
  std::vector<std::unique_ptr<Runnable>> runnables_;
  mutable std::mutex checks_mu_;
  std::vector<Check> readyz_;
  std::vector<Check> healthz_;
  std::vector<std::function<void()>> metrics_hooks_;
  std::unique_ptr<Impl> impl_;
};

// Turns SIGTERM and SIGINT into `source.request_stop()`. Construct it in
// main() before any other thread starts (it blocks the signals for threads
// created afterwards and waits for them on its own thread).
class SignalStopper {
 public:
  explicit SignalStopper(std::stop_source source);
  ~SignalStopper();
  SignalStopper(const SignalStopper&) = delete;
  SignalStopper& operator=(const SignalStopper&) = delete;

 private:
  std::jthread thread_;
};

}  // namespace gpu_autoscaler::reconcile
