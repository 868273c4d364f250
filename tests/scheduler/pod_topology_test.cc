#include "scheduler/pod_topology.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "scheduler/scheduler_test_util.h"

namespace gpu_autoscaler::scheduler {
namespace {

using testutil::json;
using testutil::Node;
using testutil::Pod;

json Term(json match_labels, const std::string& topology_key, json extra = json::object()) {
  json term = {{"labelSelector", {{"matchLabels", match_labels}}}, {"topologyKey", topology_key}};
  for (auto& [k, v] : extra.items())
    term[k] = v;
  return term;
}
json Required(json terms) {
  return {{"requiredDuringSchedulingIgnoredDuringExecution", terms}};
}
json Spread(int max_skew, const std::string& key, json match_labels, json extra = json::object()) {
  json c = {{"maxSkew", max_skew},
            {"topologyKey", key},
            {"whenUnsatisfiable", "DoNotSchedule"},
            {"labelSelector", {{"matchLabels", match_labels}}}};
  for (auto& [k, v] : extra.items())
    c[k] = v;
  return c;
}

// A little cluster: nodes, and pods placed on them (with their own rules).
class Cluster {
 public:
  const kube::NodeView* AddNode(const std::string& name, json labels, json extra = {}) {
    testutil::NodeArgs args{.name = name, .labels = labels};
    if (extra.contains("taints")) args.taints = extra["taints"];
    nodes_.push_back(Node(args));
    views_.push_back(nodes_.back().get());
    return nodes_.back().get();
  }
  void Place(const std::string& name, const kube::NodeView* node, json labels,
             json spec_extra = json::object(), const std::string& ns = "default",
             json metadata_extra = json::object()) {
    metadata_extra["labels"] = labels;
    pods_.push_back(
        Pod({.name = name, .ns = ns, .spec_extra = spec_extra, .metadata_extra = metadata_extra}));
    auto rules = ParsePodTopology(*pods_.back());
    ASSERT_TRUE(rules.ok()) << rules.error().message();
    rules_.push_back(std::make_unique<PodTopologyRules>(std::move(rules).value()));
    placed_.push_back({.pod = pods_.back().get(),
                       .node = node,
                       .rules = rules_.back()->empty() ? nullptr : rules_.back().get()});
  }
  // The filter's verdict on every node, "" where the pod may go.
  std::vector<std::string> Verdicts(const kube::PodView& pod) {
    auto rules = ParsePodTopology(pod);
    EXPECT_TRUE(rules.ok()) << rules.error().message();
    TopologyFilter filter(pod, *rules, placed_, views_);
    std::vector<std::string> out;
    for (const kube::NodeView* n : views_)
      out.emplace_back(filter.Failure(*n));
    return out;
  }
  // The verdict on `node` with `nominated` (not placed) counted there, as for
  // pods nominated to the node.
  std::string VerdictWith(const kube::PodView& pod, const kube::NodeView* node,
                          std::shared_ptr<const kube::PodView> nominated) {
    auto rules = ParsePodTopology(pod);
    EXPECT_TRUE(rules.ok()) << rules.error().message();
    auto own = ParsePodTopology(*nominated);
    EXPECT_TRUE(own.ok()) << own.error().message();
    TopologyFilter filter(pod, *rules, placed_, views_);
    const PlacedPod added{
        .pod = nominated.get(), .node = node, .rules = own->empty() ? nullptr : &*own};
    return std::string(filter.Failure(*node, {}, std::span<const PlacedPod>(&added, 1)));
  }
  // The verdict on `node` with the named pods (all placed there) gone, as
  // preemption's dry run asks it.
  std::string VerdictWithout(const kube::PodView& pod, const kube::NodeView* node,
                             const std::vector<std::string>& names) {
    auto rules = ParsePodTopology(pod);
    EXPECT_TRUE(rules.ok()) << rules.error().message();
    TopologyFilter filter(pod, *rules, placed_, views_);
    std::vector<PlacedPod> removed;
    for (const PlacedPod& p : placed_) {
      if (std::find(names.begin(), names.end(), p.pod->name()) == names.end()) continue;
      EXPECT_EQ(p.node, node) << p.pod->name();
      removed.push_back(p);
    }
    EXPECT_EQ(removed.size(), names.size());
    return std::string(filter.Failure(*node, removed));
  }

