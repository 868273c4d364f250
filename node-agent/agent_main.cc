// gpu-autoscaler-node-agent: the per-node DaemonSet. This slice: GPU
// inventory and metrics through NVML (loaded with dlopen), the
// NodeResourceReport, and the Node's NVLink-islands label. This file parses
// flags; the wiring is in agent_app.cc.
#include <chrono>
#include <cstdlib>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "common/flag_duration.h"
#include "node-agent/agent_app.h"
#include "reconcile/program.h"

namespace gpu_autoscaler {
namespace {

constexpr std::string_view kUsage = R"(Usage: gpu-autoscaler-node-agent [flags]

Runs on every GPU node (a DaemonSet). Polls NVML (libnvidia-ml, loaded at run
time; the agent runs without it and says so) every --poll-interval, serves the
GPUs' utilisation, memory and per-process figures on /metrics with
dcgm-exporter's metric names, and writes the node's GPUs, MIG layout, sharing
mode, NVLink islands and NUMA nodes to its NodeResourceReport and the NVLink
islands to the Node's gpuautoscaler.io/nvlink-islands label. docs/node-agent.md
has the privileges it needs.

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
  --health-probe-bind-address=ADDR   /healthz and /readyz (default ":8081")
  --sysfs-root=PATH                  where sysfs is mounted (default /sys)
  --interruption-source=CLOUD        poll the cloud's interruption notice and drain the
                                     node before it goes: aws (IMDSv2 spot/instance-action
                                     and rebalance), gcp (instance/preempted), azure
                                     (Scheduled Events Preempt), none (default none)
  --metadata-endpoint=URL            the metadata service (default: the cloud's own,
                                     http://169.254.169.254 or metadata.google.internal)
  --interruption-poll-interval=DUR   how often the notice is polled (default 5s)
  --pod-resources-socket=PATH        the kubelet's PodResources socket, for the pod,
                                     namespace and container labels; "" disables it
                                     (default /var/lib/kubelet/pod-resources/kubelet.sock)
  --pod-resources-interval=DURATION  how often the kubelet is asked (default 10s)
  --pod-resources-timeout=DURATION   deadline of each PodResources call (default 2s)
  --proc-root=PATH                   where the host's /proc is (GPU processes' cgroups
                                     name their pods) (default /proc)
  --log-format=text|json             log format (default text)
  --log-level=debug|info|warn|error  log level (default info)
  --help                             show this help

Durations are a whole number with unit ms, s or m ("500ms", "1s", "1m").
)";

using Flags = node_agent::AgentFlags;

Status ParseFlags(int argc, char** argv, Flags* flags) {
  if (const char* node = std::getenv("NODE_NAME")) flags->node_name = node;
  if (const char* lib = std::getenv("GPA_NVML_LIBRARY"); lib && *lib) flags->nvml_library = lib;
  GPU_ASSIGN_OR_RETURN(
      std::vector<reconcile::ProgramFlag> scanned,
      reconcile::ScanFlags(
          argc, argv,
          {"--node-name", "--kubeconfig", "--context", "--nvml-library", "--poll-interval",
           "--report-interval", "--nvml-timeout", "--metrics-bind-address",
           "--health-probe-bind-address", "--sysfs-root", "--log-format", "--log-level",
           "--interruption-source", "--metadata-endpoint", "--interruption-poll-interval",
           "--pod-resources-socket", "--pod-resources-interval", "--pod-resources-timeout",
           "--proc-root"},
          {}));
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
