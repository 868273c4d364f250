// PSI eviction's cost on a node with 110 pods (the kubelet's default pod
// limit): one evictor round reads the node's three PSI files and each pod's
// memory.current, cpu.stat and io.stat from a cgroup tree under /tmp (the
// same file names as cgroup v2), ranks them and plans; no pod is evicted
// (pressure stays under the threshold, as on most rounds). The agent runs one
// round per pressureEviction.interval (5 s by default), so the CPU share is
// the round's time divided by 5 s.
//
//   BM_ParsePsi             one PSI file parsed
//   BM_EvictorRound/110     one round over 110 pods (90 shared, 20 reclaimed)
#include <benchmark/benchmark.h>
#include <prometheus/registry.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kube/rest_client.h"
#include "node-agent/pressure_evictor.h"
#include "node-agent/psi.h"

namespace gpu_autoscaler::node_agent {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

void BM_ParsePsi(benchmark::State& state) {
  const std::string text =
      "some avg10=6.05 avg60=10.96 avg300=3.76 total=7982193528\n"
      "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
  for (auto _ : state) {
    auto f = ParsePsi(text);
    benchmark::DoNotOptimize(f);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParsePsi);

void BM_EvictorRound(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const fs::path root = fs::temp_directory_path() / ("gpa-psi-bench-" + std::to_string(getpid()));
  for (const char* r : {"cpu", "memory", "io"}) {
    Write(root / "proc/pressure" / r,
          "some avg10=3.00 avg60=2.00 avg300=1.00 total=1000\n"
          "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
  }
  std::vector<EvictablePod> pods;
  for (int i = 0; i < n; ++i) {
    const std::string name = "pod-" + std::to_string(i);
    const fs::path dir = root / "cgroup" / name;
    Write(dir / "memory.current", std::to_string((i + 1) * (64 << 20)) + "\n");
    Write(dir / "cpu.stat",
          "usage_usec " + std::to_string(i * 1000) + "\nuser_usec 1\nsystem_usec 1\n");
    Write(dir / "io.stat", "8:0 rbytes=" + std::to_string(i * 4096) + " wbytes=0 rios=1 wios=0\n");
    pods.push_back({.ns = "bench",
                    .name = name,
                    .uid = "uid-" + name,
                    .tier = i < 20 ? EvictionTier::kReclaimed : EvictionTier::kShared,
                    .memory_request_bytes = 1 << 30,
                    .cpu_request_millis = 500,
                    .cgroup_dir = dir.string(),
                    .terminating = false});
  }
  kube::ClientConfig cfg;
  cfg.server = "http://127.0.0.1:9";  // never called: nothing is evicted
  auto client = kube::RestClient::Create(cfg);
  if (!client.ok()) {
    state.SkipWithError("no client");
    return;
  }
  prometheus::Registry registry;
  FakeClock clock;
  PressureEvictor evictor(
      **client, nullptr, registry,
      {.proc_root = (root / "proc").string(), .pods = [&] { return pods; }, .clock = &clock},
      PressureEvictionConfig{});
  for (auto _ : state) {
    clock.Step(std::chrono::seconds(5));
    EvictionPlan plan = evictor.Tick();
    benchmark::DoNotOptimize(plan);
  }
  state.SetItemsProcessed(state.iterations() * n);
  fs::remove_all(root);
}
BENCHMARK(BM_EvictorRound)->Arg(110)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace gpu_autoscaler::node_agent

BENCHMARK_MAIN();
