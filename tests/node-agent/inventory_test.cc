// Inventory (pure): sharing mode from device-plugin labels, NVLink islands
// direct and through NVSwitches, the label format the scheduler parses, NUMA
// from a sysfs tree, and the report documents.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "node-agent/inventory.h"
#include "node-agent/numa.h"
#include "node-agent/report.h"
#include "scheduler/gpu_demand.h"
#include "support/child_process.h"

namespace gpu_autoscaler::node_agent {
namespace {

nvml::GpuSnapshot Gpus(int n) {
  nvml::GpuSnapshot s;
  for (int i = 0; i < n; ++i) {
    nvml::GpuSample g;
    g.index = i;
    g.uuid = "GPU-" + std::to_string(i);
    char bus[32];
    std::snprintf(bus, sizeof(bus), "00000000:%02X:00.0", 0x10 + i);
    g.pci_bus_id = bus;
    s.gpus.push_back(g);
  }
  return s;
}

void Link(nvml::GpuSnapshot* s, int a, int b) {
  s->gpus[a].nvlink_remote_bus_ids.push_back(s->gpus[b].pci_bus_id);
  s->gpus[b].nvlink_remote_bus_ids.push_back(s->gpus[a].pci_bus_id);
}

TEST(SharingMode, FromDevicePluginLabels) {
  EXPECT_EQ(SharingModeFromLabels({}), (SharingMode{.strategy = "none", .replicas = 1}));
  EXPECT_EQ(SharingModeFromLabels({{"nvidia.com/gpu.sharing-strategy", "time-slicing"},
                                   {"nvidia.com/gpu.replicas", "4"}}),
            (SharingMode{.strategy = "time-slicing", .replicas = 4}));
  EXPECT_EQ(SharingModeFromLabels(
                {{"nvidia.com/gpu.sharing-strategy", "mps"}, {"nvidia.com/gpu.replicas", "10"}}),
            (SharingMode{.strategy = "mps", .replicas = 10}));
  SharingMode bad = SharingModeFromLabels(
      {{"nvidia.com/gpu.sharing-strategy", "mig"}, {"nvidia.com/gpu.replicas", "x"}});
  EXPECT_EQ(bad.strategy, "none");
  EXPECT_NE(bad.problem.find("nvidia.com/gpu.sharing-strategy=\"mig\""), std::string::npos);
}

TEST(NvlinkIslands, DirectLinksMakeIslandsAndLonersAreLeftOut) {
  auto s = Gpus(8);
  for (int a = 0; a < 4; ++a)
    for (int b = a + 1; b < 4; ++b)
      Link(&s, a, b);
  Link(&s, 4, 6);
  Link(&s, 5, 7);
  auto islands = NvlinkIslands(s);
  EXPECT_EQ(islands, (std::vector<std::vector<int>>{{0, 1, 2, 3}, {4, 6}, {5, 7}}));
  EXPECT_EQ(FormatNvlinkIslands(islands), "0-3_4.6_5.7");
}

TEST(NvlinkIslands, GpusOnTheSameNvSwitchShareAnIsland) {
  auto s = Gpus(8);
  for (int i = 0; i < 8; ++i) {
    s.gpus[i].nvlink_remote_bus_ids = {i < 4 ? "00000000:C1:00.0" : "00000000:C2:00.0",
                                       i < 4 ? "00000000:C3:00.0" : "00000000:C4:00.0"};
  }
  EXPECT_EQ(FormatNvlinkIslands(NvlinkIslands(s)), "0-3_4-7");
  s.gpus[0].nvlink_remote_bus_ids.push_back("0000:c2:00.0");  // 4-digit domain, lower case
  EXPECT_EQ(FormatNvlinkIslands(NvlinkIslands(s)), "0-7");
}

TEST(NvlinkIslands, NoNvlinkMeansNoLabel) {
  EXPECT_EQ(FormatNvlinkIslands(NvlinkIslands(Gpus(4))), "");
}

TEST(NvlinkIslands, TheLabelParsesBackInTheScheduler) {
  auto s = Gpus(8);
  Link(&s, 0, 2);
  Link(&s, 1, 3);
  Link(&s, 4, 5);
  Link(&s, 5, 6);
  const std::string label = FormatNvlinkIslands(NvlinkIslands(s));
  EXPECT_EQ(label, "0.2_1.3_4-6");
  auto groups = scheduler::ParseNvlinkIslands(label, 8);
  ASSERT_TRUE(groups.ok()) << groups.error().ToString();
  const std::vector<int>& g = *groups;
  EXPECT_EQ(g[0], g[2]);
  EXPECT_EQ(g[1], g[3]);
  EXPECT_NE(g[0], g[1]);
  EXPECT_EQ(g[4], g[6]);
  EXPECT_NE(g[7], g[4]);
}

TEST(Inventory, BuildsGpusWithMigAndIslands) {
  auto s = Gpus(3);
  Link(&s, 0, 1);
  s.gpus[0].name = "NVIDIA H100 80GB HBM3";
  s.gpus[0].memory_total_bytes = 80ull << 30;
  s.gpus[0].util_gpu = 50;  // volatile: not in the inventory
  s.gpus[2].mig_enabled = true;
  s.gpus[2].mig_devices.push_back(
      {.uuid = "MIG-a", .profile = "1g.10gb", .gpu_instance_id = 9, .memory_total_bytes = 10});
  Inventory inv = BuildInventory(&s, {{"nvidia.com/gpu.sharing-strategy", "mps"}},
                                 {{.id = 0, .cpus = "0-3", .cpu_count = 4, .memory_bytes = 1}},
                                 {{"00000000:12:00.0", 1}});
  ASSERT_EQ(inv.gpus.size(), 3u);
  EXPECT_EQ(inv.gpus[0].model, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(inv.gpus[0].nvlink_island, 0);
  EXPECT_EQ(inv.gpus[2].nvlink_island, -1);
  EXPECT_EQ(inv.gpus[2].numa_node, 1);
  ASSERT_EQ(inv.gpus[2].mig_devices.size(), 1u);
  EXPECT_EQ(inv.gpus[2].mig_devices[0].profile, "1g.10gb");
  EXPECT_EQ(inv.nvlink_label, "0-1");
  EXPECT_EQ(inv.sharing.strategy, "mps");
  auto again = s;
  again.gpus[0].util_gpu = 99;
  again.gpus[0].memory_used_bytes = 123;
  EXPECT_EQ(BuildInventory(&again, {{"nvidia.com/gpu.sharing-strategy", "mps"}}, inv.numa,
                           {{"00000000:12:00.0", 1}}),
            inv);
  EXPECT_TRUE(BuildInventory(nullptr, {}, {}).gpus.empty());
}

TEST(Numa, CountsCpuLists) {
  EXPECT_EQ(CountCpuList("0-3,8,10-11\n"), 7);
  EXPECT_EQ(CountCpuList(""), 0);
  EXPECT_EQ(CountCpuList("3-1"), -1);
  EXPECT_EQ(CountCpuList("a"), -1);
}

TEST(Numa, ReadsNodesAndGpuNodeFromSysfs) {
  const std::string root = testing::MakeTempDir("gpa-sysfs");
  namespace fs = std::filesystem;
  for (int n = 0; n < 2; ++n) {
    const fs::path dir = fs::path(root) / "devices/system/node" / ("node" + std::to_string(n));
    fs::create_directories(dir);
    std::ofstream(dir / "cpulist") << (n == 0 ? "0-15,32-47\n" : "16-31,48-63\n");
    std::ofstream(dir / "meminfo")
        << "Node " << n << " MemTotal:       65536 kB\nNode " << n << " MemFree:        1024 kB\n";
  }
  fs::create_directories(fs::path(root) / "devices/system/node/possible-not-a-node");
  fs::create_directories(fs::path(root) / "bus/pci/devices/0000:07:00.0");
  std::ofstream(fs::path(root) / "bus/pci/devices/0000:07:00.0/numa_node") << "1\n";
  fs::create_directories(fs::path(root) / "bus/pci/devices/0000:08:00.0");
  std::ofstream(fs::path(root) / "bus/pci/devices/0000:08:00.0/numa_node") << "-1\n";
  auto nodes = ReadNumaTopology(root);
  ASSERT_TRUE(nodes.ok()) << nodes.error().ToString();
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_EQ(
      (*nodes)[1],
      (NumaNode{.id = 1, .cpus = "16-31,48-63", .cpu_count = 32, .memory_bytes = 65536ull * 1024}));
  EXPECT_EQ(PciNumaNode(root, "00000000:07:00.0"), 1);
  EXPECT_EQ(PciNumaNode(root, "00000000:08:00.0"), std::nullopt);
  EXPECT_EQ(PciNumaNode(root, "00000000:09:00.0"), std::nullopt);
  EXPECT_TRUE(ReadNumaTopology(root + "/nowhere")->empty());
  std::ofstream(fs::path(root) / "devices/system/node/node0/cpulist") << "x-y";
  EXPECT_FALSE(ReadNumaTopology(root).ok());
  fs::remove_all(root);
}

TEST(Report, DocumentsCarryOwnerStatusAndLabel) {
  auto obj = nlohmann::json::parse(ReportObjectApply("gpu-1", "uid-1"));
  EXPECT_EQ(obj["kind"], "NodeResourceReport");
  EXPECT_EQ(obj["metadata"]["ownerReferences"][0]["kind"], "Node");
  EXPECT_EQ(obj["metadata"]["ownerReferences"][0]["uid"], "uid-1");
  auto s = Gpus(2);
  Link(&s, 0, 1);
  Inventory inv = BuildInventory(&s, {}, {});
  auto status =
      nlohmann::json::parse(ReportStatusApply("gpu-1", inv, {.state = "Up", .library = "x"},
                                              {{.type = "NVMLAvailable",
                                                .status = "True",
                                                .reason = "Available",
                                                .last_transition_time = "2026-01-01T00:00:00Z"}},
                                              3));
  EXPECT_EQ(status["status"]["observedGeneration"], 3);
  EXPECT_EQ(status["status"]["gpuCount"], 2);
  EXPECT_EQ(status["status"]["nvlinkIslandsLabel"], "0-1");
  EXPECT_EQ(status["status"]["nvlinkIslands"][0]["gpus"], nlohmann::json({0, 1}));
  EXPECT_EQ(status["status"]["conditions"][0]["observedGeneration"], 3);
  auto label = nlohmann::json::parse(NodeLabelApply("gpu-1", "0-1"));
  EXPECT_EQ(label["metadata"]["labels"]["gpuautoscaler.io/nvlink-islands"], "0-1");
  EXPECT_FALSE(nlohmann::json::parse(NodeLabelApply("gpu-1", ""))["metadata"].contains("labels"));
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
