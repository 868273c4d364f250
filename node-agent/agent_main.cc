// gpu-autoscaler-node-agent: the per-node DaemonSet. This slice: GPU
// inventory and metrics through NVML (loaded with dlopen), the
// NodeResourceReport, the Node's NVLink-islands label, and the QoS pools. This file parses
// flags; the wiring is in agent_app.cc.
#include <chrono>
#include <cstdlib>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "common/flag_duration.h"
#include "kube/quantity.h"
#include "node-agent/agent_app.h"
#include "node-agent/qos_pools.h"
#include "reconcile/program.h"

namespace gpu_autoscaler {
namespace {

constexpr std::string_view kUsage = R"(Usage: gpu-autoscaler-node-agent [flags]

Runs on every GPU node (a DaemonSet). Polls NVML (libnvidia-ml, loaded at run
time; the agent runs without it and says so) every --poll-interval, serves the
GPUs' utilisation, memory and per-process figures on /metrics with
dcgm-exporter's metric names, evicts pods when the node's CPU, memory or IO
pressure (PSI) stays high (reclaimed_cores first, then shared_cores over
their requests), and writes the node's GPUs, MIG layout, sharing
mode, NVLink islands and NUMA nodes to its NodeResourceReport and the NVLink
islands to the Node's gpuautoscaler.io/nvlink-islands label. It keeps
Katalyst's QoS pools (katalyst.kubewharf.io/qos_level: dedicated_cores,
shared_cores, reclaimed_cores, system_cores) in the pods' cgroups and
advertises the reclaimable CPU and memory on the Node as
resource.katalyst.kubewharf.io/reclaimed_millicpu and reclaimed_memory.
docs/node-agent.md has the privileges it needs.

Flags:
  --node-name=NAME                   the Node this agent runs on (default $NODE_NAME)
  --kubeconfig=PATH                  kubeconfig file (default: in-cluster config,
                                     then $KUBECONFIG, then ~/.kube/config)
  --context=NAME                     kubeconfig context (default: current-context)
  --nvml-library=PATH                NVML to dlopen (default "libnvidia-ml.so.1";
                                     also $GPA_NVML_LIBRARY)
  --poll-interval=DURATION           how often NVML is polled (default 1s)
  --report-interval=DURATION         how often the NodeResourceReport and the Node
                                     label are compared and, if changed, written
                                     (default 10s)
  --nvml-timeout=DURATION            a poll still running after this marks NVML
                                     unavailable (hung) (default 5s)
  --metrics-bind-address=ADDR        /metrics, host:port or :port; "0" disables
                                     (default ":9400", dcgm-exporter's port)
  --metrics-secure[=true|false]      serve /metrics over HTTPS, each scrape authorised
                                     by a TokenReview and a SubjectAccessReview
                                     (nonResourceURLs /metrics, verb get); false
                                     serves plain HTTP, on a loopback address only
                                     (default true)
  --metrics-cert-dir=DIR             tls.crt and tls.key for /metrics, reloaded when
                                     they change (default: a generated self-signed pair)
  --health-probe-bind-address=ADDR   /healthz and /readyz (default ":8081")
  --sysfs-root=PATH                  where sysfs is mounted (default /sys)
  --interruption-source=CLOUD        poll the cloud's interruption notice and drain the
                                     node before it goes: aws (IMDSv2 spot/instance-action
                                     and rebalance), gcp (instance/preempted), azure
                                     (Scheduled Events Preempt), none (default none)
  --metadata-endpoint=URL            the metadata service (default: the cloud's own,
                                     http://169.254.169.254 or metadata.google.internal)
  --interruption-poll-interval=DUR   how often the notice is polled (default 5s)
  --cgroup-root=PATH                 where the cgroup file system is mounted (default
                                     /sys/fs/cgroup; v1: its cpuset, cpu and memory
                                     hierarchies beneath)
  --cgroup-driver=cgroupfs|systemd   the kubelet's cgroup driver, which names the pod
                                     cgroups (default cgroupfs)
  --cgroup-version=auto|v1|v2|none   which cgroup files to write; auto detects, none
                                     plans and reports the QoS pools without writing
                                     (default auto)
  --pod-cgroup-parent=PATH           the kubelet's --cgroup-root when it is not "/": the
                                     cgroup kubepods sits under (default none)
  --reserved-cpus=CPULIST            CPUs for system_cores pods, kept out of every
                                     other pool, e.g. "0-1" (default none)
  --reserved-memory=QUANTITY         memory kept for the system, not reclaimable
                                     (default 0), e.g. 2Gi
  --reclaim-reserve-cpu=QUANTITY     CPU never advertised as reclaimable (default 0),
                                     e.g. 2 or 500m
  --reclaim-reserve-memory=QUANTITY  memory never advertised as reclaimable (default 0)
  --qos-resync-interval=DURATION     how often QoS pools and pod cgroups are rechecked
                                     besides on every pod change (default 10s)
  --config-map=NAMESPACE/NAME        the ConfigMap (key config.yaml) with the PSI eviction
                                     thresholds, windows and rate limits; watched, so a
                                     change applies without a restart and a bad one is
                                     refused with an Event (default: none, the defaults)
  --proc-root=PATH                   where procfs is mounted; PSI is read from
                                     PATH/pressure/{cpu,memory,io}, GPU processes'
                                     pods from PATH/<pid>/cgroup (default /proc)
  --pod-resources-socket=PATH        the kubelet's PodResources socket, for the pod,
                                     namespace and container labels; "" disables it
                                     (default /var/lib/kubelet/pod-resources/kubelet.sock)
  --pod-resources-interval=DURATION  how often the kubelet is asked (default 10s)
  --pod-resources-timeout=DURATION   deadline of each PodResources call (default 2s)
  --log-format=text|json             log format (default text)
  --log-level=debug|info|warn|error  log level (default info)
  --help                             show this help

Durations are a whole number with unit ms, s, m or h ("500ms", "1s", "1m", "1h").
)";

using Flags = node_agent::AgentFlags;

Status ParseFlags(int argc, char** argv, Flags* flags) {
  if (const char* node = std::getenv("NODE_NAME")) flags->node_name = node;
  if (const char* lib = std::getenv("GPA_NVML_LIBRARY"); lib && *lib) flags->nvml_library = lib;
  GPU_ASSIGN_OR_RETURN(std::vector<reconcile::ProgramFlag> scanned,
                       reconcile::ScanFlags(argc, argv,
                                            {"--node-name",
                                             "--kubeconfig",
                                             "--context",
                                             "--nvml-library",
                                             "--poll-interval",
                                             "--report-interval",
                                             "--nvml-timeout",
                                             "--metrics-bind-address",
                                             "--health-probe-bind-address",
                                             "--sysfs-root",
                                             "--log-format",
                                             "--log-level",
                                             "--interruption-source",
                                             "--metadata-endpoint",
                                             "--interruption-poll-interval",
                                             "--cgroup-root",
                                             "--cgroup-driver",
                                             "--cgroup-version",
                                             "--pod-cgroup-parent",
                                             "--reserved-cpus",
                                             "--reserved-memory",
                                             "--reclaim-reserve-cpu",
                                             "--reclaim-reserve-memory",
                                             "--qos-resync-interval",
                                             "--config-map",
                                             "--proc-root",
                                             "--pod-resources-socket",
                                             "--pod-resources-interval",
                                             "--pod-resources-timeout",
                                             "--metrics-cert-dir"},
                                            {"--metrics-secure"}));
  for (const reconcile::ProgramFlag& f : scanned) {
    const std::string& name = f.name;
    const std::string& value = f.value;
    auto duration = [&](std::chrono::milliseconds* out) {
      return ParseFlagDuration(value, out)
                 ? Status::Ok()
                 : InvalidArgumentError(name + ": want a duration such as 1s, got \"" + value +
                                        "\"");
    };
    if (name == "--help") {
      flags->help = true;
    } else if (name == "--node-name") {
      flags->node_name = value;
    } else if (name == "--kubeconfig") {
      flags->kubeconfig = value;
    } else if (name == "--context") {
      flags->context = value;
    } else if (name == "--nvml-library") {
      flags->nvml_library = value;
    } else if (name == "--poll-interval") {
      GPU_RETURN_IF_ERROR(duration(&flags->poll_interval));
    } else if (name == "--report-interval") {
      GPU_RETURN_IF_ERROR(duration(&flags->report_interval));
    } else if (name == "--nvml-timeout") {
      GPU_RETURN_IF_ERROR(duration(&flags->nvml_timeout));
    } else if (name == "--metrics-bind-address") {
      flags->metrics_bind_address = value;
    } else if (name == "--metrics-secure") {
      GPU_RETURN_IF_ERROR(reconcile::ParseBoolFlag(f, &flags->metrics_secure));
    } else if (name == "--metrics-cert-dir") {
      flags->metrics_cert_dir = value;
    } else if (name == "--health-probe-bind-address") {
      flags->health_probe_bind_address = value;
    } else if (name == "--sysfs-root") {
      flags->sysfs_root = value;
    } else if (name == "--interruption-source") {
      if (value != "aws" && value != "gcp" && value != "azure" && value != "none") {
        return InvalidArgumentError("--interruption-source: want aws, gcp, azure or none, got \"" +
                                    value + "\"");
      }
      flags->interruption_source = value;
    } else if (name == "--metadata-endpoint") {
      flags->metadata_endpoint = value;
    } else if (name == "--interruption-poll-interval") {
      GPU_RETURN_IF_ERROR(duration(&flags->interruption_poll_interval));
    } else if (name == "--cgroup-root") {
      flags->cgroup_root = value;
    } else if (name == "--cgroup-driver") {
      if (value != "cgroupfs" && value != "systemd") {
        return InvalidArgumentError("--cgroup-driver: want cgroupfs or systemd, got \"" + value +
                                    "\"");
      }
      flags->cgroup_driver = value;
    } else if (name == "--cgroup-version") {
      if (value != "auto" && value != "v1" && value != "v2" && value != "none") {
        return InvalidArgumentError("--cgroup-version: want auto, v1, v2 or none, got \"" + value +
                                    "\"");
      }
      flags->cgroup_version = value;
    } else if (name == "--pod-cgroup-parent") {
      flags->pod_cgroup_parent = value;
    } else if (name == "--reserved-cpus") {
      if (!node_agent::ParseCpuList(value).ok()) {
        return InvalidArgumentError("--reserved-cpus: want a cpulist such as 0-1,4, got \"" +
                                    value + "\"");
      }
      flags->reserved_cpus = value;
    } else if (name == "--reserved-memory" || name == "--reclaim-reserve-memory") {
      auto bytes = kube::ParseQuantity(value);
      if (!bytes.ok() || *bytes < 0) {
        return InvalidArgumentError(name + ": want a quantity such as 2Gi, got \"" + value + "\"");
      }
      (name == "--reserved-memory" ? flags->reserved_memory_bytes
                                   : flags->reclaim_reserve_memory_bytes) = *bytes;
    } else if (name == "--reclaim-reserve-cpu") {
      auto millis = kube::ParseQuantityMilli(value);
      if (!millis.ok() || *millis < 0) {
        return InvalidArgumentError(name + ": want a quantity such as 2 or 500m, got \"" + value +
                                    "\"");
      }
      flags->reclaim_reserve_millicpu = *millis;
    } else if (name == "--qos-resync-interval") {
      GPU_RETURN_IF_ERROR(duration(&flags->qos_resync_interval));
    } else if (name == "--config-map") {
      flags->config_map = value;
    } else if (name == "--pod-resources-socket") {
      flags->pod_resources_socket = value;
    } else if (name == "--pod-resources-interval") {
      GPU_RETURN_IF_ERROR(duration(&flags->pod_resources_interval));
    } else if (name == "--pod-resources-timeout") {
      GPU_RETURN_IF_ERROR(duration(&flags->pod_resources_timeout));
    } else if (name == "--proc-root") {
      flags->proc_root = value;
    } else if (name == "--log-format") {
      flags->logging.format = value;
    } else if (name == "--log-level") {
      flags->logging.level = value;
    }
  }
  return Status::Ok();
}

}  // namespace
}  // namespace gpu_autoscaler

int main(int argc, char** argv) {
  using namespace gpu_autoscaler;
  Flags flags;
  const Status parsed = ParseFlags(argc, argv, &flags);
  return reconcile::RunProgram(
      "gpu-autoscaler-node-agent", kUsage, parsed, flags.help, flags.logging,
      [&flags](std::stop_source stop) { return node_agent::RunAgent(flags, stop); });
}
