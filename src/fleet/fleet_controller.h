// File: src/fleet/fleet_controller.h
//
// The simulated fleet's apply layer (`gpu-autoscaler fleet`): informers on
// Nodes, Pods and the Leases of kube-node-lease; on every change (and every
// tick) a FleetSnapshot, DecideFleet (fleet_plan.h), and the plan's writes.
// It also serves /metrics (cAdvisor's container series, container_metrics.h)
// and /healthz over HTTP.
//
//   FleetControllerOptions o;  o.metrics_port = 0;
//   GPU_ASSIGN_OR_RETURN(auto fleet, FleetController::Start(client.get(), clock, o));
//   int port = fleet->metrics_port();
//   Status s = fleet->Run(stop_token);   // until stop
//
// The informers lag the writes, so the controller remembers what it wrote
// (renewals, heartbeats, started and deleted pods) and lays that over the
// cache when it builds the next snapshot: a write is not repeated before the
// cache shows it.
//
// Thread-safety: Run on one thread; metrics_port, stats and the HTTP
// handlers are safe from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "fleet/container_metrics.h"
#include "fleet/fleet_objects.h"
#include "fleet/fleet_plan.h"
#include "fleet/usage_trace_replay.h"
#include "kube/generic_object.h"
#include "kube/rest_client.h"
#include "kube/shared_informer.h"
#include "net/http_server.h"

namespace gpu_autoscaler::fleet {

struct FleetControllerOptions {
  FleetOptions plan{};
  std::string node_annotation_selector = "kwok.x-k8s.io/node=fake";
  std::string node_label_selector{};
  std::string metrics_bind_address = "127.0.0.1";
  int metrics_port = 10247;  // KWOK's; 0 picks a free port
  ContainerUsage default_usage{.cpu_cores = 0.1, .memory_bytes = 128ll << 20};
  std::shared_ptr<const MemoryTraces> memory_traces{};  // for memory-trace annotations
  Clock::Duration tick = std::chrono::seconds(1);       // re-decides at least this often
  Clock::Duration sync_timeout = std::chrono::seconds(60);
};

struct FleetStats {
  int64_t managed_nodes = 0;
  int64_t leases_created = 0;
  int64_t leases_renewed = 0;
  int64_t leases_deleted = 0;
  int64_t node_status_updates = 0;
  int64_t pods_started = 0;
  int64_t pods_deleted = 0;
  int64_t write_errors = 0;
};

class FleetController {
 public:
  // Starts the metrics server and the informers (not yet the loop).
  static Result<std::unique_ptr<FleetController>> Start(kube::RestClient* client, Clock& clock,
                                                        FleetControllerOptions options);
  ~FleetController();
  FleetController(const FleetController&) = delete;
  FleetController& operator=(const FleetController&) = delete;

  int metrics_port() const;
  // Waits for the caches, then decides and applies until `stop`. An error
  // only when the caches never synced.
  Status Run(std::stop_token stop);
  FleetStats stats() const;

 private:
  FleetController(kube::RestClient* client, Clock& clock, FleetControllerOptions options,
                  NodeSelection selection);
  FleetSnapshot BuildSnapshot();  // caller holds mu_
  void Apply(const FleetPlan& plan, Clock::WallTime now);
  void Poke();
  std::string RenderMetrics();
  void Count(int64_t FleetStats::*field, int64_t n = 1);

  kube::RestClient* client_;
  Clock& clock_;
  const FleetControllerOptions options_;
  const NodeSelection selection_;
  kube::InformerFactory factory_;
  std::shared_ptr<kube::SharedInformer<kube::GenericObject>> nodes_, pods_, leases_;
  std::unique_ptr<net::HttpServer> server_;

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  bool dirty_ = true;
  // What this controller wrote and the cache may not show yet.
  std::map<std::string, Clock::WallTime> lease_written_;   // node -> renewTime
  std::map<std::string, Clock::WallTime> status_written_;  // node -> lastHeartbeatTime
  std::map<std::string, std::string> started_;             // pod uid -> pod IP
  std::set<std::string> deleted_pods_;                     // pod uids
  std::set<std::string> deleted_leases_;                   // node names
  std::set<std::string> bad_usage_logged_;                 // pod uids
  ContainerMetrics metrics_;
  FleetStats stats_;
};

}  // namespace gpu_autoscaler::fleet
