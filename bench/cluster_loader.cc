// cluster_loader: fills an API server with GPU nodes and pods for the
// manager's scale benchmark (hack/bench-manager.sh). Pods are bound to nodes
// (spec.nodeName), labelled by team and project, and a quarter of them are
// time-sliced (as the admission webhook would have rewritten them).
// With --scheduler-name NAME (hack/bench-scheduler.sh) the pods are pending
// instead: spec.schedulerName NAME, no nodeName, one whole GPU each, and the
// nodes report Ready so that a scheduler may use them.
//
//   cluster_loader --server http://127.0.0.1:PORT --nodes 5000 --pods 150000 --threads 8
//   cluster_loader --server URL --nodes 1000 --pods 5000 --scheduler-name gpu-autoscaler
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "kube/rest_client.h"

using nlohmann::json;
using namespace gpu_autoscaler;

int main(int argc, char** argv) {
  std::string server;
  std::string scheduler_name;  // pending pods for this scheduler; "" binds them here
  long nodes = 5000, pods = 150000, threads = 8, namespaces = 200;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--server")
      server = next();
    else if (a == "--nodes")
      nodes = std::atol(next().c_str());
    else if (a == "--pods")
      pods = std::atol(next().c_str());
    else if (a == "--threads")
      threads = std::atol(next().c_str());
    else if (a == "--namespaces")
      namespaces = std::atol(next().c_str());
    else if (a == "--scheduler-name")
      scheduler_name = next();
    else {
      std::fprintf(stderr,
                   "Usage: cluster_loader --server URL [--nodes N] [--pods N] [--threads N] "
                   "[--namespaces N] [--scheduler-name NAME]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (server.empty()) {
    std::fprintf(stderr, "cluster_loader: --server is required\n");
    return 2;
  }
  kube::ClientConfig cfg;
  cfg.server = server;
  cfg.qps = 1e6;
  cfg.burst = 1000000;
  auto client = kube::RestClient::Create(cfg);
  if (!client.ok()) {
    std::fprintf(stderr, "cluster_loader: %s\n", client.error().ToString().c_str());
    return 1;
  }
  for (long n = 0; n < namespaces; ++n) {
    (void)(*client)->Create({kube::resources::kNamespaces, "", "", ""},
                            {{"apiVersion", "v1"},
                             {"kind", "Namespace"},
                             {"metadata", {{"name", "ns-" + std::to_string(n)}}}});
  }
  std::atomic<long> next_item{0}, failures{0};
  const long total = nodes + pods;
  const auto start = std::chrono::steady_clock::now();
  auto worker = [&] {
    while (true) {
      const long i = next_item.fetch_add(1);
      if (i >= total) return;
      kube::Result<json> r = json();
      if (i < nodes) {
        json node = {
            {"apiVersion", "v1"},
            {"kind", "Node"},
            {"metadata",
             {{"name", "node-" + std::to_string(i)},
              {"labels",
               {{"node.kubernetes.io/instance-type", "p4d.24xlarge"},
                {"nvidia.com/gpu.product", "A100-SXM4-40GB"},
                {"karpenter.sh/capacity-type", i % 3 == 0 ? "spot" : "on-demand"}}}}},
            {"status",
             {{"allocatable", {{"cpu", "96"}, {"memory", "1152Gi"}, {"nvidia.com/gpu", "8"}}}}}};
        if (!scheduler_name.empty()) {
          node["status"]["capacity"] = node["status"]["allocatable"];
          node["status"]["conditions"] = {
              {{"type", "Ready"}, {"status", "True"}, {"reason", "KubeletReady"}}};
        }
        r = (*client)->Create({kube::resources::kNodes, "", "", ""}, node);
      } else {
        const long p = i - nodes;
        const bool pending = !scheduler_name.empty();
        const bool sliced = !pending && p % 4 == 0;
        json requests = {{"cpu", "2"}, {"memory", "8Gi"}};
        requests[sliced ? "nvidia.com/gpu.shared" : "nvidia.com/gpu"] = "1";
        json annotations = json::object();
        if (sliced)
          annotations = {{"gpuautoscaler.io/mode", "timeSlicing"},
                         {"gpuautoscaler.io/replicas", "4"},
                         {"gpuautoscaler.io/policy", "notebooks"}};
        json pod = {{"apiVersion", "v1"},
                    {"kind", "Pod"},
                    {"metadata",
                     {{"name", "pod-" + std::to_string(p)},
                      {"namespace", "ns-" + std::to_string(p % namespaces)},
                      {"labels",
                       {{"team", "team-" + std::to_string(p % 40)},
                        {"project", "project-" + std::to_string(p % 120)},
                        {"app", "worker"}}},
                      {"annotations", annotations}}},
                    {"spec",
                     {{"nodeName", "node-" + std::to_string(p % nodes)},
                      {"containers",
                       {{{"name", "main"},
                         {"image", "registry.example/train:1"},
                         {"resources", {{"requests", requests}, {"limits", requests}}}}}}}}};
        if (pending) {
          pod["spec"].erase("nodeName");
          pod["spec"]["schedulerName"] = scheduler_name;
        }
        r = (*client)->Create(
            {kube::resources::kPods, "ns-" + std::to_string(p % namespaces), "", ""}, pod);
      }
      if (!r.ok() && failures.fetch_add(1) < 5)
        std::fprintf(stderr, "cluster_loader: %s\n", r.error().ToString().c_str());
      if (i % 10000 == 0) std::fprintf(stderr, "\rcluster_loader: %ld/%ld objects", i, total);
    }
  };
  std::vector<std::thread> pool;
  for (long t = 0; t < threads; ++t)
    pool.emplace_back(worker);
  for (auto& t : pool)
    t.join();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "\rcluster_loader: %ld nodes and %ld pods in %.1f s (%ld failed)\n", nodes,
               pods, secs, failures.load());
  return failures.load() == 0 ? 0 : 1;
}
