#include "node-agent/psi.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "node-agent/cgroup_usage.h"
#include "support/child_process.h"

namespace gpu_autoscaler::node_agent {
namespace {

using std::chrono::seconds;

constexpr const char* kCpuPressure =
    "some avg10=6.05 avg60=10.96 avg300=3.76 total=7982193528\n"
    "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";

TEST(ParsePsiTest, SomeAndFull) {
  auto f = ParsePsi(kCpuPressure);
  ASSERT_TRUE(f.ok()) << f.error().ToString();
  EXPECT_EQ(f->some, (PsiLine{6.05, 10.96, 3.76, 7982193528u}));
  ASSERT_TRUE(f->full.has_value());
  EXPECT_EQ(*f->full, (PsiLine{0, 0, 0, 0}));
}

TEST(ParsePsiTest, OlderKernelCpuFileHasNoFullLine) {
  auto f = ParsePsi("some avg10=41.20 avg60=30.00 avg300=5.00 total=1000\n");
  ASSERT_TRUE(f.ok());
  EXPECT_DOUBLE_EQ(f->some.avg10, 41.2);
  EXPECT_FALSE(f->full.has_value());
}

TEST(ParsePsiTest, FieldOrderUnknownFieldsAndCrlfAreTolerated) {
  auto f = ParsePsi("some total=5 avg300=1 future=7 avg60=2 avg10=3\r\nwhatever line\n");
  ASSERT_TRUE(f.ok()) << f.error().ToString();
  EXPECT_EQ(f->some, (PsiLine{3, 2, 1, 5}));
}

TEST(ParsePsiTest, MalformedInputIsAnErrorNamingTheLine) {
  struct Case {
    const char* text;
    const char* want;
  } cases[] = {
      {"", "no \"some\" line"},
      {"full avg10=1 avg60=1 avg300=1 total=1\n", "no \"some\" line"},
      {"some avg10=abc avg60=1 avg300=1 total=1\n", "avg10 is not a percentage"},
      {"some avg10=101 avg60=1 avg300=1 total=1\n", "avg10 is not a percentage"},
      {"some avg10=-1 avg60=1 avg300=1 total=1\n", "avg10 is not a percentage"},
      {"some avg10=nan avg60=1 avg300=1 total=1\n", "avg10 is not a percentage"},
      {"some avg10=1 avg60=1 avg300=1 total=-5\n", "total is not a whole number"},
      {"some avg10=1 avg60=1 avg300=1\n", "needs avg10 and total"},
      {"some avg10=1 avg60 total=1\n", "has no '='"},
      {"some avg10=1 total=1\nsome avg10=1 total=1\n", "two \"some\" lines"},
      {"some avg10=1 total=1\nfull avg10=1 total=1\nfull avg10=1 total=1\n", "two \"full\""},
  };
  for (const Case& c : cases) {
    auto f = ParsePsi(c.text);
    ASSERT_FALSE(f.ok()) << c.text;
    EXPECT_NE(f.error().message().find(c.want), std::string::npos)
        << c.text << " -> " << f.error().message();
  }
}

TEST(PsiRatesTest, StalledShareFromTotalDeltas) {
  PsiRates rates;
  const Clock::TimePoint t0{seconds(100)};
  EXPECT_FALSE(rates.Update("node/memory", 1'000'000, t0).has_value());  // first reading
  // 2.5 s stalled in 5 s = 50%.
  auto r = rates.Update("node/memory", 3'500'000, t0 + seconds(5));
  ASSERT_TRUE(r.has_value());
  EXPECT_DOUBLE_EQ(*r, 50.0);
  // 0.1 s in 10 s = 1%.
  EXPECT_DOUBLE_EQ(*rates.Update("node/memory", 3'600'000, t0 + seconds(15)), 1.0);
  // Backwards (a recreated cgroup): no figure, and the key restarts from there.
  EXPECT_FALSE(rates.Update("node/memory", 10, t0 + seconds(20)).has_value());
  EXPECT_DOUBLE_EQ(*rates.Update("node/memory", 2'000'010, t0 + seconds(30)), 20.0);
  // No elapsed time: no figure.
  EXPECT_FALSE(rates.Update("node/memory", 2'000'020, t0 + seconds(30)).has_value());
  rates.Update("pod/a", 0, t0);
  rates.Prune(t0 + seconds(1));
  EXPECT_EQ(rates.size(), 1u);
}

class PsiFilesTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("gpa-psi"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& rel, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(dir_ + "/" + rel).parent_path());
    std::ofstream(dir_ + "/" + rel) << text;
  }
  std::string dir_;
};

