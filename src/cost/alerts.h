// File: src/cost/alerts.h
//
// The budget alert state machine. Each threshold (50/80/100 % of the amount)
// fires at most once per period, when the period's spend first reaches it,
// and every fired threshold resolves when the period rolls over. Time comes
// from the injected clock; the state can be saved to and restored from the
// Budget status (`lastAlert`), so a restarted controller does not re-fire.
//
//   BudgetAlerts alerts(budget.spec, clock);
//   alerts.Restore(from_status);                        // optional
//   for (const AlertEvent& e : alerts.Observe(spend))   // spend in alerts.period()
//     notifier.Send(e);
//
// Thread-safety: not thread-safe; one controller owns a BudgetAlerts.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "cost/budget.h"

namespace gpu_autoscaler::cost {

enum class AlertAction { kFire, kResolve };
std::string_view AlertActionName(AlertAction a);  // "fire", "resolve"

struct AlertEvent {
  AlertAction action = AlertAction::kFire;
  double threshold_percent = 0;
  PeriodWindow period{};  // the period the alert belongs to
  double spend = 0;       // spend when it fired (resolve: the period's last observed spend)
  double amount = 0;
  int64_t at = 0;  // Unix seconds, from the clock
};

// Per-threshold state, as kept in Budget status.lastAlert.
struct ThresholdState {
  double threshold_percent = 0;
  bool firing = false;
  int64_t period_start = 0;  // period in which it fired
  int64_t fired_at = 0;
  double spend_at_fire = 0;
};

class BudgetAlerts {
 public:
  BudgetAlerts(const BudgetSpec& spec, Clock& clock);

  // The period the clock is in now.
  PeriodWindow period() const;
  // Restores fired thresholds (unknown thresholds are ignored).
  void Restore(std::span<const ThresholdState> states);
  // Spend in the current period -> the events to notify, in order: resolves
  // of a finished period first, then fires in ascending threshold order.
  std::vector<AlertEvent> Observe(double spend);
  const std::vector<ThresholdState>& states() const { return states_; }

 private:
  BudgetSpec spec_{};
  Clock& clock_;
  std::vector<ThresholdState> states_{};
  std::optional<PeriodWindow> current_;
  double last_spend_ = 0;
};

}  // namespace gpu_autoscaler::cost
