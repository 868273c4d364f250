#include "report/report.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <set>

namespace gpu_autoscaler::report {
namespace {

constexpr std::string_view kNoTeam = "(no team)";

SharingSection BuildSharing(const ReportInputs& in) {
  SharingSection s;
  std::map<std::string, SharingModeRow> modes;
  for (const PodGpuInput& p : in.pods) {
    if (p.gpu_share <= 0) continue;
    const std::string mode = p.mode.empty() ? "exclusive" : p.mode;
    SharingModeRow& row = modes[mode];
    row.mode = mode;
    ++row.pods;
    // Without sharing a pod holds whole GPUs: at least one, its share rounded up.
    const double whole = std::max(1.0, std::ceil(p.gpu_share - 1e-9));
    row.held_gpus += p.gpu_share;
    row.whole_gpus += whole;
    s.held_gpus += p.gpu_share;
    s.whole_gpus += whole;
  }
  for (auto& [mode, row] : modes)
    if (mode != "exclusive") s.modes.push_back(row);
  if (auto it = modes.find("exclusive"); it != modes.end()) s.modes.push_back(it->second);
  s.policies = in.sharing_policies;
  return s;
}

CostSection BuildCost(const ReportInputs& in) {
  CostSection c;
  std::map<std::string, TeamCostRow> teams;
  std::map<std::string, double> unpriced_spot_hours;  // model -> GPU-hours
  for (const CostInput& row : in.costs) {
    if (row.idle) {
      c.idle_gpu_hours += row.idle_gpu_seconds / 3600;
      c.idle_cost += row.idle_cost;
      continue;
    }
    const std::string team = row.team.empty() ? std::string(kNoTeam) : row.team;
    TeamCostRow& t = teams[team];
    t.team = team;
    const double actual = row.gpu_cost + row.other_cost + row.idle_cost;
    t.gpu_hours += row.gpu_seconds / 3600;
    t.actual += actual;
    t.without_sharing += actual + std::max(0.0, row.exclusive_gpu_cost - row.gpu_cost);
    double without_spot = actual;
    if (row.tier == "spot" && row.gpu_seconds > 0) {
      auto rate = in.on_demand_gpu_rate.find(row.gpu_model);
      if (rate != in.on_demand_gpu_rate.end() && rate->second > 0) {
        without_spot = actual - row.gpu_cost + row.gpu_seconds / 3600 * rate->second;
      } else {
        unpriced_spot_hours[row.gpu_model.empty() ? "(unknown)" : row.gpu_model] +=
            row.gpu_seconds / 3600;
      }
    }
    t.without_spot += without_spot;
  }
  for (auto& [name, t] : teams) {
    c.teams.push_back(t);
    c.actual += t.actual;
    c.without_sharing += t.without_sharing;
    c.without_spot += t.without_spot;
  }
  std::stable_sort(c.teams.begin(), c.teams.end(),
                   [](const TeamCostRow& a, const TeamCostRow& b) { return a.actual > b.actual; });
  for (const auto& [model, hours] : unpriced_spot_hours) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.2f", hours);
    c.notes.push_back(std::string(buf) + " spot GPU-hours of " + model +
                      " are counted at their spot price in \"without spot\": the catalogue has "
                      "no on-demand rate for the model");
  }
  std::map<std::string, std::map<int64_t, double>> by_team;
  for (const CostPointInput& p : in.cost_series)
    by_team[p.team.empty() ? std::string(kNoTeam) : p.team][p.bucket] += p.cost;
  for (const auto& [team, points] : by_team) {
    CostSeries s{.team = team};
    double sum = 0;
    for (const auto& [bucket, cost] : points) {
      sum += cost;
      s.time.push_back(bucket);
      s.cumulative.push_back(sum);
    }
    c.series.push_back(std::move(s));
  }
  return c;
}

BudgetSection BuildBudgets(const ReportInputs& in) {
  BudgetSection b;
  b.budgets = in.budgets;
  std::stable_sort(
      b.budgets.begin(), b.budgets.end(),
      [](const BudgetInput& x, const BudgetInput& y) { return x.percent > y.percent; });
  for (const AlertInput& a : in.alerts) {
    b.alerts.push_back({.channel = a.channel,
                        .summary = a.summary,
                        .time = a.time,
                        .threshold = a.threshold,
                        .signed_request = a.signed_request});
    ++b.alerts_by_channel[a.channel];
  }
  b.denied = in.denied;
  return b;
}

constexpr std::array<std::string_view, 4> kInterruptionReasons = {
    "Interruption", "InterruptionDrained", "InterruptionNotice", "RebalanceRecommendation"};

bool IsInterruptionReason(std::string_view reason) {
  return std::find(kInterruptionReasons.begin(), kInterruptionReasons.end(), reason) !=
         kInterruptionReasons.end();
}

// "+2 sim.a10x2 in group ..." -> 2; 1 when the message does not start with +N.
int ScaleUpCount(std::string_view message) {
  if (message.empty() || message[0] != '+') return 1;
  int n = 0;
  size_t i = 1;
  for (; i < message.size() && i < 7 && message[i] >= '0' && message[i] <= '9'; ++i)
    n = n * 10 + (message[i] - '0');
  return i > 1 ? n : 1;
}

// The node an interruption is about: a Node event's object, or "node X" in a pool's message.
std::string InterruptedNode(const EventInput& e) {
  if (e.kind == "Node") return e.name;
  const std::string_view m = e.message;
  if (!m.starts_with("node ")) return e.kind + "/" + e.name + ": " + e.message;
  const size_t end = m.find(' ', 5);
  return std::string(m.substr(5, end == m.npos ? m.npos : end - 5));
}

PoolSection BuildPools(const ReportInputs& in) {
  PoolSection s;
  s.pools = in.pools;
  std::set<std::string> interrupted;
  std::vector<std::pair<int64_t, int>> changes;  // (time, node delta)
  for (const EventInput& e : in.events) {
    const bool interruption = IsInterruptionReason(e.reason);
    if (e.kind != "GPUNodePool" && !(e.kind == "Node" && interruption)) continue;
    PoolEventRow row{.time = e.last,
                     .object = e.kind + "/" + e.name,
                     .reason = e.reason,
                     .message = e.message,
                     .count = std::max(1, e.count)};
    int per_event = 0;
    if (e.reason == "ScaleUp") {
      row.kind = PoolEventKind::kScaleUp;
      per_event = ScaleUpCount(e.message);
      s.nodes_added += per_event * row.count;
    } else if (e.reason == "Terminate") {
      row.kind = PoolEventKind::kScaleDown;
      per_event = -1;
      s.nodes_removed += row.count;
    } else if (interruption) {
      row.kind = PoolEventKind::kInterruption;
      if (e.reason != "RebalanceRecommendation") interrupted.insert(InterruptedNode(e));
    }
    row.node_delta = per_event * row.count;
    if (per_event != 0) {
      changes.push_back({e.first != 0 ? e.first : e.last, per_event});
      for (int i = 1; i < row.count; ++i)
        changes.push_back({e.last, per_event});
    }
    s.events.push_back(std::move(row));
  }
  s.interruptions = static_cast<int>(interrupted.size());
  std::stable_sort(s.events.begin(), s.events.end(),
                   [](const PoolEventRow& a, const PoolEventRow& b) { return a.time < b.time; });
  std::stable_sort(changes.begin(), changes.end());
  if (!changes.empty()) {
    int nodes = 0;
    for (const NodePoolInput& p : in.pools)
      nodes += p.nodes;
    for (const auto& [time, delta] : changes)
      nodes -= delta;
    // Events that expired before the report make the start negative: start at 0.
    nodes = std::max(nodes, 0);
    s.nodes_over_time.push_back({changes.front().first, nodes});
    for (const auto& [time, delta] : changes) {
      nodes = std::max(0, nodes + delta);
      if (s.nodes_over_time.back().time == time) {
        s.nodes_over_time.back().nodes = nodes;
      } else {
        s.nodes_over_time.push_back({time, nodes});
      }
    }
    const int64_t end = std::max(in.generated_at, changes.back().first);
    if (end > s.nodes_over_time.back().time) s.nodes_over_time.push_back({end, nodes});
  }
  return s;
}

PlacementSection BuildPlacement(const ReportInputs& in) {
  PlacementSection s;
  s.curves = in.placement;
  s.reschedules = in.reschedules;
  for (const PlacementCurve& c : in.placement) {
    PlacementRow row{.policy = c.policy};
    const size_t n = std::min(c.arrived_pct.size(), c.alloc_pct.size());
    for (size_t i = 0; i < n; ++i)
      if (c.arrived_pct[i] <= 100) row.alloc_at_100 = c.alloc_pct[i];
    if (n > 0) {
      row.alloc_final = c.alloc_pct[n - 1];
      row.final_arrived = c.arrived_pct[n - 1];
    }
    s.rows.push_back(row);
  }
  auto fgd = std::find_if(s.rows.begin(), s.rows.end(),
                          [](const PlacementRow& r) { return r.policy == "FGD"; });
  s.has_fgd = fgd != s.rows.end();
  if (s.has_fgd) {
    const double baseline = fgd->alloc_final;
    for (PlacementRow& r : s.rows)
      r.vs_fgd = r.alloc_final - baseline;
  }
  return s;
}

// "Preempted by <ns/name | a pod | pod <uid>> on node <node>[, with all of
// pod group <group>, which ...]": the preemptor, node and group; false when
// the message is not one of those.
bool ParsePreempted(std::string_view m, PreemptionRow* row) {
  constexpr std::string_view kBy = "Preempted by ", kOn = " on node ",
                             kGroup = ", with all of pod group ";
  if (!m.starts_with(kBy)) return false;
  m.remove_prefix(kBy.size());
  const size_t on = m.find(kOn);
  if (on == m.npos || on == 0) return false;
  row->preemptor = std::string(m.substr(0, on));
  m.remove_prefix(on + kOn.size());
  const size_t group = m.find(kGroup);
  row->node = std::string(m.substr(0, std::min(group, m.find_first_of(" ,"))));
  if (group != m.npos) {
    std::string_view rest = m.substr(group + kGroup.size());
    row->pod_group = std::string(rest.substr(0, rest.find(',')));
  }
  return !row->node.empty();
}

PreemptionSection BuildPreemptions(const ReportInputs& in) {
  PreemptionSection s;
  std::set<std::string> groups;
  for (const EventInput& e : in.events) {
    if (e.kind != "Pod" || e.reason != "Preempted") continue;
    PreemptionRow row{.time = e.last, .victim = e.ns + "/" + e.name};
    if (!ParsePreempted(e.message, &row)) row.preemptor = "(" + e.message + ")";
    ++s.by_preemptor[row.preemptor];
    if (!row.pod_group.empty()) groups.insert(row.pod_group);
    s.rows.push_back(std::move(row));
  }
  s.whole_groups = static_cast<int>(groups.size());
  std::stable_sort(s.rows.begin(), s.rows.end(),
                   [](const PreemptionRow& a, const PreemptionRow& b) { return a.time < b.time; });
  return s;
}

}  // namespace

