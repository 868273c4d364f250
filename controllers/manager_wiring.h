// File: controllers/manager_wiring.h
//
// Builds the gpu-autoscaler manager from its flags: one informer per resource
// type shared by every controller, the controllers chosen by --controllers
// (a registration table, one Setup per controller), the configuration file
// and ConfigMap watchers, and the manager runtime (leader election, /metrics,
// /healthz, /readyz). manager_main.cc only parses flags and calls RunManager.
//
//   ManagerFlags flags;  ... parsed ...
//   std::stop_source stop;
//   return RunManager(flags, stop);
//
// Thread-safety: RunManager is called once, from main.
#pragma once

#include <stop_token>
#include <string>
#include <vector>

#include "common/status.h"
#include "reconcile/logging.h"

namespace gpu_autoscaler::controllers {

struct ManagerFlags {
  std::string kubeconfig;
  std::string context;
  std::string metrics_bind_address = ":8443";
  bool metrics_secure = true;    // HTTPS + TokenReview/SubjectAccessReview
  std::string metrics_cert_dir;  // tls.crt/tls.key; empty: generated
  std::string health_probe_bind_address = ":8081";
  bool leader_elect = false;
  std::string leader_election_namespace = "default";
  std::string leader_election_id = "gpu-autoscaler-manager";
  int workers = 2;
  std::string controllers = "*";
  std::string config_file;       // --config
  std::string config_configmap;  // --config-configmap NS/NAME
  std::string cost_db;           // --cost-db PATH|URL (overrides cost.database)
  std::string cost_db_secret;    // --cost-db-secret NS/NAME/KEY
  std::string prometheus_url;    // --prometheus-url (dcgm-exporter series)
  std::string namespace_name;    // --namespace; empty: the leader-election namespace
  // custom.metrics.k8s.io for the HPA (HTTPS); empty or "0" disables.
  std::string custom_metrics_bind_address;
  std::string custom_metrics_cert_dir;  // tls.crt/tls.key; empty: generated
  // Its callers' authentication; empty: ConfigMap extension-apiserver-authentication.
  std::string requestheader_client_ca_file;
  std::string requestheader_allowed_names;  // comma-separated
  bool requestheader_allowed_names_set = false;
  std::string client_ca_file;
  reconcile::LoggingOptions logging;
  bool help = false;  // --help: print usage and exit
};

// The names --controllers knows, in start order.
std::vector<std::string> KnownControllers();

// Plain-HTTP metrics (--metrics-secure=false) only on a loopback address.
Status CheckMetricsExposure(const ManagerFlags& flags);

// Runs until `stop` or a fatal error; returns the process exit code.
int RunManager(const ManagerFlags& flags, std::stop_source stop);

}  // namespace gpu_autoscaler::controllers
