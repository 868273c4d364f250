// The scheduler extender's cost per pod at 5,000 nodes (docs/benchmarks.md,
// "Scheduler"; target: filter plus prioritize of one pod, p99 under 5 ms).
//
// One request pair is what kube-scheduler sends for a pod when the extender is
// nodeCacheCapable and every node is a candidate (percentageOfNodesToScore:
// 100): Extender::Handle("filter", ExtenderArgs) then
// Extender::Handle("prioritize", the same ExtenderArgs), each with the pod
// (3 KB, a Job's training pod) and 5,000 NodeNames (215 KB). Each pair is
// timed on its own; p50/p99/max (wall and thread CPU) are counters.
//
// The cluster: 5,000 nodes (40 % A100-SXM4-80GB and 30 % H100 8-GPU NVSwitch
// nodes, 10 % L40S 8-GPU PCIe nodes with NVLink pairs, 10 % A10G nodes
// time-sliced 4 ways, 10 % A100 nodes with 4 whole GPUs and 4 MIG GPUs) and
// about 27,000 bound GPU pods on 62 % of the GPUs, with a DaemonSet pod on
// every node and 0-2 CPU-only ReplicaSet pods per node (three shapes, so the
// target workload has CPU-only shapes too). The pending pod rotates
// among six shapes (1, 2, 4 and 8 GPUs, one time-sliced replica, one MIG
// 1g.10gb instance). Cases:
//
//   warm   nothing changes between requests: every score comes from the
//          engine's per-(node, shape) cache;
//   churn  between two requests the pod just scored is bound (ClusterCache::
//          UpsertPod, as the informer reports it) and an old pod finishes
//          (DeletePod), so two nodes changed: the steady state of a busy cluster;
//   cold   every request is a shape never seen (its CPU request differs), so
//          all 5,000 nodes are scored: a cluster whose pods all differ;
//   sample churn, but each request names 500 nodes (a window that rotates):
//          what kube-scheduler sends at 5,000 nodes with its default
//          percentageOfNodesToScore (50 - 5000/125 = 10 %: it stops filtering
//          once 500 nodes fit, and asks the extender about those only).
//
// Each case runs for FragLookahead (the default policy) and, in the same run,
// for BestFit (the engine with a trivial policy: the comparison). BM_Codec
// times only the JSON work of a pair (two ExtenderArgs parses, two Pod
// decodes, the filter and prioritize answers) for the parse+serialize share.
// The run ends with a summary of medians across repetitions and the ratios.
//
//   build/default/bench/scheduler_extender_bench --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "api/annotations.h"
#include "kube/object_codec.h"
#include "pod_fixture.h"
#include "scheduler/cluster_cache.h"
#include "scheduler/extender.h"
#include "scheduler/gpu_demand.h"

namespace gpu_autoscaler::scheduler {
namespace {

using nlohmann::json;

constexpr int kNodes = 5000;
constexpr int kIterations = 1500;     // request pairs per repetition (warm, churn)
constexpr int kColdIterations = 300;  // each adds a shape to the engine's score cache
const char* const kPolicies[] = {"FragLookahead", "BestFit"};
const char* const kBaseline = "BestFit";
constexpr int kSampleNodes = 500;  // kube-scheduler's default sample at 5,000 nodes

using bench::Mix;

class Draw {  // deterministic draws
 public:
  explicit Draw(uint64_t seed) : state_(seed) {}
  int Below(int n) { return static_cast<int>(Mix(state_++) % static_cast<uint64_t>(n)); }
  int Between(int lo, int hi) { return lo + Below(hi - lo + 1); }

