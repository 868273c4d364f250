// gpu-autoscaler-manager: runs the gpu-autoscaler controllers (GPU node
// inventory, GPUSharingPolicy status, cost metering, Budgets) behind leader
// election, with /metrics, /healthz and /readyz. This file parses flags; the
// wiring is in manager_wiring.cc.
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "controllers/manager_wiring.h"
#include "reconcile/program.h"

namespace gpu_autoscaler {
namespace {

constexpr std::string_view kUsage = R"(Usage: gpu-autoscaler-manager [flags]

Runs the gpu-autoscaler controllers against a Kubernetes cluster.

Flags:
  --kubeconfig=PATH                  kubeconfig file (default: in-cluster config,
                                     then $KUBECONFIG, then ~/.kube/config)
  --context=NAME                     kubeconfig context (default: current-context)
  --metrics-bind-address=ADDR        where /metrics is served, host:port or :port;
                                     "0" disables (default ":8443")
  --metrics-secure[=true|false]      serve /metrics over HTTPS, each scrape authorised
                                     by a TokenReview and a SubjectAccessReview
                                     (nonResourceURLs /metrics, verb get); false
                                     serves plain HTTP, on a loopback address only
                                     (default true)
  --metrics-cert-dir=DIR             tls.crt and tls.key for /metrics, reloaded when
                                     they change (default: a generated self-signed pair)
  --health-probe-bind-address=ADDR   where /healthz and /readyz are served, plain
                                     HTTP, unauthenticated (default ":8081")
  --leader-elect[=true|false]        run controllers only while holding the
                                     leader Lease (default false)
  --leader-election-namespace=NS     namespace of the Lease (default "default")
  --leader-election-id=NAME          name of the Lease (default "gpu-autoscaler-manager")
  --namespace=NS                     the manager's own namespace: GPUNodePools'
                                     credential Secrets without a namespace and
                                     ClusterBudgets' notification Secrets (default:
                                     the leader-election namespace)
  --workers=N                        reconcile workers per controller (default 2)
  --controllers=LIST                 controllers to run: * for all, NAME to add one,
                                     -NAME to drop one (default "*"); known:
                                     node-gpu-inventory, sharing-policy, cost, budget,
                                     gpunodepool, rescheduler, service-profile
  --config=FILE                      ManagerConfig YAML (docs/operator.md); reloaded
                                     when it changes, a bad version is rejected
  --config-configmap=NS/NAME         also take the configuration from this ConfigMap's
                                     config.yaml key, watched; a bad version gets an
                                     Event and the last good one stays
  --cost-db=PATH|URL                 cost history: a SQLite file (on a PersistentVolume)
                                     or a postgres:// URL (default: the config's
                                     cost.database, else gpu-autoscaler-cost.db)
  --cost-db-secret=NS/NAME/KEY       read the PostgreSQL URL from this Secret key
  --prometheus-url=URL               read GPU utilisation (NVIDIA dcgm-exporter series)
                                     from this Prometheus: usage cost and idle GPUs
                                     (default: the config's cost.prometheusURL; none:
                                     allocation cost only)
  --custom-metrics-bind-address=ADDR serve custom.metrics.k8s.io/v1beta2 (per-pod
                                     gpu_utilization and gpu_memory_used_bytes for
                                     the HPA, from --prometheus-url) over HTTPS here,
                                     for an APIService; empty or "0" disables
                                     (default: disabled)
  --custom-metrics-cert-dir=DIR      tls.crt and tls.key for it, reloaded when they
                                     change (default: a generated self-signed pair)
  --requestheader-client-ca-file=FILE  for custom metrics: the CA of the front proxy's
                                     (kube-aggregator's) client certificate, whose
                                     X-Remote-User/X-Remote-Group headers are trusted
                                     (default: from ConfigMap kube-system/extension-
                                     apiserver-authentication, which must then exist)
  --requestheader-allowed-names=LIST   for custom metrics: common names the front proxy's
                                     certificate may have, comma-separated (default: the
                                     ConfigMap's; empty: any the CA signed)
  --client-ca-file=FILE              for custom metrics: the CA of x509 client
                                     certificates (user CN, groups O) (default: the
                                     ConfigMap's); other callers use bearer tokens
  --log-format=text|json             log format (default text)
  --log-level=debug|info|warn|error  log level (default info)
  --help                             show this help
)";

using Flags = controllers::ManagerFlags;

Status ParseFlags(int argc, char** argv, Flags* flags) {
  GPU_ASSIGN_OR_RETURN(std::vector<reconcile::ProgramFlag> scanned,
                       reconcile::ScanFlags(argc, argv,
                                            {"--kubeconfig",
                                             "--context",
                                             "--metrics-bind-address",
                                             "--health-probe-bind-address",
                                             "--leader-election-namespace",
                                             "--leader-election-id",
                                             "--namespace",
                                             "--log-format",
                                             "--log-level",
                                             "--workers",
                                             "--controllers",
                                             "--config",
                                             "--config-configmap",
                                             "--cost-db",
                                             "--cost-db-secret",
                                             "--prometheus-url",
                                             "--metrics-cert-dir",
                                             "--custom-metrics-bind-address",
                                             "--custom-metrics-cert-dir",
                                             "--requestheader-client-ca-file",
                                             "--requestheader-allowed-names",
                                             "--client-ca-file"},
                                            {"--leader-elect", "--metrics-secure"}));
  for (const reconcile::ProgramFlag& f : scanned) {
    const std::string& name = f.name;
    const std::string& value = f.value;
    if (name == "--help") {
      flags->help = true;
    } else if (name == "--leader-elect") {
      GPU_RETURN_IF_ERROR(reconcile::ParseBoolFlag(f, &flags->leader_elect));
    } else if (name == "--metrics-secure") {
      GPU_RETURN_IF_ERROR(reconcile::ParseBoolFlag(f, &flags->metrics_secure));
    } else if (name == "--metrics-cert-dir") {
      flags->metrics_cert_dir = value;
    } else if (name == "--kubeconfig") {
      flags->kubeconfig = value;
    } else if (name == "--context") {
      flags->context = value;
    } else if (name == "--metrics-bind-address") {
      flags->metrics_bind_address = value;
    } else if (name == "--health-probe-bind-address") {
      flags->health_probe_bind_address = value;
    } else if (name == "--leader-election-namespace") {
      flags->leader_election_namespace = value;
    } else if (name == "--leader-election-id") {
      flags->leader_election_id = value;
    } else if (name == "--namespace") {
      flags->namespace_name = value;
    } else if (name == "--log-format") {
      flags->logging.format = value;
    } else if (name == "--log-level") {
      flags->logging.level = value;
    } else if (name == "--controllers") {
      flags->controllers = value;
    } else if (name == "--config") {
      flags->config_file = value;
    } else if (name == "--config-configmap") {
      flags->config_configmap = value;
    } else if (name == "--cost-db") {
      flags->cost_db = value;
    } else if (name == "--prometheus-url") {
      flags->prometheus_url = value;
    } else if (name == "--custom-metrics-bind-address") {
      flags->custom_metrics_bind_address = value;
    } else if (name == "--custom-metrics-cert-dir") {
      flags->custom_metrics_cert_dir = value;
    } else if (name == "--requestheader-client-ca-file") {
      flags->requestheader_client_ca_file = value;
    } else if (name == "--requestheader-allowed-names") {
      flags->requestheader_allowed_names = value;
      flags->requestheader_allowed_names_set = true;
    } else if (name == "--client-ca-file") {
      flags->client_ca_file = value;
    } else if (name == "--cost-db-secret") {
      flags->cost_db_secret = value;
    } else if (name == "--workers") {
      GPU_RETURN_IF_ERROR(reconcile::ParseIntFlag(f, 1, 256, &flags->workers));
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
      "gpu-autoscaler-manager", kUsage, parsed, flags.help, flags.logging,
      [&flags](std::stop_source stop) { return controllers::RunManager(flags, stop); });
}
