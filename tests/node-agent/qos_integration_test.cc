// The QoS pools end to end: gpu-autoscaler-node-agent as a real process
// against the embedded API server, fake NVML, a fake sysfs with two 8-CPU
// NUMA nodes and a fake cgroup v2 tree (systemd driver) with the kernel's
// file names. Pods of every Katalyst QoS level are bound to the node; the
// test checks the NodeResourceReport's status.qos, the Node's reclaimed
// resources, the cgroup files, the Event for an unknown qos_level, and that
// deleting the dedicated_cores pod recomputes the pools and rewrites only
// the files whose value changed. Where this machine lets a test create
// cgroup v1 groups, the agent also runs against the real v1 hierarchies.
#include <gtest/gtest.h>

#include <unistd.h>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent_process_support.h"
#include "api/resources.h"
#include "kube/quantity.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "node-agent/local_pods.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::node_agent {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::WaitFor;

constexpr const char* kNode = "qos-node";
constexpr int64_t kGi = 1LL << 30;

std::string Read(const fs::path& p) {
  return testing::ReadTrimmed(p);
}

json Pod(const std::string& ns, const std::string& name, const std::string& level, json resources,
         json extra_annotations = json::object()) {
  json annotations = extra_annotations;
  if (!level.empty()) annotations[std::string(kQosLevelAnnotation)] = level;
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"namespace", ns}, {"name", name}, {"annotations", annotations}}},
          {"spec",
           {{"nodeName", kNode},
            {"containers", {{{"name", "main"}, {"image", "busybox"}, {"resources", resources}}}}}}};
}

class QosAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    if (!server_->supports_faults()) GTEST_SKIP() << "needs the embedded API server";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(client).value();
    dir_ = testing::MakeTempDir("gpa-qos");
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);
    ASSERT_TRUE(client_
                    ->Create({kube::resources::kNodes, "", "", ""},
                             json{{"apiVersion", "v1"},
                                  {"kind", "Node"},
                                  {"metadata", {{"name", kNode}}},
                                  {"status", {{"capacity", {{"cpu", "16"}}}}}})
                    .ok());
    testing::WriteNumaSysfs(dir_ + "/sys", {"0-7", "8-15"}, 16777216);
    cgroot_ = fs::path(dir_) / "cgroup";
    fs::create_directories(cgroot_);
    std::ofstream(cgroot_ / "cgroup.controllers") << "cpuset cpu io memory pids\n";
    ns_ = server_->CreateTestNamespace("qos");
  }
  void TearDown() override {
    if (agent_.running()) agent_.Kill(SIGTERM);
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Creates the pod and, as the kubelet would, its cgroup with v2 files.
  fs::path CreatePod(const json& pod, const std::string& tier) {
    auto created = client_->Create({kube::resources::kPods, ns_, "", ""}, pod);
    EXPECT_TRUE(created.ok()) << created.error().ToString();
    std::string uid = (*created)["metadata"]["uid"];
    uids_[pod["metadata"]["name"]] = uid;
    std::replace(uid.begin(), uid.end(), '-', '_');
    fs::path d = cgroot_ / "kubepods.slice";
    if (tier.empty()) {
      d /= "kubepods-pod" + uid + ".slice";
    } else {
      d /= "kubepods-" + tier + ".slice";
      d /= "kubepods-" + tier + "-pod" + uid + ".slice";
    }
    fs::create_directories(d);
    for (const auto& [file, value] : std::map<std::string, std::string>{{"cpuset.cpus", ""},
                                                                        {"cpuset.mems", ""},
                                                                        {"cpu.max", "max 100000"},
                                                                        {"cpu.weight", "100"},
                                                                        {"memory.high", "max"},
                                                                        {"memory.min", "0"}}) {
      std::ofstream(d / file) << value << "\n";
    }
    return d;
  }

  void StartAgent() {
    const std::string scenario = dir_ + "/scenario.json";
    std::ofstream(scenario) << R"({"gpus": [{"name": "NVIDIA L4", "memoryMiB": 23034}]})";
    setenv("GPA_FAKE_NVML_SCENARIO", scenario.c_str(), 1);
    ASSERT_TRUE(agent_.Spawn(
        {testing::BinaryPath("gpu-autoscaler-node-agent"), "--node-name=" + std::string(kNode),
         "--kubeconfig=" + kubeconfig_,
         "--nvml-library=" + testing::BinaryPath("libgpa-fake-nvml.so"), "--report-interval=200ms",
         "--metrics-bind-address=127.0.0.1:0", "--metrics-secure=false",
         "--health-probe-bind-address=127.0.0.1:0", "--sysfs-root=" + dir_ + "/sys",
         "--cgroup-root=" + cgroot_.string(), "--cgroup-driver=systemd", "--reserved-cpus=0-1",
         "--reserved-memory=2Gi", "--reclaim-reserve-cpu=1", "--reclaim-reserve-memory=1Gi",
         "--qos-resync-interval=200ms", "--log-level=debug"},
        dir_ + "/agent.log"));
    ASSERT_TRUE(WaitFor([&] { return agent_.PortFromLog("metrics_port") > 0; })) << agent_.Log();
  }

  json Qos() {
    auto r = client_->Get({api::kNodeResourceReports, "", kNode, ""});
    if (!r.ok() || !(*r).contains("status")) return json();
    return (*r)["status"].value("qos", json());
  }
  int64_t NodeAllocatable(const std::string& resource) {
    auto node = client_->Get({kube::resources::kNodes, "", kNode, ""});
    if (!node.ok()) return -1;
    json alloc = (*node)["status"].value("allocatable", json::object());
    if (!alloc.contains(resource)) return -1;
    return kube::ParseQuantity(alloc[resource].get<std::string>()).value_or(-2);
  }
  double Metric(const std::string& series) {
    std::string text = testing::AgentGet(agent_, "metrics_port", "/metrics");
    size_t at = text.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + series.size() + 2));
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  testing::ChildProcess agent_;
  std::string dir_;
  std::string kubeconfig_;
  std::string ns_;
  fs::path cgroot_;
  std::map<std::string, std::string> uids_;
};