 private:
  uint64_t state_;
};

enum class NodeKind { kA100, kH100, kL40S, kTimeSliced, kMig };

NodeKind KindOf(int i) {
  const int k = static_cast<int>(Mix(static_cast<uint64_t>(i) * 7 + 1) % 10);
  return k < 4   ? NodeKind::kA100
         : k < 7 ? NodeKind::kH100
         : k < 8 ? NodeKind::kL40S
         : k < 9 ? NodeKind::kTimeSliced
                 : NodeKind::kMig;
}

std::string NodeName(int i) {
  return "ip-10-" + std::to_string(i / 65536 % 256) + "-" + std::to_string(i / 256 % 256) + "-" +
         std::to_string(i % 256) + ".us-west-2.compute.internal";
}

json NodeJson(int i) {
  const NodeKind kind = KindOf(i);
  const std::string name = NodeName(i);
  json labels = {{"kubernetes.io/hostname", name},
                 {"kubernetes.io/os", "linux"},
                 {"kubernetes.io/arch", "amd64"},
                 {"topology.kubernetes.io/region", "us-west-2"},
                 {"topology.kubernetes.io/zone", std::string("us-west-2") + "abc"[i % 3]},
                 {"karpenter.sh/capacity-type", i % 4 == 0 ? "spot" : "on-demand"},
                 {"nvidia.com/gpu.count", "8"}};
  json allocatable = {
      {"cpu", "95500m"}, {"memory", "1137Gi"}, {"pods", "110"}, {"ephemeral-storage", "900Gi"}};
  switch (kind) {
    case NodeKind::kA100:
      labels["nvidia.com/gpu.product"] = "NVIDIA-A100-SXM4-80GB";
      labels["node.kubernetes.io/instance-type"] = "p4de.24xlarge";
      labels[std::string(api::kNvlinkIslandsLabel)] = "0-7";
      allocatable["nvidia.com/gpu"] = "8";
      break;
    case NodeKind::kH100:
      labels["nvidia.com/gpu.product"] = "NVIDIA-H100-80GB-HBM3";
      labels["node.kubernetes.io/instance-type"] = "p5.48xlarge";
      labels[std::string(api::kNvlinkIslandsLabel)] = "0-7";
      allocatable["nvidia.com/gpu"] = "8";
      break;
    case NodeKind::kL40S:
      labels["nvidia.com/gpu.product"] = "NVIDIA-L40S";
      labels["node.kubernetes.io/instance-type"] = "g6e.48xlarge";
      labels[std::string(api::kNvlinkIslandsLabel)] = "0-1_2-3_4-5_6-7";
      allocatable["nvidia.com/gpu"] = "8";
      break;
    case NodeKind::kTimeSliced:
      labels["nvidia.com/gpu.product"] = "NVIDIA-A10G-SHARED";
      labels["node.kubernetes.io/instance-type"] = "g5.48xlarge";
      labels["nvidia.com/gpu.replicas"] = "4";
      labels["nvidia.com/gpu.sharing-strategy"] = "time-slicing";
      allocatable["nvidia.com/gpu.shared"] = "32";
      break;
    case NodeKind::kMig:
      labels["nvidia.com/gpu.product"] = "NVIDIA-A100-SXM4-80GB";
      labels["node.kubernetes.io/instance-type"] = "p4de.24xlarge";
      labels["nvidia.com/mig.strategy"] = "mixed";
      allocatable["nvidia.com/gpu"] = "4";
      allocatable["nvidia.com/mig-1g.10gb"] = "14";
      allocatable["nvidia.com/mig-3g.40gb"] = "4";
      break;
  }
  return {
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata",
       {{"name", name},
        {"uid", "node-uid-" + std::to_string(i)},
        {"resourceVersion", std::to_string(1000 + i)},
        {"labels", labels}}},
      {"spec", {{"providerID", "aws:///us-west-2a/i-0" + std::to_string(Mix(i) % 100000000)}}},
      {"status",
       {{"capacity", allocatable},
        {"allocatable", allocatable},
        {"conditions", {{{"type", "Ready"}, {"status", "True"}, {"reason", "KubeletReady"}}}}}}};
}

// Requests of one pod: GPU resource name -> count, with CPU and memory.
struct PodShape {
  std::string label;
  std::string resource;  // "" for CPU only
  int count = 0;
  int64_t cpu_milli = 0;
  int memory_gi = 0;
};

PodShape Whole(int gpus) {
  return {std::to_string(gpus) + "gpu", "nvidia.com/gpu", gpus, 8000LL * gpus, 64 * gpus};
}

// The pending pods the extender is asked about.
const std::vector<PodShape>& PendingShapes() {
  static const std::vector<PodShape> shapes = {
      Whole(1),
      Whole(2),
      Whole(4),
      Whole(8),
      {"shared", "nvidia.com/gpu.shared", 1, 2000, 8},
      {"mig-1g", "nvidia.com/mig-1g.10gb", 1, 1000, 8},
  };
  return shapes;
}

json Requests(const PodShape& s) {
  json r = {{"cpu", std::to_string(s.cpu_milli) + "m"},
            {"memory", std::to_string(s.memory_gi) + "Gi"}};
  if (!s.resource.empty()) r[s.resource] = std::to_string(s.count);
  return r;
}

// A bound, running pod as the informer holds it.
json BoundPodJson(const std::string& ns, const std::string& name, const PodShape& s,
                  const std::string& node, const std::string& gpus,
                  const std::string& owner_kind = "Job") {
  json limits = json::object();
  if (!s.resource.empty()) limits[s.resource] = std::to_string(s.count);
  json annotations = json::object();
  if (!gpus.empty()) annotations[std::string(api::kGpuIndicesAnnotation)] = gpus;
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", name},
            {"namespace", ns},
            {"uid", "uid-" + name},
            {"labels", {{"app", "worker"}}},
            {"annotations", annotations},
            {"ownerReferences",
             {{{"apiVersion", owner_kind == "Job" ? "batch/v1" : "apps/v1"},
               {"kind", owner_kind},
               {"name", owner_kind == "DaemonSet" ? "node-exporter" : ns + "-" + s.label},
               {"uid", "uid-owner-" + ns + "-" + s.label},
               {"controller", true}}}}}},
          {"spec",
           {{"nodeName", node},
            {"containers",
             {{{"name", "main"},
               {"image", "registry.example.com/ml/trainer:2.14.1"},
               {"resources", {{"requests", Requests(s)}, {"limits", limits}}}}}}}},
          {"status", {{"phase", "Running"}}}};
}

