// /metrics from a snapshot: dcgm-exporter names and labels for GPUs and MIG
// devices, per-process series, nvml_up, and series of vanished GPUs,
// devices and processes removed.
#include <gtest/gtest.h>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "node-agent/attribution.h"
#include "node-agent/metrics.h"

namespace gpu_autoscaler::node_agent {
namespace {

std::string Text(prometheus::Registry& r) {
  return prometheus::TextSerializer().Serialize(r.Collect());
}

bool Has(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

nvml::GpuSnapshot Snapshot() {
  nvml::GpuSnapshot s;
  nvml::GpuSample g;
  g.index = 0;
  g.uuid = "GPU-a";
  g.name = "NVIDIA H100 80GB HBM3";
  g.memory_used_bytes = 1024ull << 20;
  g.memory_free_bytes = 3072ull << 20;
  g.util_gpu = 37;
  g.processes = {{.pid = 42, .used_memory_bytes = 1 << 20, .sm_util = 30}};
  s.gpus.push_back(g);
  nvml::GpuSample m;
  m.index = 1;
  m.uuid = "GPU-b";
  m.name = "NVIDIA A100-SXM4-80GB";
  m.mig_enabled = true;
  m.mig_devices = {{.slot = 0,
                    .uuid = "MIG-x",
                    .profile = "1g.10gb",
                    .gpu_instance_id = 9,
                    .memory_used_bytes = 512ull << 20,
                    .memory_free_bytes = 512ull << 20}};
  s.gpus.push_back(m);
  return s;
}

TEST(AgentMetrics, DcgmNamesAndLabels) {
  prometheus::Registry registry;
  AgentMetrics metrics(registry, "node-1");
  auto snap = Snapshot();
  metrics.Render(&snap, nvml::NvmlState::kUp);
  const std::string text = Text(registry);
  EXPECT_TRUE(Has(text,
                  "DCGM_FI_DEV_GPU_UTIL{Hostname=\"node-1\",UUID=\"GPU-a\",device=\"nvidia0\","
                  "gpu=\"0\",modelName=\"NVIDIA H100 80GB HBM3\"} 37"))
      << text;
  EXPECT_TRUE(Has(text,
                  "DCGM_FI_DEV_FB_USED{Hostname=\"node-1\",UUID=\"GPU-a\",device=\"nvidia0\","
                  "gpu=\"0\",modelName=\"NVIDIA H100 80GB HBM3\"} 1024"));
  EXPECT_TRUE(Has(text, "DCGM_FI_DEV_FB_FREE{Hostname=\"node-1\",UUID=\"GPU-a\""));
  EXPECT_TRUE(Has(text,
                  "DCGM_FI_DEV_FB_USED{GPU_I_ID=\"9\",GPU_I_PROFILE=\"1g.10gb\","
                  "Hostname=\"node-1\",UUID=\"GPU-b\",device=\"nvidia1\",gpu=\"1\","
                  "modelName=\"NVIDIA A100-SXM4-80GB\"} 512"))
      << text;
  EXPECT_FALSE(Has(text, "DCGM_FI_DEV_GPU_UTIL{Hostname=\"node-1\",UUID=\"GPU-b\""));
  EXPECT_TRUE(Has(text,
                  "gpu_autoscaler_node_gpu_process_sm_utilization{Hostname=\"node-1\","
                  "UUID=\"GPU-a\",gpu=\"0\",pid=\"42\"} 30"));
  EXPECT_TRUE(Has(text,
                  "gpu_autoscaler_node_gpu_process_memory_used_bytes{Hostname=\"node-1\","
                  "UUID=\"GPU-a\",gpu=\"0\",pid=\"42\"} 1048576"));
  EXPECT_TRUE(Has(text, "gpu_autoscaler_node_nvml_up 1"));
  EXPECT_TRUE(Has(text, "gpu_autoscaler_node_nvml_state{state=\"Up\"} 1"));
}

TEST(AgentMetrics, VanishedSeriesGoAndNvmlDownClearsGpus) {
  prometheus::Registry registry;
  AgentMetrics metrics(registry, "node-1");
  auto snap = Snapshot();
  metrics.Render(&snap, nvml::NvmlState::kUp);
  snap.gpus[0].processes.clear();
  snap.gpus.pop_back();
  metrics.Render(&snap, nvml::NvmlState::kUp);
  std::string text = Text(registry);
  EXPECT_FALSE(Has(text, "pid=\"42\"")) << text;
  EXPECT_FALSE(Has(text, "GPU-b"));
  EXPECT_TRUE(Has(text, "GPU-a"));
  metrics.Render(nullptr, nvml::NvmlState::kHung);
  text = Text(registry);
  EXPECT_FALSE(Has(text, "GPU-a"));
  EXPECT_TRUE(Has(text, "gpu_autoscaler_node_nvml_up 0"));
  EXPECT_TRUE(Has(text, "gpu_autoscaler_node_nvml_state{state=\"Hung\"} 1"));
}

// A MIG device one container holds gets dcgm-exporter's pod labels; the pod's
// series go when its processes do.
TEST(AgentMetrics, PodLabelsOnAnOwnedMigDeviceAndPerPodSeries) {
  prometheus::Registry registry;
  AgentMetrics metrics(registry, "node-1");
  auto snap = Snapshot();
  snap.gpus[1].processes = {
      {.pid = 77, .used_memory_bytes = 4096, .sm_util = 12, .gpu_instance_id = 9}};
  Attribution a;
  a.device_owner["MIG-x"] = {"ml", "mig-pod", "main"};
  a.device_holders["MIG-x"] = 1;
  a.processes = {{.gpu_index = 0, .pid = 42},  // unattributed
                 {.gpu_index = 1,
                  .pid = 77,
                  .device_uuid = "MIG-x",
                  .owner = {"ml", "mig-pod", "main"},
                  .by = AttributedBy::kExclusiveDevice}};
  a.pods[{"ml", "mig-pod"}] = {.sm_util_percent = 12, .memory_bytes = 4096, .processes = 1};
  a.unattributed = 1;
  metrics.Render(&snap, nvml::NvmlState::kUp, &a);
  std::string text = Text(registry);
  EXPECT_TRUE(Has(text,
                  "DCGM_FI_DEV_FB_USED{GPU_I_ID=\"9\",GPU_I_PROFILE=\"1g.10gb\","
                  "Hostname=\"node-1\",UUID=\"GPU-b\",container=\"main\",device=\"nvidia1\","
                  "gpu=\"1\",modelName=\"NVIDIA A100-SXM4-80GB\",namespace=\"ml\","
                  "pod=\"mig-pod\"} 512"))
      << text;
  EXPECT_TRUE(Has(text,
                  "gpu_autoscaler_node_gpu_process_sm_utilization{GPU_I_ID=\"9\","
                  "Hostname=\"node-1\",UUID=\"GPU-b\",container=\"main\",gpu=\"1\","
                  "namespace=\"ml\",pid=\"77\",pod=\"mig-pod\"} 12"))
      << text;
  EXPECT_TRUE(Has(text,
                  "gpu_autoscaler_node_gpu_device_holders{GPU_I_ID=\"9\",Hostname=\"node-1\","
                  "UUID=\"MIG-x\",gpu=\"1\"} 1"));
  EXPECT_TRUE(Has(text,
                  "gpu_autoscaler_node_gpu_process_sm_utilization{Hostname=\"node-1\","
                  "UUID=\"GPU-a\",gpu=\"0\",pid=\"42\"} 30"));
  EXPECT_TRUE(Has(text,
                  "gpu_autoscaler_node_pod_gpu_processes{Hostname=\"node-1\","
                  "namespace=\"ml\",pod=\"mig-pod\"} 1"));
  EXPECT_TRUE(Has(text, "gpu_autoscaler_node_gpu_processes_unattributed 1"));
  snap.gpus[1].processes.clear();
  Attribution none;
  none.processes = {{.gpu_index = 0, .pid = 42}};
  metrics.Render(&snap, nvml::NvmlState::kUp, &none);
  text = Text(registry);
  EXPECT_FALSE(Has(text, "mig-pod")) << text;
}

TEST(AgentMetrics, PollsAndSyncs) {
  prometheus::Registry registry;
  AgentMetrics metrics(registry, "node-1");
  metrics.ObservePoll(0.002, false, 2);
  metrics.ObservePoll(5, true, 0);
  metrics.ReportWrite(true);
  const std::string text = Text(registry);
  EXPECT_TRUE(Has(text, "gpu_autoscaler_node_nvml_poll_duration_seconds_count 1"));
  EXPECT_TRUE(Has(text, "gpu_autoscaler_node_nvml_poll_timeouts_total 1"));
  EXPECT_TRUE(Has(text, "gpu_autoscaler_node_nvml_call_errors_total 2"));
  EXPECT_TRUE(Has(text, "gpu_autoscaler_node_report_syncs_total{result=\"ok\"} 1"));
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
