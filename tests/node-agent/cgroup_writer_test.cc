// CgroupWriter: pod cgroup paths for both kubelet drivers, the v2 and v1
// files it writes on fake trees with the kernel's file names, nothing
// written twice, a cgroup that vanishes, and (where this machine lets a test
// create child groups) the real cgroup v1 cpu, cpuset and memory hierarchies.
// Each test records which file system it used in the `cgroup_fs` property.
#include "node-agent/cgroup_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "support/child_process.h"

namespace gpu_autoscaler::node_agent {
namespace {

namespace fs = std::filesystem;

std::string Read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && s.back() == '\n')
    s.pop_back();
  return s;
}

void Put(const fs::path& p, const std::string& v) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << v << "\n";
}

PodAssignment Reclaimed(std::string uid, KubeQosClass c) {
  return {.uid = std::move(uid),
          .ns = "team",
          .name = "batch",
          .qos_class = c,
          .level = QosLevel::kReclaimed,
          .pool = "reclaim",
          .cpus = {13, 14, 15},
          .cgroup = {.cpuset_cpus = "13-15",
                     .cpuset_mems = "1",
                     .cpu_quota_micros = 300'000,
                     .cpu_weight = 1,
                     .memory_high_bytes = 2LL << 30}};
}

TEST(PodCgroupPath, BothDriversAllClasses) {
  const std::string uid = "1f2e-3d4c";
  EXPECT_EQ(PodCgroupPath(CgroupDriver::kCgroupfs, KubeQosClass::kGuaranteed, uid),
            "kubepods/pod1f2e-3d4c");
  EXPECT_EQ(PodCgroupPath(CgroupDriver::kCgroupfs, KubeQosClass::kBurstable, uid),
            "kubepods/burstable/pod1f2e-3d4c");
  EXPECT_EQ(PodCgroupPath(CgroupDriver::kCgroupfs, KubeQosClass::kBestEffort, uid),
            "kubepods/besteffort/pod1f2e-3d4c");
  EXPECT_EQ(PodCgroupPath(CgroupDriver::kSystemd, KubeQosClass::kGuaranteed, uid),
            "kubepods.slice/kubepods-pod1f2e_3d4c.slice");
  EXPECT_EQ(PodCgroupPath(CgroupDriver::kSystemd, KubeQosClass::kBurstable, uid),
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1f2e_3d4c.slice");
  EXPECT_EQ(PodCgroupPath(CgroupDriver::kSystemd, KubeQosClass::kBestEffort, uid),
            "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1f2e_3d4c.slice");
  EXPECT_FALSE(ParseCgroupDriver("docker").ok());
  EXPECT_EQ(CpuWeightToShares(1), 2u);
  EXPECT_EQ(CpuWeightToShares(100), 2597u);  // 2 + 99 * 262142 / 9999
  EXPECT_EQ(CpuWeightToShares(10000), 262144u);
}

TEST(CgroupWriter, FakeV2SystemdWritesOnceAndSurvivesAVanishedCgroup) {
  RecordProperty("cgroup_fs", "fake v2 tree");
  const fs::path root = testing::MakeTempDir("gpa-cg-v2");
  Put(root / "cgroup.controllers", "cpuset cpu memory");
  EXPECT_EQ(DetectCgroupVersion(root.string()).value(), CgroupVersion::kV2);
  PodAssignment pod = Reclaimed("ab-cd", KubeQosClass::kBestEffort);
  const fs::path dir =
      root / "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podab_cd.slice";
  Put(dir / "cpuset.cpus", "");
  Put(dir / "cpuset.mems", "");
  Put(dir / "cpu.max", "max 100000");
  Put(dir / "cpu.weight", "100");
  Put(dir / "memory.high", "max");
  Put(dir / "memory.min", "0");
  CgroupWriter writer(
      {.root = root.string(), .driver = CgroupDriver::kSystemd, .version = CgroupVersion::kV2});
  EXPECT_EQ(writer.PodDir(pod, "cpu"), dir.string());
  CgroupApplyResult r = writer.Apply(pod);
  EXPECT_EQ(r.writes, 5);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(Read(dir / "cpuset.cpus"), "13-15");
  EXPECT_EQ(Read(dir / "cpuset.mems"), "1");
  EXPECT_EQ(Read(dir / "cpu.max"), "300000 100000");
  EXPECT_EQ(Read(dir / "cpu.weight"), "1");
  EXPECT_EQ(Read(dir / "memory.high"), "2147483648");
  EXPECT_EQ(Read(dir / "memory.min"), "0");  // not planned for reclaimed pods: untouched
  // Again: nothing written.
  r = writer.Apply(pod);
  EXPECT_EQ(r.writes, 0);
  EXPECT_EQ(r.unchanged, 5);
  // One change, one write.
  pod.cgroup.cpuset_cpus = "12-15";
  r = writer.Apply(pod);
  EXPECT_EQ(r.writes, 1);
  EXPECT_EQ(Read(dir / "cpuset.cpus"), "12-15");
  // A fresh writer (an agent restart) reads what is there and writes nothing.
  CgroupWriter restarted(writer.options());
  EXPECT_EQ(restarted.Apply(pod).writes, 0);
  // The cgroup goes away: vanished, no error, and the next change retries.
  fs::remove_all(dir);
  pod.cgroup.cpuset_cpus = "11-15";
  r = writer.Apply(pod);
  EXPECT_TRUE(r.vanished);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(writer.vanished(), 1u);
  EXPECT_EQ(writer.errors(), 0u);
  EXPECT_EQ(writer.writes(), 6u);
  writer.Forget(pod.uid);
  fs::remove_all(root);
}

TEST(CgroupWriter, FakeV2MissingKnobIsAnError) {
  RecordProperty("cgroup_fs", "fake v2 tree");
  const fs::path root = testing::MakeTempDir("gpa-cg-v2");
  PodAssignment pod = Reclaimed("u1", KubeQosClass::kBurstable);
  const fs::path dir = root / "kubepods/burstable/podu1";
  Put(dir / "cpuset.cpus", "");
  Put(dir / "cpuset.mems", "");
  Put(dir / "cpu.max", "max 100000");
  Put(dir / "cpu.weight", "100");
  // no memory.high: the memory controller is not enabled for this subtree
  CgroupWriter writer({.root = root.string(), .version = CgroupVersion::kV2});
  CgroupApplyResult r = writer.Apply(pod);
  EXPECT_EQ(r.writes, 4);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0], (dir / "memory.high").string() + ": No such file or directory");
  EXPECT_FALSE(r.vanished);
  fs::remove_all(root);
}

