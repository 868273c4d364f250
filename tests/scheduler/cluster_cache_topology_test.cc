// ClusterCache's inter-pod rules (cluster_cache_topology.cc): a pod with rules
// reads only the placed pods its selectors could select, found through a label
// index. Every way a pod's labels come and go must keep the index right, and
// no selector may lead it to leave out a pod that matters.

#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "scheduler/cluster_cache.h"
#include "scheduler/node_fit.h"
#include "scheduler/pod_topology.h"
#include "scheduler/scheduler_test_util.h"

namespace gpu_autoscaler::scheduler {
namespace {

using testutil::json;
using testutil::Node;
using testutil::Pod;

std::unique_ptr<ClusterCache> NewCache() {
  auto cache = ClusterCache::Create({.policy = "FragLookahead"});
  EXPECT_TRUE(cache.ok());
  return std::move(cache).value();
}

TEST(ClusterCacheTopologyTest, TheLabelIndexFollowsEveryChangeOfAPodsLabels) {
  auto cache = NewCache();
  for (const char* name : {"a", "b"}) {
    cache->UpsertNode(Node({.name = name,
                            .allocatable_extra = {{"nvidia.com/gpu", "8"}},
                            .labels = {{"host", name}}}));
  }
  auto running = [](const std::string& name, const std::string& node, const std::string& gpu,
                    const std::string& app) {
    return Pod({.name = name,
                .requests = {{"nvidia.com/gpu", "1"}},
                .annotations = {{"gpuautoscaler.io/gpu-indices", gpu}},
                .node = node,
                .phase = "Running",
                .metadata_extra = {{"labels", {{"app", app}}}}});
  };
  const json anti = {
      {"podAntiAffinity",
       {{"requiredDuringSchedulingIgnoredDuringExecution",
         {{{"labelSelector", {{"matchLabels", {{"app", "web"}}}}}, {"topologyKey", "host"}}}}}}};
  auto web = Pod({.name = "new",
                  .requests = {{"nvidia.com/gpu", "1"}},
                  .spec_extra = {{"affinity", anti}},
                  .metadata_extra = {{"labels", {{"app", "web"}}}}});
  const std::string both_refused =
      "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules.";
  auto node_for_web = [&]() -> std::string {
    Result<PlacementChoice> c = cache->Select(*web, true);
    return c.ok() ? c->node : c.error().message();
  };
  cache->UpsertPod(running("web-0", "a", "0", "web"));
  cache->UpsertPod(running("api-0", "b", "0", "api"));
  EXPECT_EQ(node_for_web(), "b");                       // the first lookup builds the index
  cache->UpsertPod(running("api-0", "b", "0", "web"));  // relabelled into the selector
  EXPECT_EQ(node_for_web(), both_refused);
  cache->UpsertPod(running("web-0", "a", "0", "api"));  // and out of it
  EXPECT_EQ(node_for_web(), "a");
  cache->UpsertPod(running("web-0", "a", "0", "web"));
  cache->DeletePod("default", "api-0");
  EXPECT_EQ(node_for_web(), "b");
  cache->UpsertPod(running("web-2", "b", "1", "web"));  // a pod new to the cache
  EXPECT_EQ(node_for_web(), both_refused);
  cache->UpsertPod(Pod({.name = "web-2", .node = "b", .phase = "Succeeded"}));  // finished
  EXPECT_EQ(node_for_web(), "b");
  // An assumed replica counts while its Binding is in flight, and not once forgotten.
  auto replica = Pod({.name = "web-3",
                      .requests = {{"nvidia.com/gpu", "1"}},
                      .metadata_extra = {{"labels", {{"app", "web"}}}}});
  ASSERT_TRUE(cache->Assume(replica, {.node = "b", .gpus = {2}}).ok());
  EXPECT_EQ(node_for_web(), both_refused);
  cache->Forget("default", "web-3");
  EXPECT_EQ(node_for_web(), "b");
  // A deleted node drops the replica assumed there, from the index too (else
  // the next lookup reads a freed entry: ASan's build sees it).
  ASSERT_TRUE(cache->Assume(replica, {.node = "b", .gpus = {2}}).ok());
  cache->DeleteNode("b");
  EXPECT_EQ(node_for_web(),
            "0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules.");
}

TEST(ClusterCacheTopologyTest, ASelectorOnAKeysPresenceFindsThePodsWithAnyValueOfIt) {
  auto cache = NewCache();
  for (const char* name : {"a", "b", "c"}) {
    cache->UpsertNode(Node({.name = name,
                            .allocatable_extra = {{"nvidia.com/gpu", "8"}},
                            .labels = {{"host", name}}}));
  }
  auto running = [](const std::string& name, const std::string& node, const json& labels) {
    return Pod({.name = name,
                .requests = {{"nvidia.com/gpu", "1"}},
                .annotations = {{"gpuautoscaler.io/gpu-indices", "0"}},
                .node = node,
                .phase = "Running",
                .metadata_extra = {{"labels", labels}}});
  };
  // Keep off any host that runs a pod of some team, whichever team.
  const json anti = {
      {"podAntiAffinity",
       {{"requiredDuringSchedulingIgnoredDuringExecution",
         {{{"labelSelector", {{"matchExpressions", {{{"key", "team"}, {"operator", "Exists"}}}}}},
           {"topologyKey", "host"}}}}}}};
  auto solo = Pod(
      {.name = "solo", .requests = {{"nvidia.com/gpu", "1"}}, .spec_extra = {{"affinity", anti}}});
  auto node_for_solo = [&]() -> std::string {
    Result<PlacementChoice> c = cache->Select(*solo, true);
    return c.ok() ? c->node : c.error().message();
  };
  cache->UpsertPod(running("train", "a", {{"team", "research"}}));
  cache->UpsertPod(running("serve", "b", {{"team", "search"}, {"app", "web"}}));
  cache->UpsertPod(running("batch", "c", {{"app", "batch"}}));
  EXPECT_EQ(node_for_solo(), "c");
  cache->UpsertPod(running("batch", "c", {{"team", ""}}));  // an empty value still carries the key
  EXPECT_EQ(node_for_solo(),
            "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.");
  cache->DeletePod("default", "serve");
  EXPECT_EQ(node_for_solo(), "b");
}

// Random clusters, random labels and random selectors of every operator: the
// cache's verdict, which reads only the pods the index gives, must be that of
// a filter built from every placed pod.
class RandomRules {
 public:
  explicit RandomRules(uint32_t seed) : rng_(seed) {}