TEST_F(QosAgentTest, PoolsReportNodeResourcesAndCgroupsFollowThePods) {
  RecordProperty("cgroup_fs", "fake v2 tree (systemd driver)");
  const json guaranteed = {{"requests", {{"cpu", "4"}, {"memory", "4Gi"}}},
                           {"limits", {{"cpu", "4"}, {"memory", "4Gi"}}}};
  const fs::path ded =
      CreatePod(Pod(ns_, "ded", "dedicated_cores", guaranteed,
                    {{std::string(kMemoryEnhancementAnnotation), R"({"numa_binding":"true"})"}}),
                "");
  const fs::path web =
      CreatePod(Pod(ns_, "web", "shared_cores", {{"requests", {{"cpu", "2"}, {"memory", "2Gi"}}}}),
                "burstable");
  const fs::path batch = CreatePod(
      Pod(ns_, "batch", "reclaimed_cores",
          {{"requests",
            {{std::string(kReclaimedMilliCpu), "2k"}, {std::string(kReclaimedMemory), "1Gi"}}},
           {"limits",
            {{std::string(kReclaimedMilliCpu), "2k"}, {std::string(kReclaimedMemory), "1Gi"}}}}),
      "besteffort");
  const fs::path sys = CreatePod(
      Pod(ns_, "agent", "system_cores", {{"requests", {{"cpu", "500m"}, {"memory", "256Mi"}}}}),
      "burstable");
  const fs::path odd = CreatePod(
      Pod(ns_, "odd", "gold", {{"requests", {{"cpu", "1"}, {"memory", "1Gi"}}}}), "burstable");
  StartAgent();

  // Free after the reserved 0-1: node 0 2-7, node 1 8-15. ded (4 CPUs,
  // numa_binding) best fits node 0 -> 2-5. share: 6-15 (10 CPUs), 2000m +
  // 1000m (odd, unknown -> shared) requested; reclaim: (10000 - 3000 - 1000
  // reserve) / 1000 = 6 CPUs from the top, 10-15.
  // reclaimable cpu: (16 - 2 - 4) * 1000 - 3000 - 1000 = 6000m;
  // memory: 32Gi - 2Gi - (4 + 2 + 0.25 + 1)Gi - 1Gi = 21.75Gi.
  ASSERT_TRUE(WaitFor([&] {
    json q = Qos();
    return q.is_object() && q["reclaimable"].value("milliCpu", int64_t{-1}) == 6000;
  })) << Qos().dump()
      << agent_.Log();
  json q = Qos();
  EXPECT_EQ(q["reclaimable"]["memoryBytes"], 21 * kGi + 3 * kGi / 4);
  EXPECT_EQ(q["cgroup"]["version"], "v2");
  EXPECT_EQ(q["cgroup"]["driver"], "systemd");
  EXPECT_EQ(q["reservedCpus"], "0-1");
  EXPECT_EQ(q["pods"], 5);
  json pools = json::object();
  for (const json& p : q["pools"])
    pools[p["name"].get<std::string>()] = p;
  EXPECT_EQ(pools["dedicated"]["cpus"], "2-5");
  EXPECT_EQ(pools["dedicated"]["qosLevel"], "dedicated_cores");
  EXPECT_EQ(pools["share"]["cpus"], "6-15");
  EXPECT_EQ(pools["share"]["pods"], 2);
  EXPECT_EQ(pools["share"]["requestedMilliCpu"], 3000);
  EXPECT_EQ(pools["reclaim"]["cpus"], "10-15");
  EXPECT_EQ(pools["reclaim"]["requestedMilliCpu"], 2000);
  EXPECT_EQ(pools["system"]["cpus"], "0-1");
  ASSERT_EQ(q["problems"].size(), 1u);
  EXPECT_EQ(q["problems"][0]["pod"], ns_ + "/odd");
  EXPECT_EQ(q["problems"][0]["reason"], "UnknownQosLevel");

  // The Node advertises the reclaimable amount.
  ASSERT_TRUE(WaitFor([&] { return NodeAllocatable(std::string(kReclaimedMilliCpu)) == 6000; }));
  EXPECT_EQ(NodeAllocatable(std::string(kReclaimedMemory)), 21 * kGi + 3 * kGi / 4);

  // The cgroup files.
  ASSERT_TRUE(WaitFor([&] { return Read(odd / "cpuset.cpus") == "6-15"; })) << agent_.Log();
  EXPECT_EQ(Read(ded / "cpuset.cpus"), "2-5");
  EXPECT_EQ(Read(ded / "cpuset.mems"), "0");
  EXPECT_EQ(Read(ded / "memory.min"), std::to_string(4 * kGi));
  EXPECT_EQ(Read(ded / "cpu.max"), "max 100000");  // the kubelet's
  EXPECT_EQ(Read(web / "cpuset.cpus"), "6-15");
  EXPECT_EQ(Read(web / "cpuset.mems"), "0-1");
  EXPECT_EQ(Read(web / "cpu.weight"), "100");
  EXPECT_EQ(Read(batch / "cpuset.cpus"), "10-15");
  EXPECT_EQ(Read(batch / "cpuset.mems"), "1");
  EXPECT_EQ(Read(batch / "cpu.max"), "200000 100000");  // its reclaimed_millicpu limit
  EXPECT_EQ(Read(batch / "cpu.weight"), "1");
  EXPECT_EQ(Read(batch / "memory.high"), std::to_string(kGi));
  EXPECT_EQ(Read(sys / "cpuset.cpus"), "0-1");
  EXPECT_EQ(Read(sys / "cpuset.mems"), "0");

  // The unknown level: an Event on the pod and a log line.
  ASSERT_TRUE(WaitFor([&] {
    auto events = client_->List({kube::resources::kEvents, ns_, "", ""});
    if (!events.ok()) return false;
    for (const json& e : (*events)["items"]) {
      if (e["involvedObject"].value("name", "") == "odd" &&
          e.value("reason", "") == "UnknownQosLevel")
        return e.value("type", "") == "Warning" &&
               e.value("message", "").find("\"gold\"") != std::string::npos;
    }
    return false;
  }));
  EXPECT_NE(agent_.Log().find("QoS: pod not served as asked"), std::string::npos);
  EXPECT_EQ(Metric("gpu_autoscaler_node_reclaimable_millicpu"), 6000);
  EXPECT_EQ(Metric("gpu_autoscaler_node_qos_pod_problems"), 1);
  EXPECT_EQ(Metric("gpu_autoscaler_node_qos_pool_cpus{pool=\"share\"}"), 10);

  // Deleting the dedicated pod: its 4 CPUs go back to share (2-15), whose
  // 14000 - 3000 - 1000 leaves 10 CPUs to reclaim (6-15). Written: web's,
  // odd's and batch's cpuset.cpus and batch's cpuset.mems ("1" -> "0-1");
  // nothing else.
  // ded 3 (mems, cpus, memory.min) + web 2 + batch 5 + agent 2 + odd 2, once each.
  ASSERT_TRUE(WaitFor(
      [&] { return Metric("gpu_autoscaler_node_cgroup_writes_total{result=\"written\"}") >= 14; }));
  const double written = Metric("gpu_autoscaler_node_cgroup_writes_total{result=\"written\"}");
  EXPECT_EQ(written, 14);
  std::map<fs::path, fs::file_time_type> before;
  for (const fs::path& d : {web, batch, sys, odd}) {
    for (const auto& e : fs::directory_iterator(d))
      before[e.path()] = fs::last_write_time(e.path());
  }
  ASSERT_TRUE(
      client_->Delete({kube::resources::kPods, ns_, "ded", ""}, {.grace_period_seconds = 0}).ok());
  ASSERT_TRUE(WaitFor([&] {
    json q2 = Qos();
    return q2.is_object() && q2["reclaimable"].value("milliCpu", int64_t{-1}) == 10000;
  })) << Qos().dump();
  ASSERT_TRUE(WaitFor([&] { return Read(batch / "cpuset.cpus") == "6-15"; }));
  EXPECT_EQ(Read(web / "cpuset.cpus"), "2-15");
  EXPECT_EQ(Read(odd / "cpuset.cpus"), "2-15");
  EXPECT_EQ(Read(batch / "cpuset.mems"), "0-1");
  EXPECT_EQ(Read(sys / "cpuset.cpus"), "0-1");
  ASSERT_TRUE(WaitFor([&] { return NodeAllocatable(std::string(kReclaimedMilliCpu)) == 10000; }));
  EXPECT_EQ(Metric("gpu_autoscaler_node_cgroup_writes_total{result=\"written\"}"), written + 4);
  std::set<fs::path> rewritten;
  for (const auto& [path, when] : before) {
    if (fs::last_write_time(path) != when) rewritten.insert(path);
  }
  EXPECT_EQ(rewritten, (std::set<fs::path>{web / "cpuset.cpus", odd / "cpuset.cpus",
                                           batch / "cpuset.cpus", batch / "cpuset.mems"}));
  for (const fs::path& d : {batch}) {
    EXPECT_EQ(fs::last_write_time(d / "cpu.weight"), before[d / "cpu.weight"]);
    EXPECT_EQ(fs::last_write_time(d / "memory.high"), before[d / "memory.high"]);
  }
  for (const auto& e : fs::directory_iterator(sys))
    EXPECT_EQ(fs::last_write_time(e.path()), before[e.path()]) << e.path();
  EXPECT_EQ(Metric("gpu_autoscaler_node_cgroup_writes_total{result=\"error\"}"), 0);
}