// The pending pod as kube-scheduler sends it: a Job's training pod (the
// informer benchmarks' fixture) without kind/apiVersion, nodeName or status
// beyond the phase, with `s`'s requests.
json PendingPodJson(int index, const PodShape& s) {
  json pod = bench::PodObject(index);
  pod.erase("kind");
  pod.erase("apiVersion");
  pod["spec"].erase("nodeName");
  pod["spec"].erase("nodeSelector");
  json limits = json::object();
  if (!s.resource.empty()) limits[s.resource] = std::to_string(s.count);
  pod["spec"]["containers"][0]["resources"] = {{"requests", Requests(s)}, {"limits", limits}};
  pod["status"] = {{"phase", "Pending"}, {"qosClass", "Burstable"}};
  return pod;
}

std::shared_ptr<const kube::PodView> DecodePodOrDie(const std::string& json_text) {
  auto view = kube::DecodePod(json_text);
  if (!view.ok()) {
    std::fprintf(stderr, "decoding a fixture pod: %s\n", view.error().message().c_str());
    std::exit(1);
  }
  return std::make_shared<const kube::PodView>(std::move(view).value());
}

struct Fixture {
  std::vector<std::shared_ptr<const kube::NodeView>> nodes;
  std::vector<std::shared_ptr<const kube::PodView>> bound;  // in a shuffled order
  int bound_gpus = 0;
  int total_gpus = 0;
  std::string names_json;                               // ["ip-...", ...]
  std::vector<std::string> bodies;                      // ExtenderArgs per pending shape
  std::vector<std::vector<std::string>> sample_bodies;  // [shape][window of kSampleNodes]
  std::vector<json> pending;                            // the pending pod per shape
  std::vector<std::shared_ptr<const kube::PodView>> pending_views;
};

std::string ArgsBody(const json& pod, const std::string& names_json) {
  return "{\"Pod\":" + pod.dump() + ",\"Nodes\":null,\"NodeNames\":" + names_json + "}";
}

