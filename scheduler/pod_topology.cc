#include "scheduler/pod_topology.h"

#include <algorithm>
#include <climits>
#include <functional>

#include <nlohmann/json.hpp>

#include "scheduler/node_fit.h"

namespace gpu_autoscaler::scheduler {
namespace {

using nlohmann::json;

bool SelectorMatches(const kube::LabelSelector& selector, std::span<const kube::Label> labels) {
  for (const auto& r : selector.requirements()) {
    if (!kube::LabelSelector::Holds(r, kube::FindLabel(labels, r.key))) return false;
  }
  return true;
}

// The labelSelector, with the owner's values of matchLabelKeys (In) and
// mismatchLabelKeys (NotIn) added, as the API server folds them in.
Result<kube::LabelSelector> SelectorOf(const json& obj, const kube::PodView& owner,
                                       const std::string& where, bool* matches_nothing) {
  auto selector = obj.find("labelSelector");
  *matches_nothing = selector == obj.end() || selector->is_null();
  json merged = *matches_nothing ? json::object() : *selector;
  if (!merged.is_object())
    return InvalidArgumentError(where + ".labelSelector: expected an object");
  for (const char* field : {"matchLabelKeys", "mismatchLabelKeys"}) {
    auto keys = obj.find(field);
    if (keys == obj.end() || keys->is_null()) continue;
    if (!keys->is_array()) return InvalidArgumentError(where + "." + field + ": expected an array");
    const bool match = std::string_view(field) == "matchLabelKeys";
    for (const json& key : *keys) {
      if (!key.is_string()) {
        return InvalidArgumentError(where + "." + field + ": expected strings");
      }
      std::optional<std::string_view> value = owner.label(key.get<std::string>());
      if (!value) continue;  // a key the pod does not carry is ignored
      if (!merged.contains("matchExpressions") || merged["matchExpressions"].is_null()) {
        merged["matchExpressions"] = json::array();
      }
      merged["matchExpressions"].push_back({{"key", key.get<std::string>()},
                                            {"operator", match ? "In" : "NotIn"},
                                            {"values", {std::string(*value)}}});
    }
  }
  Result<kube::LabelSelector> parsed = kube::LabelSelector::FromJson(merged.dump());
  if (!parsed.ok()) return InvalidArgumentError(where + ": " + parsed.error().message());
  return parsed;
}

Result<std::vector<PodAffinityTerm>> ParseTerms(std::string_view text, const kube::PodView& owner,
                                                const std::string& where) {
  std::vector<PodAffinityTerm> terms;
  if (text.empty()) return terms;
  json affinity = json::parse(text);
  if (!affinity.is_object()) return InvalidArgumentError(where + ": expected an object");
  auto required = affinity.find("requiredDuringSchedulingIgnoredDuringExecution");
  if (required == affinity.end() || required->is_null()) return terms;
  if (!required->is_array()) {
    return InvalidArgumentError(
        where + ".requiredDuringSchedulingIgnoredDuringExecution: expected an array");
  }
  for (size_t i = 0; i < required->size(); ++i) {
    const json& t = (*required)[i];
    const std::string at =
        where + ".requiredDuringSchedulingIgnoredDuringExecution[" + std::to_string(i) + "]";
    if (!t.is_object()) return InvalidArgumentError(at + ": expected an object");
    PodAffinityTerm term;
    term.topology_key = t.value("topologyKey", "");
    if (term.topology_key.empty()) return InvalidArgumentError(at + ".topologyKey: Required value");
    GPU_ASSIGN_OR_RETURN(term.selector, SelectorOf(t, owner, at, &term.matches_nothing));
    if (auto ns = t.find("namespaces"); ns != t.end() && !ns->is_null()) {
      if (!ns->is_array()) return InvalidArgumentError(at + ".namespaces: expected an array");
      for (const json& n : *ns) {
        if (!n.is_string()) return InvalidArgumentError(at + ".namespaces: expected strings");
        term.namespaces.push_back(n.get<std::string>());
      }
    }
    if (auto nss = t.find("namespaceSelector"); nss != t.end() && !nss->is_null()) {
      const bool empty = nss->is_object() &&
                         (!nss->contains("matchLabels") || (*nss)["matchLabels"].empty()) &&
                         (!nss->contains("matchExpressions") || (*nss)["matchExpressions"].empty());
      if (!empty) {
        return InvalidArgumentError(
            at +
            ".namespaceSelector: only {} (every namespace) is supported by gpu-autoscaler's "
            "standalone scheduler; list the namespaces in .namespaces instead");
      }
      term.all_namespaces = true;
    }
    terms.push_back(std::move(term));
  }
  return terms;
}

Result<std::vector<SpreadConstraint>> ParseSpread(std::string_view text,
                                                  const kube::PodView& owner) {
  std::vector<SpreadConstraint> out;
  if (text.empty()) return out;
  json list = json::parse(text);
  if (!list.is_array()) {
    return InvalidArgumentError("spec.topologySpreadConstraints: expected an array");
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const json& c = list[i];
    const std::string at = "spec.topologySpreadConstraints[" + std::to_string(i) + "]";
    if (!c.is_object()) return InvalidArgumentError(at + ": expected an object");
    const std::string when = c.value("whenUnsatisfiable", "");
    if (when == "ScheduleAnyway") continue;  // a score, not a filter
    if (when != "DoNotSchedule") {
      return InvalidArgumentError(at + ".whenUnsatisfiable: Unsupported value: \"" + when +
                                  "\": supported values: \"DoNotSchedule\", \"ScheduleAnyway\"");
    }
    SpreadConstraint s;
    const json skew = c.value("maxSkew", json());
    if (!skew.is_number_integer() || skew.get<int64_t>() < 1 || skew.get<int64_t>() > INT_MAX) {
      return InvalidArgumentError(at + ".maxSkew: must be greater than zero");
    }
    s.max_skew = skew.get<int>();
    s.topology_key = c.value("topologyKey", "");
    if (s.topology_key.empty()) return InvalidArgumentError(at + ".topologyKey: Required value");
    if (const json domains = c.value("minDomains", json()); !domains.is_null()) {
      if (!domains.is_number_integer() || domains.get<int64_t>() < 1 ||
          domains.get<int64_t>() > INT_MAX) {
        return InvalidArgumentError(at + ".minDomains: must be greater than zero");
      }
      s.min_domains = domains.get<int>();
    }
    const std::string affinity_policy = c.value("nodeAffinityPolicy", "Honor");
    const std::string taints_policy = c.value("nodeTaintsPolicy", "Ignore");
    for (const auto& [field, value] : {std::pair{"nodeAffinityPolicy", affinity_policy},
                                       std::pair{"nodeTaintsPolicy", taints_policy}}) {
      if (value != "Honor" && value != "Ignore") {
        return InvalidArgumentError(at + "." + field + ": Unsupported value: \"" + value +
                                    "\": supported values: \"Honor\", \"Ignore\"");
      }
    }
    s.honor_node_affinity = affinity_policy == "Honor";
    s.honor_taints = taints_policy == "Honor";
    GPU_ASSIGN_OR_RETURN(s.selector, SelectorOf(c, owner, at, &s.matches_nothing));
    out.push_back(std::move(s));
  }
  if (out.size() > kMaxSpreadConstraints) {
    return InvalidArgumentError("spec.topologySpreadConstraints: at most " +
                                std::to_string(kMaxSpreadConstraints) +
                                " with whenUnsatisfiable: DoNotSchedule are supported");
  }
  return out;
}

bool SpreadSelects(const SpreadConstraint& c, const kube::PodView& pod) {
  return !c.matches_nothing && SelectorMatches(c.selector, pod.labels());
}

}  // namespace

Result<PodTopologyRules> ParsePodTopology(const kube::PodView& pod) {
  PodTopologyRules rules;
  try {
    GPU_ASSIGN_OR_RETURN(rules.affinity,
                         ParseTerms(pod.pod_affinity_json(), pod, "spec.affinity.podAffinity"));
    GPU_ASSIGN_OR_RETURN(rules.anti_affinity, ParseTerms(pod.pod_anti_affinity_json(), pod,
                                                         "spec.affinity.podAntiAffinity"));
    GPU_ASSIGN_OR_RETURN(rules.spread, ParseSpread(pod.topology_spread_json(), pod));
  } catch (const json::exception& e) {
    return InvalidArgumentError(std::string("pod topology rules: ") + e.what());
  }
  return rules;
}

Result<std::vector<PodAffinityTerm>> ParseRequiredAntiAffinity(const kube::PodView& pod) {
  const std::string_view text = pod.pod_anti_affinity_json();
  if (text.find("requiredDuringSchedulingIgnoredDuringExecution") == std::string_view::npos) {
    return std::vector<PodAffinityTerm>();  // none, or preferred terms only
  }
  try {
    return ParseTerms(text, pod, "spec.affinity.podAntiAffinity");
  } catch (const json::exception& e) {
    return InvalidArgumentError(std::string("pod anti-affinity: ") + e.what());
  }
}

bool TermSelects(const PodAffinityTerm& term, std::string_view owner_ns, const kube::PodView& pod) {
  if (term.matches_nothing) return false;
  if (!term.all_namespaces) {
    if (term.namespaces.empty()) {
      if (pod.ns() != owner_ns) return false;
    } else if (std::find(term.namespaces.begin(), term.namespaces.end(), pod.ns()) ==
               term.namespaces.end()) {
      return false;
    }
  }
  return SelectorMatches(term.selector, pod.labels());
}

size_t TopologyFilter::DomainHash::operator()(const Domain& d) const {
  return std::hash<std::string>()(d.key) * 31 + std::hash<std::string>()(d.value);
}

bool EvictionsMayClear(std::string_view reason) {
  return reason == kAntiAffinityRulesNotMatch || reason == kExistingAntiAffinityNotMatch ||
         reason == kSpreadNotMatch;
}

bool TopologyFilter::MatchesAllAffinityTerms(const kube::PodView& other) const {
  if (rules_.affinity.empty()) return false;
  for (const PodAffinityTerm& term : rules_.affinity) {
    if (!TermSelects(term, pod_.ns(), other)) return false;
  }
  return true;
}

uint64_t TopologyFilter::SpreadEligible(const kube::NodeView& node) const {
  for (const Spread& s : spread_) {
    if (!node.label(s.constraint->topology_key)) return 0;
  }
  bool affinity_ok = true;
  bool taints_ok = true;
  bool affinity_known = false;
  bool taints_known = false;
  uint64_t eligible = 0;
  for (size_t i = 0; i < spread_.size(); ++i) {
    const SpreadConstraint& c = *spread_[i].constraint;
    if (c.honor_node_affinity && !affinity_known) {
      affinity_ok = MatchesNodeSelector(pod_, node) && MatchesRequiredNodeAffinity(pod_, node);
      affinity_known = true;
    }
    if (c.honor_taints && !taints_known) {
      const kube::Taint* untolerated = nullptr;
      taints_ok = ToleratesTaints(pod_, node, &untolerated);
      taints_known = true;
    }
    if ((!c.honor_node_affinity || affinity_ok) && (!c.honor_taints || taints_ok)) {
      eligible |= uint64_t{1} << i;
    }
  }
  return eligible;
}

bool TopologyFilter::CountsForSpread(const Spread& s, const kube::PodView& other) const {
  return !other.terminating() && other.ns() == pod_.ns() && SpreadSelects(*s.constraint, other);
}

TopologyFilter::TopologyFilter(const kube::PodView& pod, const PodTopologyRules& rules,
                               std::span<const PlacedPod> placed,
                               std::span<const kube::NodeView* const> nodes)
    : pod_(pod),
      rules_(rules),
      affinity_counts_(rules.affinity.size()),
      anti_affinity_counts_(rules.anti_affinity.size()) {
  for (const PlacedPod& p : placed) {
    // Existing pods' anti-affinity: their domain is closed to a pod they select.
    if (p.rules != nullptr) {
      for (const PodAffinityTerm& term : p.rules->anti_affinity) {
        if (!TermSelects(term, p.pod->ns(), pod)) continue;
        if (std::optional<std::string_view> v = p.node->label(term.topology_key)) {
          ++existing_anti_affinity_[{term.topology_key, std::string(*v)}];
        }
      }
    }
    // A partner counts only when it matches every affinity term (kube-scheduler's
    // updateWithAffinityTerms).
    if (MatchesAllAffinityTerms(*p.pod)) {
      for (size_t i = 0; i < rules.affinity.size(); ++i) {
        if (auto v = p.node->label(rules.affinity[i].topology_key)) {
          ++affinity_counts_[i][std::string(*v)];
          ++affinity_pairs_;
        }
      }
    }
    for (size_t i = 0; i < rules.anti_affinity.size(); ++i) {
      if (!TermSelects(rules.anti_affinity[i], pod.ns(), *p.pod)) continue;
      if (auto v = p.node->label(rules.anti_affinity[i].topology_key)) {
        ++anti_affinity_counts_[i][std::string(*v)];
      }
    }
  }
  self_matches_affinity_ = MatchesAllAffinityTerms(pod);

  if (rules.spread.empty()) return;
  // Domains are counted over the nodes the pod could use (node affinity and
  // taints as each constraint's policy says) that carry every topology key.
  spread_.resize(rules.spread.size());
  for (size_t i = 0; i < rules.spread.size(); ++i)
    spread_[i].constraint = &rules.spread[i];
  for (const kube::NodeView* node : nodes) {
    const uint64_t eligible = SpreadEligible(*node);
    for (size_t i = 0; i < spread_.size(); ++i) {
      if ((eligible >> i & 1) == 0) continue;
      Counts& counts = spread_[i].counts;
      const std::string_view value = *node->label(rules.spread[i].topology_key);
      if (!counts.contains(value)) counts.emplace(std::string(value), 0);
    }
  }
  for (const PlacedPod& p : placed) {
    const uint64_t eligible = SpreadEligible(*p.node);
    for (size_t i = 0; i < spread_.size(); ++i) {
      if ((eligible >> i & 1) == 0 || !CountsForSpread(spread_[i], *p.pod)) continue;
      ++spread_[i].counts.find(*p.node->label(rules.spread[i].topology_key))->second;
    }
  }
  for (Spread& s : spread_) {
    s.self = SpreadSelects(*s.constraint, pod) ? 1 : 0;
    // The smallest count, one domain that has it, and the smallest of the
    // others: what a change in one domain needs (kube-scheduler's critical paths).
    s.min = INT_MAX;
    s.second_min = INT_MAX;
    for (const auto& [value, n] : s.counts) {
      if (n < s.min) {
        s.second_min = s.min;
        s.min = n;
        s.min_value = value;
      } else {
        s.second_min = std::min(s.second_min, n);
      }
    }
    // Fewer domains than minDomains: the missing ones count as empty.
    if (s.min == INT_MAX || static_cast<int>(s.counts.size()) < s.constraint->min_domains) {
      s.min = 0;
    }
  }
}

std::string_view TopologyFilter::Failure(const kube::NodeView& node,
                                         std::span<const PlacedPod> removed,
                                         std::span<const PlacedPod> added) const {
  // How many added pods minus how many removed ones satisfy `counts`.
  auto net = [&](auto&& counts) {
    int n = 0;
    for (const PlacedPod& p : added)
      n += counts(p) ? 1 : 0;
    for (const PlacedPod& p : removed)
      n -= counts(p) ? 1 : 0;
    return n;
  };
  const bool changed = !removed.empty() || !added.empty();
  // kube-scheduler's filter order: PodTopologySpread, then InterPodAffinity
  // (the pod's affinity, its anti-affinity, the existing pods' anti-affinity).
  // The pods removed and added are on `node`: only its own domains move.
  if (!spread_.empty()) {
    const uint64_t eligible = changed ? SpreadEligible(node) : 0;
    for (size_t i = 0; i < spread_.size(); ++i) {
      const Spread& s = spread_[i];
      std::optional<std::string_view> value = node.label(s.constraint->topology_key);
      if (!value) return kSpreadMissingLabel;
      auto it = s.counts.find(*value);
      int here = it == s.counts.end() ? 0 : it->second;
      int min = s.min;
      if ((eligible >> i & 1) != 0 && it != s.counts.end()) {
        here += net([&](const PlacedPod& p) { return CountsForSpread(s, *p.pod); });
        if (static_cast<int>(s.counts.size()) >= s.constraint->min_domains) {
          min = std::min(it->first == s.min_value ? s.second_min : s.min, here);
        }
      }
      if (here + s.self - min > s.constraint->max_skew) return kSpreadNotMatch;
    }
  }
  if (!rules_.affinity.empty()) {
    const int partners = net([&](const PlacedPod& p) { return MatchesAllAffinityTerms(*p.pod); });
    bool partners_everywhere = true;
    for (size_t i = 0; i < rules_.affinity.size(); ++i) {
      std::optional<std::string_view> value = node.label(rules_.affinity[i].topology_key);
      if (!value) return kAffinityRulesNotMatch;  // every topology key must be on the node
      auto it = affinity_counts_[i].find(*value);
      const int here = (it == affinity_counts_[i].end() ? 0 : it->second) + partners;
      if (here <= 0) partners_everywhere = false;
    }
    // The node has every key: each partner there counts once per term.
    const int pairs = affinity_pairs_ + partners * static_cast<int>(rules_.affinity.size());
    // The first pod of a group that must run together: nothing matches yet,
    // and it matches its own terms (kube-scheduler lets it start the group).
    if (!partners_everywhere && !(pairs == 0 && self_matches_affinity_)) {
      return kAffinityRulesNotMatch;
    }
  }
  for (size_t i = 0; i < rules_.anti_affinity.size(); ++i) {
    const PodAffinityTerm& term = rules_.anti_affinity[i];
    std::optional<std::string_view> value = node.label(term.topology_key);
    if (!value) continue;
    auto it = anti_affinity_counts_[i].find(*value);
    int here = it == anti_affinity_counts_[i].end() ? 0 : it->second;
    if (changed)
      here += net([&](const PlacedPod& p) { return TermSelects(term, pod_.ns(), *p.pod); });
    if (here > 0) return kAntiAffinityRulesNotMatch;
  }
  // An added pod whose term selects the pod closes its own domain here.
  for (const PlacedPod& p : added) {
    if (p.rules == nullptr) continue;
    for (const PodAffinityTerm& term : p.rules->anti_affinity) {
      if (node.label(term.topology_key) && TermSelects(term, p.pod->ns(), pod_)) {
        return kExistingAntiAffinityNotMatch;
      }
    }
  }
  for (const auto& [domain, count] : existing_anti_affinity_) {
    std::optional<std::string_view> value = node.label(domain.key);
    if (!value || *value != domain.value) continue;
    int here = count;
    for (const PlacedPod& p : removed) {
      if (p.rules == nullptr) continue;
      for (const PodAffinityTerm& term : p.rules->anti_affinity) {
        if (term.topology_key == domain.key && TermSelects(term, p.pod->ns(), pod_)) --here;
      }
    }
    if (here > 0) return kExistingAntiAffinityNotMatch;
  }
  return "";
}

}  // namespace gpu_autoscaler::scheduler
