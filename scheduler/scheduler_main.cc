// gpu-autoscaler-scheduler: fragmentation-aware GPU placement, as a
// kube-scheduler extender or as a standalone scheduler for pods with
// schedulerName gpu-autoscaler. This file parses flags; the wiring is in
// scheduler_app.cc.
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "reconcile/program.h"
#include "scheduler/scheduler_app.h"

namespace gpu_autoscaler {
namespace {

constexpr std::string_view kUsage = R"(Usage: gpu-autoscaler-scheduler [flags]

Places GPU pods with the placement engine (fragmentation-aware, FragLookahead
by default): as a kube-scheduler extender (filter, prioritize, bind over HTTP)
or on its own for pods with spec.schedulerName = --scheduler-name. Either way
it binds through pods/binding and writes the chosen GPU indices on the pod
(gpuautoscaler.io/gpu-indices). docs/scheduler.md has the KubeSchedulerConfiguration.

Flags:
  --mode=standalone|extender         standalone: schedule pods itself (default);
                                     extender: answer a kube-scheduler
  --kubeconfig=PATH                  kubeconfig file (default: in-cluster config,
                                     then $KUBECONFIG, then ~/.kube/config)
  --context=NAME                     kubeconfig context (default: current-context)
  --bind-address=ADDR                extender server address (default 0.0.0.0)
  --port=N                           extender server port; 0 picks one (default 8888)
  --tls-cert-file=FILE               serve the extender over HTTPS with this PEM
  --tls-key-file=FILE                certificate and key (enableHTTPS: true); both are
                                     watched and a rotated pair serves new connections
  --policy=NAME                      placement policy: FragLookahead (default), FGD,
                                     BestFit, WorstFit, FirstFit, DotProduct,
                                     GpuClustering, GpuPacking, Random
  --scheduler-name=NAME              pods the standalone mode schedules
                                     (default "gpu-autoscaler")
  --bind-workers=N                   concurrent Binding requests (default 16)
  --preemption[=true|false]          standalone: a pod that fits nowhere evicts pods
                                     of lower priority, as kube-scheduler's
                                     DefaultPreemption; extender: /preempt chooses
                                     the victims on the GPUs, and with false names
                                     none (default true)
  --async-preemption[=true|false]    standalone: preemption's API writes (evictions,
                                     nominations) run beside the scheduling loop, as
                                     kube-scheduler's asynchronous preemption; false:
                                     the loop waits for them (default true)
  --async-status-writes[=true|false] standalone: an unschedulable pod's PodScheduled
                                     condition is written beside the loop, the newest
                                     message per pod, never after its Binding; false:
                                     the loop writes it (default true)
  --kube-api-qps=Q                   API client rate (default 200)
  --kube-api-burst=N                 API client burst (default 400)
  --metrics-bind-address=ADDR        /metrics, host:port or :port; "0" disables
                                     (default ":8080")
  --metrics-secure[=true|false]      serve /metrics over HTTPS, each scrape authorised
                                     by a TokenReview and a SubjectAccessReview
                                     (nonResourceURLs /metrics, verb get); false
                                     serves plain HTTP, on a loopback address only
                                     (default true)
  --metrics-cert-dir=DIR             tls.crt and tls.key for /metrics, reloaded when
                                     they change (default: a generated self-signed pair)
  --health-probe-bind-address=ADDR   /healthz and /readyz (default ":8081")
  --leader-elect[=true|false]        standalone: schedule only while holding the
                                     Lease (default false)
  --leader-election-namespace=NS     namespace of the Lease (default "default")
  --leader-election-id=NAME          name of the Lease (default "gpu-autoscaler-scheduler")
  --log-format=text|json             log format (default text)
  --log-level=debug|info|warn|error  log level (default info)
  --help                             show this help
)";

using Flags = scheduler::SchedulerFlags;