const Fixture& Cluster() {
  static const Fixture* fixture = [] {
    auto* f = new Fixture;
    Draw draw(42);
    json names = json::array();
    std::vector<std::shared_ptr<const kube::PodView>> pods;
    int pod_index = 0;
    auto bind = [&](int node, const PodShape& s, const std::string& owner = "Job") {
      const std::string name = "pod-" + std::to_string(pod_index);
      const std::string ns =
          owner == "DaemonSet" ? "monitoring" : "team-" + std::to_string(pod_index % 40);
      ++pod_index;
      pods.push_back(DecodePodOrDie(BoundPodJson(ns, name, s, NodeName(node), "", owner).dump()));
    };
    // CPU-only pods: a DaemonSet's on every node (not the target workload),
    // and 0-2 ReplicaSet pods of three shapes (part of it).
    const PodShape kCpuOnly[] = {
        {"web", "", 0, 2000, 4}, {"api", "", 0, 4000, 16}, {"etl", "", 0, 8000, 32}};
    const PodShape kAgent{"agent", "", 0, 500, 1};
    Draw cpu_only_draw(7);  // its own stream: the GPU pods are as before
    for (int i = 0; i < kNodes; ++i) {
      auto view = kube::DecodeNode(NodeJson(i).dump());
      if (!view.ok()) {
        std::fprintf(stderr, "decoding a fixture node: %s\n", view.error().message().c_str());
        std::exit(1);
      }
      f->nodes.push_back(std::make_shared<const kube::NodeView>(std::move(view).value()));
      names.push_back(NodeName(i));
      f->total_gpus += 8;
      bind(i, kAgent, "DaemonSet");
      for (int c = cpu_only_draw.Between(0, 2); c > 0; --c)
        bind(i, kCpuOnly[cpu_only_draw.Below(3)], "ReplicaSet");
      switch (KindOf(i)) {
        case NodeKind::kA100:
        case NodeKind::kH100:
        case NodeKind::kL40S: {
          // 2..8 GPUs busy (60 % on average): 1-, 2-, 4- and 8-GPU pods.
          int left = draw.Between(2, 8);
          while (left > 0) {
            const int roll = draw.Below(100);
            int size = roll < 50 ? 1 : roll < 75 ? 2 : roll < 90 ? 4 : 8;
            while (size > left)
              size /= 2;
            bind(i, Whole(size));
            left -= size;
            f->bound_gpus += size;
          }
          break;
        }
        case NodeKind::kTimeSliced: {
          const int replicas = draw.Between(8, 28);
          for (int r = 0; r < replicas; ++r)
            bind(i, {"shared", "nvidia.com/gpu.shared", 1, 2000, 8});
          f->bound_gpus += (replicas + 3) / 4;
          break;
        }
        case NodeKind::kMig: {
          const int whole = draw.Between(0, 4);
          for (int g = 0; g < whole; ++g)
            bind(i, Whole(1));
          const int small = draw.Between(0, 14);
          for (int m = 0; m < small; ++m)
            bind(i, {"mig-1g", "nvidia.com/mig-1g.10gb", 1, 1000, 8});
          const int large = draw.Between(0, 4);
          for (int m = 0; m < large; ++m)
            bind(i, {"mig-3g", "nvidia.com/mig-3g.40gb", 1, 4000, 32});
          f->bound_gpus += whole + (small + 3 * large + 6) / 7;
          break;
        }
      }
    }
    // Informers deliver pods in no particular node order; churn deletes the oldest first.
    for (size_t i = pods.size(); i > 1; --i)
      std::swap(pods[i - 1], pods[static_cast<size_t>(draw.Below(static_cast<int>(i)))]);
    f->bound = std::move(pods);
    f->names_json = names.dump();
    for (size_t s = 0; s < PendingShapes().size(); ++s) {
      f->pending.push_back(PendingPodJson(static_cast<int>(s) + 1, PendingShapes()[s]));
      f->bodies.push_back(ArgsBody(f->pending.back(), f->names_json));
      f->sample_bodies.emplace_back();
      for (int first = 0; first < kNodes; first += kSampleNodes) {
        json window = json::array();
        for (int n = first; n < first + kSampleNodes; ++n)
          window.push_back(NodeName(n));
        f->sample_bodies.back().push_back(ArgsBody(f->pending.back(), window.dump()));
      }
      f->pending_views.push_back(DecodePodOrDie(f->pending.back().dump()));
    }
    return f;
  }();
  return *fixture;
}

std::unique_ptr<ClusterCache> FilledCache(const std::string& policy) {
  const Fixture& f = Cluster();
  auto cache = ClusterCache::Create({.policy = policy});
  if (!cache.ok()) {
    std::fprintf(stderr, "%s\n", cache.error().message().c_str());
    std::exit(1);
  }
  for (const auto& node : f.nodes)
    (*cache)->UpsertNode(node);
  for (const auto& pod : f.bound)
    (*cache)->UpsertPod(pod);
  return std::move(cache).value();
}

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(rank, v.size() - 1)];
}

