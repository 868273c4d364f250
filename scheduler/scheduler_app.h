// File: scheduler/scheduler_app.h
//
// Builds gpu-autoscaler-scheduler from its flags: the pod and node informers
// feeding a ClusterCache, then either the extender's HTTP(S) server
// (/filter, /prioritize, /bind) or the standalone scheduling loop behind
// leader election, plus /metrics, /healthz and /readyz through the reconcile
// runtime. scheduler_main.cc only parses flags.
//
// Thread-safety: RunScheduler is called once, from main.
#pragma once

#include <stop_token>
#include <string>

#include "reconcile/logging.h"

namespace gpu_autoscaler::scheduler {

struct SchedulerFlags {
  std::string mode = "standalone";  // or "extender"
  std::string kubeconfig;
  std::string context;
  std::string bind_address = "0.0.0.0";  // extender server
  int port = 8888;                       // extender server; 0 picks a free port
  std::string tls_cert_file;             // HTTPS for the extender when both are set
  std::string tls_key_file;
  std::string metrics_bind_address = ":8080";
  bool metrics_secure = true;    // HTTPS + TokenReview/SubjectAccessReview
  std::string metrics_cert_dir;  // tls.crt/tls.key; empty: generated
  std::string health_probe_bind_address = ":8081";
  std::string policy = "FragLookahead";
  std::string scheduler_name = "gpu-autoscaler";
  int bind_workers = 16;
  bool preemption = true;  // evict lower-priority pods for a pod that fits nowhere (both modes)
  bool async_preemption = true;     // standalone: preemption's API writes off the loop
  bool async_status_writes = true;  // standalone: PodScheduled=False off the loop
  double kube_api_qps = 200;
  int kube_api_burst = 400;
  bool leader_elect = false;
  std::string leader_election_namespace = "default";
  std::string leader_election_id = "gpu-autoscaler-scheduler";
  reconcile::LoggingOptions logging;
  bool help = false;
};

// Runs until `stop` or a fatal error; returns the process exit code.
int RunScheduler(const SchedulerFlags& flags, std::stop_source stop);

}  // namespace gpu_autoscaler::scheduler