Status ParseFlags(int argc, char** argv, Flags* flags) {
  GPU_ASSIGN_OR_RETURN(
      std::vector<reconcile::ProgramFlag> scanned,
      reconcile::ScanFlags(
          argc, argv,
          {"--mode", "--kubeconfig", "--context", "--bind-address", "--port", "--tls-cert-file",
           "--tls-key-file", "--policy", "--scheduler-name", "--bind-workers", "--kube-api-qps",
           "--kube-api-burst", "--log-format", "--log-level", "--metrics-bind-address",
           "--health-probe-bind-address", "--leader-election-namespace", "--leader-election-id",
           "--metrics-cert-dir"},
          {"--leader-elect", "--metrics-secure", "--preemption", "--async-preemption",
           "--async-status-writes"}));
  for (const reconcile::ProgramFlag& f : scanned) {
    const std::string& name = f.name;
    const std::string& value = f.value;
    if (name == "--help") {
      flags->help = true;
    } else if (name == "--leader-elect") {
      GPU_RETURN_IF_ERROR(reconcile::ParseBoolFlag(f, &flags->leader_elect));
    } else if (name == "--preemption") {
      GPU_RETURN_IF_ERROR(reconcile::ParseBoolFlag(f, &flags->preemption));
    } else if (name == "--async-preemption") {
      GPU_RETURN_IF_ERROR(reconcile::ParseBoolFlag(f, &flags->async_preemption));
    } else if (name == "--async-status-writes") {
      GPU_RETURN_IF_ERROR(reconcile::ParseBoolFlag(f, &flags->async_status_writes));
    } else if (name == "--mode") {
      if (value != "standalone" && value != "extender") {
        return InvalidArgumentError("--mode: want standalone or extender, got \"" + value + "\"");
      }
      flags->mode = value;
    } else if (name == "--kubeconfig") {
      flags->kubeconfig = value;
    } else if (name == "--context") {
      flags->context = value;
    } else if (name == "--bind-address") {
      flags->bind_address = value;
    } else if (name == "--port") {
      GPU_RETURN_IF_ERROR(reconcile::ParseIntFlag(f, 0, 65535, &flags->port));
    } else if (name == "--tls-cert-file") {
      flags->tls_cert_file = value;
    } else if (name == "--tls-key-file") {
      flags->tls_key_file = value;
    } else if (name == "--policy") {
      flags->policy = value;
    } else if (name == "--scheduler-name") {
      flags->scheduler_name = value;
    } else if (name == "--bind-workers") {
      GPU_RETURN_IF_ERROR(reconcile::ParseIntFlag(f, 1, 256, &flags->bind_workers));
    } else if (name == "--kube-api-qps") {
      GPU_RETURN_IF_ERROR(reconcile::ParsePositiveFlag(f, &flags->kube_api_qps));
    } else if (name == "--kube-api-burst") {
      GPU_RETURN_IF_ERROR(reconcile::ParseIntFlag(f, 1, 100000, &flags->kube_api_burst));
    } else if (name == "--log-format") {
      flags->logging.format = value;
    } else if (name == "--log-level") {
      flags->logging.level = value;
    } else if (name == "--metrics-bind-address") {
      flags->metrics_bind_address = value;
    } else if (name == "--metrics-secure") {
      GPU_RETURN_IF_ERROR(reconcile::ParseBoolFlag(f, &flags->metrics_secure));
    } else if (name == "--metrics-cert-dir") {
      flags->metrics_cert_dir = value;
    } else if (name == "--health-probe-bind-address") {
      flags->health_probe_bind_address = value;
    } else if (name == "--leader-election-namespace") {
      flags->leader_election_namespace = value;
    } else if (name == "--leader-election-id") {
      flags->leader_election_id = value;
    }
  }
  if (flags->tls_cert_file.empty() != flags->tls_key_file.empty()) {
    return InvalidArgumentError("--tls-cert-file and --tls-key-file go together");
  }
  return Status::Ok();
}

}  // namespace
}  // namespace gpu_autoscaler

int main(int argc, char** argv) {
  using namespace gpu_autoscaler;
  scheduler::SchedulerFlags flags;
  const Status parsed = ParseFlags(argc, argv, &flags);
  return reconcile::RunProgram(
      "gpu-autoscaler-scheduler", kUsage, parsed, flags.help, flags.logging,
      [&flags](std::stop_source stop) { return scheduler::RunScheduler(flags, stop); });
}
