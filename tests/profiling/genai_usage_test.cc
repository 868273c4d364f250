#include "profiling/genai_usage.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "support/child_process.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::profiling {
namespace {

constexpr char kUtil[] =
    "value,timestamp_anon,container_ip\n"
    "50,120.0,p1\n"
    "25,60.0,p1\n"
    "10,60.0,p2\n";
constexpr char kGpuMemory[] =
    "timestamp_anon,value,container_ip\n"
    "60.0,1e9,p3\n"
    "60.0,2000000000.0,p1\n";
constexpr char kMemory[] =
    "value,timestamp_anon,container_ip\n"
    "0.5,60.0,p1\r\n"
    "0.1,60.0,\r\n"
    "-1.1e-05,120.0,p1\n";

TEST(GenAiUsageTest, MergesFilesByPod) {
  const auto pods =
      ParseGenAiUsage({.gpu_utilization = kUtil, .gpu_memory = kGpuMemory, .memory = kMemory});
  ASSERT_TRUE(pods.ok()) << pods.error().message();
  ASSERT_EQ(pods->size(), 3u);
  const PodUsage& p1 = (*pods)[0];
  EXPECT_EQ(p1.name, "p1");
  EXPECT_EQ((*pods)[1].name, "p2");
  EXPECT_EQ((*pods)[2].name, "p3");
  // Sorted by time; percent -> fraction.
  ASSERT_EQ(p1.gpu_utilization.size(), 2u);
  EXPECT_EQ(p1.gpu_utilization[0].timestamp, 60);
  EXPECT_DOUBLE_EQ(p1.gpu_utilization[0].value, 0.25);
  EXPECT_DOUBLE_EQ(p1.gpu_utilization[1].value, 0.5);
  ASSERT_EQ(p1.gpu_memory.size(), 1u);
  EXPECT_DOUBLE_EQ(p1.gpu_memory[0].value, 2e9);
  // The row without a pod is skipped; -1.1e-5 reads as 0.
  ASSERT_EQ(p1.memory.size(), 2u);
  EXPECT_DOUBLE_EQ(p1.memory[0].value, 0.5);
  EXPECT_DOUBLE_EQ(p1.memory[1].value, 0);
  EXPECT_TRUE((*pods)[2].gpu_utilization.empty());
}

TEST(GenAiUsageTest, MemoryIsOptional) {
  const auto pods = ParseGenAiUsage({.gpu_utilization = kUtil, .gpu_memory = kGpuMemory});
  ASSERT_TRUE(pods.ok());
  EXPECT_TRUE((*pods)[0].memory.empty());
}

TEST(GenAiUsageTest, ErrorsNameFileAndLine) {
  const auto bad_util = ParseGenAiUsage(
      {.gpu_utilization = "value,timestamp_anon,container_ip\n50,60,p1\n150,120,p1\n",
       .gpu_utilization_name = "util.csv",
       .gpu_memory = kGpuMemory});
  ASSERT_FALSE(bad_util.ok());
  EXPECT_EQ(bad_util.error().message().rfind("util.csv:3: value 150 is outside", 0), 0u)
      << bad_util.error().message();

  const auto no_column =
      ParseGenAiUsage({.gpu_utilization = kUtil,
                       .gpu_memory = "timestamp_anon,bytes,container_ip\n1,2,p\n",
                       .gpu_memory_name = "mem.csv"});
  ASSERT_FALSE(no_column.ok());
  EXPECT_EQ(no_column.error().message(), "mem.csv:1: header lacks column \"value\"");

  const auto not_a_number =
      ParseGenAiUsage({.gpu_utilization = kUtil,
                       .gpu_memory = kGpuMemory,
                       .memory = "value,timestamp_anon,container_ip\nhigh,60,p1\n",
                       .memory_name = "m.csv"});
  ASSERT_FALSE(not_a_number.ok());
  EXPECT_EQ(not_a_number.error().message(), "m.csv:2: value \"high\" is not a number");
}

TEST(GenAiUsageTest, LoadReportsMissingFiles) {
  const auto pods = LoadGenAiUsage(
      {.gpu_utilization = "/nonexistent/util.csv", .gpu_memory = "/nonexistent/mem.csv"});
  ASSERT_FALSE(pods.ok());
  EXPECT_EQ(pods.error().code(), StatusCode::kNotFound);
  EXPECT_EQ(pods.error().message(), "cannot open /nonexistent/util.csv");
}

TEST(GenAiUsageTest, TruncatedGzipIsDataLoss) {
  const std::string full = testing::ReadFileOrDie(
      testing::SourcePath("tests/data/genai/pod_gpu_duty_cycle_anon.csv.gz"));
  const std::string dir = testing::MakeTempDir("genai");
  const std::string cut = dir + "/cut.csv.gz";
  std::ofstream(cut, std::ios::binary) << full.substr(0, 4096);
  const auto pods = LoadGenAiUsage({.gpu_utilization = cut, .gpu_memory = cut});
  ASSERT_FALSE(pods.ok());
  EXPECT_EQ(pods.error().code(), StatusCode::kDataLoss) << pods.error().message();
  EXPECT_EQ(pods.error().message().rfind(cut + ": ", 0), 0u) << pods.error().message();
  std::remove(cut.c_str());
  std::remove(dir.c_str());
}

TEST(GenAiUsageTest, LoadsTheSliceFiles) {
  const std::string dir = testing::SourcePath("tests/data/genai/recommend_slice/");
  const auto pods = LoadGenAiUsage({.gpu_utilization = dir + "gpu_util.csv",
                                    .gpu_memory = dir + "gpu_memory.csv",
                                    .memory = dir + "memory.csv"});
  ASSERT_TRUE(pods.ok()) << pods.error().message();
  ASSERT_EQ(pods->size(), 3u);
  for (const PodUsage& p : *pods) {
    EXPECT_EQ(p.gpu_utilization.size(), 43u) << p.name;
    EXPECT_EQ(p.gpu_memory.size(), 43u) << p.name;
    EXPECT_EQ(p.memory.size(), 43u) << p.name;
  }
}

}  // namespace
}  // namespace gpu_autoscaler::profiling