  bool Chance(int percent) { return Pick(100) < percent; }
  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

  json Labels() {
    json labels = json::object();
    for (const char* key : {"app", "tier", "team"}) {
      if (Chance(60)) labels[key] = Value();
    }
    return labels;
  }

  json Selector() {
    json selector = json::object();
    if (Chance(40)) selector["matchLabels"] = {{Key(), Value()}};
    json expressions = json::array();
    for (int i = Chance(60) ? 1 + Pick(2) : 0; i > 0; --i) {
      static constexpr const char* kOps[] = {"In", "NotIn", "Exists", "DoesNotExist"};
      const std::string op = kOps[Pick(4)];
      json e = {{"key", Key()}, {"operator", op}};
      if (op == "In" || op == "NotIn") {
        e["values"] = json::array({Value()});
        if (Chance(50)) e["values"].push_back(Value());
      }
      expressions.push_back(e);
    }
    if (!expressions.empty()) selector["matchExpressions"] = expressions;
    return selector;
  }

  json Term() {
    json term = {{"topologyKey", Chance(50) ? "host" : "zone"}};
    if (!Chance(5)) term["labelSelector"] = Selector();  // none: selects nothing
    return term;
  }

  json Spread() {
    return {{"maxSkew", 1 + Pick(2)},
            {"topologyKey", Chance(50) ? "host" : "zone"},
            {"whenUnsatisfiable", "DoNotSchedule"},
            {"labelSelector", Selector()}};
  }

 private:
  std::string Key() {
    static constexpr const char* kKeys[] = {"app", "tier", "team"};
    return kKeys[Pick(3)];
  }
  std::string Value() {
    static constexpr const char* kValues[] = {"a", "b", "c"};
    return kValues[Pick(3)];
  }

