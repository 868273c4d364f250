// gpu-autoscaler-manager: runs the gpu-autoscaler controllers.
//
// For now it runs the NodeGpuInventory controller (per-GPU-model node and
// GPU gauges, and Events on GPU nodes), behind optional leader election,
// with /metrics, /healthz and /readyz endpoints.
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>

#include <prometheus/registry.h>

#include "controllers/node_gpu_inventory.h"
#include "kube/config.h"
#include "kube/event_recorder.h"
#include "kube/object_codec.h"
#include "kube/rest_client.h"
#include "kube/shared_informer.h"
#include "reconcile/controller.h"
#include "reconcile/informer_source.h"
#include "reconcile/logging.h"
#include "reconcile/manager.h"

namespace gpu_autoscaler {
namespace {

constexpr std::string_view kUsage = R"(Usage: gpu-autoscaler-manager [flags]

Runs the gpu-autoscaler controllers against a Kubernetes cluster.

Flags:
  --kubeconfig=PATH                  kubeconfig file (default: in-cluster config,
                                     then $KUBECONFIG, then ~/.kube/config)
  --context=NAME                     kubeconfig context (default: current-context)
  --metrics-bind-address=ADDR        where /metrics is served, host:port or :port;
                                     "0" disables (default ":8080")
  --health-probe-bind-address=ADDR   where /healthz and /readyz are served
                                     (default ":8081")
  --leader-elect[=true|false]        run controllers only while holding the
                                     leader Lease (default false)
  --leader-election-namespace=NS     namespace of the Lease (default "default")
  --leader-election-id=NAME          name of the Lease (default "gpu-autoscaler-manager")
  --workers=N                        reconcile workers per controller (default 2)
  --log-format=text|json             log format (default text)
  --log-level=debug|info|warn|error  log level (default info)
  --help                             show this help
)";

struct Flags {
  std::string kubeconfig;
  std::string context;
  std::string metrics_bind_address = ":8080";
  std::string health_probe_bind_address = ":8081";
  bool leader_elect = false;
  std::string leader_election_namespace = "default";
  std::string leader_election_id = "gpu-autoscaler-manager";
  int workers = 2;
  reconcile::LoggingOptions logging;
  bool help = false;
};

Status ParseBool(std::string_view flag, std::string_view value, bool* out) {
  if (value == "true" || value == "1") {
    *out = true;
  } else if (value == "false" || value == "0") {
    *out = false;
  } else {
    return InvalidArgumentError(std::string(flag) + ": want true or false, got \"" +
                                std::string(value) + "\"");
  }
  return Status::Ok();
}

Status ParseFlags(int argc, char** argv, Flags* flags) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      flags->help = true;
      continue;
    }
    if (arg.substr(0, 2) != "--")
      return InvalidArgumentError("unexpected argument " + std::string(arg));
    std::string_view name = arg;
    std::string value;
    bool has_value = false;
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = std::string(arg.substr(eq + 1));
      has_value = true;
    }
    if (name == "--leader-elect") {
      if (!has_value) {
        flags->leader_elect = true;
        continue;
      }
      GPU_RETURN_IF_ERROR(ParseBool(name, value, &flags->leader_elect));
      continue;
    }
    static constexpr std::string_view kValueFlags[] = {"--kubeconfig",
                                                       "--context",
                                                       "--metrics-bind-address",
                                                       "--health-probe-bind-address",
                                                       "--leader-election-namespace",
                                                       "--leader-election-id",
                                                       "--log-format",
                                                       "--log-level",
                                                       "--workers"};
    if (std::find(std::begin(kValueFlags), std::end(kValueFlags), name) == std::end(kValueFlags)) {
      return InvalidArgumentError("unknown flag " + std::string(name) + " (see --help)");
    }
    if (!has_value) {
      if (i + 1 >= argc) return InvalidArgumentError(std::string(name) + ": missing value");
      value = argv[++i];
    }
    if (name == "--kubeconfig") {
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
    } else if (name == "--log-format") {
      flags->logging.format = value;
    } else if (name == "--log-level") {
      flags->logging.level = value;
    } else if (name == "--workers") {
      char* end = nullptr;
      const long n = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || n < 1 || n > 256) {
        return InvalidArgumentError("--workers: want 1..256, got \"" + value + "\"");
      }
      flags->workers = static_cast<int>(n);
    } else {
      return InvalidArgumentError("unknown flag " + std::string(name) + " (see --help)");
    }
  }
  return Status::Ok();
}