TEST_F(QosAgentTest, AVanishedCgroupIsLoggedAndTheAgentKeepsServing) {
  RecordProperty("cgroup_fs", "fake v2 tree (systemd driver)");
  const fs::path web =
      CreatePod(Pod(ns_, "web", "shared_cores", {{"requests", {{"cpu", "2"}, {"memory", "2Gi"}}}}),
                "burstable");
  fs::remove_all(web);  // the kubelet has not made it yet, or it went
  StartAgent();
  ASSERT_TRUE(WaitFor([&] {
    return agent_.Log().find("pod cgroup not there") != std::string::npos;
  })) << agent_.Log();
  ASSERT_TRUE(WaitFor([&] { return Qos().is_object() && Qos()["pods"] == 1; }));
  // It appears: the next pass writes it.
  CreatePod(Pod(ns_, "late", "shared_cores", {{"requests", {{"cpu", "1"}}}}), "burstable");
  fs::create_directories(web);
  std::ofstream(web / "cpuset.cpus") << "\n";
  std::ofstream(web / "cpuset.mems") << "\n";
  ASSERT_TRUE(WaitFor([&] { return Read(web / "cpuset.cpus") == "2-15"; })) << agent_.Log();
  EXPECT_GE(Metric("gpu_autoscaler_node_cgroup_writes_total{result=\"vanished\"}"), 1);
}