void SetLatencyCounters(benchmark::State& state, const std::vector<double>& wall,
                        const std::vector<double>& cpu) {
  state.counters["p50_ms"] = Percentile(wall, 0.50) * 1e3;
  state.counters["p99_ms"] = Percentile(wall, 0.99) * 1e3;
  state.counters["max_ms"] = Percentile(wall, 1.0) * 1e3;
  state.counters["cpu_p50_ms"] = Percentile(cpu, 0.50) * 1e3;
  state.counters["cpu_p99_ms"] = Percentile(cpu, 0.99) * 1e3;
}

enum class Mode { kWarm, kChurn, kCold, kSample };
constexpr Mode kModes[] = {Mode::kWarm, Mode::kChurn, Mode::kCold, Mode::kSample};

void BM_ExtenderPair(benchmark::State& state, std::string policy, Mode mode) {
  const Fixture& f = Cluster();
  std::unique_ptr<ClusterCache> cache = FilledCache(policy);
  Extender extender(*cache, {.policy_name = policy});
  const std::vector<PodShape>& shapes = PendingShapes();
  if (mode != Mode::kCold) {
    for (const std::string& body : f.bodies) {  // the first question builds the engine's state
      (void)extender.Handle("filter", body);
      (void)extender.Handle("prioritize", body);
    }
  } else {
    (void)cache->FragmentationRatio();  // builds the engine's state, scores nothing
  }
  std::deque<std::shared_ptr<const kube::PodView>> running(f.bound.begin(), f.bound.end());
  std::vector<double> wall;
  std::vector<double> cpu;
  wall.reserve(kIterations);
  cpu.reserve(kIterations);
  int64_t i = 0;
  int64_t reply_bytes = 0;
  int64_t bound = 0;
  for (auto _ : state) {
    const size_t s = static_cast<size_t>(i % static_cast<int64_t>(shapes.size()));
    std::string cold_body;
    const std::string* body = &f.bodies[s];
    if (mode == Mode::kSample) {
      body = &f.sample_bodies[s][static_cast<size_t>(i) % f.sample_bodies[s].size()];
    }
    if (mode == Mode::kCold) {
      PodShape shape = shapes[s];
      shape.cpu_milli += 1 + i;  // a CPU request no earlier pod had: a new shape
      cold_body = ArgsBody(PendingPodJson(static_cast<int>(s) + 1, shape), f.names_json);
      body = &cold_body;
    }
    const double c0 = ThreadCpuSeconds();
    const auto t0 = std::chrono::steady_clock::now();
    ExtenderReply filtered = extender.Handle("filter", *body);
    ExtenderReply prioritized = extender.Handle("prioritize", *body);
    const auto t1 = std::chrono::steady_clock::now();
    const double c1 = ThreadCpuSeconds();
    const double seconds = std::chrono::duration<double>(t1 - t0).count();
    state.SetIterationTime(seconds);
    wall.push_back(seconds);
    cpu.push_back(c1 - c0);
    if (filtered.status != 200 || prioritized.status != 200) {
      state.SkipWithError(("extender answered " + filtered.body).c_str());
      return;
    }
    reply_bytes += static_cast<int64_t>(filtered.body.size() + prioritized.body.size());
    if (mode == Mode::kChurn || mode == Mode::kSample) {
      // kube-scheduler binds the pod; the informer reports it bound. An old pod finishes.
      Result<PlacementChoice> choice = cache->Select(*f.pending_views[s], /*predicates=*/false);
      if (choice.ok()) {
        const std::string name = "churn-" + std::to_string(i);
        auto pod = DecodePodOrDie(
            BoundPodJson("churn", name, shapes[s], choice->node, FormatGpuIndices(choice->gpus))
                .dump());
        cache->UpsertPod(pod);
        running.push_back(std::move(pod));
        ++bound;
      }
      const auto& old = running.front();
      cache->DeletePod(old->ns(), old->name());
      running.pop_front();
    }
    ++i;
  }
  SetLatencyCounters(state, wall, cpu);
  state.counters["reply_KB"] = static_cast<double>(reply_bytes) / static_cast<double>(i) / 1e3;
  if (mode == Mode::kChurn || mode == Mode::kSample)
    state.counters["bound"] = static_cast<double>(bound);
  const CacheStats stats = cache->stats();
  state.counters["unplaceable"] = stats.unplaceable;
}

