#include "controllers/budget_controller.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "api/annotations.h"
#include "common/failpoint.h"
#include "common/json_read.h"
#include "controllers/namespace_labels.h"
#include "controllers/secret_data.h"
#include "cost/alerts.h"
#include "kube/conditions.h"
#include "kube/error.h"
#include "kube/event_recorder.h"
#include "kube/rest_client.h"
#include "reconcile/logging.h"
#include "reconcile/write_result.h"

namespace gpu_autoscaler::controllers {
namespace {

using nlohmann::json;
using reconcile::Log;
using reconcile::LogLevel;

constexpr std::string_view kInvalid = "Invalid";
constexpr std::string_view kExceeded = "Exceeded";
constexpr std::string_view kForecastExceeded = "ForecastExceeded";
constexpr std::string_view kNotificationFailed = "NotificationFailed";
constexpr std::string_view kScaleDownSpotRequested = "ScaleDownSpotRequested";

std::string Money(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.2f", v);
  return buf;
}

std::string Percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", v);
  return buf;
}

std::string ThresholdText(double t) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", t);
  return buf;
}

// Costs in status are rounded to micro-units: enough for any currency, and
// a status that does not change every evaluation by float noise.
double Round6(double v) {
  return std::round(v * 1e6) / 1e6;
}

Clock::WallTime WallAt(int64_t unix_second) {
  return Clock::WallTime(std::chrono::seconds(unix_second));
}

void SetCond(json* status, std::string_view type, bool value, std::string reason,
             std::string message, int64_t generation, int64_t now) {
  (void)kube::SetCondition(&(*status)["conditions"],
                           {.type = std::string(type),
                            .status = value ? "True" : "False",
                            .reason = std::move(reason),
                            .message = std::move(message),
                            .observed_generation = generation},
                           WallAt(now));
}

std::string ChannelId(const cost::NotificationChannel& c, size_t index) {
  return std::string(cost::ChannelTypeName(c.type)) + "-" + std::to_string(index);
}

int64_t ParseTimeOr(const json& v, int64_t fallback) {
  if (!v.is_string()) return fallback;
  auto t = cost::ParseRfc3339(v.get<std::string>());
  return t.ok() ? *t : fallback;
}

}  // namespace