  std::mt19937 rng_;
};

json Required(const json& term) {
  return {{"requiredDuringSchedulingIgnoredDuringExecution", json::array({term})}};
}

TEST(ClusterCacheTopologyTest, TheIndexNeverChangesAVerdict) {
  int refused = 0;
  int placed = 0;
  for (uint32_t trial = 0; trial < 300; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    RandomRules random(trial);
    auto cache = NewCache();
    std::vector<std::shared_ptr<const kube::NodeView>> nodes;
    for (int n = 0; n < 6; ++n) {
      const std::string name = "n" + std::to_string(n);
      json labels = {{"host", name}};
      if (n != 5 || random.Chance(50)) labels["zone"] = "z" + std::to_string(n % 3);
      nodes.push_back(
          Node({.name = name, .allocatable_extra = {{"nvidia.com/gpu", "8"}}, .labels = labels}));
      cache->UpsertNode(nodes.back());
    }
    std::vector<std::shared_ptr<const kube::PodView>> pods;
    std::vector<int> gpus_used(nodes.size(), 0);
    for (int p = 0; p < 14; ++p) {
      int node = random.Pick(static_cast<int>(nodes.size()));
      while (gpus_used[node] == 7)
        node = (node + 1) % static_cast<int>(nodes.size());  // one free
      json spec = json::object();
      if (random.Chance(20)) spec["affinity"] = {{"podAntiAffinity", Required(random.Term())}};
      pods.push_back(
          Pod({.name = "p" + std::to_string(p),
               .requests = {{"nvidia.com/gpu", "1"}},
               .annotations = {{"gpuautoscaler.io/gpu-indices", std::to_string(gpus_used[node]++)}},
               .node = "n" + std::to_string(node),
               .spec_extra = spec,
               .phase = "Running",
               .metadata_extra = {{"labels", random.Labels()}}}));
      cache->UpsertPod(pods.back());
    }
    // A few decisions on one cache: the index built by one serves the next.
    for (int d = 0; d < 3; ++d) {
      json affinity = json::object();
      if (random.Chance(50)) affinity["podAffinity"] = Required(random.Term());
      if (random.Chance(50)) affinity["podAntiAffinity"] = Required(random.Term());
      json spec = json::object();
      if (!affinity.empty()) spec["affinity"] = affinity;
      if (random.Chance(40)) spec["topologySpreadConstraints"] = json::array({random.Spread()});
      const json labels = random.Labels();
      SCOPED_TRACE("labels " + labels.dump() + ", spec " + spec.dump());
      auto incoming = Pod({.name = "incoming-" + std::to_string(d),
                           .requests = {{"nvidia.com/gpu", "1"}},
                           .spec_extra = spec,
                           .metadata_extra = {{"labels", labels}}});
      Result<PodTopologyRules> rules = ParsePodTopology(*incoming);
      ASSERT_TRUE(rules.ok()) << rules.error().message();

      // The oracle: every placed pod, with its own anti-affinity.
      std::vector<PodTopologyRules> own(pods.size());
      std::vector<PlacedPod> all;
      for (size_t i = 0; i < pods.size(); ++i) {
        Result<std::vector<PodAffinityTerm>> anti = ParseRequiredAntiAffinity(*pods[i]);
        ASSERT_TRUE(anti.ok());
        own[i].anti_affinity = std::move(anti).value();
        const kube::NodeView* node = nullptr;
        for (const auto& n : nodes) {
          if (n->name() == pods[i]->node_name()) node = n.get();
        }
        all.push_back({.pod = pods[i].get(), .node = node, .rules = &own[i]});
      }
      std::vector<const kube::NodeView*> node_views;
      for (const auto& n : nodes)
        node_views.push_back(n.get());
      TopologyFilter filter(*incoming, *rules, all, node_views);
      std::map<std::string, int, std::less<>> reasons;
      for (const auto& n : nodes) {
        if (std::string_view why = filter.Failure(*n); !why.empty()) ++reasons[std::string(why)];
      }

      Result<PlacementChoice> choice = cache->Select(*incoming, true);
      const int failed = std::accumulate(reasons.begin(), reasons.end(), 0,
                                         [](int sum, const auto& r) { return sum + r.second; });
      if (failed == static_cast<int>(nodes.size())) {
        ASSERT_FALSE(choice.ok()) << "placed on " << choice->node;
        EXPECT_EQ(choice.error().message(),
                  AggregateReasons(static_cast<int>(nodes.size()), reasons));
        ++refused;
      } else {
        ASSERT_TRUE(choice.ok()) << choice.error().message();
        for (const auto& n : nodes) {
          if (n->name() == choice->node) {
            EXPECT_EQ(filter.Failure(*n), "") << choice->node;
          }
        }
        ++placed;
      }
    }
  }
  // Both outcomes are exercised, many times.
  EXPECT_GT(refused, 100);
  EXPECT_GT(placed, 100);
}

}  // namespace
}  // namespace gpu_autoscaler::scheduler
