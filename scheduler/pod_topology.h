// File: scheduler/pod_topology.h
//
// Where a pod may go given the pods already placed, for the standalone
// scheduler: required inter-pod affinity and anti-affinity (kube-scheduler's
// InterPodAffinity filter, existing pods' anti-affinity included) and
// topology spread constraints with whenUnsatisfiable: DoNotSchedule (its
// PodTopologySpread filter). Preferred terms and ScheduleAnyway constraints
// only score in kube-scheduler; the placement policy scores here, so they
// are not read.
//
//   Result<PodTopologyRules> rules = ParsePodTopology(pod);    // once per pod
//   TopologyFilter filter(pod, *rules, placed, nodes);         // once per decision
//   std::string_view why = filter.Failure(node);               // per node; "" fits
//
// A term's namespaceSelector may be absent or {} (every namespace); one with
// labels would need the namespaces' labels, which this scheduler does not
// watch, so ParsePodTopology refuses it with a clear error.
//
// Thread-safety: pure functions; a TopologyFilter is immutable once built.
#pragma once

#include <climits>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "kube/node_view.h"
#include "kube/pod_view.h"
#include "kube/selector.h"

namespace gpu_autoscaler::scheduler {

// kube-scheduler's reasons, as the aggregated message shows them.
inline constexpr std::string_view kAffinityRulesNotMatch =
    "node(s) didn't match pod affinity rules";
inline constexpr std::string_view kAntiAffinityRulesNotMatch =
    "node(s) didn't match pod anti-affinity rules";
inline constexpr std::string_view kExistingAntiAffinityNotMatch =
    "node(s) didn't satisfy existing pods anti-affinity rules";
inline constexpr std::string_view kSpreadNotMatch =
    "node(s) didn't match pod topology spread constraints";
inline constexpr std::string_view kSpreadMissingLabel =
    "node(s) didn't match pod topology spread constraints (missing required label)";

struct PodAffinityTerm {
  kube::LabelSelector selector;           // matchLabelKeys/mismatchLabelKeys folded in
  bool matches_nothing = false;           // no labelSelector: the term selects no pod
  std::vector<std::string> namespaces{};  // none: the owner's own namespace
  bool all_namespaces = false;            // namespaceSelector: {}
  std::string topology_key{};
};

struct SpreadConstraint {
  int max_skew = 1;
  std::string topology_key{};
  kube::LabelSelector selector;  // matchLabelKeys folded in
  bool matches_nothing = false;  // no labelSelector
  int min_domains = 1;
  bool honor_node_affinity = true;  // nodeAffinityPolicy: Honor (the default)
  bool honor_taints = false;        // nodeTaintsPolicy: Honor (default Ignore)
};

// A node's eligibility for every constraint fits one 64-bit mask; a pod with
// more DoNotSchedule constraints is refused with a clear error.
inline constexpr size_t kMaxSpreadConstraints = 64;

struct PodTopologyRules {
  std::vector<PodAffinityTerm> affinity{};       // required podAffinity
  std::vector<PodAffinityTerm> anti_affinity{};  // required podAntiAffinity
  std::vector<SpreadConstraint> spread{};        // DoNotSchedule only
  bool empty() const { return affinity.empty() && anti_affinity.empty() && spread.empty(); }
};

// The pod's rules; empty when it has none. InvalidArgument, naming the field,
// for what the API server's validation refuses or this scheduler cannot
// evaluate.
Result<PodTopologyRules> ParsePodTopology(const kube::PodView& pod);
// Only the required anti-affinity: all a placed pod's rules do to others.
// Cheap for a pod without (no JSON is parsed).
Result<std::vector<PodAffinityTerm>> ParseRequiredAntiAffinity(const kube::PodView& pod);

// Whether `term`, written by a pod of namespace `owner_ns`, selects `pod`.
bool TermSelects(const PodAffinityTerm& term, std::string_view owner_ns, const kube::PodView& pod);

// A pod already on a node (bound, or assumed while its Binding is sent).
struct PlacedPod {
  const kube::PodView* pod = nullptr;
  const kube::NodeView* node = nullptr;
  const PodTopologyRules* rules = nullptr;  // its own; null when none
};

// Whether evicting pods could clear `reason`: kube-scheduler's Unschedulable
// (either anti-affinity, skew) rather than UnschedulableAndUnresolvable (no
// partner for affinity, a missing topology label), which preemption skips.
bool EvictionsMayClear(std::string_view reason);

class TopologyFilter {
 public:
  // `placed`: at least every placed pod that one of `rules`' selectors
  // selects, and those with required anti-affinity (others count for nothing). `nodes`: every node
  // (spread constraints count domains over the nodes the pod could use). `pod` and `rules` must
  // outlive the filter.
  TopologyFilter(const kube::PodView& pod, const PodTopologyRules& rules,
                 std::span<const PlacedPod> placed, std::span<const kube::NodeView* const> nodes);

  // "" when `node` satisfies every rule, else kube-scheduler's reason.
  std::string_view Failure(const kube::NodeView& node) const { return Failure(node, {}, {}); }
  // The same as if the `removed` pods, each placed on `node` (and in `placed`
  // if it counts), were gone, and the `added` pods (not in `placed`) were
  // placed on `node`: preemption's dry run and the pods nominated to the node
  // (kube-scheduler's RemovePod and AddPod). O((removed + added) x rules).
  std::string_view Failure(const kube::NodeView& node, std::span<const PlacedPod> removed,
                           std::span<const PlacedPod> added = {}) const;

 private:
  struct Domain {
    std::string key;
    std::string value;
    bool operator==(const Domain&) const = default;
  };
  struct DomainHash {
    size_t operator()(const Domain& d) const;
  };
  // Looked up by string_view, without a copy per node.
  struct ValueHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // Matching pods by topology value.
  using Counts = std::unordered_map<std::string, int, ValueHash, std::equal_to<>>;
  struct Spread {
    const SpreadConstraint* constraint = nullptr;
    Counts counts{};  // over the eligible nodes only
    int min = 0;
    std::string min_value{};   // a domain whose count is `min`
    int second_min = INT_MAX;  // the smallest count of the other domains
    int self = 0;              // 1 when the pod matches its own selector
  };
  bool MatchesAllAffinityTerms(const kube::PodView& other) const;
  bool CountsForSpread(const Spread& s, const kube::PodView& other) const;
  // Bit i set when spread constraint i counts `node`'s domain: the node has
  // every topology key, and the pod could use it as the constraint's
  // policies say.
  uint64_t SpreadEligible(const kube::NodeView& node) const;

  const kube::PodView& pod_;
  const PodTopologyRules& rules_;
  // Existing pods' anti-affinity terms that select the pod, by domain.
  std::unordered_map<Domain, int, DomainHash> existing_anti_affinity_{};
  std::vector<Counts> affinity_counts_{};  // per term: pods matching every term
  int affinity_pairs_ = 0;                 // the sum of affinity_counts_
  bool self_matches_affinity_ = false;
  std::vector<Counts> anti_affinity_counts_{};  // per term
  std::vector<Spread> spread_{};
};

}  // namespace gpu_autoscaler::scheduler
