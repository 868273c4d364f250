#include "cloud/cluster_api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace gpu_autoscaler::cloud {
namespace {

using nlohmann::json;

json WithAnnotations(json annotations) {
  return {{"metadata", {{"annotations", std::move(annotations)}}}};
}

TEST(ScaleFromZeroCapacityTest, ReadsCpuMemoryGpuAndDefaults) {
  auto c = ReadScaleFromZeroCapacity(
      WithAnnotations({{"capacity.cluster-autoscaler.kubernetes.io/cpu", "96"},
                       {"capacity.cluster-autoscaler.kubernetes.io/memory", "1152Gi"},
                       {"capacity.cluster-autoscaler.kubernetes.io/gpu-type", "nvidia.com/gpu"},
                       {"capacity.cluster-autoscaler.kubernetes.io/gpu-count", "8"},
                       {"capacity.cluster-autoscaler.kubernetes.io/labels", "a=b,c=d"}}));
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->cpu_milli, 96'000);
  EXPECT_EQ(c->memory_bytes, 1152LL << 30);
  EXPECT_EQ(c->max_pods, 110);  // Cluster Autoscaler's default
  EXPECT_EQ(c->gpu_type, "nvidia.com/gpu");
  EXPECT_EQ(c->gpu_count, 8);
  EXPECT_EQ(c->labels, "a=b,c=d");
}

TEST(ScaleFromZeroCapacityTest, GpuNeedsBothTypeAndCount) {
  auto c = ReadScaleFromZeroCapacity(
      WithAnnotations({{"capacity.cluster-autoscaler.kubernetes.io/cpu", "500m"},
                       {"capacity.cluster-autoscaler.kubernetes.io/memory", "128G"},
                       {"capacity.cluster-autoscaler.kubernetes.io/maxPods", "58"},
                       {"capacity.cluster-autoscaler.kubernetes.io/gpu-count", "2"}}));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->cpu_milli, 500);
  EXPECT_EQ(c->memory_bytes, 128'000'000'000);
  EXPECT_EQ(c->max_pods, 58);
  EXPECT_EQ(c->gpu_count, 0);
  EXPECT_TRUE(c->gpu_type.empty());
}

TEST(ScaleFromZeroCapacityTest, MissingAndMalformedAnnotationsSayWhich) {
  auto none = ReadScaleFromZeroCapacity(
      WithAnnotations({{"capacity.cluster-autoscaler.kubernetes.io/cpu", "8"}}));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code(), StatusCode::kNotFound);
  EXPECT_FALSE(ReadScaleFromZeroCapacity(json::object()).ok());
  auto bad = ReadScaleFromZeroCapacity(
      WithAnnotations({{"capacity.cluster-autoscaler.kubernetes.io/cpu", "eight"},
                       {"capacity.cluster-autoscaler.kubernetes.io/memory", "1Gi"}}));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("capacity.cluster-autoscaler.kubernetes.io/cpu"),
            std::string::npos);
  auto count = ReadScaleFromZeroCapacity(
      WithAnnotations({{"capacity.cluster-autoscaler.kubernetes.io/cpu", "8"},
                       {"capacity.cluster-autoscaler.kubernetes.io/memory", "1Gi"},
                       {"capacity.cluster-autoscaler.kubernetes.io/gpu-type", "nvidia.com/gpu"},
                       {"capacity.cluster-autoscaler.kubernetes.io/gpu-count", "-1"}}));
  ASSERT_FALSE(count.ok());
  EXPECT_NE(count.error().message().find("gpu-count"), std::string::npos);
}

}  // namespace
}  // namespace gpu_autoscaler::cloud
