#include "fleet/usage_annotation.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::fleet {
namespace {

TEST(UsageAnnotationTest, PodWideAndPerContainerEntries) {
  auto spec = ParseUsageAnnotation("cpu=0.3,memory=600Mi; sidecar:cpu=50m");
  ASSERT_TRUE(spec.ok()) << spec.error().message();
  const ContainerUsage fallback{.cpu_cores = 0.1, .memory_bytes = 1000};
  const ContainerUsage server = UsageFor(*spec, "server", fallback);
  EXPECT_DOUBLE_EQ(server.cpu_cores, 0.3);
  EXPECT_EQ(server.memory_bytes, 600ll * 1024 * 1024);  // 629145600
  const ContainerUsage sidecar = UsageFor(*spec, "sidecar", fallback);
  EXPECT_DOUBLE_EQ(sidecar.cpu_cores, 0.05);
  EXPECT_EQ(sidecar.memory_bytes, 629145600);  // the pod-wide memory
}

TEST(UsageAnnotationTest, MissingKeysFallBack) {
  auto spec = ParseUsageAnnotation("main:memory=1.5Gi");
  ASSERT_TRUE(spec.ok());
  const ContainerUsage main = UsageFor(*spec, "main", {.cpu_cores = 0.25, .memory_bytes = 7});
  EXPECT_DOUBLE_EQ(main.cpu_cores, 0.25);
  EXPECT_EQ(main.memory_bytes, 1610612736);  // 1.5 * 2^30
  const ContainerUsage other = UsageFor(*spec, "other", {.cpu_cores = 0.25, .memory_bytes = 7});
  EXPECT_EQ(other.memory_bytes, 7);
  auto empty = ParseUsageAnnotation("  ;; ");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->all.cpu_cores);
  EXPECT_TRUE(empty->containers.empty());
}

TEST(UsageAnnotationTest, MemoryTraceAndMemoryOverrideEachOther) {
  auto spec = ParseUsageAnnotation("memory-trace=23b8eb;sidecar:memory=64Mi;main:cpu=1");
  ASSERT_TRUE(spec.ok()) << spec.error().message();
  const ContainerUsage fallback{.cpu_cores = 0.1, .memory_bytes = 5};
  EXPECT_EQ(UsageFor(*spec, "main", fallback).memory_trace, "23b8eb");
  EXPECT_DOUBLE_EQ(UsageFor(*spec, "main", fallback).cpu_cores, 1);
  const ContainerUsage sidecar = UsageFor(*spec, "sidecar", fallback);
  EXPECT_EQ(sidecar.memory_trace, "");
  EXPECT_EQ(sidecar.memory_bytes, 67108864);
}

TEST(UsageAnnotationTest, BadEntriesAreClearErrors) {
  struct Case {
    const char* text;
    const char* error;
  } cases[] = {
      {"gpu=1", "unknown key \"gpu\" (want cpu, memory or memory-trace)"},
      {"memory=1Gi,memory-trace=abc", "memory-trace \"abc\" is a second memory"},
      {"memory-trace=", "is not a trace pod name"},
      {"cpu=lots", "cpu \"lots\" is not a quantity"},
      {"cpu=-1", "cpu \"-1\" is negative"},
      {"memory=1Qi", "memory \"1Qi\" is not a quantity"},
      {"cpu", "want key=value"},
      {":cpu=1", "empty container name"},
      {"a:cpu=1;a:memory=1", "container \"a\" given twice"},
      {"cpu=1,cpu=2", "given twice"},
      {"cpu=1;memory=2", "a second entry for every container"},
  };
  for (const Case& c : cases) {
    auto spec = ParseUsageAnnotation(c.text);
    ASSERT_FALSE(spec.ok()) << c.text;
    EXPECT_NE(spec.error().message().find(c.error), std::string::npos)
        << c.text << ": " << spec.error().message();
  }
  EXPECT_FALSE(ParseUsageAnnotation(std::string(kMaxUsageAnnotationBytes + 1, ' ')).ok());
}

}  // namespace
}  // namespace gpu_autoscaler::fleet
