// File: src/cost/budget.h
//
// Budgets (CRD budgets.gpuautoscaler.io/v1alpha1, crds/budget.yaml) and
// ClusterBudgets (clusterbudgets.gpuautoscaler.io, crds/clusterbudget.yaml,
// the same spec): what a scope may spend per period, and the admission
// decision the webhook asks for ("may this GPU pod start?").
//
//   auto budget = ParseBudget(yaml_or_json, "budget.yaml");      // a Budget object
//   PeriodWindow p = budget->spec.PeriodAt(unix_now);           // e.g. this month, UTC
//   double spent = SpendInPeriod(samples, budget->spec, p, labels);
//
//   BudgetEnforcer enforcer;                                     // shared with the webhook
//   enforcer.SetBudgets({{*budget, spent, p}});
//   AdmissionDecision d = enforcer.MayStart({.ns = "ml", .labels = {...}, .gpus = 1});
//
// Scope: the budget covers samples whose namespace is listed (if any are),
// whose namespace's labels match the namespace selector (ClusterBudget only;
// if one is given) and whose attribution labels match the selector (if one is
// given); all empty = the whole cluster, idle capacity included. Selector keys
// are pod label keys, limited to the attribution labels (team, project,
// experiment-id by default). A namespaced Budget covers its own namespace
// only: ParseBudget refuses other namespaces and pins scope.namespaces to it,
// so whoever may create a Budget in one namespace can neither read the spend
// of others nor block their pods.
//
// Thread-safety: BudgetSpec and friends are values. BudgetEnforcer's methods
// are all safe to call concurrently (SetBudgets swaps an immutable snapshot).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "cost/metering.h"
#include "cost/sample.h"

namespace gpu_autoscaler::cost {

enum class BudgetPeriod { kDaily, kWeekly, kMonthly, kCustom };
enum class Enforcement { kAlert, kBlockNewGpuPods, kScaleDownSpot };
enum class ChannelType { kSlack, kEmail, kPagerDuty, kWebhook };

std::string_view BudgetPeriodName(BudgetPeriod p);  // "daily", "weekly", "monthly", "custom"
std::string_view EnforcementName(Enforcement e);    // "alert", "blockNewGPUPods", "scaleDownSpot"
std::string_view ChannelTypeName(ChannelType t);    // "slack", "email", "pagerduty", "webhook"

// Half-open [start, end) in Unix seconds (UTC).
struct PeriodWindow {
  int64_t start = 0;
  int64_t end = 0;
  friend bool operator==(const PeriodWindow&, const PeriodWindow&) = default;
};

struct LabelRequirement {
  enum class Op { kIn, kNotIn, kExists, kDoesNotExist };
  std::string key{};
  Op op = Op::kIn;
  std::vector<std::string> values{};
};

using LabelMap = std::map<std::string, std::string>;
// Labels of each Namespace by name, for namespace selectors.
using NamespaceLabelIndex = std::map<std::string, LabelMap, std::less<>>;

// A metav1.LabelSelector over Namespace labels. Empty matches every namespace.
struct NamespaceSelector {
  LabelMap match_labels{};
  std::vector<LabelRequirement> match_expressions{};
  bool Matches(const LabelMap& namespace_labels) const;
};

struct BudgetScope {
  std::vector<std::string> namespaces{};                  // empty: any namespace
  std::optional<NamespaceSelector> namespace_selector{};  // ClusterBudget only
  LabelMap match_labels{};
  std::vector<LabelRequirement> match_expressions{};

  bool cluster_wide() const {
    return namespaces.empty() && !namespace_selector && match_labels.empty() &&
           match_expressions.empty();
  }
  // `label` returns the value of a pod label, or nullptr if unset.
  // `namespace_labels` are the labels of `ns`; with a namespace selector, a
  // namespace whose labels are unknown (nullptr) is not in scope.
  bool Matches(std::string_view ns,
               const std::function<const std::string*(std::string_view)>& label,
               const LabelMap* namespace_labels = nullptr) const;
  bool Matches(std::string_view ns, const LabelMap& labels,
               const LabelMap* namespace_labels = nullptr) const;
  bool Matches(const CostSample& sample, const AttributionLabels& keys,
               const NamespaceLabelIndex* namespaces = nullptr) const;
};

struct SecretKeyRef {
  std::string name{};
  std::string key{};
};

struct NotificationChannel {
  ChannelType type = ChannelType::kSlack;
  // Slack/webhook URL, PagerDuty routing key, or SMTP URL and credentials.
  SecretKeyRef secret_ref{};
  std::vector<std::string> to{};  // email recipients
};

struct BudgetSpec {
  BudgetScope scope{};
  double amount = 0;
  std::string currency = "USD";
  BudgetPeriod period = BudgetPeriod::kMonthly;
  int64_t custom_start = 0;  // kCustom: first period starts here (Unix seconds)
  int64_t custom_days = 0;   // kCustom: period length; periods repeat
  std::vector<double> thresholds_percent = {50, 80, 100};  // ascending, > 0
  std::vector<NotificationChannel> channels{};
  Enforcement enforcement = Enforcement::kAlert;