BudgetPlan DecideBudget(const BudgetDecisionInput& in) {
  BudgetPlan plan;
  plan.status = in.status.is_object() ? in.status : json::object();
  json& status = plan.status;
  status["observedGeneration"] = in.generation;
  const bool was_invalid = kube::IsConditionTrue(status.value("conditions", json()), kInvalid);
  if (!in.budget.has_value()) {
    SetCond(&status, kInvalid, true, "InvalidSpec", in.invalid_reason, in.generation, in.now);
    if (!was_invalid) {
      plan.events.push_back({true, "InvalidSpec", in.invalid_reason});
    }
    return plan;
  }
  const cost::Budget& budget = *in.budget;
  const cost::BudgetSpec& spec = budget.spec;
  SetCond(&status, kInvalid, false, "Valid", "the spec is valid", in.generation, in.now);

  const cost::BudgetEvaluation& e = in.evaluation;
  const double spent = e.forecast.spent;
  status["periodStart"] = cost::FormatRfc3339(e.period.start);
  status["periodEnd"] = cost::FormatRfc3339(e.period.end);
  status["currentSpend"] = Round6(spent);
  status["currency"] = spec.currency;
  status["percent"] = std::round(e.percent() * 10) / 10;
  status["forecast"] = {{"linear", Round6(e.forecast.linear)},
                        {"holtWinters", Round6(e.forecast.holt_winters)}};
  const std::string of_amount = Money(spent) + " of " + Money(spec.amount) + " " + spec.currency;
  const bool exceeded = spent >= spec.amount;
  SetCond(&status, kExceeded, exceeded, exceeded ? "SpendReachedAmount" : "WithinBudget",
          "spent " + of_amount + " (" + Percent(e.percent()) + "%) this period", in.generation,
          in.now);
  const double forecast = std::max(e.forecast.holt_winters, e.forecast.linear);
  const bool forecast_exceeded = forecast >= spec.amount;
  SetCond(&status, kForecastExceeded, forecast_exceeded,
          forecast_exceeded ? "ForecastOverAmount" : "ForecastWithinAmount",
          "forecast " + Money(forecast) + " " + spec.currency + " by " +
              cost::FormatRfc3339(e.period.end) + " against " + Money(spec.amount),
          in.generation, in.now);
  if (spec.enforcement == cost::Enforcement::kScaleDownSpot) {
    SetCond(&status, kScaleDownSpotRequested, exceeded,
            exceeded ? "BudgetExhausted" : "WithinBudget",
            exceeded ? "the autoscaler is asked to shrink the spot tier of the GPU node pools in "
                       "this Budget's scope"
                     : "no scale-down requested",
            in.generation, in.now);
  } else {
    kube::RemoveCondition(&status["conditions"], kScaleDownSpotRequested);
  }

  // Alert state from status.lastAlert, then this evaluation's crossings.
  json alerts_json = status.value("lastAlert", json::array());
  if (!alerts_json.is_array()) alerts_json = json::array();
  std::vector<cost::ThresholdState> restored;
  for (const json& a : alerts_json) {
    const json* threshold = json_read::Find(a, "threshold");
    if (threshold == nullptr || !threshold->is_number()) continue;
    restored.push_back({.threshold_percent = json_read::Number(a, "threshold"),
                        .firing = json_read::String(a, "state") == "firing",
                        .period_start = ParseTimeOr(a.value("periodStart", json()), 0),
                        .fired_at = ParseTimeOr(a.value("firedAt", json()), 0),
                        .spend_at_fire = json_read::Number(a, "spend", 0.0)});
  }
  FakeClock at_now(WallAt(in.now));
  cost::BudgetAlerts alerts(spec, at_now);
  alerts.Restore(restored);
  std::vector<std::string> all_channels;
  for (size_t i = 0; i < spec.channels.size(); ++i)
    all_channels.push_back(ChannelId(spec.channels[i], i));

  for (const cost::AlertEvent& event : alerts.Observe(spent)) {
    json* entry = nullptr;
    for (json& a : alerts_json) {
      if (json_read::Number(a, "threshold", -1.0) == event.threshold_percent) entry = &a;
    }
    if (entry == nullptr) {
      alerts_json.push_back(json::object());
      entry = &alerts_json.back();
    }
    cost::BudgetNotification n = cost::MakeNotification(budget, event, forecast);
    if (event.action == cost::AlertAction::kFire) {
      *entry = {{"threshold", event.threshold_percent},
                {"state", "firing"},
                {"periodStart", cost::FormatRfc3339(event.period.start)},
                {"firedAt", cost::FormatRfc3339(event.at)},
                {"spend", Round6(event.spend)},
                {"key", cost::PagerDutyDedupKey(n)},
                {"pending", all_channels}};
      plan.events.push_back({event.threshold_percent >= 100, "BudgetThresholdReached",
                             "threshold " + ThresholdText(event.threshold_percent) +
                                 "% reached: spent " + of_amount});
    } else {
      (*entry)["state"] = "resolved";
      (*entry)["resolvedAt"] = cost::FormatRfc3339(event.at);
      (*entry)["pending"] = all_channels;
      plan.events.push_back(
          {false, "BudgetThresholdResolved",
           "period ended; threshold " + ThresholdText(event.threshold_percent) + "% resolved"});
    }
  }
  std::sort(alerts_json.begin(), alerts_json.end(), [](const json& a, const json& b) {
    return json_read::Number(a, "threshold", 0.0) < json_read::Number(b, "threshold", 0.0);
  });
  status["lastAlert"] = alerts_json;

  // Every pending channel of every alert is a delivery (new ones, and ones
  // that failed or were interrupted before).
  for (size_t i = 0; i < alerts_json.size(); ++i) {
    const json& a = alerts_json[i];
    if (!a.contains("pending") || !a["pending"].is_array()) continue;
    const bool firing = json_read::String(a, "state") == "firing";
    const int64_t period_start = ParseTimeOr(a.value("periodStart", json()), e.period.start);
    cost::AlertEvent event{
        .action = firing ? cost::AlertAction::kFire : cost::AlertAction::kResolve,
        .threshold_percent = json_read::Number(a, "threshold", 0.0),
        .period = spec.PeriodAt(period_start),
        .spend = json_read::Number(a, "spend", 0.0),
        .amount = spec.amount,
        .at = firing ? ParseTimeOr(a.value("firedAt", json()), in.now)
                     : ParseTimeOr(a.value("resolvedAt", json()), in.now)};
    for (const json& ch : a["pending"]) {
      if (!ch.is_string()) continue;
      const std::string id = ch.get<std::string>();
      auto it = std::find(all_channels.begin(), all_channels.end(), id);
      if (it == all_channels.end()) continue;  // channel removed from the spec
      AlertDelivery d;
      d.alert_index = i;
      d.channel = id;
      d.channel_index = static_cast<size_t>(it - all_channels.begin());
      d.notification = cost::MakeNotification(budget, event, forecast);
      d.idempotency_key = json_read::String(a, "key", cost::PagerDutyDedupKey(d.notification)) +
                          "/" + std::string(cost::AlertActionName(event.action));
      plan.deliveries.push_back(std::move(d));
    }
  }
  if (plan.deliveries.empty()) {
    SetCond(&status, kNotificationFailed, false, "Delivered", "every alert was delivered",
            in.generation, in.now);
  }
  return plan;
}

