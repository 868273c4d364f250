#include "cost/alerts.h"

#include <algorithm>
#include <chrono>

namespace gpu_autoscaler::cost {

std::string_view AlertActionName(AlertAction a) {
  return a == AlertAction::kFire ? "fire" : "resolve";
}

BudgetAlerts::BudgetAlerts(const BudgetSpec& spec, Clock& clock) : spec_(spec), clock_(clock) {
  std::vector<double> thresholds = spec_.thresholds_percent;
  std::sort(thresholds.begin(), thresholds.end());
  thresholds.erase(std::unique(thresholds.begin(), thresholds.end()), thresholds.end());
  for (double t : thresholds)
    states_.push_back({.threshold_percent = t});
}

namespace {
int64_t UnixNow(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::seconds>(clock.WallNow().time_since_epoch())
      .count();
}
}  // namespace

PeriodWindow BudgetAlerts::period() const {
  return spec_.PeriodAt(UnixNow(clock_));
}

void BudgetAlerts::Restore(std::span<const ThresholdState> saved) {
  for (const ThresholdState& s : saved) {
    for (ThresholdState& mine : states_) {
      if (mine.threshold_percent == s.threshold_percent) mine = s;
    }
  }
}

std::vector<AlertEvent> BudgetAlerts::Observe(double spend) {
  const int64_t now = UnixNow(clock_);
  const PeriodWindow period = spec_.PeriodAt(now);
  std::vector<AlertEvent> events;
  // Rollover: whatever fired in an earlier period resolves first.
  for (ThresholdState& s : states_) {
    if (!s.firing || s.period_start == period.start) continue;
    PeriodWindow old = spec_.PeriodAt(s.period_start);
    double last = current_ && current_->start == s.period_start ? last_spend_ : s.spend_at_fire;
    events.push_back({.action = AlertAction::kResolve,
                      .threshold_percent = s.threshold_percent,
                      .period = old,
                      .spend = last,
                      .amount = spec_.amount,
                      .at = now});
    s.firing = false;
  }
  current_ = period;
  last_spend_ = spend;
  for (ThresholdState& s : states_) {
    if (s.firing) continue;  // already fired in this period: once only
    if (spend < spec_.amount * s.threshold_percent / 100.0) continue;
    s.firing = true;
    s.period_start = period.start;
    s.fired_at = now;
    s.spend_at_fire = spend;
    events.push_back({.action = AlertAction::kFire,
                      .threshold_percent = s.threshold_percent,
                      .period = period,
                      .spend = spend,
                      .amount = spec_.amount,
                      .at = now});
  }
  return events;
}

}  // namespace gpu_autoscaler::cost
