#include "scheduler/node_fit.h"

#include <charconv>

#include "kube/selector_values.h"

namespace gpu_autoscaler::scheduler {
namespace {

bool ParseInt64(std::string_view text, int64_t* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

bool Matches(const kube::NodeSelectorRequirement& r, const kube::NodeView& node) {
  const std::string_view op = r.op.view();
  const std::string_view values = r.values.view();
  std::optional<std::string_view> value;
  if (r.field) {
    if (r.key.view() != "metadata.name") return false;
    value = node.name();
  } else {
    value = node.label(r.key.view());
  }
  if (op == "In") return value && kube::SelectorValuesContain(values, *value);
  if (op == "NotIn") return !value || !kube::SelectorValuesContain(values, *value);
  if (op == "Exists") return value.has_value();
  if (op == "DoesNotExist") return !value.has_value();
  if (op == "Gt" || op == "Lt") {
    int64_t have = 0;
    int64_t bound = 0;
    if (!value || !ParseInt64(*value, &have) || !ParseInt64(values, &bound)) return false;
    return op == "Gt" ? have > bound : have < bound;
  }
  return false;  // an unknown operator matches nothing
}

bool Tolerates(const kube::Toleration& t, const kube::Taint& taint) {
  if (!t.effect.view().empty() && t.effect.view() != kube::TaintEffectName(taint.effect)) {
    return false;
  }
  if (t.op.view() == "Exists") return t.key.view().empty() || t.key.view() == taint.key.view();
  return t.key.view() == taint.key.view() && t.value.view() == taint.value.view();
}

}  // namespace

bool MatchesNodeSelector(const kube::PodView& pod, const kube::NodeView& node) {
  for (const kube::Label& want : pod.node_selector()) {
    std::optional<std::string_view> have = node.label(want.key.view());
    if (!have || *have != want.value.view()) return false;
  }
  return true;
}

bool MatchesRequiredNodeAffinity(const kube::PodView& pod, const kube::NodeView& node) {
  const int terms = pod.required_node_affinity_terms();
  if (terms == 0) return true;
  for (int term = 0; term < terms; ++term) {
    bool any = false;
    bool all = true;
    for (const kube::NodeSelectorRequirement& r : pod.required_node_affinity()) {
      if (r.term != term) continue;
      any = true;
      if (!Matches(r, node)) {
        all = false;
        break;
      }
    }
    if (any && all) return true;  // an empty term matches nothing
  }
  return false;
}

bool ToleratesTaints(const kube::PodView& pod, const kube::NodeView& node,
                     const kube::Taint** untolerated) {
  for (const kube::Taint& taint : node.taints()) {
    if (taint.effect != kube::TaintEffect::kNoSchedule &&
        taint.effect != kube::TaintEffect::kNoExecute) {
      continue;
    }
    bool tolerated = false;
    for (const kube::Toleration& t : pod.tolerations()) {
      if (Tolerates(t, taint)) {
        tolerated = true;
        break;
      }
    }
    if (!tolerated) {
      if (untolerated != nullptr) *untolerated = &taint;
      return false;
    }
  }
  return true;
}

std::string NodePredicateFailure(const kube::PodView& pod, const kube::NodeView& node) {
  if (node.unschedulable()) return "node(s) were unschedulable";
  if (node.ready() != kube::ConditionStatus::kTrue) return "node(s) were not ready";
  const kube::Taint* taint = nullptr;
  if (!ToleratesTaints(pod, node, &taint)) {
    std::string why = "node(s) had taint {" + std::string(taint->key.view());
    if (!taint->value.view().empty()) why += ": " + std::string(taint->value.view());
    return why + "}, that the pod didn't tolerate";
  }
  if (!MatchesNodeSelector(pod, node) || !MatchesRequiredNodeAffinity(pod, node)) {
    return "node(s) didn't match node selector";
  }
  return "";
}

std::string AggregateReasons(int total_nodes,
                             const std::map<std::string, int, std::less<>>& reasons) {
  std::string out = "0/" + std::to_string(total_nodes) + " nodes are available";
  const char* sep = ": ";
  for (const auto& [reason, count] : reasons) {
    out += sep + std::to_string(count) + " " + reason;
    sep = ", ";
  }
  return out + ".";
}

}  // namespace gpu_autoscaler::scheduler