TEST(CgroupWriter, FakeV1CgroupfsMapsEveryKnob) {
  RecordProperty("cgroup_fs", "fake v1 tree");
  const fs::path root = testing::MakeTempDir("gpa-cg-v1");
  fs::create_directories(root / "cpuset");
  EXPECT_EQ(DetectCgroupVersion(root.string()).value(), CgroupVersion::kV1);
  PodAssignment pod = Reclaimed("u2", KubeQosClass::kBestEffort);
  pod.cgroup.memory_min_bytes = 1 << 20;  // no v1 knob: skipped
  const fs::path cpuset = root / "cpuset/kubepods/besteffort/podu2";
  Put(cpuset / "cpuset.cpus", "0-15");
  Put(cpuset / "cpuset.mems", "0-1");
  Put(cpuset / "ctr-a/cpuset.cpus", "0-15");
  Put(cpuset / "ctr-a/cpuset.mems", "0-1");
  const fs::path cpu = root / "cpu/kubepods/besteffort/podu2";
  Put(cpu / "cpu.cfs_period_us", "100000");
  Put(cpu / "cpu.cfs_quota_us", "-1");
  Put(cpu / "cpu.shares", "2");
  const fs::path memory = root / "memory/kubepods/besteffort/podu2";
  Put(memory / "memory.soft_limit_in_bytes", "9223372036854771712");
  CgroupWriter writer({.root = root.string(), .version = CgroupVersion::kV1});
  CgroupApplyResult r = writer.Apply(pod);
  EXPECT_TRUE(r.errors.empty());
  // mems: child, parent; cpus: child, parent; quota; soft limit. Period and
  // shares already say it.
  EXPECT_EQ(r.writes, 6);
  EXPECT_EQ(Read(cpuset / "cpuset.cpus"), "13-15");
  EXPECT_EQ(Read(cpuset / "ctr-a/cpuset.cpus"), "13-15");
  EXPECT_EQ(Read(cpuset / "cpuset.mems"), "1");
  EXPECT_EQ(Read(cpuset / "ctr-a/cpuset.mems"), "1");
  EXPECT_EQ(Read(cpu / "cpu.cfs_quota_us"), "300000");
  EXPECT_EQ(Read(cpu / "cpu.shares"), "2");
  EXPECT_EQ(Read(memory / "memory.soft_limit_in_bytes"), "2147483648");
  EXPECT_EQ(writer.Apply(pod).writes, 0);
  // Growing: the parent widens first (to 13-15 | 0-1,12-15, which is the new
  // value, so its last write is skipped), then the child.
  pod.cgroup.cpuset_cpus = "0-1,12-15";
  r = writer.Apply(pod);
  EXPECT_EQ(r.writes, 2);
  EXPECT_EQ(Read(cpuset / "cpuset.cpus"), "0-1,12-15");
  EXPECT_EQ(Read(cpuset / "ctr-a/cpuset.cpus"), "0-1,12-15");
  fs::remove_all(root);
}

