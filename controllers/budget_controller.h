// File: controllers/budget_controller.h
//
// The Budget controller: evaluates every Budget (budgets.gpuautoscaler.io)
// and ClusterBudget (clusterbudgets.gpuautoscaler.io, same spec and status;
// one reconciler body, the kind told by the request: a ClusterBudget's has no
// namespace) on a period against the cost history, writes its status with optimistic
// concurrency (spend, forecast, percent, conditions Exceeded /
// ForecastExceeded / NotificationFailed / Invalid / ScaleDownSpotRequested,
// lastAlert per threshold, observedGeneration), and sends threshold alerts to
// the Budget's channels (Slack, PagerDuty, webhook, email) with credentials
// from Secrets.
//
//   BudgetReconciler r(budgets->store(), *client, open_store, notifier, clock,
//                      &recorder, {.evaluation_period = 30s});
//   Controller c({.name = "budget"}, r);
//   c.For(budget_source);
//
// Exactly one alert per threshold per period, across restarts and leader
// failover. The alert state lives in the Budget's status: a crossing is first
// recorded in status.lastAlert with every channel still `pending` (a status
// write guarded by resourceVersion, so two managers cannot both record it),
// and only then sent, each send carrying an idempotency key (PagerDuty's
// dedup key; the `Idempotency-Key` header for webhooks; a stable Message-ID
// for email). Delivered channels leave `pending`; a failed one stays there,
// NotificationFailed is True, and the next reconcile retries with backoff.
// A crash between a send and its status write re-sends with the same key.
//
// Decide/apply split: DecideBudget is pure (status in, status and sends
// out); the reconciler reads the cache, the store and Secrets, and applies.
//
// Thread-safety: Reconcile may run on several workers at once (never twice
// for one Budget); the spend cache is shared under a mutex.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/resources.h"
#include "common/clock.h"
#include "common/status.h"
#include "cost/budget.h"
#include "cost/budget_evaluation.h"
#include "cost/notify.h"
#include "cost/store.h"
#include "kube/generic_object.h"
#include "kube/resource.h"
#include "kube/store.h"
#include "reconcile/controller.h"
#include "reconcile/reconciler.h"

namespace prometheus {
class Registry;
}
namespace gpu_autoscaler::kube {
class EventRecorder;
class RestClient;
}  // namespace gpu_autoscaler::kube

namespace gpu_autoscaler::controllers {

// One channel's delivery of one alert.
struct AlertDelivery {
  size_t alert_index = 0;  // into status.lastAlert
  std::string channel{};   // "<type>-<index>", e.g. "slack-0"
  size_t channel_index = 0;
  cost::BudgetNotification notification{};
  std::string idempotency_key{};
};

struct PlannedBudgetEvent {
  bool warning = false;
  std::string reason{};
  std::string message{};
};

struct BudgetDecisionInput {
  int64_t generation = 0;
  nlohmann::json status = nullptr;  // the Budget's current .status
  // The parsed Budget, or why it does not parse.
  std::optional<cost::Budget> budget{};
  std::string invalid_reason{};
  cost::BudgetEvaluation evaluation{};
  int64_t now = 0;
};

struct BudgetPlan {
  nlohmann::json status = nlohmann::json::object();
  std::vector<AlertDelivery> deliveries{};  // pending sends, in order
  std::vector<PlannedBudgetEvent> events{};
};

// The new status and the alerts to send. Pure.
BudgetPlan DecideBudget(const BudgetDecisionInput& input);

// Records delivery results in `status` (pending channels removed on success)
// and sets NotificationFailed from what is still pending. Pure.
void RecordDeliveries(nlohmann::json* status, const std::vector<AlertDelivery>& deliveries,
                      const std::vector<Status>& results, int64_t generation, int64_t now);

struct BudgetControllerOptions {
  std::chrono::milliseconds evaluation_period{30'000};
  // Spend is re-read from the store at most this often, shared by all Budgets.
  std::chrono::milliseconds spend_refresh{5'000};
  // Between full reads only the last two hours are re-read (closed hours do
  // not change); a full read picks up samples that arrived late.
  std::chrono::milliseconds spend_full_refresh{600'000};
  // Secrets of Budgets are read from the Budget's namespace, those of
  // ClusterBudgets from this one.
  std::string operator_namespace = "gpu-autoscaler-system";
  // ClusterBudgets (null: none are evaluated) and Namespaces (their labels,
  // for namespaceSelector; null: a namespaceSelector selects nothing).
  const kube::Store<kube::GenericObject>* cluster_budgets = nullptr;
  const kube::Store<kube::GenericObject>* namespaces = nullptr;
  std::string cluster_name = "";
  std::string pagerduty_events_url = "https://events.pagerduty.com/v2/enqueue";
  cost::AttributionLabels labels{};
};

// For the controller's Namespace watch: any add, change or delete -> every
// ClusterBudget in `cluster_budgets` with a namespaceSelector, since the
// namespaces' labels decide its scope (without it a relabelled namespace
// waited for the next evaluation_period). `cluster_budgets` may be null.
reconcile::RequestMapper ClusterBudgetsSelectingNamespaces(
    const kube::Store<kube::GenericObject>* cluster_budgets);

class BudgetReconciler final : public reconcile::Reconciler {
 public:
  using StoreFactory = std::function<Result<std::unique_ptr<cost::CostStore>>()>;

  BudgetReconciler(const kube::Store<kube::GenericObject>& budgets, kube::RestClient& client,
                   StoreFactory open_store, const cost::Notifier& notifier, Clock& clock,
                   kube::EventRecorder* recorder, prometheus::Registry& registry,
                   BudgetControllerOptions options);
  ~BudgetReconciler() override;

  reconcile::ReconcileResult Reconcile(const reconcile::Request& request,
                                       std::stop_token stop) override;

 private:
  struct Metrics;
  // Spend since at least `needed_since`, re-read when older than spend_refresh.
  Result<std::shared_ptr<const cost::ScopedSpend>> Spend(int64_t now, int64_t needed_since);
  Status Deliver(const std::string& secret_ns, const cost::Budget& budget, const AlertDelivery& d);
  cost::NamespaceLabelIndex NamespaceLabels() const;

  const kube::Store<kube::GenericObject>& budgets_;
  kube::RestClient& client_;
  StoreFactory open_store_;
  const cost::Notifier& notifier_;
  Clock& clock_;
  kube::EventRecorder* recorder_;
  BudgetControllerOptions options_;
  std::unique_ptr<Metrics> metrics_;

  std::mutex spend_mu_;
  std::unique_ptr<cost::CostStore> store_;
  std::shared_ptr<const cost::ScopedSpend> spend_;
  int64_t spend_since_ = 0;
  Clock::TimePoint spend_read_at_{};
  Clock::TimePoint full_read_at_{};
};

}  // namespace gpu_autoscaler::controllers
