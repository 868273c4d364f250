// The documents the QoS controller applies (the report's status.qos and the
// Node's reclaimed resources) and the one-node topology fallback.
#include "node-agent/qos_controller.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kube/object_codec.h"
#include "kube/rest_client.h"
#include "support/child_process.h"
#include "support/fake_transport.h"

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

// The apply layer against a scripted API: the Node is applied before the
// report exists; a missing report is retried; nothing is applied again
// until something changes or `reapply` passes.
TEST(QosController, AppliesOnlyChangesAndRetriesAMissingReport) {
  namespace fs = std::filesystem;
  const fs::path dir = testing::MakeTempDir("gpa-qosctl");
  fs::create_directories(dir / "sys/devices/system/node/node0");
  std::ofstream(dir / "sys/devices/system/node/node0/cpulist") << "0-3\n";
  std::ofstream(dir / "sys/devices/system/node/node0/meminfo") << "Node 0 MemTotal: 1048576 kB\n";
  auto transport = std::make_unique<testing::FakeTransport>();
  testing::FakeTransport* fake = transport.get();
  kube::ClientConfig cfg;
  cfg.server = "https://h";
  cfg.qps = 0;
  FakeClock clock;
  auto client = kube::RestClient::WithTransport(cfg, std::move(transport), {.clock = &clock});
  bool report_exists = false;
  std::vector<std::string> applied;
  fake->SetHandler([&](const kube::HttpRequest& req) {
    const std::string path =
        req.url.substr(req.url.find('/', 8), req.url.find('?') - req.url.find('/', 8));
    applied.push_back(req.method + " " + path);
    if (path.find("noderesourcereports") != std::string::npos && !report_exists) {
      return testing::FakeTransport::Reply{
          .status = 404,
          .body =
              R"({"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404})"};
    }
    return testing::FakeTransport::Reply{.body = req.body};
  });
  LocalPodCache pods(nullptr, {.node_name = "n1"});
  auto pod = kube::DecodePod(R"({"metadata":{"namespace":"a","name":"web","uid":"u1",
      "resourceVersion":"1"},"spec":{"nodeName":"n1","containers":[{"name":"c",
      "resources":{"requests":{"cpu":"1","memory":"1Ki"}}}]},"status":{"phase":"Running"}})");
  ASSERT_TRUE(pod.ok());
  pods.Upsert(*pod);
  QosController qos(*client, pods, nullptr, nullptr,
                    {.node_name = "n1", .sysfs_root = (dir / "sys").string(), .clock = &clock});
  // 4 CPUs, 1000m shared: 3000m and 1 GiB - 1 KiB reclaimable.
  Status first = qos.Sync();
  EXPECT_EQ(first.message(), "the NodeResourceReport is not written yet");
  EXPECT_EQ(applied, (std::vector<std::string>{
                         "PATCH /api/v1/nodes/n1/status",
                         "PATCH /apis/gpuautoscaler.io/v1alpha1/noderesourcereports/n1/status"}));
  EXPECT_EQ(qos.last_plan().reclaimable_millicpu, 3000);
  EXPECT_EQ(qos.last_plan().reclaimable_memory_bytes, (1LL << 30) - 1024);
  report_exists = true;
  applied.clear();
  EXPECT_TRUE(qos.Sync().ok());  // only the report: the Node has not changed
  EXPECT_EQ(applied, (std::vector<std::string>{
                         "PATCH /apis/gpuautoscaler.io/v1alpha1/noderesourcereports/n1/status"}));
  applied.clear();
  EXPECT_TRUE(qos.Sync().ok());
  EXPECT_TRUE(applied.empty());
  pods.Remove("u1");
  EXPECT_TRUE(qos.Sync().ok());
  EXPECT_EQ(applied.size(), 2u);  // 4000m now: both change
  applied.clear();
  clock.Step(std::chrono::minutes(11));
  EXPECT_TRUE(qos.Sync().ok());
  EXPECT_EQ(applied.size(), 2u);  // applied again though unchanged
  fs::remove_all(dir);
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