void RecordDeliveries(json* status, const std::vector<AlertDelivery>& deliveries,
                      const std::vector<Status>& results, int64_t generation, int64_t now) {
  std::string failures;
  for (size_t i = 0; i < deliveries.size() && i < results.size(); ++i) {
    const AlertDelivery& d = deliveries[i];
    json& alerts = (*status)["lastAlert"];
    if (!alerts.is_array() || d.alert_index >= alerts.size()) continue;
    json& pending = alerts[d.alert_index]["pending"];
    if (results[i].ok()) {
      if (pending.is_array()) {
        pending.erase(std::remove(pending.begin(), pending.end(), json(d.channel)), pending.end());
      }
    } else {
      if (!failures.empty()) failures += "; ";
      failures += d.channel + " (threshold " + ThresholdText(d.notification.threshold_percent) +
                  "%): " + results[i].message();
    }
  }
  if (json* alerts = &(*status)["lastAlert"]; alerts->is_array()) {
    for (json& a : *alerts)
      if (a.contains("pending") && a["pending"].is_array() && a["pending"].empty())
        a.erase("pending");
  }
  SetCond(status, kNotificationFailed, !failures.empty(),
          failures.empty() ? "Delivered" : "DeliveryFailed",
          failures.empty() ? "every alert was delivered" : failures, generation, now);
}

struct BudgetReconciler::Metrics {
  explicit Metrics(prometheus::Registry& registry)
      : notifications(prometheus::BuildCounter()
                          .Name("gpu_autoscaler_budget_notifications_total")
                          .Help("Budget alert deliveries by channel type and result")
                          .Register(registry)),
        evaluations(prometheus::BuildCounter()
                        .Name("gpu_autoscaler_budget_evaluations_total")
                        .Help("Budget evaluations by result")
                        .Register(registry)),
        spent(prometheus::BuildGauge()
                  .Name("gpu_autoscaler_budget_spent")
                  .Help("Spend of a Budget in its current period, in its currency")
                  .Register(registry)),
        amount(prometheus::BuildGauge()
                   .Name("gpu_autoscaler_budget_amount")
                   .Help("A Budget's amount per period (its limit), in its currency")
                   .Register(registry)),
        forecast(prometheus::BuildGauge()
                     .Name("gpu_autoscaler_budget_forecast")
                     .Help("Spend a Budget is forecast to reach by the end of its period "
                           "(Holt-Winters), in its currency")
                     .Register(registry)) {}

  // The Budget's spend, amount and forecast; its series go with the Budget.
  // `kind` (Budget, ClusterBudget) keeps a ClusterBudget apart from a Budget
  // of the same name; a ClusterBudget's namespace label is empty.
  void Publish(std::string_view kind, const std::string& ns, const std::string& name,
               const std::string& currency, const cost::BudgetEvaluation& e) {
    const std::map<std::string, std::string> labels = {
        {"kind", std::string(kind)}, {"namespace", ns}, {"budget", name}, {"currency", currency}};
    std::lock_guard<std::mutex> lock(mu);
    const std::string key = Key(kind, ns, name);
    auto it = published.find(key);
    if (it != published.end() && it->second != labels) Forget(key);
    published[key] = labels;
    spent.Add(labels).Set(e.forecast.spent);
    amount.Add(labels).Set(e.amount);
    forecast.Add(labels).Set(e.forecast.holt_winters);
  }
  void Remove(std::string_view kind, const std::string& ns, const std::string& name) {
    std::lock_guard<std::mutex> lock(mu);
    Forget(Key(kind, ns, name));
  }

