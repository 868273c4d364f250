// `gpu-autoscaler fleet`: a simulated GPU fleet's kubelets, as KWOK plays
// them, plus cAdvisor-style container metrics. Decisions are pure and tested
// in src/fleet (fleet_plan.h); this file reads flags and runs the controller.
#include <chrono>
#include <cstdio>
#include <string>

#include "common/flag_duration.h"
#include "fleet/fleet_controller.h"
#include "fleet/usage_annotation.h"
#include "reconcile/logging.h"
#include "reconcile/program.h"
#include "tools/cost_cli.h"

namespace gpu_autoscaler::cli {
namespace {

constexpr char kProgram[] = "gpu-autoscaler fleet";

constexpr char kUsage[] =
    R"(Usage: gpu-autoscaler fleet [--kubeconfig FILE] [--metrics-bind-address HOST:PORT] [options]

Plays the kubelet for fake nodes, as KWOK does (kubernetes-sigs/kwok): Nodes
are plain API objects and nothing runs. For every node annotated
kwok.x-k8s.io/node=fake (or chosen by the selectors below) it
  - keeps a heartbeat Lease in kube-node-lease (holder the node, renewed every
    --lease-interval) and deletes the Leases it made for nodes that are gone;
  - keeps the Ready condition True and its lastHeartbeatTime fresh (every
    --node-status-interval), and gives the node an InternalIP if it has none;
  - moves pods bound to the node to Running: conditions Initialized, Ready,
    ContainersReady and PodScheduled True, startTime, a pod IP from --pod-cidr,
    the node's IP, running containers; a terminating pod is deleted at once.
Pods on other nodes are never touched.

It serves cAdvisor's container series on http://HOST:PORT/metrics for every
container of a running pod on those nodes, labelled namespace, pod, container
and node: container_cpu_usage_seconds_total (a counter integrating the usage
rate) and container_memory_working_set_bytes (a gauge); and /healthz. Usage
comes from the pod annotation gpuautoscaler.io/fleet-usage, e.g.
"cpu=0.3,memory=600Mi" (every container) or "server:cpu=300m;sidecar:memory=64Mi",
else from --default-usage. "memory-trace=<pod>" replays that pod of the
--memory-trace file (the Alibaba GenTD26 pod_memory_util layout, fractions of
the memory limit) one sample per --trace-step since the pod started, times the
container's memory limit. Runs until SIGINT or SIGTERM.

Options:
  --kubeconfig FILE                  kubeconfig (default: in-cluster, $KUBECONFIG, ~/.kube/config)
  --context NAME                     kubeconfig context
  --metrics-bind-address HOST:PORT   where /metrics and /healthz are served
                                     (default 127.0.0.1:10247, KWOK's port; port 0 picks one)
  --node-annotation-selector SEL     nodes whose annotations match (default kwok.x-k8s.io/node=fake;
                                     "" for any)
  --node-selector SEL                nodes whose labels match too (default: any)
  --node-lease-duration-seconds N    the Leases' leaseDurationSeconds (default 40)
  --lease-interval D                 Lease renewal period (default 10s, as the kubelet)
  --node-status-interval D           Ready heartbeat period (default 1m)
  --pod-cidr CIDR                    pod IPs, lowest free first (default 10.244.0.0/16)
  --node-ip IP                       InternalIP for a node without one (default 10.0.0.1)
  --default-usage USAGE              usage of a container without an annotation
                                     (default cpu=0.1,memory=128Mi)
  --memory-trace FILE                GenTD26-layout memory trace (value,timestamp_anon,
                                     container_ip; .csv or .csv.gz) for memory-trace=<pod>
  --trace-step D                     wall time per trace sample (default 1s)
  --log-format text|json             log format (default text)
  --log-level debug|info|warn|error  log level (default info)
  -h, --help                         show this help
)";

struct FleetFlags {
  std::string kubeconfig;
  std::string context;
  std::string bind_host = "127.0.0.1";
  int port = 10247;
  fleet::FleetControllerOptions options;
  std::string memory_trace;
  Clock::Duration trace_step = std::chrono::seconds(1);
  reconcile::LoggingOptions logging;
  bool help = false;
};

Status ParseDuration(const reconcile::ProgramFlag& f, Clock::Duration* out) {
  std::chrono::milliseconds ms;
  if (!ParseFlagDuration(f.value, &ms))
    return InvalidArgumentError(f.name + ": want a duration such as 10s or 500ms, got \"" +
                                f.value + "\"");
  *out = ms;
  return Status::Ok();
}

Status ParseFlags(int argc, char** argv, FleetFlags* flags) {
  GPU_ASSIGN_OR_RETURN(
      std::vector<reconcile::ProgramFlag> scanned,
      reconcile::ScanFlags(
          argc, argv,
          {"--kubeconfig", "--context", "--metrics-bind-address", "--node-annotation-selector",
           "--node-selector", "--node-lease-duration-seconds", "--lease-interval",
           "--node-status-interval", "--pod-cidr", "--node-ip", "--default-usage", "--memory-trace",
           "--trace-step", "--log-format", "--log-level"},
          {}));
  fleet::FleetControllerOptions& o = flags->options;
  for (const reconcile::ProgramFlag& f : scanned) {
    if (f.name == "--help") {
      flags->help = true;
    } else if (f.name == "--kubeconfig") {
      flags->kubeconfig = f.value;
    } else if (f.name == "--context") {
      flags->context = f.value;
    } else if (f.name == "--metrics-bind-address") {
      const size_t colon = f.value.rfind(':');
      if (colon == std::string::npos || colon == 0)
        return InvalidArgumentError("--metrics-bind-address: want HOST:PORT, got \"" + f.value +
                                    "\"");
      flags->bind_host = f.value.substr(0, colon);
      reconcile::ProgramFlag port{f.name, f.value.substr(colon + 1), true};
      GPU_RETURN_IF_ERROR(reconcile::ParseIntFlag(port, 0, 65535, &flags->port));
    } else if (f.name == "--node-annotation-selector") {
      o.node_annotation_selector = f.value;
    } else if (f.name == "--node-selector") {
      o.node_label_selector = f.value;
    } else if (f.name == "--node-lease-duration-seconds") {
      GPU_RETURN_IF_ERROR(reconcile::ParseIntFlag(f, 1, 3600, &o.plan.lease_duration_seconds));
    } else if (f.name == "--lease-interval") {
      GPU_RETURN_IF_ERROR(ParseDuration(f, &o.plan.lease_renew_interval));
    } else if (f.name == "--node-status-interval") {
      GPU_RETURN_IF_ERROR(ParseDuration(f, &o.plan.node_status_interval));
    } else if (f.name == "--pod-cidr") {
      o.plan.pod_cidr = f.value;
    } else if (f.name == "--node-ip") {
      o.plan.node_ip = f.value;
    } else if (f.name == "--default-usage") {
      Result<fleet::PodUsageSpec> spec = fleet::ParseUsageAnnotation(f.value);
      if (!spec.ok()) return InvalidArgumentError("--default-usage: " + spec.error().message());
      if (!spec->containers.empty())
        return InvalidArgumentError(
            "--default-usage: name no container, e.g. cpu=0.1,memory=128Mi");
      o.default_usage = fleet::UsageFor(*spec, "", o.default_usage);
    } else if (f.name == "--memory-trace") {
      flags->memory_trace = f.value;
    } else if (f.name == "--trace-step") {
      GPU_RETURN_IF_ERROR(ParseDuration(f, &flags->trace_step));
    } else if (f.name == "--log-format") {
      flags->logging.format = f.value;
    } else if (f.name == "--log-level") {
      flags->logging.level = f.value;
    }
  }
  o.metrics_bind_address = flags->bind_host;
  o.metrics_port = flags->port;
  return fleet::ValidateFleetOptions(o.plan);
}

int Run(FleetFlags flags, std::stop_source stop) {
  if (!flags.memory_trace.empty()) {
    auto traces = fleet::LoadMemoryTraces(flags.memory_trace, flags.trace_step);
    if (!traces.ok()) {
      std::fprintf(stderr, "%s: --memory-trace: %s\n", kProgram, traces.error().message().c_str());
      return kExitError;
    }
    flags.options.memory_traces = std::make_shared<const fleet::MemoryTraces>(std::move(*traces));
  }
  auto client =
      reconcile::ConnectToCluster(flags.kubeconfig, flags.context, "gpu-autoscaler-fleet", nullptr);
  if (!client.ok()) {
    std::fprintf(stderr, "%s: %s\n", kProgram, client.error().message().c_str());
    return kExitError;
  }
  auto controller =
      fleet::FleetController::Start(client->get(), RealClock::Instance(), flags.options);
  if (!controller.ok()) {
    std::fprintf(stderr, "%s: %s\n", kProgram, controller.error().message().c_str());
    return kExitError;
  }
  const std::string port = std::to_string((*controller)->metrics_port());
  reconcile::Log(reconcile::LogLevel::kInfo, "fleet serving",
                 {{"metrics", "http://" + flags.bind_host + ":" + port + "/metrics"},
                  {"metrics_port", port},
                  {"nodes", flags.options.node_annotation_selector +
                                (flags.options.node_label_selector.empty()
                                     ? ""
                                     : " labels " + flags.options.node_label_selector)}});
  Status s = (*controller)->Run(stop.get_token());
  const fleet::FleetStats st = (*controller)->stats();
  reconcile::Log(reconcile::LogLevel::kInfo, "fleet stopped",
                 {{"leases_created", std::to_string(st.leases_created)},
                  {"leases_renewed", std::to_string(st.leases_renewed)},
                  {"pods_started", std::to_string(st.pods_started)},
                  {"pods_deleted", std::to_string(st.pods_deleted)},
                  {"write_errors", std::to_string(st.write_errors)}});
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", kProgram, s.message().c_str());
    return kExitError;
  }
  return kExitOk;
}

}  // namespace

int RunFleet(int argc, char** argv) {
  FleetFlags flags;
  // ScanFlags skips argv[0]: hand it the command name in that place.
  std::vector<char*> args;
  static char name[] = "fleet";
  args.push_back(name);
  for (int i = 0; i < argc; ++i)
    args.push_back(argv[i]);
  const Status parsed = ParseFlags(static_cast<int>(args.size()), args.data(), &flags);
  return reconcile::RunProgram(kProgram, kUsage, parsed, flags.help, flags.logging,
                               [&flags](std::stop_source stop) { return Run(flags, stop); });
}

}  // namespace gpu_autoscaler::cli
