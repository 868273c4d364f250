#include "scheduler/node_fit.h"

#include <gtest/gtest.h>

#include "scheduler/scheduler_test_util.h"

namespace gpu_autoscaler::scheduler {
namespace {

using testutil::json;
using testutil::Node;
using testutil::Pod;

json Affinity(json expressions) {
  return {{"nodeAffinity",
           {{"requiredDuringSchedulingIgnoredDuringExecution",
             {{"nodeSelectorTerms", {{{"matchExpressions", expressions}}}}}}}}};
}

TEST(NodeFitTest, AffinityOperators) {
  auto node = Node({.name = "n", .labels = {{"zone", "a"}, {"gpus", "8"}}});
  auto with = [&](json expr) {
    return MatchesRequiredNodeAffinity(
        *Pod({.name = "p", .spec_extra = {{"affinity", Affinity(expr)}}}), *node);
  };
  EXPECT_TRUE(with({{{"key", "zone"}, {"operator", "In"}, {"values", {"b", "a"}}}}));
  EXPECT_FALSE(with({{{"key", "zone"}, {"operator", "NotIn"}, {"values", {"a"}}}}));
  EXPECT_TRUE(with({{{"key", "zone"}, {"operator", "Exists"}}}));
  EXPECT_TRUE(with({{{"key", "x"}, {"operator", "DoesNotExist"}}}));
  EXPECT_TRUE(with({{{"key", "gpus"}, {"operator", "Gt"}, {"values", {"4"}}}}));
  EXPECT_FALSE(with({{{"key", "gpus"}, {"operator", "Lt"}, {"values", {"4"}}}}));
  // Requirements of one term are ANDed.
  EXPECT_FALSE(
      with({{{"key", "zone"}, {"operator", "Exists"}}, {{"key", "x"}, {"operator", "Exists"}}}));
}

TEST(NodeFitTest, TermsAreOred) {
  auto node = Node({.name = "n", .labels = {{"zone", "a"}}});
  json affinity = {
      {"nodeAffinity",
       {{"requiredDuringSchedulingIgnoredDuringExecution",
         {{"nodeSelectorTerms",
           {{{"matchExpressions", {{{"key", "zone"}, {"operator", "In"}, {"values", {"b"}}}}}},
            {{"matchFields",
              {{{"key", "metadata.name"}, {"operator", "In"}, {"values", {"n"}}}}}}}}}}}}};
  EXPECT_TRUE(MatchesRequiredNodeAffinity(
      *Pod({.name = "p", .spec_extra = {{"affinity", affinity}}}), *node));
}

TEST(NodeFitTest, NotReadyAndNoExecuteTaints) {
  auto pod = Pod({.name = "p"});
  EXPECT_EQ(NodePredicateFailure(*pod, *Node({.name = "n", .ready = false})),
            "node(s) were not ready");
  auto tainted = Node({.name = "n", .taints = {{{"key", "k"}, {"effect", "NoExecute"}}}});
  EXPECT_EQ(NodePredicateFailure(*pod, *tainted),
            "node(s) had taint {k}, that the pod didn't tolerate");
  auto soft = Node({.name = "n", .taints = {{{"key", "k"}, {"effect", "PreferNoSchedule"}}}});
  EXPECT_EQ(NodePredicateFailure(*pod, *soft), "");
  auto tolerates =
      Pod({.name = "p",
           .spec_extra = {
               {"tolerations",
                {{{"key", "k"}, {"operator", "Equal"}, {"value", ""}, {"effect", "NoExecute"}}}}}});
  EXPECT_EQ(NodePredicateFailure(*tolerates, *tainted), "");
}

TEST(NodeFitTest, AggregateReadsLikeKubeScheduler) {
  EXPECT_EQ(
      AggregateReasons(4, {{"Insufficient nvidia.com/gpu", 3}, {"node(s) were unschedulable", 1}}),
      "0/4 nodes are available: 3 Insufficient nvidia.com/gpu, 1 node(s) were unschedulable.");
  EXPECT_EQ(AggregateReasons(0, {}), "0/0 nodes are available.");
}

}  // namespace
}  // namespace gpu_autoscaler::scheduler