  prometheus::Family<prometheus::Counter>& notifications;
  prometheus::Family<prometheus::Counter>& evaluations;
  prometheus::Family<prometheus::Gauge>& spent;
  prometheus::Family<prometheus::Gauge>& amount;
  prometheus::Family<prometheus::Gauge>& forecast;

 private:
  static std::string Key(std::string_view kind, const std::string& ns, const std::string& name) {
    return std::string(kind) + "/" + ns + "/" + name;
  }
  void Forget(const std::string& key) {  // mu held
    auto it = published.find(key);
    if (it == published.end()) return;
    for (auto* family : {&spent, &amount, &forecast})
      family->Remove(&family->Add(it->second));
    published.erase(it);
  }
  std::mutex mu;
  std::map<std::string, std::map<std::string, std::string>> published;  // kind/ns/name -> labels
};

BudgetReconciler::BudgetReconciler(const kube::Store<kube::GenericObject>& budgets,
                                   kube::RestClient& client, StoreFactory open_store,
                                   const cost::Notifier& notifier, Clock& clock,
                                   kube::EventRecorder* recorder, prometheus::Registry& registry,
                                   BudgetControllerOptions options)
    : budgets_(budgets),
      client_(client),
      open_store_(std::move(open_store)),
      notifier_(notifier),
      clock_(clock),
      recorder_(recorder),
      options_(std::move(options)),
      metrics_(std::make_unique<Metrics>(registry)) {}

BudgetReconciler::~BudgetReconciler() = default;

Result<std::shared_ptr<const cost::ScopedSpend>> BudgetReconciler::Spend(int64_t now,
                                                                         int64_t needed_since) {
  std::lock_guard<std::mutex> lock(spend_mu_);
  const auto age = clock_.Now() - spend_read_at_;
  if (spend_ != nullptr && needed_since >= spend_since_ && age < options_.spend_refresh)
    return spend_;
  if (store_ == nullptr) {
    auto store = open_store_();
    if (!store.ok()) return store.error().WithContext("opening the cost store");
    store_ = std::move(*store);
  }
  const bool full = spend_ == nullptr || needed_since < spend_since_ ||
                    clock_.Now() - full_read_at_ >= options_.spend_full_refresh;
  if (full) {
    // The whole window, also covering every monthly, weekly and daily Budget,
    // so the other Budgets of this pass reuse it.
    int64_t since = needed_since;
    for (cost::BudgetPeriod p : {cost::BudgetPeriod::kMonthly, cost::BudgetPeriod::kWeekly}) {
      cost::BudgetSpec spec;
      spec.period = p;
      since = std::min(since, spec.PeriodAt(now).start);
    }
    auto spend = cost::QueryScopedSpend(*store_, since, now, options_.labels);
    if (!spend.ok()) {
      store_.reset();
      return spend.error().WithContext("reading spend from the cost store");
    }
    spend_ = std::make_shared<const cost::ScopedSpend>(std::move(*spend));
    spend_since_ = since;
    full_read_at_ = clock_.Now();
  } else {
    // Closed hours do not change: re-read from the start of the previous hour.
    const int64_t from = std::max(spend_since_, (spend_->until / 3600 - 1) * 3600);
    auto fresh = cost::QueryScopedSpend(*store_, from, now, options_.labels);
    if (!fresh.ok()) {
      store_.reset();
      return fresh.error().WithContext("reading spend from the cost store");
    }
    auto merged = std::make_shared<cost::ScopedSpend>(*spend_);
    cost::MergeScopedSpend(*merged, *fresh);
    spend_ = std::move(merged);
  }
  spend_read_at_ = clock_.Now();
  return spend_;
}

cost::NamespaceLabelIndex BudgetReconciler::NamespaceLabels() const {
  if (options_.namespaces == nullptr) return {};
  return NamespaceLabelsOf(*options_.namespaces);
}