// The real cgroup v1 hierarchies, when this machine lets us create groups.
class RealCgroupV1Test : public ::testing::Test {
 protected:
  void SetUp() override {
    parent_ = "gpa-test-" + std::to_string(::getpid());
    for (const char* c : {"cpuset", "cpu", "memory"}) {
      std::error_code ec;
      const fs::path base = fs::path("/sys/fs/cgroup") / c;
      if (!fs::exists(base / (std::string(c) == "memory" ? "memory.soft_limit_in_bytes"
                              : std::string(c) == "cpu"  ? "cpu.shares"
                                                         : "cpuset.cpus"))) {
        GTEST_SKIP() << "no cgroup v1 " << c << " hierarchy at " << base
                     << "; the fake v1 tree test covers the same files";
      }
      if (!fs::create_directory(base / parent_, ec) || ec) {
        GTEST_SKIP() << "cannot create a child group under " << base << ": " << ec.message()
                     << "; the fake v1 tree test covers the same files";
      }
      created_.push_back(base / parent_);
    }
    RecordProperty("cgroup_fs", "real v1 (/sys/fs/cgroup/{cpuset,cpu,memory})");
    std::cerr << "cgroup test: using the real cgroup v1 hierarchies under /sys/fs/cgroup/"
              << parent_ << "\n";
  }
  void TearDown() override {
    // Deepest first; rmdir is how cgroups go.
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
  }

  // mkdir -p, copying cpuset.cpus/mems down as a cpuset child needs them.
  void MakeGroup(const std::string& controller, const std::string& rel) {
    fs::path at = fs::path("/sys/fs/cgroup") / controller;
    const std::string cpus = Read(at / "cpuset.cpus");
    const std::string mems = Read(at / "cpuset.mems");
    for (const auto& part : fs::path(parent_ + "/" + rel)) {
      at /= part;
      std::error_code ec;
      fs::create_directory(at, ec);
      if (controller == "cpuset") {
        std::ofstream(at / "cpuset.mems") << mems;
        std::ofstream(at / "cpuset.cpus") << cpus;
      }
    }
  }

  std::string parent_;
  std::vector<fs::path> created_;
};

TEST_F(RealCgroupV1Test, WritesTheKernelsFiles) {
  const std::string all = Read("/sys/fs/cgroup/cpuset/cpuset.cpus");
  auto cpus = ParseCpuList(all).value();
  ASSERT_FALSE(cpus.empty());
  const std::string last = std::to_string(cpus.back());
  PodAssignment pod = Reclaimed("real-1", KubeQosClass::kBurstable);
  pod.cgroup.cpuset_cpus = last;
  pod.cgroup.cpuset_mems = "0";
  pod.cgroup.cpu_quota_micros = 50'000;
  pod.cgroup.memory_high_bytes = 64LL << 20;  // page aligned: the kernel rounds
  const std::string rel = "kubepods/burstable/podreal-1";
  MakeGroup("cpuset", rel + "/ctr");
  MakeGroup("cpu", rel);
  MakeGroup("memory", rel);
  CgroupWriter writer({.root = "/sys/fs/cgroup", .version = CgroupVersion::kV1, .parent = parent_});
  CgroupApplyResult r = writer.Apply(pod);
  EXPECT_TRUE(r.errors.empty()) << r.errors[0];
  const fs::path cpuset = fs::path("/sys/fs/cgroup/cpuset") / parent_ / rel;
  EXPECT_EQ(Read(cpuset / "cpuset.cpus"), last);
  EXPECT_EQ(Read(cpuset / "ctr/cpuset.cpus"), last);
  EXPECT_EQ(Read(fs::path("/sys/fs/cgroup/cpu") / parent_ / rel / "cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(Read(fs::path("/sys/fs/cgroup/cpu") / parent_ / rel / "cpu.shares"), "2");
  EXPECT_EQ(Read(fs::path("/sys/fs/cgroup/memory") / parent_ / rel / "memory.soft_limit_in_bytes"),
            "67108864");
  EXPECT_EQ(writer.Apply(pod).writes, 0);
  // Grow back to every CPU: the parent must widen before the child.
  pod.cgroup.cpuset_cpus = FormatCpuList(cpus);
  r = writer.Apply(pod);
  EXPECT_TRUE(r.errors.empty()) << r.errors[0];
  EXPECT_EQ(Read(cpuset / "ctr/cpuset.cpus"), FormatCpuList(cpus));
  // Shrink again: children first.
  pod.cgroup.cpuset_cpus = last;
  r = writer.Apply(pod);
  EXPECT_TRUE(r.errors.empty()) << r.errors[0];
  EXPECT_EQ(Read(cpuset / "ctr/cpuset.cpus"), last);
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
