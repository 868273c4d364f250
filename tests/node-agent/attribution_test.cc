// Pod attribution: /proc/<pid>/cgroup parsing for cgroup v1 and v2 under
// both kubelet cgroup drivers and three runtimes, device ids, and the
// attribution of exclusive, time-sliced, MPS and MIG devices, worked out by
// hand.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "node-agent/attribution.h"
#include "node-agent/proc_cgroup.h"
#include "support/child_process.h"

namespace gpu_autoscaler::node_agent {
namespace {

constexpr const char* kUid = "1f0c9e2a-5b7d-4c3e-9a8b-0123456789ab";
constexpr const char* kUidSystemd = "1f0c9e2a_5b7d_4c3e_9a8b_0123456789ab";
constexpr const char* kCid = "3b1d8c0e9f2a4b6c8d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e";

struct CgroupCase {
  std::string name;
  std::string content;
  std::optional<PodCgroupRef> want;
};

TEST(ProcCgroup, ParsesEveryDriverVersionAndRuntime) {
  const std::string uid = kUid, u = kUidSystemd, cid = kCid;
  const std::vector<CgroupCase> cases = {
      {"v2 cgroupfs burstable", "0::/kubepods/burstable/pod" + uid + "/" + cid + "\n",
       PodCgroupRef{uid, cid, "", "burstable"}},
      {"v2 cgroupfs guaranteed (no QoS dir)", "0::/kubepods/pod" + uid + "/" + cid + "\n",
       PodCgroupRef{uid, cid, "", "guaranteed"}},
      {"v2 systemd besteffort containerd",
       "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + u +
           ".slice/cri-containerd-" + cid + ".scope\n",
       PodCgroupRef{uid, cid, "containerd", "besteffort"}},
      {"v2 systemd guaranteed crio",
       "0::/kubepods.slice/kubepods-pod" + u + ".slice/crio-" + cid + ".scope\n",
       PodCgroupRef{uid, cid, "crio", "guaranteed"}},
      {"v1 systemd docker, first line without a pod",
       "12:pids:/system.slice/containerd.service\n"
       "11:memory:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
           u + ".slice/docker-" + cid + ".scope\n",
       PodCgroupRef{uid, cid, "docker", "burstable"}},
      {"v1 cgroupfs with many hierarchies",
       "13:rdma:/\n12:cpu,cpuacct:/kubepods/besteffort/pod" + uid + "/" + cid +
           "\n1:name=systemd:/kubepods/besteffort/pod" + uid + "/" + cid + "\n",
       PodCgroupRef{uid, cid, "", "besteffort"}},
      {"kind: nested under a docker container, kubelet cgroup root",
       "0::/docker/abc/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/"
       "kubelet-kubepods-burstable-pod" +
           u + ".slice/cri-containerd-" + cid + ".scope\n",
       PodCgroupRef{uid, cid, "containerd", "burstable"}},
      {"static pod's config hash",
       "0::/kubepods/burstable/pod6e5a8ac0b1a0e4f5c6d7e8f9a0b1c2d3/" + cid + "\n",
       PodCgroupRef{"6e5a8ac0b1a0e4f5c6d7e8f9a0b1c2d3", cid, "", "burstable"}},
      {"the pod's own cgroup (no container)", "0::/kubepods/burstable/pod" + uid + "\n",
       PodCgroupRef{uid, "", "", "burstable"}},
      {"crio conmon is not a container",
       "0::/kubepods.slice/kubepods-pod" + u + ".slice/crio-conmon-" + cid + ".scope\n",
       PodCgroupRef{uid, "", "", "guaranteed"}},
      {"a system daemon", "0::/system.slice/kubelet.service\n", std::nullopt},
      {"pod-like name outside kubepods", "0::/user.slice/pod" + uid + "/" + cid + "\n",
       std::nullopt},
      {"bad uid", "0::/kubepods/burstable/pod1f0c9e2a-5b7d-4c3e-9a8b-0123456789az/" + cid + "\n",
       std::nullopt},
      {"no colons", "garbage\n", std::nullopt},
      {"empty", "", std::nullopt},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(ParseProcCgroup(c.content), c.want) << c.name;
  }
}

TEST(ProcCgroup, ReadsAFakeProcTreeAndSaysWhenAProcessIsGone) {
  namespace fs = std::filesystem;
  const std::string root = testing::MakeTempDir("gpa-proc");
  fs::create_directories(root + "/4242");
  std::ofstream(root + "/4242/cgroup") << "0::/kubepods/pod" << kUid << "/" << kCid << "\n";
  fs::create_directories(root + "/1");
  std::ofstream(root + "/1/cgroup") << "0::/init.scope\n";
  auto ref = ReadProcessCgroup(root, 4242);
  ASSERT_TRUE(ref.ok()) << ref.error().ToString();
  ASSERT_TRUE(ref->has_value());
  EXPECT_EQ((*ref)->pod_uid, kUid);
  auto init = ReadProcessCgroup(root, 1);
  ASSERT_TRUE(init.ok());
  EXPECT_FALSE(init->has_value());
  auto gone = ReadProcessCgroup(root, 777);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code(), StatusCode::kNotFound);
  EXPECT_NE(gone.error().message().find("/777/cgroup"), std::string::npos);
  fs::remove_all(root);
}

// Four GPUs: 0 exclusive, 1 time-sliced between two pods, 2 MPS between two
// containers of one pod and another pod, 3 in MIG with two devices.
nvml::GpuSnapshot Node() {
  nvml::GpuSnapshot s;
  auto gpu = [&](int index, std::string uuid) {
    nvml::GpuSample g;
    g.index = index;
    g.uuid = std::move(uuid);
    s.gpus.push_back(g);
    return &s.gpus.back();
  };
  gpu(0, "GPU-a")->processes = {{.pid = 100, .used_memory_bytes = 1000, .sm_util = 40}};
  gpu(1, "GPU-b")->processes = {{.pid = 200, .used_memory_bytes = 2000, .sm_util = 25},
                                {.pid = 201, .used_memory_bytes = 3000, .sm_util = 35},
                                {.pid = 202, .used_memory_bytes = 4000, .sm_util = 5}};
  gpu(2, "GPU-c")->processes = {{.pid = 300, .used_memory_bytes = 100, .sm_util = 10},
                                {.pid = 301, .used_memory_bytes = 200, .sm_util = 20},
                                {.pid = 302, .used_memory_bytes = 300, .sm_util = 30}};
  nvml::GpuSample* mig = gpu(3, "GPU-d");
  mig->mig_enabled = true;
  mig->mig_devices = {{.slot = 0, .uuid = "MIG-d1", .gpu_instance_id = 7},
                      {.slot = 1, .uuid = "MIG-d2", .gpu_instance_id = 8}};
  mig->processes = {{.pid = 400, .used_memory_bytes = 10, .sm_util = 50, .gpu_instance_id = 7},
                    {.pid = 401, .used_memory_bytes = 20, .sm_util = 60, .gpu_instance_id = 8}};
  return s;
}

podresources::ContainerDevices Holds(std::string container, std::string resource,
                                     std::vector<std::string> ids) {
  return {.name = std::move(container),
          .devices = {{.resource_name = std::move(resource), .device_ids = std::move(ids)}}};
}

std::vector<podresources::PodDevices> Assignments() {
  return {
      {"ml", "train", {Holds("main", "nvidia.com/gpu", {"GPU-a"})}},
      // GPU-b time-sliced: two replicas each for two pods.
      {"ml", "infer-1", {Holds("server", "nvidia.com/gpu", {"GPU-b::0", "GPU-b::3"})}},
      {"ml", "infer-2", {Holds("server", "nvidia.com/gpu", {"GPU-b::1"})}},
      // GPU-c under MPS: pod "mps" has two containers on it, "solo" one.
      {"ml",
       "mps",
       {Holds("a", "nvidia.com/gpu", {"GPU-c::0"}), Holds("b", "nvidia.com/gpu", {"GPU-c::1"}),
        Holds("sidecar", "cpu", {"0"})}},
      {"ml", "solo", {Holds("only", "nvidia.com/gpu", {"GPU-c::2"})}},
      {"ml", "mig-1", {Holds("main", "nvidia.com/mig-1g.10gb", {"MIG-d1"})}},
      {"ml", "mig-2", {Holds("main", "nvidia.com/mig-1g.10gb", {"MIG-d2"})}},
  };
}

std::string CgroupOf(const std::string& uid, const std::string& cid) {
  return "0::/kubepods/burstable/pod" + uid + "/" + cid + "\n";
}

TEST(Attribution, ExclusiveTimeSlicedMpsAndMig) {
  // Cgroups of the shared GPUs' processes (no entry: not visible).
  const std::map<uint32_t, std::string> cgroups = {
      {200, CgroupOf("00000000-0000-4000-8000-000000000001", std::string(64, 'a'))},
      {201, CgroupOf("00000000-0000-4000-8000-000000000002", std::string(64, 'b'))},
      {300, CgroupOf("00000000-0000-4000-8000-000000000003", std::string(64, 'c'))},
      {301, CgroupOf("00000000-0000-4000-8000-000000000003", std::string(64, 'd'))},
      {302, CgroupOf("00000000-0000-4000-8000-000000000004", std::string(64, 'e'))},
  };
  std::vector<uint32_t> looked_up;
  CgroupLookup lookup = [&](uint32_t pid) -> std::optional<PodCgroupRef> {
    looked_up.push_back(pid);
    auto it = cgroups.find(pid);
    if (it == cgroups.end()) return std::nullopt;
    return ParseProcCgroup(it->second);
  };
  PodResolver resolve = [](std::string_view uid) -> std::optional<ResolvedPod> {
    if (uid == "00000000-0000-4000-8000-000000000001") return ResolvedPod{"ml", "infer-1", {}};
    if (uid == "00000000-0000-4000-8000-000000000002") return ResolvedPod{"ml", "infer-2", {}};
    if (uid == "00000000-0000-4000-8000-000000000003") {
      // Only container "a"'s id is known (the other just started).
      return ResolvedPod{"ml", "mps", {{std::string(64, 'c'), "a"}}};
    }
    if (uid == "00000000-0000-4000-8000-000000000004") return ResolvedPod{"ml", "solo", {}};
    return std::nullopt;
  };
  const Attribution a = Attribute(Node(), Assignments(), lookup, resolve);

  EXPECT_EQ(a.device_owner.at("GPU-a"), (ContainerRef{"ml", "train", "main"}));
  EXPECT_EQ(a.device_owner.count("GPU-b"), 0u);  // two pods share it
  EXPECT_EQ(a.device_holders.at("GPU-b"), 2);
  EXPECT_EQ(a.device_holders.at("GPU-c"), 3);
  EXPECT_EQ(a.device_owner.at("MIG-d1"), (ContainerRef{"ml", "mig-1", "main"}));
  EXPECT_EQ(a.device_owner.at("MIG-d2"), (ContainerRef{"ml", "mig-2", "main"}));
  EXPECT_EQ(a.device_owner.count("GPU-d"), 0u);

  ASSERT_EQ(a.processes.size(), 9u);
  auto at = [&](size_t i) { return a.processes[i]; };
  EXPECT_EQ(at(0).owner, (ContainerRef{"ml", "train", "main"}));
  EXPECT_EQ(at(0).by, AttributedBy::kExclusiveDevice);
  EXPECT_EQ(at(1).owner, (ContainerRef{"ml", "infer-1", "server"}));
  EXPECT_EQ(at(1).by, AttributedBy::kCgroup);
  EXPECT_EQ(at(2).owner, (ContainerRef{"ml", "infer-2", "server"}));
  EXPECT_EQ(at(3).owner, ContainerRef{});  // pid 202: no cgroup visible
  EXPECT_EQ(at(3).by, AttributedBy::kNone);
  EXPECT_EQ(at(4).owner, (ContainerRef{"ml", "mps", "a"}));  // by container id
  EXPECT_EQ(at(5).owner, (ContainerRef{"ml", "mps", ""}));   // two containers could be it
  EXPECT_EQ(at(6).owner, (ContainerRef{"ml", "solo", "only"}));
  EXPECT_EQ(at(7).device_uuid, "MIG-d1");
  EXPECT_EQ(at(7).owner, (ContainerRef{"ml", "mig-1", "main"}));
  EXPECT_EQ(at(8).owner, (ContainerRef{"ml", "mig-2", "main"}));
  // Exclusive devices need no /proc read.
  EXPECT_EQ(looked_up, (std::vector<uint32_t>{200, 201, 202, 300, 301, 302}));

  EXPECT_EQ(a.unattributed, 1);
  const PodGpuUsage& mps = a.pods.at({"ml", "mps"});
  EXPECT_EQ(mps.processes, 2);
  EXPECT_DOUBLE_EQ(mps.sm_util_percent, 30);  // 10 + 20
  EXPECT_EQ(mps.memory_bytes, 300u);          // 100 + 200
  EXPECT_DOUBLE_EQ(a.pods.at({"ml", "train"}).sm_util_percent, 40);
  EXPECT_EQ(a.pods.count({"", ""}), 0u);
}

TEST(Attribution, WithoutPodResourcesCgroupsStillNameThePod) {
  CgroupLookup lookup = [](uint32_t pid) -> std::optional<PodCgroupRef> {
    if (pid != 100) return std::nullopt;
    return PodCgroupRef{.pod_uid = kUid, .container_id = kCid};
  };
  PodResolver resolve = [](std::string_view uid) -> std::optional<ResolvedPod> {
    if (uid != kUid) return std::nullopt;
    return ResolvedPod{"ml", "train", {{kCid, "main"}}};
  };
  const Attribution a = Attribute(Node(), {}, lookup, resolve);
  EXPECT_TRUE(a.device_owner.empty());
  EXPECT_EQ(a.processes[0].owner, (ContainerRef{"ml", "train", "main"}));
  EXPECT_EQ(a.unattributed, 8);
}

TEST(Attribution, DeviceIdForms) {
  const nvml::GpuSnapshot s = Node();
  EXPECT_EQ(DeviceUuidForId("GPU-b", s), "GPU-b");
  EXPECT_EQ(DeviceUuidForId("GPU-b::7", s), "GPU-b");
  EXPECT_EQ(DeviceUuidForId("MIG-d2", s), "MIG-d2");
  EXPECT_EQ(DeviceUuidForId("MIG-GPU-d/8/0", s), "MIG-d2");  // legacy MIG id
  EXPECT_EQ(DeviceUuidForId("2", s), "GPU-c");               // deviceIDStrategy=index
  EXPECT_EQ(DeviceUuidForId("2::1", s), "GPU-c");
  EXPECT_EQ(DeviceUuidForId("nvidia1/vgpu3", s), "GPU-b");  // GKE sharing
  EXPECT_EQ(DeviceUuidForId("nvidia3/gi7", s), "MIG-d1");   // GKE MIG
  EXPECT_EQ(DeviceUuidForId("GPU-zzz", s), "");
  EXPECT_EQ(DeviceUuidForId("9", s), "");
  EXPECT_EQ(DeviceUuidForId("", s), "");
  EXPECT_EQ(DeviceUuidForId("MIG-GPU-d/x/0", s), "");
  EXPECT_TRUE(IsGpuResource("nvidia.com/gpu.shared"));
  EXPECT_TRUE(IsGpuResource("nvidia.com/mig-3g.40gb"));
  EXPECT_FALSE(IsGpuResource("cpu"));
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