// The same agent on this machine's real CPUs (sysfs /sys) and the real cgroup
// v1 cpuset, cpu and memory hierarchies, when a test may create groups there:
// the groups go under gpa-it-<pid> (--pod-cgroup-parent) and are removed.
class RealV1QosAgentTest : public QosAgentTest {
 protected:
  void SetUp() override {
    QosAgentTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    parent_ = "gpa-it-" + std::to_string(::getpid());
    for (const char* c : {"cpuset", "cpu", "memory"}) {
      const fs::path base = fs::path("/sys/fs/cgroup") / c;
      std::error_code ec;
      if (!fs::exists(base / "cgroup.procs") || !fs::create_directory(base / parent_, ec) || ec) {
        GTEST_SKIP() << "cannot create a cgroup v1 group under " << base << " ("
                     << (ec ? ec.message() : "no v1 hierarchy")
                     << "); the fake v2 tree test covers the agent";
      }
      created_.push_back(base / parent_);
    }
    // A cpuset group needs CPUs and memory nodes before its children can have any.
    std::ofstream(fs::path("/sys/fs/cgroup/cpuset") / parent_ / "cpuset.mems")
        << Read("/sys/fs/cgroup/cpuset/cpuset.mems");
    std::ofstream(fs::path("/sys/fs/cgroup/cpuset") / parent_ / "cpuset.cpus")
        << Read("/sys/fs/cgroup/cpuset/cpuset.cpus");
    auto cpus = ParseCpuListForTest(Read("/sys/fs/cgroup/cpuset/cpuset.cpus"));
    if (cpus.size() < 2) GTEST_SKIP() << "needs two CPUs in the root cpuset";
    RecordProperty("cgroup_fs", "real v1 (/sys/fs/cgroup/{cpuset,cpu,memory}), real sysfs");
    std::cerr << "qos integration: using the real cgroup v1 hierarchies under /sys/fs/cgroup/"
              << parent_ << "\n";
  }
  void TearDown() override {
    if (agent_.running()) agent_.Kill(SIGTERM);
    for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
      std::vector<fs::path> dirs;
      std::error_code ec;
      for (auto& e : fs::recursive_directory_iterator(*it, ec))
        if (e.is_directory()) dirs.push_back(e.path());
      std::sort(dirs.begin(), dirs.end(),
                [](const fs::path& a, const fs::path& b) { return a.string() > b.string(); });
      for (const auto& d : dirs)
        ::rmdir(d.c_str());
      ::rmdir(it->c_str());
    }
    QosAgentTest::TearDown();
  }
  static std::vector<int> ParseCpuListForTest(const std::string& s) {
    std::vector<int> out;
    std::stringstream ss(s);
    std::string part;
    while (std::getline(ss, part, ',')) {
      size_t dash = part.find('-');
      int lo = std::stoi(part.substr(0, dash));
      int hi = dash == std::string::npos ? lo : std::stoi(part.substr(dash + 1));
      for (int c = lo; c <= hi; ++c)
        out.push_back(c);
    }
    return out;
  }
  // The pod's groups, as the kubelet (cgroupfs driver) makes them, with a
  // container child in cpuset.
  std::map<std::string, fs::path> CreateRealPod(const json& pod, const std::string& tier) {
    auto created = client_->Create({kube::resources::kPods, ns_, "", ""}, pod);
    EXPECT_TRUE(created.ok()) << created.error().ToString();
    const std::string uid = (*created)["metadata"]["uid"];
    const std::string rel = "kubepods/" + (tier.empty() ? "" : tier + "/") + "pod" + uid;
    std::map<std::string, fs::path> dirs;
    for (const char* c : {"cpuset", "cpu", "memory"}) {
      fs::path at = fs::path("/sys/fs/cgroup") / c / parent_;
      const std::string cpus = Read(fs::path("/sys/fs/cgroup/cpuset/cpuset.cpus"));
      const std::string mems = Read(fs::path("/sys/fs/cgroup/cpuset/cpuset.mems"));
      for (const auto& part : fs::path(std::string(c) == "cpuset" ? rel + "/ctr" : rel)) {
        at /= part;
        std::error_code ec;
        fs::create_directory(at, ec);
        if (std::string(c) == "cpuset") {
          std::ofstream(at / "cpuset.mems") << mems;
          std::ofstream(at / "cpuset.cpus") << cpus;
        }
      }
      dirs[c] = fs::path("/sys/fs/cgroup") / c / parent_ / rel;
    }
    return dirs;
  }

  std::string parent_;
  std::vector<fs::path> created_;
};