Status BudgetReconciler::Deliver(const std::string& secret_ns, const cost::Budget& budget,
                                 const AlertDelivery& d) {
  const cost::NotificationChannel& ch = budget.spec.channels[d.channel_index];
  GPU_ASSIGN_OR_RETURN(SecretData secret, SecretData::Read(client_, secret_ns, ch.secret_ref.name));
  GPU_ASSIGN_OR_RETURN(std::string value, secret.Value(ch.secret_ref.key));
  cost::BudgetNotification n = d.notification;
  n.cluster = options_.cluster_name;
  switch (ch.type) {
    case cost::ChannelType::kSlack:
      return notifier_.SendSlack(n, {.webhook_url = value});
    case cost::ChannelType::kPagerDuty: {
      GPU_ASSIGN_OR_RETURN(std::string url, secret.Value("events-url", false));
      return notifier_.SendPagerDuty(
          n,
          {.routing_key = value, .events_url = url.empty() ? options_.pagerduty_events_url : url});
    }
    case cost::ChannelType::kWebhook: {
      GPU_ASSIGN_OR_RETURN(std::string hmac, secret.Value("hmac-key", false));
      return notifier_.SendWebhook(
          n, {.url = value, .secret = hmac, .idempotency_key = d.idempotency_key});
    }
    case cost::ChannelType::kEmail: {
      GPU_ASSIGN_OR_RETURN(std::string from, secret.Value("from", false));
      GPU_ASSIGN_OR_RETURN(std::string user, secret.Value("username", false));
      GPU_ASSIGN_OR_RETURN(std::string password, secret.Value("password", false));
      return notifier_.SendEmail(n, {.smtp_url = value,
                                     .from = from.empty() ? "gpu-autoscaler@localhost" : from,
                                     .to = ch.to,
                                     .username = user,
                                     .password = password});
    }
  }
  return InternalError("unknown channel type");
}

reconcile::RequestMapper ClusterBudgetsSelectingNamespaces(
    const kube::Store<kube::GenericObject>* cluster_budgets) {
  return [cluster_budgets](const reconcile::ChangedObject&) {
    std::vector<reconcile::Request> out;
    if (cluster_budgets == nullptr) return out;
    for (const auto& object : cluster_budgets->List()) {
      auto parsed = object->Parse();
      if (!parsed.ok()) continue;
      const json& scope = json_read::Object(json_read::Object(*parsed, "spec"), "scope");
      if (json_read::Find(scope, "namespaceSelector") == nullptr) continue;
      out.push_back({"", std::string(object->name())});
    }
    return out;
  };
}

