// The soak's arithmetic (bench/soak_metrics.h) and its synthetic cluster
// (bench/soak_cluster.h), against hand-computed values.
#include <cmath>

#include <gtest/gtest.h>

#include "soak_cluster.h"
#include "soak_metrics.h"

namespace gpu_autoscaler::bench {
namespace {

constexpr char kExposition[] = R"(# HELP controller_runtime_reconcile_time_seconds Length of time
# TYPE controller_runtime_reconcile_time_seconds histogram
controller_runtime_reconcile_time_seconds_bucket{controller="cost",le="0.005"} 10
controller_runtime_reconcile_time_seconds_bucket{controller="cost",le="0.01"} 30
controller_runtime_reconcile_time_seconds_bucket{controller="cost",le="+Inf"} 40
controller_runtime_reconcile_time_seconds_count{controller="cost"} 40
controller_runtime_reconcile_time_seconds_bucket{controller="budget",le="0.005"} 4
controller_runtime_reconcile_time_seconds_bucket{controller="budget",le="0.01"} 4
controller_runtime_reconcile_time_seconds_bucket{controller="budget",le="+Inf"} 4
workqueue_depth{name="cost"} 3
workqueue_depth{name="budget"} 1
gpu_autoscaler_node_gpus{model="A100",state="allocatable"} 16
gpu_autoscaler_node_gpus{model="T4",state="allocatable"} 4
gpu_autoscaler_node_gpus{model="T4",state="capacity"} 8
odd_label{a="quote \" inside"} 1.5
not a sample line
)";

TEST(SoakMetricsTest, ParsesSamplesWithLabelsAndSkipsCommentsAndJunk) {
  const auto samples = ParseExposition(kExposition);
  ASSERT_EQ(samples.size(), 13u);
  EXPECT_EQ(samples[0].name, "controller_runtime_reconcile_time_seconds_bucket");
  EXPECT_EQ(samples[0].labels.at("le"), "0.005");
  EXPECT_EQ(samples[12].labels.at("a"), "quote \" inside");
  EXPECT_DOUBLE_EQ(samples[12].value, 1.5);
  EXPECT_DOUBLE_EQ(SumSamples(samples, "workqueue_depth"), 4);
  EXPECT_DOUBLE_EQ(SumSamples(samples, "gpu_autoscaler_node_gpus", {{"state", "allocatable"}}), 20);
  EXPECT_DOUBLE_EQ(SumSamples(samples, "missing"), 0);
}

TEST(SoakMetricsTest, QuantileInterpolatesInsideTheBucketLikeHistogramQuantile) {
  const auto buckets = HistogramBuckets(ParseExposition(kExposition),
                                        "controller_runtime_reconcile_time_seconds", "controller");
  ASSERT_EQ(buckets.size(), 2u);
  const Buckets& cost = buckets.at("cost");
  EXPECT_DOUBLE_EQ(Count(cost), 40);
  // Rank 20 of 40 falls in (0.005, 0.01] holding 20: halfway -> 0.0075.
  EXPECT_DOUBLE_EQ(Quantile(cost, 0.5), 0.0075);
  // Rank 5 in [0, 0.005] holding 10 -> 0.0025.
  EXPECT_DOUBLE_EQ(Quantile(cost, 0.125), 0.0025);
  // Rank 39.6 is in +Inf: the highest finite bound.
  EXPECT_DOUBLE_EQ(Quantile(cost, 0.99), 0.01);
  EXPECT_TRUE(std::isnan(Quantile({}, 0.5)));
}

TEST(SoakMetricsTest, DeltasGiveTheIntervalsObservations) {
  const Buckets before = {{0.005, 10}, {0.01, 30}, {INFINITY, 40}};
  const Buckets now = {{0.005, 10}, {0.01, 34}, {INFINITY, 50}};
  const Buckets step = Delta(now, before);
  ASSERT_EQ(step.size(), 3u);
  EXPECT_DOUBLE_EQ(Count(step), 10);
  // 0 in the first bucket, 4 in the second, 6 above: p50 is rank 5 -> +Inf -> 0.01.
  EXPECT_DOUBLE_EQ(Quantile(step, 0.5), 0.01);
  // p25 is rank 2.5 of the 4 in (0.005, 0.01]: 0.005 + 0.005 * 2.5 / 4.
  EXPECT_DOUBLE_EQ(Quantile(step, 0.25), 0.008125);
  EXPECT_DOUBLE_EQ(Count(Add(step, before)), 50);
}

TEST(SoakMetricsTest, SlopeIsLeastSquares) {
  // y = 2x + 1 with noise that cancels: (0,1) (1,4) (2,5) (3,7) -> slope 1.9.
  EXPECT_DOUBLE_EQ(Slope({0, 1, 2, 3}, {1, 4, 5, 7}), 1.9);
  EXPECT_DOUBLE_EQ(Slope({5}, {1}), 0);
  EXPECT_DOUBLE_EQ(Slope({2, 2}, {1, 3}), 0);
}

TEST(SoakClusterTest, NodesComeFromTheCatalogueAndSlotsFillGpusFirst) {
  auto shapes = CatalogueGpuShapes();
  ASSERT_TRUE(shapes.ok()) << shapes.error().ToString();
  ASSERT_GT(shapes->size(), 3u);
  for (const NodeShape& s : *shapes) {
    EXPECT_GT(s.gpus, 0) << s.instance_type;
    EXPECT_FALSE(s.gpu_model.empty()) << s.instance_type;
  }
  SoakCluster cluster(*shapes, 4, 40, 3);
  // Node 1 is time-sliced: four replicas per GPU.
  EXPECT_TRUE(cluster.TimeSliced(1));
  EXPECT_FALSE(cluster.TimeSliced(0));
  EXPECT_EQ(cluster.AdvertisedGpus(1), cluster.Shape(1).gpus * 4);
  const auto node = cluster.NodeObject(1);
  EXPECT_EQ(node["metadata"]["labels"]["nvidia.com/gpu.replicas"], "4");
  EXPECT_EQ(node["status"]["capacity"]["nvidia.com/gpu"],
            std::to_string(cluster.AdvertisedGpus(1)));
  // Slot 4 is the second pod on node 0; slot 36 the tenth.
  EXPECT_EQ(cluster.NodeOfSlot(4), 0);
  EXPECT_EQ(cluster.HoldsGpu(4), cluster.AdvertisedGpus(0) > 1);
  EXPECT_EQ(cluster.HoldsGpu(36), cluster.AdvertisedGpus(0) > 9);
  const auto pod = cluster.PodObject(5);  // node 1, time-sliced, first replica
  EXPECT_TRUE(cluster.SharesGpu(5));
  EXPECT_EQ(pod["metadata"]["annotations"]["gpuautoscaler.io/policy"], "notebooks");
  EXPECT_EQ(pod["spec"]["nodeName"], "gpu-node-1");
  EXPECT_EQ(pod["metadata"]["namespace"], "soak-2");
  EXPECT_EQ(cluster.PodName(5), "pod-5-0");
  cluster.Replace(5);
  EXPECT_EQ(cluster.PodName(5), "pod-5-1");
  // A lost GPU on a time-sliced node is four advertised replicas.
  const auto patch = cluster.NodeStatusPatch(1, true, false);
  EXPECT_EQ(patch["status"]["allocatable"]["nvidia.com/gpu"],
            std::to_string(cluster.AdvertisedGpus(1) - 4));
  EXPECT_EQ(patch["status"]["conditions"][0]["status"], "False");
}

}  // namespace
}  // namespace gpu_autoscaler::bench
