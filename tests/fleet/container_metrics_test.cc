#include "fleet/container_metrics.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::fleet {
namespace {

using std::chrono::seconds;

FleetSnapshot OneNodeSnapshot() {
  FleetSnapshot s;
  s.nodes = {{.name = "gpu-1", .managed = true}, {.name = "real-1", .managed = false}};
  s.pods = {
      {.ns = "nlp",
       .name = "chat-a",
       .node = "gpu-1",
       .phase = "Running",
       .containers = {{"server", "chat:1"}, {"sidecar", "proxy:1"}},
       .usage_annotation = "cpu=0.5,memory=600Mi;sidecar:cpu=0.25,memory=64Mi"},
      // Not counted: pending, on an unmanaged node, terminating.
      {.ns = "nlp",
       .name = "pending",
       .node = "gpu-1",
       .phase = "Pending",
       .containers = {{"main", ""}}},
      {.ns = "nlp",
       .name = "elsewhere",
       .node = "real-1",
       .phase = "Running",
       .containers = {{"main", ""}}},
      {.ns = "nlp",
       .name = "leaving",
       .node = "gpu-1",
       .phase = "Running",
       .terminating = true,
       .containers = {{"main", ""}}},
      // A bad annotation: the default, and an error naming the pod.
      {.ns = "cv",
       .name = "train",
       .node = "gpu-1",
       .phase = "Running",
       .containers = {{"main", ""}},
       .usage_annotation = "cpu=much"},
  };
  return s;
}

TEST(ContainerMetricsTest, RunningContainersOfManagedNodesOnly) {
  std::vector<std::string> errors;
  auto running =
      RunningContainers(OneNodeSnapshot(), {.cpu_cores = 0.1, .memory_bytes = 100}, &errors);
  ASSERT_EQ(running.size(), 3u);
  EXPECT_EQ(running[0].key.ns, "cv");  // namespace order
  EXPECT_DOUBLE_EQ(running[0].usage.cpu_cores, 0.1);
  EXPECT_EQ(running[0].usage.memory_bytes, 100);
  EXPECT_EQ(running[1].key.container, "server");
  EXPECT_DOUBLE_EQ(running[1].usage.cpu_cores, 0.5);
  EXPECT_EQ(running[1].usage.memory_bytes, 629145600);
  EXPECT_EQ(running[2].key.container, "sidecar");
  EXPECT_EQ(running[2].key.node, "gpu-1");
  EXPECT_DOUBLE_EQ(running[2].usage.cpu_cores, 0.25);
  EXPECT_EQ(running[2].usage.memory_bytes, 67108864);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("cv/train: usage entry \"cpu=much\""), std::string::npos) << errors[0];
}