reconcile::ReconcileResult BudgetReconciler::Reconcile(const reconcile::Request& request,
                                                       std::stop_token) {
  // Budgets are namespaced, ClusterBudgets are not: the namespace tells them apart.
  const bool cluster = request.ns.empty();
  const cost::BudgetKind kind =
      cluster ? cost::BudgetKind::kClusterBudget : cost::BudgetKind::kBudget;
  const std::string_view kind_name = cost::BudgetKindName(kind);
  const kube::Store<kube::GenericObject>* store = cluster ? options_.cluster_budgets : &budgets_;
  auto cached = store != nullptr ? store->Get(request.ns, request.name) : nullptr;
  if (cached == nullptr) {
    metrics_->Remove(kind_name, request.ns, request.name);
    return reconcile::Done{};
  }
  auto object = cached->Parse();
  if (!object.ok()) return reconcile::TerminalError{object.error().ToString()};
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(clock_.WallNow().time_since_epoch()).count();

  BudgetDecisionInput input;
  input.generation = cached->generation();
  input.status = object->value("status", json::object());
  input.now = now;
  const std::string source = std::string(kind_name) + " " + request.Key();
  auto budget = cost::ParseBudget(cached->json(), source, options_.labels);
  if (budget.ok() && budget->kind != kind) {
    budget = InvalidArgumentError(source + ": kind: want " + std::string(kind_name));
  }
  if (budget.ok()) {
    budget->ns = request.ns;
    budget->name = request.name;
    auto spend = Spend(now, budget->spec.PeriodAt(now).start);
    if (!spend.ok()) {
      metrics_->evaluations.Add({{"result", "store_error"}}).Increment();
      return reconcile::TransientError{spend.error().ToString()};
    }
    if (budget->spec.scope.namespace_selector) {
      const cost::NamespaceLabelIndex namespaces = NamespaceLabels();
      input.evaluation = cost::EvaluateBudget(*budget, **spend, now, &namespaces);
    } else {
      input.evaluation = cost::EvaluateBudget(*budget, **spend, now);
    }
    metrics_->Publish(kind_name, request.ns, request.name, budget->spec.currency, input.evaluation);
    input.budget = std::move(*budget);
  } else {
    metrics_->Remove(kind_name, request.ns, request.name);
    input.invalid_reason = budget.error().message();
  }

  BudgetPlan plan = DecideBudget(input);
  const kube::ObjectRef status_ref =
      kube::ObjectRef{cluster ? api::kClusterBudgets : api::kBudgets, request.ns, request.name}
          .WithSub("status");
  json written = *object;
  auto write_status = [&](const json& status) -> Result<json, kube::Error> {
    json body = written;
    body["status"] = status;
    return client_.Replace(status_ref, body);
  };
  // Before any send, the status that records it must be written under the
  // cached resourceVersion, even when unchanged: a cache one write behind
  // (our own last write not yet seen) then gets 409 instead of re-sending.
  if (plan.status != input.status || !plan.deliveries.empty()) {
    auto result = write_status(plan.status);
    if (!result.ok()) {
      metrics_->evaluations.Add({{"result", "conflict_or_error"}}).Increment();
      return reconcile::WriteFailed("writing status", result.error());
    }
    written = std::move(*result);
  }
  // Events only once the status that records them is written, so a manager
  // that lost the write race does not announce the same crossing.
  if (recorder_ != nullptr) {
    for (const PlannedBudgetEvent& ev : plan.events) {
      recorder_->Record(kube::EventObject::Of(written),
                        ev.warning ? kube::EventType::kWarning : kube::EventType::kNormal,
                        ev.reason, ev.message);
    }
  }
  metrics_->evaluations.Add({{"result", input.budget ? "ok" : "invalid"}}).Increment();
  if (!input.budget) return reconcile::Done{};  // no crash loop: wait for a spec change

  if (!plan.deliveries.empty()) {
    // Crash points (docs/reliability.md): the crossing is recorded as pending
    // but nothing is sent yet; one channel sent but not yet recorded.
    if (Status fp = failpoint::Evaluate("budget.alert.after_record"); !fp.ok()) {
      return reconcile::TransientError{fp.ToString()};
    }
    std::vector<Status> results;
    results.reserve(plan.deliveries.size());
    for (const AlertDelivery& d : plan.deliveries) {
      Status s = Deliver(cluster ? options_.operator_namespace : request.ns, *input.budget, d);
      if (Status fp = failpoint::Evaluate("budget.alert.after_send"); !fp.ok()) {
        return reconcile::TransientError{fp.ToString()};
      }
      metrics_->notifications
          .Add({{"channel", std::string(cost::ChannelTypeName(
                                input.budget->spec.channels[d.channel_index].type))},
                {"result", s.ok() ? "sent" : "failed"}})
          .Increment();
      if (!s.ok()) {
        Log(LogLevel::kWarn, "budget notification failed",
            {{"budget", request.Key()}, {"channel", d.channel}, {"error", s.ToString()}});
      }
      results.push_back(std::move(s));
    }
    json status = written.value("status", json::object());
    const bool was_failing =
        kube::IsConditionTrue(status.value("conditions", json()), "NotificationFailed");
    RecordDeliveries(&status, plan.deliveries, results, input.generation, now);
    auto result = write_status(status);
    if (!result.ok()) {
      return reconcile::TransientError{"recording deliveries: " + result.error().ToString()};
    }
    const auto failed = kube::FindCondition(status["conditions"], "NotificationFailed");
    if (failed && failed->status == "True") {
      if (!was_failing && recorder_ != nullptr) {
        recorder_->Record(kube::EventObject::Of(*result), kube::EventType::kWarning,
                          "NotificationFailed", failed->message);
      }
      return reconcile::TransientError{"budget notification failed: " + failed->message};
    }
  }
  return reconcile::RequeueAfter{
      std::chrono::duration_cast<Clock::Duration>(options_.evaluation_period)};
}

}  // namespace gpu_autoscaler::controllers