  // The period containing `unix_second`. Daily from 00:00 UTC, weekly from
  // Monday 00:00 UTC, monthly from the 1st 00:00 UTC.
  PeriodWindow PeriodAt(int64_t unix_second) const;
  Status Validate(const AttributionLabels& keys = {}) const;
};

enum class BudgetKind { kBudget, kClusterBudget };
std::string_view BudgetKindName(BudgetKind k);  // "Budget", "ClusterBudget"

struct Budget {
  BudgetKind kind = BudgetKind::kBudget;
  std::string name{};
  std::string ns{};  // empty for a ClusterBudget
  BudgetSpec spec{};
  // "Budget ml/gpu-monthly" or "ClusterBudget org-gpu", for messages.
  std::string DisplayName() const;
};

// Parses a Budget or ClusterBudget object (YAML or JSON, apiVersion
// gpuautoscaler.io/v1alpha1; no kind means Budget). Errors name
// `source_name` and the field: "b.yaml: spec.period: must be one of ...".
// Selector keys are checked against `keys`. A Budget may not have a
// namespaceSelector, and its scope.namespaces may name only its own
// namespace; when metadata.namespace is set, scope.namespaces becomes
// exactly [that namespace]. A ClusterBudget has no metadata.namespace.
Result<Budget> ParseBudget(std::string_view text, std::string_view source_name,
                           const AttributionLabels& keys = {});

// Cost of the samples in scope whose second lies in `period`.
double SpendInPeriod(std::span<const CostSample> samples, const BudgetSpec& spec,
                     PeriodWindow period, const AttributionLabels& keys = {},
                     const NamespaceLabelIndex* namespaces = nullptr);

struct PodAdmissionInfo {
  std::string ns{};
  std::map<std::string, std::string> labels{};
  double gpus = 0;  // GPUs (or MIG devices) requested; 0 = not a GPU pod
  // Labels of the pod's namespace (for ClusterBudget namespace selectors).
  LabelMap namespace_labels{};
};

struct AdmissionDecision {
  bool allowed = true;
  std::string reason{};  // why not; names the budget
};

// A budget and its spend in the current period, as last evaluated.
struct BudgetSnapshot {
  Budget budget{};
  double spend = 0;
  PeriodWindow period{};
  bool exhausted() const { return spend >= budget.spec.amount; }
};

class BudgetEnforcer {
 public:
  explicit BudgetEnforcer(AttributionLabels keys = {});

  void SetBudgets(std::vector<BudgetSnapshot> budgets);
  // Denies a GPU pod when a blockNewGPUPods budget covering it is exhausted.
  // Pods without GPUs are always allowed. When several exhausted budgets
  // cover the pod, the reason names the first by kind (ClusterBudgets first),
  // namespace and name, so the message does not depend on list order.
  AdmissionDecision MayStart(const PodAdmissionInfo& pod) const;
  // "ns/name" (a ClusterBudget: "name") of exhausted scaleDownSpot budgets:
  // the autoscaler should drain their spot GPU nodes.
  std::vector<std::string> SpotScaleDownRequests() const;

 private:
  AttributionLabels keys_{};
  mutable std::mutex mu_;
  std::shared_ptr<const std::vector<BudgetSnapshot>> budgets_;
};

// Unix seconds <-> RFC 3339 ("2024-05-01T00:00:00Z"; offsets accepted on input).
Result<int64_t> ParseRfc3339(std::string_view text);
std::string FormatRfc3339(int64_t unix_second);

}  // namespace gpu_autoscaler::cost