std::vector<std::string> ShownEventFieldSelectors() {
  std::vector<std::string> out = {"involvedObject.kind=GPUNodePool"};
  for (std::string_view reason : kInterruptionReasons)
    out.push_back("involvedObject.kind=Node,reason=" + std::string(reason));
  out.push_back("involvedObject.kind=Pod,reason=Preempted");
  return out;
}

std::string_view PoolEventKindName(PoolEventKind kind) {
  switch (kind) {
    case PoolEventKind::kScaleUp:
      return "scale-up";
    case PoolEventKind::kScaleDown:
      return "scale-down";
    case PoolEventKind::kInterruption:
      return "interruption";
    case PoolEventKind::kOther:
      break;
  }
  return "other";
}

Report BuildReport(const ReportInputs& in) {
  Report r;
  r.cluster = in.cluster;
  r.currency = in.currency;
  r.generated_at = in.generated_at;
  r.since = in.since;
  r.until = in.until;
  r.sharing = BuildSharing(in);
  r.cost = BuildCost(in);
  r.budgets = BuildBudgets(in);
  r.pools = BuildPools(in);
  r.placement = BuildPlacement(in);
  r.preemptions = BuildPreemptions(in);
  r.profiles = in.profiles;
  r.notes = in.notes;
  return r;
}

}  // namespace gpu_autoscaler::report
