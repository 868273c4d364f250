// The documents the QoS controller applies (the report's status.qos and the
// Node's reclaimed resources) and the one-node topology fallback.
#include "node-agent/qos_controller.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support/child_process.h"

namespace gpu_autoscaler::node_agent {
namespace {

using nlohmann::json;

TEST(QosDocuments, StatusAndNode) {
  PoolPlan plan;
  plan.pools = {{.name = "share",
                 .level = QosLevel::kShared,
                 .cpus = {2, 3, 4, 5},
                 .pods = 1,
                 .requested_millicpu = 1500,
                 .requested_memory_bytes = 1024}};
  plan.pods.push_back({.uid = "u"});
  plan.problems = {
      {.uid = "u", .ns = "a", .name = "b", .reason = "UnknownQosLevel", .message = "m"}};
  plan.reclaimable_millicpu = 2500;
  plan.reclaimable_memory_bytes = 4096;
  json status = json::parse(QosStatusApply(
      "n1", plan, {.cgroup_version = "v1", .cgroup_driver = "cgroupfs", .reserved_cpus = "0-1"}));
  EXPECT_EQ(status["metadata"]["name"], "n1");
  EXPECT_EQ(status["status"]["qos"], json::parse(R"({
    "cgroup": {"version": "v1", "driver": "cgroupfs"}, "reservedCpus": "0-1", "pods": 1,
    "pools": [{"name": "share", "qosLevel": "shared_cores", "cpus": "2-5", "cpuCount": 4,
               "pods": 1, "requestedMilliCpu": 1500, "requestedMemoryBytes": 1024}],
    "reclaimable": {"milliCpu": 2500, "memoryBytes": 4096},
    "problems": [{"pod": "a/b", "reason": "UnknownQosLevel", "message": "m"}]})"));
  json node = json::parse(NodeReclaimedApply("n1", 2500, 4096));
  EXPECT_EQ(node["status"]["allocatable"]["resource.katalyst.kubewharf.io/reclaimed_millicpu"],
            "2500");
  EXPECT_EQ(node["status"]["capacity"]["resource.katalyst.kubewharf.io/reclaimed_memory"], "4096");
  EXPECT_EQ(node["status"]["capacity"].size(), 2u);  // nothing of the kubelet's
}

TEST(QosDocuments, SingleNodeTopologyFallback) {
  namespace fs = std::filesystem;
  const fs::path dir = testing::MakeTempDir("gpa-topo");
  fs::create_directories(dir / "devices/system/cpu");
  std::ofstream(dir / "devices/system/cpu/online") << "0-3\n";
  std::ofstream(dir / "meminfo") << "MemTotal:        8000 kB\nMemFree:  10 kB\n";
  auto nodes = ReadSingleNodeTopology(dir.string(), (dir / "meminfo").string());
  ASSERT_TRUE(nodes.ok()) << nodes.error().ToString();
  EXPECT_EQ(*nodes, (std::vector<NumaNode>{
                        {.id = 0, .cpus = "0-3", .cpu_count = 4, .memory_bytes = 8000 * 1024}}));
  std::ofstream(dir / "devices/system/cpu/online") << "x\n";
  EXPECT_EQ(ReadSingleNodeTopology(dir.string(), "/nonexistent").error().message(),
            (dir / "devices/system/cpu/online").string() + ": malformed cpulist \"x\"");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