// Only the JSON work of one pair: what Extender::Filter and ::Prioritize do
// besides asking the cache (the answers are those of a real pair).
void BM_Codec(benchmark::State& state) {
  const Fixture& f = Cluster();
  std::unique_ptr<ClusterCache> cache = FilledCache("FragLookahead");
  std::vector<ExtenderArgs> args;
  std::vector<FilterOutcome> outcomes;
  std::vector<std::vector<int>> scores;
  for (const std::string& body : f.bodies) {
    args.push_back(std::move(ParseExtenderArgs(body)).value());
    auto pod = kube::DecodePod(args.back().pod_json);
    std::vector<std::string_view> names(args.back().node_names.begin(),
                                        args.back().node_names.end());
    outcomes.push_back(cache->Filter(*pod, names, false));
    scores.push_back(cache->Prioritize(*pod, names));
  }
  std::vector<double> wall;
  std::vector<double> cpu;
  int64_t i = 0;
  for (auto _ : state) {
    const size_t s = static_cast<size_t>(i % static_cast<int64_t>(f.bodies.size()));
    const double c0 = ThreadCpuSeconds();
    const auto t0 = std::chrono::steady_clock::now();
    size_t bytes = 0;
    for (int verb = 0; verb < 2; ++verb) {
      Result<ExtenderArgs> parsed = ParseExtenderArgs(f.bodies[s]);
      kube::Result<kube::PodView> pod = kube::DecodePod(parsed->pod_json);
      std::vector<std::string_view> names(parsed->node_names.begin(), parsed->node_names.end());
      benchmark::DoNotOptimize(pod.ok());
      benchmark::DoNotOptimize(names.data());
      bytes += verb == 0 ? FilterResultJson(*parsed, outcomes[s], "").size()
                         : HostPriorityListJson(parsed->node_names, scores[s]).size();
    }
    const auto t1 = std::chrono::steady_clock::now();
    const double c1 = ThreadCpuSeconds();
    benchmark::DoNotOptimize(bytes);
    const double seconds = std::chrono::duration<double>(t1 - t0).count();
    state.SetIterationTime(seconds);
    wall.push_back(seconds);
    cpu.push_back(c1 - c0);
    ++i;
  }
  SetLatencyCounters(state, wall, cpu);
}

const char* ModeName(Mode mode) {
  return mode == Mode::kWarm    ? "warm"
         : mode == Mode::kChurn ? "churn"
         : mode == Mode::kCold  ? "cold"
                                : "sample";
}

const bool kRegistered = [] {
  for (Mode mode : kModes) {
    for (const char* policy : kPolicies) {
      const std::string name = std::string("BM_ExtenderPair/") + ModeName(mode) + "/" + policy;
      benchmark::RegisterBenchmark(name.c_str(), BM_ExtenderPair, std::string(policy), mode)
          ->Unit(benchmark::kMillisecond)
          ->UseManualTime()
          ->Iterations(mode == Mode::kCold ? kColdIterations : kIterations);
    }
  }
  benchmark::RegisterBenchmark("BM_Codec", BM_Codec)
      ->Unit(benchmark::kMillisecond)
      ->UseManualTime()
      ->Iterations(kIterations);
  return true;
}();

// Console output as usual; remembers each repetition's latency counters.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration || run.error_occurred) continue;
      for (const char* counter : {"p50_ms", "p99_ms", "max_ms", "cpu_p50_ms", "cpu_p99_ms"}) {
        auto it = run.counters.find(counter);
        if (it != run.counters.end()) {
          values_[run.run_name.function_name][counter].push_back(it->second.value);
        }
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
  // The median across repetitions; 0 when the benchmark did not run.
  double Median(const std::string& name, const std::string& counter) const {
    auto b = values_.find(name);
    if (b == values_.end()) return 0;
    auto c = b->second.find(counter);
    if (c == b->second.end() || c->second.empty()) return 0;
    std::vector<double> v = c->second;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  }
  size_t Repetitions(const std::string& name) const {
    auto b = values_.find(name);
    return b == values_.end() || b->second.empty() ? 0 : b->second.begin()->second.size();
  }

 private:
  std::map<std::string, std::map<std::string, std::vector<double>>> values_;
};

