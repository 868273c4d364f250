// File: node-agent/agent_app.h
//
// Builds gpu-autoscaler-node-agent from its flags: the NVML session polled
// on its own thread every --poll-interval, the reporter writing the
// NodeResourceReport and the Node's NVLink label every --report-interval
// (only what changed), and /metrics, /healthz and /readyz through the
// reconcile runtime. /metrics renders the last snapshot; a hung NVML call
// makes nvml_up 0 while everything else keeps serving. agent_main.cc only
// parses flags.
//
// Thread-safety: RunAgent is called once, from main.
#pragma once

#include <chrono>
#include <stop_token>
#include <string>

#include "reconcile/logging.h"

namespace gpu_autoscaler::node_agent {

struct AgentFlags {
  std::string node_name;  // default: $NODE_NAME
  std::string kubeconfig;
  std::string context;
  std::string nvml_library = "libnvidia-ml.so.1";
  std::chrono::milliseconds poll_interval{1000};
  std::chrono::milliseconds report_interval{10'000};
  std::chrono::milliseconds nvml_timeout{5000};
  std::string metrics_bind_address = ":9400";
  bool metrics_secure = true;    // HTTPS + TokenReview/SubjectAccessReview
  std::string metrics_cert_dir;  // tls.crt/tls.key; empty: generated
  std::string health_probe_bind_address = ":8081";
  std::string sysfs_root = "/sys";
  // Spot interruption (node-agent/interruption.h): which cloud's notice to
  // poll ("" or "none": none), where its metadata service answers ("": the
  // cloud's link-local default), and how often.
  std::string interruption_source;
  std::string metadata_endpoint;
  std::chrono::milliseconds interruption_poll_interval{5000};
  // QoS pools (node-agent/qos_controller.h): where the cgroup file system is,
  // the kubelet's cgroup driver, which version to write ("auto", "v1", "v2",
  // "none": plan and report only), what is reserved for system_cores and kept
  // back from the reclaimable amount, and how often pools are rechecked.
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string cgroup_driver = "cgroupfs";
  std::string cgroup_version = "auto";
  std::string pod_cgroup_parent;  // the kubelet's own --cgroup-root, when not "/"
  std::string reserved_cpus;
  int64_t reserved_memory_bytes = 0;
  int64_t reclaim_reserve_millicpu = 0;
  int64_t reclaim_reserve_memory_bytes = 0;
  std::chrono::milliseconds qos_resync_interval{10'000};
  // PSI eviction and the agent's configuration (node-agent/agent_config.h):
  // where procfs is (its pressure/ files; pod attribution reads
  // <proc_root>/<pid>/cgroup), and the ConfigMap watched for
  // the settings ("NAMESPACE/NAME"; "": the defaults).
  std::string proc_root = "/proc";
  std::string config_map;
  // Pod attribution (pod_attributor.h): the kubelet's PodResources socket
  // ("" disables it) and how often and how long to ask; processes' cgroups
  // are read under proc_root (above).
  std::string pod_resources_socket = "/var/lib/kubelet/pod-resources/kubelet.sock";
  std::chrono::milliseconds pod_resources_interval{10'000};
  std::chrono::milliseconds pod_resources_timeout{2000};
  reconcile::LoggingOptions logging;
  bool help = false;
};

// Runs until `stop` or a fatal error; returns the process exit code.
int RunAgent(const AgentFlags& flags, std::stop_source stop);

}  // namespace gpu_autoscaler::node_agent