int Run(const Flags& flags, std::stop_source stop) {
  using reconcile::Log;
  using reconcile::LogLevel;

  auto cfg = flags.kubeconfig.empty()
                 ? kube::LoadDefaultConfig(flags.context)
                 : kube::LoadKubeconfigFiles({flags.kubeconfig}, flags.context);
  if (!cfg.ok()) {
    Log(LogLevel::kError, "loading client configuration", {{"error", cfg.error().ToString()}});
    return 1;
  }
  auto registry = std::make_shared<prometheus::Registry>();
  auto client = kube::RestClient::Create(*cfg, {.metrics = registry.get()});
  if (!client.ok()) {
    Log(LogLevel::kError, "creating API client", {{"error", client.error().ToString()}});
    return 1;
  }

  reconcile::Manager manager({
      .metrics_bind_address = flags.metrics_bind_address,
      .health_probe_bind_address = flags.health_probe_bind_address,
      .leader_election = flags.leader_elect,
      .leader_election_namespace = flags.leader_election_namespace,
      .leader_election_id = flags.leader_election_id,
      .client = client->get(),
      .registry = registry,
  });

  kube::InformerFactory informers(client->get());
  auto nodes = informers.Informer(kube::resources::kNodes, kube::NodeViewCodec());
  auto event_sink = kube::NewRestEventSink(**client);
  kube::EventRecorder recorder(*event_sink,
                               {.component = "gpu-autoscaler-manager", .host = manager.identity()});

  controllers::NodeGpuInventoryReconciler inventory(nodes->store(), *registry, &recorder);
  reconcile::Controller node_controller(
      {.name = "node-gpu-inventory", .workers = flags.workers, .metrics = registry.get()},
      inventory);
  reconcile::InformerSource<kube::NodeView> node_source(nodes);
  node_controller.For(node_source);

  // Informers run on every replica, so a new leader starts with warm caches.
  manager.Add(reconcile::MakeRunnable("informers", /*needs_leader_election=*/false,
                                      [&](std::stop_token token) {
                                        informers.Start();
                                        std::mutex mu;
                                        std::condition_variable_any cv;
                                        std::unique_lock<std::mutex> lock(mu);
                                        cv.wait(lock, token, [] { return false; });
                                        informers.Stop();
                                        return Status::Ok();
                                      }));
  manager.AddReadyzCheck("informers", [&] {
    return nodes->HasSynced() ? Status::Ok() : UnavailableError("node informer not synced");
  });
  manager.AddController(node_controller);

  Status served = manager.Serve();
  if (!served.ok()) {
    Log(LogLevel::kError, "starting HTTP endpoints", {{"error", served.ToString()}});
    return 1;
  }
  Log(LogLevel::kInfo, "starting manager",
      {{"identity", manager.identity()},
       {"server", cfg->server},
       {"leader_elect", flags.leader_elect ? "true" : "false"},
       {"metrics_port", std::to_string(manager.metrics_port())},
       {"health_port", std::to_string(manager.health_port())}});
  Status result = manager.Run(stop.get_token());
  recorder.Flush(std::chrono::seconds(5));
  if (!result.ok()) {
    Log(LogLevel::kError, "manager failed", {{"error", result.ToString()}});
    return 1;
  }
  Log(LogLevel::kInfo, "manager exited cleanly", {});
  return 0;
}

}  // namespace
}  // namespace gpu_autoscaler

int main(int argc, char** argv) {
  using namespace gpu_autoscaler;
  Flags flags;
  if (Status s = ParseFlags(argc, argv, &flags); !s.ok()) {
    std::fprintf(stderr, "gpu-autoscaler-manager: %s\n", s.message().c_str());
    return 2;
  }
  if (flags.help) {
    std::fwrite(kUsage.data(), 1, kUsage.size(), stdout);
    return 0;
  }
  if (Status s = reconcile::ConfigureLogging(flags.logging); !s.ok()) {
    std::fprintf(stderr, "gpu-autoscaler-manager: %s\n", s.message().c_str());
    return 2;
  }
  std::stop_source stop;
  // Before any other thread exists, so they all inherit the blocked signals.
  reconcile::SignalStopper signals(stop);
  return Run(flags, stop);
}