void PrintSummary(const SummaryReporter& r) {
  const Fixture& f = Cluster();
  std::printf(
      "\nRequest pair (filter + prioritize) naming all %d nodes (sample: %d of them), %zu bound "
      "pods (%.0f %% of %d GPUs busy);\nmedian over repetitions of each repetition's percentile, "
      "ms (wall / thread CPU):\n\n",
      kNodes, kSampleNodes, f.bound.size(), 100.0 * f.bound_gpus / f.total_gpus, f.total_gpus);
  std::printf("%-6s %-14s %4s %9s %9s %9s %9s %9s\n", "case", "policy", "reps", "p50", "p99", "max",
              "cpu p50", "cpu p99");
  for (Mode mode : kModes) {
    for (const char* policy : kPolicies) {
      const std::string name = std::string("BM_ExtenderPair/") + ModeName(mode) + "/" + policy;
      if (r.Repetitions(name) == 0) continue;
      std::printf("%-6s %-14s %4zu %9.3f %9.3f %9.3f %9.3f %9.3f\n", ModeName(mode), policy,
                  r.Repetitions(name), r.Median(name, "p50_ms"), r.Median(name, "p99_ms"),
                  r.Median(name, "max_ms"), r.Median(name, "cpu_p50_ms"),
                  r.Median(name, "cpu_p99_ms"));
    }
  }
  if (r.Repetitions("BM_Codec") > 0) {
    std::printf("%-6s %-14s %4zu %9.3f %9.3f %9.3f %9.3f %9.3f\n", "codec", "(JSON only)",
                r.Repetitions("BM_Codec"), r.Median("BM_Codec", "p50_ms"),
                r.Median("BM_Codec", "p99_ms"), r.Median("BM_Codec", "max_ms"),
                r.Median("BM_Codec", "cpu_p50_ms"), r.Median("BM_Codec", "cpu_p99_ms"));
  }
  std::printf("\n");
  for (Mode mode : kModes) {
    const std::string ours = std::string("BM_ExtenderPair/") + ModeName(mode) + "/" + kPolicies[0];
    const std::string base = std::string("BM_ExtenderPair/") + ModeName(mode) + "/" + kBaseline;
    const double p99 = r.Median(ours, "p99_ms");
    const double base_p99 = r.Median(base, "p99_ms");
    const double cpu50 = r.Median(ours, "cpu_p50_ms");
    const double base_cpu50 = r.Median(base, "cpu_p50_ms");
    if (p99 <= 0) continue;
    std::printf("%-6s %s p99 %.3f ms: target < 5 ms %s", ModeName(mode), kPolicies[0], p99,
                p99 < 5 ? "met" : "MISSED");
    if (base_p99 > 0) {
      std::printf("; / %s: p99 %.2fx, cpu p50 %.2fx", kBaseline, p99 / base_p99,
                  cpu50 / base_cpu50);
    }
    const double codec = r.Median("BM_Codec", "cpu_p50_ms");
    if (codec > 0 && cpu50 > 0 && mode != Mode::kSample) {  // BM_Codec names all nodes
      std::printf("; JSON parse+serialize %.0f %% of cpu p50", 100 * codec / cpu50);
    }
    std::printf("\n");
  }
}

}  // namespace
}  // namespace gpu_autoscaler::scheduler

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  using gpu_autoscaler::scheduler::Cluster;
  const auto& fixture = Cluster();
  std::printf("cluster: %d nodes, %zu bound pods; ExtenderArgs %zu bytes (pod %zu bytes)\n",
              gpu_autoscaler::scheduler::kNodes, fixture.bound.size(), fixture.bodies[0].size(),
              fixture.pending[0].dump().size());
  gpu_autoscaler::scheduler::SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  gpu_autoscaler::scheduler::PrintSummary(reporter);
  benchmark::Shutdown();
  return 0;
}