TEST(ContainerMetricsTest, MemoryTracesReplayOneSamplePerStepTimesTheLimit) {
  // Two trace pods, rows out of time order; a row without a pod is skipped and
  // a slightly negative value reads as 0.
  auto traces = ParseMemoryTraces(
      "value,timestamp_anon,container_ip\n"
      "0.5,120.0,aa\n"
      "0.25,60.0,aa\n"
      "-0.00001,180.0,aa\n"
      "0.1,60.0,\n"
      "0.75,60.0,bb\n",
      "mem.csv", std::chrono::seconds(10));
  ASSERT_TRUE(traces.ok()) << traces.error().message();
  EXPECT_EQ(traces->fraction_by_pod.at("aa"), (std::vector<double>{0.25, 0.5, 0}));
  EXPECT_EQ(traces->fraction_by_pod.at("bb"), (std::vector<double>{0.75}));
  EXPECT_EQ(TraceSample(traces->fraction_by_pod.at("aa"), seconds(9), seconds(10)), 0.25);
  EXPECT_EQ(TraceSample(traces->fraction_by_pod.at("aa"), seconds(10), seconds(10)), 0.5);
  EXPECT_EQ(TraceSample(traces->fraction_by_pod.at("aa"), seconds(35), seconds(10)),
            0.25);  // wraps
  EXPECT_FALSE(
      ParseMemoryTraces("value,timestamp_anon,container_ip\nx,1,aa\n", "mem.csv", seconds(1)).ok());

  const Clock::WallTime start{seconds(1'800'000'000)};
  FleetSnapshot s{.now = start + seconds(12)};  // the second sample
  s.nodes = {{.name = "gpu-1", .managed = true}};
  s.pods = {{.ns = "nlp",
             .name = "chat",
             .node = "gpu-1",
             .phase = "Running",
             .start_time = start,
             .containers = {{"server", "", 4ll << 30}, {"nolimit", "", 0}},
             .usage_annotation = "memory-trace=aa"},
            {.ns = "nlp",
             .name = "lost",
             .node = "gpu-1",
             .phase = "Running",
             .containers = {{"main", "", 0}},
             .usage_annotation = "memory-trace=zz"}};
  std::vector<std::string> errors;
  auto running = RunningContainers(s, {.memory_bytes = 1000}, &errors, &*traces);
  ASSERT_EQ(running.size(), 3u);
  EXPECT_EQ(running[0].key.container, "nolimit");
  EXPECT_EQ(running[0].usage.memory_bytes, 500);         // 0.5 x the fallback 1000
  EXPECT_EQ(running[1].usage.memory_bytes, 2147483648);  // 0.5 x 4Gi
  EXPECT_EQ(running[2].key.pod, "lost");
  EXPECT_EQ(running[2].usage.memory_bytes, 1000);
  EXPECT_EQ(errors, std::vector<std::string>{"nlp/lost: no memory trace for pod \"zz\""});
}

TEST(ContainerMetricsTest, CpuCounterIntegratesTheRateHeldBetweenObservations) {
  const ContainerKey key{"nlp", "chat-a", "server", "gpu-1"};
  ContainerMetrics m;
  const Clock::TimePoint t0{};
  m.Observe({{key, {.cpu_cores = 0.5, .memory_bytes = 10}}}, t0);
  EXPECT_DOUBLE_EQ(m.CpuSeconds(key), 0);
  m.Observe({{key, {.cpu_cores = 0.25, .memory_bytes = 20}}}, t0 + seconds(10));
  EXPECT_DOUBLE_EQ(m.CpuSeconds(key), 5);  // 0.5 cores x 10 s
  m.Observe({{key, {.cpu_cores = 0.25, .memory_bytes = 20}}}, t0 + seconds(14));
  EXPECT_DOUBLE_EQ(m.CpuSeconds(key), 6);  // + 0.25 x 4 s
  // Time never runs backwards for the counter.
  m.Observe({{key, {.cpu_cores = 0.25, .memory_bytes = 20}}}, t0 + seconds(12));
  EXPECT_DOUBLE_EQ(m.CpuSeconds(key), 6);
  // Gone: forgotten; back: from 0 again, as a new container.
  m.Observe({}, t0 + seconds(20));
  EXPECT_EQ(m.CpuSeconds(key), -1);
  EXPECT_EQ(m.size(), 0u);
}

TEST(ContainerMetricsTest, RendersCadvisorNamesAndLabels) {
  ContainerMetrics m;
  const Clock::TimePoint t0{};
  const ContainerKey key{"nlp", "chat-a", "server", "gpu-1"};
  const ContainerKey odd{"ns", "p\"1", "c\\d", "n"};
  m.Observe({{key, {.cpu_cores = 0.5, .memory_bytes = 629145600}}, {odd, {}}}, t0);
  m.Observe({{key, {.cpu_cores = 0.5, .memory_bytes = 629145600}}, {odd, {}}}, t0 + seconds(5));
  EXPECT_EQ(m.Render(),
            "# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.\n"
            "# TYPE container_cpu_usage_seconds_total counter\n"
            "container_cpu_usage_seconds_total{container=\"server\",namespace=\"nlp\","
            "node=\"gpu-1\",pod=\"chat-a\"} 2.5\n"
            "container_cpu_usage_seconds_total{container=\"c\\\\d\",namespace=\"ns\",node=\"n\","
            "pod=\"p\\\"1\"} 0\n"
            "# HELP container_memory_working_set_bytes Current working set in bytes.\n"
            "# TYPE container_memory_working_set_bytes gauge\n"
            "container_memory_working_set_bytes{container=\"server\",namespace=\"nlp\","
            "node=\"gpu-1\",pod=\"chat-a\"} 629145600\n"
            "container_memory_working_set_bytes{container=\"c\\\\d\",namespace=\"ns\",node=\"n\","
            "pod=\"p\\\"1\"} 0\n");
}

}  // namespace
}  // namespace gpu_autoscaler::fleet