TEST_F(PsiFilesTest, FakeProcTreeAndCgroup) {
  Write("proc/pressure/cpu", kCpuPressure);
  Write("proc/pressure/memory",
        "some avg10=41.20 avg60=20.00 avg300=4.00 total=99\n"
        "full avg10=12.50 avg60=5.00 avg300=1.00 total=42\n");
  // no io file: a kernel without it
  PressureReading node = ReadNodePressure(dir_ + "/proc");
  ASSERT_TRUE(node[PressureResource::kCpu].has_value());
  ASSERT_TRUE(node[PressureResource::kMemory].has_value());
  EXPECT_DOUBLE_EQ(node[PressureResource::kMemory]->full->avg10, 12.5);
  EXPECT_FALSE(node[PressureResource::kIo].has_value());
  EXPECT_NE(node.error.find("pressure/io: no such file"), std::string::npos) << node.error;

  Write("pod/cpu.pressure", "some avg10=1.00 avg60=0 avg300=0 total=10\n");
  Write("pod/memory.pressure", "some avg10=oops total=1\n");
  Write("pod/io.pressure", "some avg10=2.00 avg60=0 avg300=0 total=20\n");
  PressureReading pod = ReadCgroupPressure(dir_ + "/pod");
  EXPECT_TRUE(pod[PressureResource::kCpu].has_value());
  EXPECT_FALSE(pod[PressureResource::kMemory].has_value());
  EXPECT_TRUE(pod[PressureResource::kIo].has_value());
  EXPECT_NE(pod.error.find("memory.pressure"), std::string::npos) << pod.error;

  EXPECT_EQ(ReadPsiFile(dir_ + "/gone/cpu.pressure").error().code(), StatusCode::kNotFound);
}

// This machine's own PSI: the kernel's files, parsed by the same code.
TEST(RealPsiTest, ProcPressureParsesWhenTheKernelHasPsi) {
  if (!std::filesystem::exists("/proc/pressure/memory")) GTEST_SKIP() << "kernel without PSI";
  PressureReading node = ReadNodePressure("/proc");
  for (PressureResource r : kPressureResources) {
    ASSERT_TRUE(node[r].has_value()) << PressureResourceName(r) << ": " << node.error;
    EXPECT_GE(node[r]->some.avg10, 0);
    EXPECT_LE(node[r]->some.avg10, 100);
  }
}

TEST(RealPsiTest, CgroupV2PressureFilesParse) {
  std::string root;
  for (const char* candidate : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
    if (std::filesystem::exists(std::string(candidate) + "/cpu.pressure")) {
      root = candidate;
      break;
    }
  }
  if (root.empty()) GTEST_SKIP() << "no cgroup v2 group with PSI files here";
  std::cout << "reading real cgroup v2 PSI under " << root << "\n";
  PressureReading group = ReadCgroupPressure(root);
  EXPECT_TRUE(group[PressureResource::kCpu].has_value()) << group.error;
}

TEST(CgroupUsageTest, ParsesCpuStatAndIoStat) {
  auto cpu = ParseCpuStatUsage("usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n");
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ(*cpu, 123456u);
  EXPECT_FALSE(ParseCpuStatUsage("user_usec 1\n").ok());
  EXPECT_FALSE(ParseCpuStatUsage("usage_usec x\n").ok());
  auto io = ParseIoStatBytes(
      "8:0 rbytes=1000 wbytes=24 rios=3 wios=1 dbytes=0 dios=0\n"
      "259:0 rbytes=76 wbytes=900 rios=1 wios=2\n");
  ASSERT_TRUE(io.ok());
  EXPECT_EQ(*io, 2000u);
  EXPECT_EQ(*ParseIoStatBytes(""), 0u);
  EXPECT_FALSE(ParseIoStatBytes("8:0 rbytes=x\n").ok());
}

TEST_F(PsiFilesTest, UsageRatesFromCounters) {
  Write("pod/memory.current", "3221225472\n");
  Write("pod/cpu.stat", "usage_usec 1000000\n");
  Write("pod/io.stat", "8:0 rbytes=0 wbytes=0\n");
  UsageRates rates;
  const Clock::TimePoint t0{seconds(50)};
  UsageNow first = rates.Update("uid", ReadCgroupUsage(dir_ + "/pod"), t0);
  EXPECT_EQ(first.memory_bytes, 3221225472);
  EXPECT_FALSE(first.cpu_millicores.has_value());
  Write("pod/cpu.stat", "usage_usec 4000000\n");                // 3 s of CPU in 2 s: 1500m
  Write("pod/io.stat", "8:0 rbytes=1048576 wbytes=1048576\n");  // 2 MiB in 2 s
  UsageNow second = rates.Update("uid", ReadCgroupUsage(dir_ + "/pod"), t0 + seconds(2));
  ASSERT_TRUE(second.cpu_millicores.has_value());
  EXPECT_DOUBLE_EQ(*second.cpu_millicores, 1500.0);
  EXPECT_DOUBLE_EQ(*second.io_bytes_per_second, 1048576.0);
  // A vanished group: nothing.
  UsageNow gone = rates.Update("uid2", ReadCgroupUsage(dir_ + "/gone"), t0);
  EXPECT_FALSE(gone.memory_bytes.has_value());
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