TEST_F(RealV1QosAgentTest, WritesTheKernelsCgroupFiles) {
  auto ded = CreateRealPod(Pod(ns_, "ded", "dedicated_cores",
                               {{"requests", {{"cpu", "1"}, {"memory", "64Mi"}}},
                                {"limits", {{"cpu", "1"}, {"memory", "64Mi"}}}}),
                           "");
  auto web = CreateRealPod(Pod(ns_, "web", "shared_cores", {{"requests", {{"cpu", "100m"}}}}),
                           "burstable");
  auto batch = CreateRealPod(
      Pod(ns_, "batch", "reclaimed_cores",
          {{"requests",
            {{std::string(kReclaimedMilliCpu), "500"}, {std::string(kReclaimedMemory), "64Mi"}}},
           {"limits",
            {{std::string(kReclaimedMilliCpu), "500"}, {std::string(kReclaimedMemory), "64Mi"}}}}),
      "besteffort");
  const std::string scenario = dir_ + "/scenario.json";
  std::ofstream(scenario) << R"({"gpus": []})";
  setenv("GPA_FAKE_NVML_SCENARIO", scenario.c_str(), 1);
  ASSERT_TRUE(agent_.Spawn(
      {testing::BinaryPath("gpu-autoscaler-node-agent"), "--node-name=" + std::string(kNode),
       "--kubeconfig=" + kubeconfig_,
       "--nvml-library=" + testing::BinaryPath("libgpa-fake-nvml.so"), "--report-interval=200ms",
       "--metrics-bind-address=127.0.0.1:0", "--metrics-secure=false",
       "--health-probe-bind-address=127.0.0.1:0", "--sysfs-root=/sys",
       "--cgroup-root=/sys/fs/cgroup", "--cgroup-version=auto", "--cgroup-driver=cgroupfs",
       "--pod-cgroup-parent=" + parent_, "--qos-resync-interval=200ms"},
      dir_ + "/agent.log"));
  const std::vector<int> cpus = ParseCpuListForTest(Read("/sys/fs/cgroup/cpuset/cpuset.cpus"));
  // ded takes the lowest CPU; share (and reclaim, its top CPU) keep the rest.
  const std::string first = std::to_string(cpus.front());
  std::string rest;
  for (size_t i = 1; i < cpus.size(); ++i)
    rest += (rest.empty() ? "" : ",") + std::to_string(cpus[i]);
  // The agent writes pod by pod, and within a pod cpuset, cpu, then memory;
  // a v1 cpuset parent's last write comes after its container child's. Wait
  // for each pod's last write.
  ASSERT_TRUE(WaitFor([&] {
    return Read(ded["cpuset"] / "cpuset.cpus") == first &&
           Read(batch["memory"] / "memory.soft_limit_in_bytes") == std::to_string(64 << 20) &&
           (cpus.size() != 2 || Read(web["cpuset"] / "cpuset.cpus") == rest);
  })) << agent_.Log();
  EXPECT_EQ(Read(ded["cpuset"] / "ctr/cpuset.cpus"), first);
  EXPECT_EQ(Read(batch["cpu"] / "cpu.shares"), "2");
  EXPECT_EQ(Read(batch["cpu"] / "cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(Read(batch["cpu"] / "cpu.cfs_period_us"), "100000");
  EXPECT_EQ(Read(batch["cpuset"] / "cpuset.cpus"), std::to_string(cpus.back()));
  if (cpus.size() == 2) {
    EXPECT_EQ(Read(web["cpuset"] / "cpuset.cpus"), rest);
    EXPECT_EQ(Read(web["cpuset"] / "ctr/cpuset.cpus"), rest);
  }
  EXPECT_NE(agent_.Log().find("version=v1"), std::string::npos) << agent_.Log();
  // (CPUs - 1 dedicated) * 1000 - 100m shared.
  ASSERT_TRUE(WaitFor([&] {
    return NodeAllocatable(std::string(kReclaimedMilliCpu)) ==
           static_cast<int64_t>(cpus.size() - 1) * 1000 - 100;
  }));
  // The dedicated pod goes: its CPU returns to the shared pool (the v1
  // parent widens before its container child).
  ASSERT_TRUE(
      client_->Delete({kube::resources::kPods, ns_, "ded", ""}, {.grace_period_seconds = 0}).ok());
  ASSERT_TRUE(WaitFor([&] {
    return Read(web["cpuset"] / "ctr/cpuset.cpus") == Read("/sys/fs/cgroup/cpuset/cpuset.cpus");
  })) << agent_.Log();
  EXPECT_EQ(Metric("gpu_autoscaler_node_cgroup_writes_total{result=\"error\"}"), 0) << agent_.Log();
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