 private:
  std::vector<std::shared_ptr<const kube::NodeView>> nodes_;
  std::vector<const kube::NodeView*> views_;
  std::vector<std::shared_ptr<const kube::PodView>> pods_;
  std::vector<std::unique_ptr<PodTopologyRules>> rules_;
  std::vector<PlacedPod> placed_;
};

std::shared_ptr<const kube::PodView> Incoming(json labels, json spec_extra,
                                              const std::string& ns = "default") {
  return Pod({.name = "incoming",
              .ns = ns,
              .spec_extra = spec_extra,
              .metadata_extra = {{"labels", labels}}});
}

const std::string kOk;
const std::string kAnti(kAntiAffinityRulesNotMatch);
const std::string kExisting(kExistingAntiAffinityNotMatch);
const std::string kAffinity(kAffinityRulesNotMatch);
const std::string kSpread(kSpreadNotMatch);
const std::string kMissing(kSpreadMissingLabel);

TEST(PodTopologyTest, AntiAffinityKeepsReplicasOffEachOthersHosts) {
  Cluster c;
  auto* n1 = c.AddNode("n1", {{"kubernetes.io/hostname", "n1"}});
  c.AddNode("n2", {{"kubernetes.io/hostname", "n2"}});
  c.Place("web-0", n1, {{"app", "web"}});
  auto pod = Incoming(
      {{"app", "web"}},
      {{"affinity",
        {{"podAntiAffinity", Required({Term({{"app", "web"}}, "kubernetes.io/hostname")})}}}});
  EXPECT_EQ(c.Verdicts(*pod), (std::vector<std::string>{kAnti, kOk}));
}

TEST(PodTopologyTest, AnExistingPodsAntiAffinityKeepsOthersOutOfItsZone) {
  Cluster c;
  auto* a = c.AddNode("a", {{"zone", "z1"}});
  c.AddNode("a2", {{"zone", "z1"}});
  c.AddNode("b", {{"zone", "z2"}});
  c.AddNode("bare", json::object());
  c.Place("db", a, {{"app", "db"}},
          {{"affinity", {{"podAntiAffinity", Required({Term({{"tier", "batch"}}, "zone")})}}}});
  auto batch = Incoming({{"tier", "batch"}}, json::object());
  EXPECT_EQ(c.Verdicts(*batch), (std::vector<std::string>{kExisting, kExisting, kOk, kOk}));
  // The term names no namespaces: it selects pods of db's own namespace only.
  auto elsewhere = Incoming({{"tier", "batch"}}, json::object(), "other");
  EXPECT_EQ(c.Verdicts(*elsewhere), (std::vector<std::string>{kOk, kOk, kOk, kOk}));
}

TEST(PodTopologyTest, AffinityNeedsAPartnerInTheDomainUnlessItStartsTheGroup) {
  Cluster c;
  auto* a = c.AddNode("a", {{"zone", "z1"}});
  c.AddNode("b", {{"zone", "z2"}});
  c.AddNode("bare", json::object());
  json affinity = {{"affinity", {{"podAffinity", Required({Term({{"app", "cache"}}, "zone")})}}}};
  // Nothing matches yet: a pod that matches its own term may start the group,
  // on a node that has the term's topology key.
  auto first = Incoming({{"app", "cache"}}, affinity);
  EXPECT_EQ(c.Verdicts(*first), (std::vector<std::string>{kOk, kOk, kAffinity}));
  // One that does not match it cannot go anywhere.
  auto client = Incoming({{"app", "client"}}, affinity);
  EXPECT_EQ(c.Verdicts(*client), (std::vector<std::string>{kAffinity, kAffinity, kAffinity}));
  c.Place("cache-0", a, {{"app", "cache"}});
  EXPECT_EQ(c.Verdicts(*client), (std::vector<std::string>{kOk, kAffinity, kAffinity}));
  EXPECT_EQ(c.Verdicts(*first), (std::vector<std::string>{kOk, kAffinity, kAffinity}));
}

TEST(PodTopologyTest, NamespacesAndAnEmptyNamespaceSelectorWidenATerm) {
  Cluster c;
  auto* a = c.AddNode("a", {{"h", "a"}});
  c.AddNode("b", {{"h", "b"}});
  c.Place("web", a, {{"app", "web"}}, json::object(), "team-a");
  auto own_ns = Incoming(
      {{"app", "web"}},
      {{"affinity", {{"podAntiAffinity", Required({Term({{"app", "web"}}, "h")})}}}}, "team-b");
  EXPECT_EQ(c.Verdicts(*own_ns), (std::vector<std::string>{kOk, kOk}));
  auto listed =
      Incoming({{"app", "web"}},
               {{"affinity",
                 {{"podAntiAffinity",
                   Required({Term({{"app", "web"}}, "h", {{"namespaces", {"team-a"}}})})}}}},
               "team-b");
  EXPECT_EQ(c.Verdicts(*listed), (std::vector<std::string>{kAnti, kOk}));
  auto every = Incoming(
      {{"app", "web"}},
      {{"affinity",
        {{"podAntiAffinity",
          Required({Term({{"app", "web"}}, "h", {{"namespaceSelector", json::object()}})})}}}},
      "team-b");
  EXPECT_EQ(c.Verdicts(*every), (std::vector<std::string>{kAnti, kOk}));
}

TEST(PodTopologyTest, SpreadBoundsTheSkewAcrossZones) {
  Cluster c;
  auto* a = c.AddNode("a", {{"zone", "z1"}});
  auto* b = c.AddNode("b", {{"zone", "z2"}});
  c.AddNode("c", {{"zone", "z3"}});
  c.AddNode("bare", json::object());
  c.Place("x-0", a, {{"app", "x"}});
  c.Place("x-1", a, {{"app", "x"}});
  c.Place("x-2", b, {{"app", "x"}});
  c.Place("other", b, {{"app", "y"}});
  auto pod = Incoming({{"app", "x"}},
                      {{"topologySpreadConstraints", {Spread(1, "zone", {{"app", "x"}})}}});
  // z1: 2 + 1 - 0 = 3, z2: 1 + 1 - 0 = 2, z3: 0 + 1 - 0 = 1.
  EXPECT_EQ(c.Verdicts(*pod), (std::vector<std::string>{kSpread, kSpread, kOk, kMissing}));
  auto loose = Incoming({{"app", "x"}},
                        {{"topologySpreadConstraints", {Spread(2, "zone", {{"app", "x"}})}}});
  EXPECT_EQ(c.Verdicts(*loose), (std::vector<std::string>{kSpread, kOk, kOk, kMissing}));
}

TEST(PodTopologyTest, MinDomainsCountsTheMissingDomainsAsEmpty) {
  Cluster c;
  auto* a = c.AddNode("a", {{"zone", "z1"}});
  auto* b = c.AddNode("b", {{"zone", "z2"}});
  c.Place("x-0", a, {{"app", "x"}});
  c.Place("x-1", b, {{"app", "x"}});
  auto two = Incoming({{"app", "x"}},
                      {{"topologySpreadConstraints", {Spread(1, "zone", {{"app", "x"}})}}});
  EXPECT_EQ(c.Verdicts(*two), (std::vector<std::string>{kOk, kOk}));
  auto three = Incoming(
      {{"app", "x"}},
      {{"topologySpreadConstraints", {Spread(1, "zone", {{"app", "x"}}, {{"minDomains", 3}})}}});
  EXPECT_EQ(c.Verdicts(*three), (std::vector<std::string>{kSpread, kSpread}));
}

TEST(PodTopologyTest, SpreadCountsOnlyNodesThePodCouldUseUnlessTheyAreIgnored) {
  Cluster c;
  auto* a = c.AddNode("a", {{"zone", "z1"}, {"gpu", "yes"}});
  auto* b = c.AddNode("b", {{"zone", "z2"}, {"gpu", "yes"}});
  c.AddNode("cpu", {{"zone", "z3"}, {"gpu", "no"}});
  c.Place("x-0", a, {{"app", "x"}});
  c.Place("x-1", b, {{"app", "x"}});
  json selector = {{"gpu", "yes"}};
  auto honor = Incoming({{"app", "x"}},
                        {{"nodeSelector", selector},
                         {"topologySpreadConstraints", {Spread(1, "zone", {{"app", "x"}})}}});
  // z3's node is not one the pod could use: its domain is not counted.
  EXPECT_EQ(c.Verdicts(*honor), (std::vector<std::string>{kOk, kOk, kOk}));
  auto ignore = Incoming(
      {{"app", "x"}}, {{"nodeSelector", selector},
                       {"topologySpreadConstraints",
                        {Spread(1, "zone", {{"app", "x"}}, {{"nodeAffinityPolicy", "Ignore"}})}}});
  EXPECT_EQ(c.Verdicts(*ignore), (std::vector<std::string>{kSpread, kSpread, kOk}));
}

TEST(PodTopologyTest, SpreadSkipsTerminatingPodsOtherNamespacesAndOtherRevisions) {
  Cluster c;
  auto* a = c.AddNode("a", {{"zone", "z1"}});
  c.AddNode("b", {{"zone", "z2"}});
  c.Place("gone", a, {{"app", "x"}, {"hash", "1"}}, json::object(), "default",
          {{"deletionTimestamp", "2026-12-07T00:00:00Z"}});
  c.Place("elsewhere", a, {{"app", "x"}, {"hash", "1"}}, json::object(), "other");
  c.Place("old", a, {{"app", "x"}, {"hash", "0"}});
  json constraint = Spread(1, "zone", {{"app", "x"}}, {{"matchLabelKeys", {"hash"}}});
  auto pod = Incoming({{"app", "x"}, {"hash", "1"}}, {{"topologySpreadConstraints", {constraint}}});
  EXPECT_EQ(c.Verdicts(*pod), (std::vector<std::string>{kOk, kOk}));
  // Without matchLabelKeys the old revision counts: z1 has 1, z2 none.
  auto any = Incoming({{"app", "x"}, {"hash", "1"}},
                      {{"topologySpreadConstraints", {Spread(1, "zone", {{"app", "x"}})}}});
  EXPECT_EQ(c.Verdicts(*any), (std::vector<std::string>{kSpread, kOk}));
}

TEST(PodTopologyTest, WhatCannotBeReadIsSaid) {
  auto bad = [](json spec_extra) {
    auto rules = ParsePodTopology(*Incoming({{"app", "x"}}, spec_extra));
    EXPECT_FALSE(rules.ok());
    return rules.ok() ? std::string() : rules.error().message();
  };
  EXPECT_NE(
      bad({{"affinity",
            {{"podAffinity",
              Required({Term({{"app", "x"}}, "zone",
                             {{"namespaceSelector", {{"matchLabels", {{"team", "a"}}}}}})})}}}})
          .find("namespaceSelector: only {} (every namespace) is supported"),
      std::string::npos);
  EXPECT_NE(bad({{"affinity", {{"podAntiAffinity", Required({Term({{"app", "x"}}, "")})}}}})
                .find("podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]."
                      "topologyKey: Required value"),
            std::string::npos);
  EXPECT_NE(bad({{"topologySpreadConstraints", {Spread(0, "zone", {{"app", "x"}})}}})
                .find("spec.topologySpreadConstraints[0].maxSkew: must be greater than zero"),
            std::string::npos);
  json odd = Spread(1, "zone", {{"app", "x"}});
  odd["whenUnsatisfiable"] = "Sometimes";
  EXPECT_NE(bad({{"topologySpreadConstraints", {odd}}}).find("Unsupported value: \"Sometimes\""),
            std::string::npos);
  // ScheduleAnyway and preferred terms only score: nothing to filter.
  json soft = Spread(1, "zone", {{"app", "x"}});
  soft["whenUnsatisfiable"] = "ScheduleAnyway";
  auto rules = ParsePodTopology(
      *Incoming({{"app", "x"}},
                {{"topologySpreadConstraints", {soft}},
                 {"affinity",
                  {{"podAntiAffinity",
                    {{"preferredDuringSchedulingIgnoredDuringExecution",
                      {{{"weight", 10}, {"podAffinityTerm", Term({{"app", "x"}}, "zone")}}}}}}}}}));
  ASSERT_TRUE(rules.ok()) << rules.error().message();
  EXPECT_TRUE(rules->empty());
}

TEST(PodTopologyTest, ATermWithoutSelectorSelectsNoPod) {
  Cluster c;
  auto* a = c.AddNode("a", {{"h", "a"}});
  c.Place("web", a, {{"app", "web"}});
  auto pod = Incoming({{"app", "web"}},
                      {{"affinity", {{"podAntiAffinity", Required({{{"topologyKey", "h"}}})}}}});
  EXPECT_EQ(c.Verdicts(*pod), (std::vector<std::string>{kOk}));
}

// kube-scheduler's InterPodAffinity filter checks the pod's affinity, then its
// anti-affinity, then the existing pods' anti-affinity, and names the first
// that fails.
TEST(PodTopologyTest, ThePodsOwnRulesAreNamedBeforeExistingPods) {
  Cluster c;
  auto* a = c.AddNode("a", {{"h", "a"}});
  json anti = {{"affinity", {{"podAntiAffinity", Required({Term({{"app", "web"}}, "h")})}}}};
  c.Place("web-0", a, {{"app", "web"}}, anti);
  auto web = Incoming({{"app", "web"}}, anti);
  EXPECT_EQ(c.Verdicts(*web), (std::vector<std::string>{kAnti}));
  json both = anti;
  both["affinity"]["podAffinity"] = Required({Term({{"app", "cache"}}, "h")});
  auto picky = Incoming({{"app", "web"}}, both);
  EXPECT_EQ(c.Verdicts(*picky), (std::vector<std::string>{kAffinity}));
}

// A partner counts for the pod's affinity only when it matches every term.
TEST(PodTopologyTest, APartnerMustMatchEveryAffinityTerm) {
  Cluster c;
  auto* a = c.AddNode("a", {{"h", "a"}, {"zone", "z1"}});
  auto* b = c.AddNode("b", {{"h", "b"}, {"zone", "z1"}});
  c.Place("cache", a, {{"app", "cache"}});
  c.Place("db", a, {{"tier", "db"}});
  json two = {{"affinity",
               {{"podAffinity",
                 Required({Term({{"app", "cache"}}, "h"), Term({{"tier", "db"}}, "zone")})}}}};
  auto pod = Incoming({{"app", "client"}}, two);
  // Each term has a match on a, but no pod matches both.
  EXPECT_EQ(c.Verdicts(*pod), (std::vector<std::string>{kAffinity, kAffinity}));
  c.Place("both", b, {{"app", "cache"}, {"tier", "db"}});
  EXPECT_EQ(c.Verdicts(*pod), (std::vector<std::string>{kAffinity, kOk}));
}

TEST(PodTopologyTest, OnlyAntiAffinityAndSkewMayBeClearedByEvictions) {
  EXPECT_TRUE(EvictionsMayClear(kAnti));
  EXPECT_TRUE(EvictionsMayClear(kExisting));
  EXPECT_TRUE(EvictionsMayClear(kSpread));
  EXPECT_FALSE(EvictionsMayClear(kAffinity));
  EXPECT_FALSE(EvictionsMayClear(kMissing));
  EXPECT_FALSE(EvictionsMayClear(""));
}

// Preemption's dry run: the verdict with some of the node's pods gone.
TEST(PodTopologyTest, RemovedPodsNoLongerCount) {
  Cluster c;
  auto* a = c.AddNode("a", {{"h", "a"}, {"zone", "z1"}});
  auto* b = c.AddNode("b", {{"h", "b"}, {"zone", "z1"}});
  json anti = {{"affinity", {{"podAntiAffinity", Required({Term({{"app", "web"}}, "zone")})}}}};
  c.Place("web-0", a, {{"app", "web"}});
  c.Place("web-1", a, {{"app", "web"}});
  c.Place("web-2", b, {{"app", "web"}});
  auto pod = Incoming({{"app", "other"}}, anti);
  // The zone keeps web-2 on b whatever a gives up.
  EXPECT_EQ(c.VerdictWithout(*pod, a, {"web-0", "web-1"}), kAnti);
  EXPECT_EQ(c.VerdictWithout(*pod, b, {"web-2"}), kAnti);

  Cluster host;
  auto* h1 = host.AddNode("h1", {{"h", "h1"}});
  host.Place("lone", h1, {{"app", "web"}});
  host.Place("guard", h1, {{"app", "db"}},
             {{"affinity", {{"podAntiAffinity", Required({Term({{"tier", "batch"}}, "h")})}}}});
  auto own =
      Incoming({{"tier", "batch"}},
               {{"affinity", {{"podAntiAffinity", Required({Term({{"app", "web"}}, "h")})}}}});
  EXPECT_EQ(host.VerdictWithout(*own, h1, {}), kAnti);
  EXPECT_EQ(host.VerdictWithout(*own, h1, {"lone"}), kExisting);
  EXPECT_EQ(host.VerdictWithout(*own, h1, {"guard"}), kAnti);
  EXPECT_EQ(host.VerdictWithout(*own, h1, {"lone", "guard"}), kOk);
}

TEST(PodTopologyTest, RemovedPodsLowerTheirDomainsCountAndMaybeTheMinimum) {
  Cluster c;
  auto* a = c.AddNode("a", {{"zone", "z1"}});
  auto* b = c.AddNode("b", {{"zone", "z2"}});
  c.Place("x-0", a, {{"app", "x"}});
  c.Place("x-1", a, {{"app", "x"}});
  c.Place("x-2", a, {{"app", "x"}});
  c.Place("x-3", b, {{"app", "x"}});
  auto pod = Incoming({{"app", "x"}},
                      {{"topologySpreadConstraints", {Spread(1, "zone", {{"app", "x"}})}}});
  // z1: 3 + 1 - 1 = 3 > 1; with two gone, 1 + 1 - 1 = 1.
  EXPECT_EQ(c.VerdictWithout(*pod, a, {}), kSpread);
  EXPECT_EQ(c.VerdictWithout(*pod, a, {"x-0"}), kSpread);
  EXPECT_EQ(c.VerdictWithout(*pod, a, {"x-0", "x-1"}), kOk);
  // z2 already fits; emptying it makes it the minimum: 0 + 1 - 0.
  EXPECT_EQ(c.VerdictWithout(*pod, b, {"x-3"}), kOk);
}

TEST(PodTopologyTest, RemovingTheLastPartnersLetsThePodStartTheGroupAgain) {
  Cluster c;
  auto* a = c.AddNode("a", {{"zone", "z1"}});
  auto* b = c.AddNode("b", {{"zone", "z2"}});
  c.Place("cache-0", a, {{"app", "cache"}});
  json affinity = {{"affinity", {{"podAffinity", Required({Term({{"app", "cache"}}, "zone")})}}}};
  auto member = Incoming({{"app", "cache"}}, affinity);
  EXPECT_EQ(c.VerdictWithout(*member, b, {}), kAffinity);
  // With cache-0 gone nothing matches, and the pod matches its own term.
  EXPECT_EQ(c.VerdictWithout(*member, a, {"cache-0"}), kOk);
  auto client = Incoming({{"app", "client"}}, affinity);
  EXPECT_EQ(c.VerdictWithout(*client, a, {}), kOk);
  EXPECT_EQ(c.VerdictWithout(*client, a, {"cache-0"}), kAffinity);
}

TEST(PodTopologyTest, AnAddedPodCountsOnItsNodeAndMayRaiseTheMinimum) {
  Cluster c;
  auto* a = c.AddNode("a", {{"zone", "z1"}});
  auto* b = c.AddNode("b", {{"zone", "z2"}});
  c.Place("x-0", a, {{"app", "x"}});
  json spread = {{"topologySpreadConstraints", {Spread(1, "zone", {{"app", "x"}})}}};
  auto pod = Incoming({{"app", "x"}}, spread);
  auto nominated = Incoming({{"app", "x"}}, spread);
  EXPECT_EQ(c.Verdicts(*pod), (std::vector<std::string>{kSpread, kOk}));
  // One more in z2 makes both zones 1: z2 is 1 + 1 - 1.
  EXPECT_EQ(c.VerdictWith(*pod, b, nominated), kOk);
  // One more in z1: 2 + 1 - 0.
  EXPECT_EQ(c.VerdictWith(*pod, a, nominated), kSpread);
  // An added pod's anti-affinity closes its node; an added partner opens it.
  auto guard =
      Incoming({{"app", "guard"}},
               {{"affinity", {{"podAntiAffinity", Required({Term({{"app", "x"}}, "zone")})}}}});
  EXPECT_EQ(c.VerdictWith(*pod, b, guard), kExisting);
  auto follower =
      Incoming({{"app", "y"}},
               {{"affinity", {{"podAffinity", Required({Term({{"app", "guard"}}, "zone")})}}}});
  EXPECT_EQ(c.VerdictWith(*follower, b, guard), kOk);
  EXPECT_EQ(c.Verdicts(*follower), (std::vector<std::string>{kAffinity, kAffinity}));
}

}  // namespace
}  // namespace gpu_autoscaler::scheduler
