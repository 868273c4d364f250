#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "report/render.h"
#include "report/svg_chart.h"

namespace gpu_autoscaler::report {
namespace {

std::string Fixed(double v, int decimals) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, std::isfinite(v) ? v : 0.0);
  return buf;
}

// Small amounts (a demo runs minutes) keep four decimals.
std::string Money(double v, const std::string& currency) {
  return Fixed(v, std::fabs(v) < 10 ? 4 : 2) + " " + HtmlEscape(currency);
}

std::string E(std::string_view s) {
  return HtmlEscape(s);
}

constexpr char kStyle[] = R"css(
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 24px auto;
       max-width: 1360px; color: #111827; background: #f9fafb; }
h1 { font-size: 24px; margin-bottom: 4px; }
h2 { font-size: 18px; margin: 0 0 8px 0; }
.meta { color: #6b7280; font-size: 13px; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin: 16px 0; }
.card { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 12px; }
.card .value { font-size: 22px; font-weight: 600; }
.card .label { font-size: 12px; color: #4b5563; }
.card.bill .value { color: #15803d; } .card.attributed .value { color: #1d4ed8; }
.card.warn .value { color: #b91c1c; }
section { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 16px; margin: 16px 0; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border-bottom: 1px solid #e5e7eb; padding: 4px 10px; text-align: left; }
td:first-child { white-space: nowrap; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #4b5563; font-size: 13px; }
.denied { color: #b91c1c; font-family: monospace; font-size: 12px; }
)css";

std::string Card(const std::string& css, const std::string& value, const std::string& label,
                 const std::string& key) {
  return "<div class=\"card " + css + "\" data-figure=\"" + key + "\"><div class=\"value\">" +
         value + "</div><div class=\"label\">" + label + "</div></div>\n";
}

std::string Row(const std::vector<std::string>& cells, const std::vector<bool>& numeric) {
  std::string out = "<tr>";
  for (size_t i = 0; i < cells.size(); ++i)
    out += (i < numeric.size() && numeric[i] ? "<td class=\"n\">" : "<td>") + cells[i] + "</td>";
  return out + "</tr>\n";
}

std::string Header(const std::vector<std::string>& names) {
  std::string out = "<tr>";
  for (const std::string& n : names)
    out += "<th>" + n + "</th>";
  return out + "</tr>\n";
}

std::string Sharing(const Report& r) {
  const SharingSection& s = r.sharing;
  std::string out = "<section id=\"sharing\"><h2>GPU sharing</h2>\n";
  out += "<p class=\"note\">Pods hold " + Fixed(s.held_gpus, 2) + " GPUs; without sharing they " +
         "would hold " + Fixed(s.whole_gpus, 0) + " whole GPUs: " + Fixed(s.freed_gpus(), 2) +
         " GPUs freed for other pods. That is capacity, not yet money: the nodes cost the same "
         "until fewer of them run.</p>\n";
  BarChart chart{.id = "sharing-gpus",
                 .title = "GPUs by sharing mode",
                 .unit = "GPUs",
                 .series = {"whole GPUs without sharing", "GPUs held"}};
  for (const SharingModeRow& m : s.modes)
    chart.groups.push_back({m.mode, {m.whole_gpus, m.held_gpus}});
  out += "<div class=\"charts\">" + RenderBarChart(chart) + "<div>";
  out += "<table>" + Header({"MODE", "PODS", "GPUS HELD", "WITHOUT SHARING", "FREED"});
  for (const SharingModeRow& m : s.modes) {
    out += Row({E(m.mode), std::to_string(m.pods), Fixed(m.held_gpus, 2), Fixed(m.whole_gpus, 0),
                Fixed(m.whole_gpus - m.held_gpus, 2)},
               {false, true, true, true, true});
  }
  out += "</table>\n";
  if (!s.policies.empty()) {
    out += "<table>" + Header({"GPUSHARINGPOLICY", "MATCHED PODS"});
    for (const SharingPolicyInput& p : s.policies)
      out += Row({E(p.name), std::to_string(p.matched_pods)}, {false, true});
    out += "</table>\n";
  }
  return out + "</div></div></section>\n";
}

std::string Cost(const Report& r) {
  const CostSection& c = r.cost;
  std::string out = "<section id=\"cost\"><h2>Cost by team</h2>\n";
  out += "<p class=\"note\">" + FormatUnixTime(r.since) + " to " + FormatUnixTime(r.until) +
         ". <b>Without spot</b>: spot GPU-hours at the model's on-demand rate; the difference is "
         "a saving on the bill. <b>Without sharing</b>: one whole GPU per pod; the difference is "
         "attribution (what pods were charged), which becomes a saving when idle nodes are "
         "scaled down.</p>\n";
  BarChart bars{.id = "team-cost",
                .title = "Cost by team",
                .unit = r.currency,
                .series = {"actual", "without sharing (attributed)", "without spot (on-demand)"}};
  for (const TeamCostRow& t : c.teams)
    bars.groups.push_back({t.team, {t.actual, t.without_sharing, t.without_spot}});
  LineChart line{.id = "cost-over-time",
                 .title = "Cumulative cost by team",
                 .x_label = "time (UTC)",
                 .y_label = r.currency,
                 .x_is_unix_time = true};
  for (const CostSeries& s : c.series) {
    LineSeries ls{.name = s.team};
    for (size_t i = 0; i < s.time.size(); ++i) {
      ls.x.push_back(static_cast<double>(s.time[i]));
      ls.y.push_back(s.cumulative[i]);
    }
    line.series.push_back(std::move(ls));
  }
  out += "<div class=\"charts\">" + RenderBarChart(bars) + RenderLineChart(line) + "</div>\n";
  out += "<table>" + Header({"TEAM", "GPU-HOURS", "ACTUAL", "WITHOUT SHARING", "WITHOUT SPOT"});
  for (const TeamCostRow& t : c.teams) {
    out += Row({E(t.team), Fixed(t.gpu_hours, 3), Money(t.actual, r.currency),
                Money(t.without_sharing, r.currency), Money(t.without_spot, r.currency)},
               {false, true, true, true, true});
  }
  out += Row({"<b>total</b>", "", Money(c.actual, r.currency), Money(c.without_sharing, r.currency),
              Money(c.without_spot, r.currency)},
             {false, true, true, true, true});
  out += Row({"idle capacity", Fixed(c.idle_gpu_hours, 3), Money(c.idle_cost, r.currency), "", ""},
             {false, true, true, true, true});
  out += "</table>\n";
  for (const std::string& n : c.notes)
    out += "<p class=\"note\">note: " + E(n) + "</p>\n";
  return out + "</section>\n";
}

std::string Budgets(const Report& r) {
  const BudgetSection& b = r.budgets;
  std::string out = "<section id=\"budgets\"><h2>Budgets and alerts</h2>\n";
  BarChart chart{.id = "budget-percent",
                 .title = "Budget spent this period",
                 .unit = "% of amount",
                 .series = {"spent %"}};
  for (const BudgetInput& x : b.budgets)
    chart.groups.push_back({x.ns + "/" + x.name, {x.percent}});
  out += "<div class=\"charts\">" + RenderBarChart(chart) + "<div>";
  out += "<table>" + Header({"BUDGET", "SPENT", "AMOUNT", "PERCENT", "ALERTS FIRED", "CONDITIONS",
                             "ENFORCEMENT"});
  for (const BudgetInput& x : b.budgets) {
    std::string fired, conditions;
    for (double t : x.fired_thresholds)
      fired += (fired.empty() ? "" : ", ") + Fixed(t, 0) + "%";
    for (const std::string& c : x.true_conditions)
      conditions += (conditions.empty() ? "" : ", ") + c;
    out += Row({E(x.ns + "/" + x.name), Money(x.spend, x.currency), Money(x.amount, x.currency),
                Fixed(x.percent, 1) + "%", fired.empty() ? "-" : fired,
                conditions.empty() ? "-" : E(conditions), E(x.enforcement)},
               {false, true, true, true, false, false, false});
  }
  out += "</table>\n";
  out += "<p class=\"note\">" + std::to_string(b.alerts.size()) +
         " alerts received by the local receiver";
  for (const auto& [channel, n] : b.alerts_by_channel)
    out += ", " + std::to_string(n) + " on " + E(channel);
  out += ".</p>\n";
  if (!b.alerts.empty()) {
    out += "<table>" + Header({"CHANNEL", "THRESHOLD", "SIGNED", "SUMMARY"});
    for (const AlertRow& a : b.alerts) {
      out += Row({E(a.channel), a.threshold >= 0 ? Fixed(a.threshold, 0) + "%" : "-",
                  a.signed_request ? "yes" : "no", E(a.summary)},
                 {false, true, false, false});
    }
    out += "</table>\n";
  }
  for (const std::string& d : b.denied)
    out += "<p>Denied at admission:</p><p class=\"denied\">" + E(d) + "</p>\n";
  return out + "</div></div></section>\n";
}

std::string Pools(const Report& r) {
  const PoolSection& p = r.pools;
  std::string out =
      "<section id=\"pools\"><h2>Node pools: scale-ups, consolidation, spot "
      "interruptions</h2>\n";
  out += "<p class=\"note\">" + std::to_string(p.nodes_added) + " nodes added, " +
         std::to_string(p.nodes_removed) + " removed, " + std::to_string(p.interruptions) +
         " spot interruption" + (p.interruptions == 1 ? "" : "s") +
         ". Nodes over time are rebuilt from the pools' current count and their ScaleUp and "
         "Terminate Events.</p>\n";
  LineChart chart{.id = "pool-nodes",
                  .title = "GPU node-pool nodes",
                  .x_label = "time (UTC)",
                  .y_label = "nodes",
                  .x_is_unix_time = true,
                  .steps = true};
  LineSeries nodes{.name = "nodes"};
  for (const NodeStep& s : p.nodes_over_time) {
    nodes.x.push_back(static_cast<double>(s.time));
    nodes.y.push_back(s.nodes);
  }
  chart.series.push_back(std::move(nodes));
  for (const PoolEventRow& e : p.events)
    if (e.kind == PoolEventKind::kInterruption && e.reason != "InterruptionDrained")
      chart.markers.push_back({static_cast<double>(e.time), e.reason});
  out += "<div class=\"charts\">" + RenderLineChart(chart) + "<div>";
  out += "<table>" + Header({"POOL", "NODES", "DESIRED", "COST/H"});
  for (const NodePoolInput& x : p.pools) {
    out += Row({E(x.name), std::to_string(x.nodes), std::to_string(x.desired),
                Money(x.hourly_cost, r.currency)},
               {false, true, true, true});
  }
  out += "</table>\n<table>" + Header({"TIME", "KIND", "OBJECT", "REASON", "COUNT", "MESSAGE"});
  for (const PoolEventRow& e : p.events) {
    out += Row({FormatUnixTime(e.time), std::string(PoolEventKindName(e.kind)), E(e.object),
                E(e.reason), std::to_string(e.count), E(e.message)},
               {false, false, false, false, true, false});
  }
  return out + "</table></div></div></section>\n";
}

std::string Placement(const Report& r) {
  const PlacementSection& p = r.placement;
  std::string out = "<section id=\"placement\"><h2>Placement against FGD</h2>\n";
  if (p.curves.empty()) {
    out += "<p class=\"note\">No placement simulation was given (--placement).</p>\n";
  } else {
    out +=
        "<p class=\"note\">The placement simulator on the Alibaba cluster-trace-gpu-v2023 "
        "(openb) trace, FGD evaluation protocol: GPU allocation as workload arrives.</p>\n";
    LineChart chart{.id = "placement",
                    .title = "GPU allocation rate vs arrived workload",
                    .x_label = "arrived workload, % of GPU capacity",
                    .y_label = "% of GPUs allocated"};
    for (const PlacementCurve& c : p.curves)
      chart.series.push_back({.name = c.policy, .x = c.arrived_pct, .y = c.alloc_pct});
    out += "<div class=\"charts\">" + RenderLineChart(chart) + "<div>";
    out += "<table>" +
           Header({"POLICY", "ALLOC % AT 100% ARRIVED", "ALLOC % AT END", "VS FGD (POINTS)"});
    for (const PlacementRow& row : p.rows) {
      out += Row({E(row.policy), Fixed(row.alloc_at_100, 2),
                  Fixed(row.alloc_final, 2) + " (at " + Fixed(row.final_arrived, 0) + "%)",
                  p.has_fgd ? (row.vs_fgd > 0 ? "+" : "") + Fixed(row.vs_fgd, 2) : "-"},
                 {false, true, true, true});
    }
    out += "</table></div></div>\n";
  }
  for (const RescheduleInput& x : p.reschedules) {
    out += "<p class=\"note\">ReschedulePolicy " + E(x.name) + ": last run " +
           (x.dry_run ? "dry run" : "live") + ", planned " + std::to_string(x.planned) +
           ", executed " + std::to_string(x.executed) + ", blocked " + std::to_string(x.blocked) +
           (x.fragmentation >= 0 ? ", fragmentation " + Fixed(x.fragmentation, 1) + "% of idle GPU"
                                 : "") +
           "</p>\n";
    for (const std::string& m : x.moves)
      out += "<p class=\"note\">&nbsp;&nbsp;" + E(m) + "</p>\n";
  }
  return out + "</section>\n";
}

std::string Preemptions(const Report& r) {
  const PreemptionSection& p = r.preemptions;
  std::string out = "<section id=\"preemptions\"><h2>Preemptions</h2>\n<p class=\"note\">" +
                    std::to_string(p.rows.size()) +
                    " pod(s) evicted for pods of higher priority (Preempted Events)";
  if (p.whole_groups > 0) {
    out += ", " + std::to_string(p.whole_groups) +
           " pod group(s) evicted whole: they cannot run without a member";
  }
  out += ".</p>\n";
  if (p.rows.empty()) return out + "</section>\n";
  out += "<table>" + Header({"TIME", "VICTIM", "PREEMPTOR", "NODE", "POD GROUP"});
  for (const PreemptionRow& row : p.rows) {
    out += Row({FormatUnixTime(row.time), E(row.victim), E(row.preemptor), E(row.node),
                E(row.pod_group.empty() ? "-" : row.pod_group)},
               {});
  }
  return out + "</table></section>\n";
}

std::string Profiles(const Report& r) {
  std::string out = "<section id=\"profiles\"><h2>ServiceProfiles and recommendations</h2>\n";
  if (r.profiles.empty()) return out + "<p class=\"note\">No ServiceProfiles.</p></section>\n";
  out += "<table>" + Header({"PROFILE", "TARGET", "CONTAINER", "CPU TARGET (LOWER-UPPER)",
                             "MEMORY TARGET (UPPER)", "GPU SHARE", "STATUS"});
  for (const ProfileInput& p : r.profiles) {
    const std::string status =
        (p.provided ? "RecommendationProvided: " : "no recommendation yet: ") + p.message;
    if (p.containers.empty()) {
      out += Row({E(p.ns + "/" + p.name), E(p.target), "-", "-", "-", "-", E(status)}, {});
    }
    for (const ContainerRecommendation& c : p.containers) {
      out += Row(
          {E(p.ns + "/" + p.name), E(p.target), E(c.container),
           E(c.cpu_target + " (" + c.cpu_lower + "-" +
             (c.cpu_upper.empty() ? "none yet" : c.cpu_upper) + ")"),
           E(c.memory_target + " (" + (c.memory_upper.empty() ? "none yet" : c.memory_upper) + ")"),
           E(c.gpu_share.empty() ? "-" : c.gpu_share), E(status)},
          {});
    }
  }
  return out + "</table></section>\n";
}

}  // namespace

std::string FormatUnixTime(int64_t unix) {
  if (unix == 0) return "-";
  const std::time_t t = static_cast<std::time_t>(unix);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string RenderHtml(const Report& r) {
  const std::string title =
      "GPU autoscaler report" + (r.cluster.empty() ? std::string() : " — " + r.cluster);
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>" +
                    E(title) + "</title>\n<style>" + kStyle + "</style></head>\n<body>\n";
  out += "<h1>" + E(title) + "</h1>\n<div class=\"meta\">generated " +
         FormatUnixTime(r.generated_at) + "; cost window " + FormatUnixTime(r.since) + " to " +
         FormatUnixTime(r.until) + "</div>\n";
  std::string best_other;
  if (r.placement.has_fgd) {
    double best = -INFINITY;
    for (const PlacementRow& row : r.placement.rows)
      if (row.policy != "FGD" && row.vs_fgd > best) {
        best = row.vs_fgd;
        best_other = (best > 0 ? "+" : "") + Fixed(best, 2) + " pts (" + E(row.policy) + ")";
      }
  }
  out += "<div class=\"cards\">\n";
  out += Card("attributed", Fixed(r.sharing.freed_gpus(), 2) + " GPUs",
              "freed by sharing: " + Fixed(r.sharing.held_gpus, 2) + " held instead of " +
                  Fixed(r.sharing.whole_gpus, 0),
              "gpus-freed");
  out += Card("bill", Money(r.cost.spot_saving(), r.currency), "spot: saved on the bill",
              "spot-saving");
  out += Card("attributed", Money(r.cost.sharing_attributed(), r.currency),
              "sharing: attributed, not on the bill until fewer nodes run", "sharing-attributed");
  out += Card("", Money(r.cost.idle_cost, r.currency), "idle capacity: available by scaling down",
              "idle-cost");
  out += Card(
      "warn", std::to_string(r.budgets.alerts.size()),
      "Budget alerts received; " + std::to_string(r.budgets.denied.size()) + " GPU pod(s) denied",
      "alerts");
  out += Card(
      "",
      "+" + std::to_string(r.pools.nodes_added) + " / -" + std::to_string(r.pools.nodes_removed),
      "pool nodes added / removed", "nodes");
  out += Card("warn", std::to_string(r.pools.interruptions), "spot interruptions handled",
              "interruptions");
  out += Card("", best_other.empty() ? "-" : best_other,
              "best other placement policy vs FGD, GPU allocation", "vs-fgd");
  out += "</div>\n";
  out += Sharing(r) + Cost(r) + Budgets(r) + Pools(r) + Placement(r) + Preemptions(r) + Profiles(r);
  if (!r.notes.empty()) {
    out += "<section id=\"notes\"><h2>Notes</h2>\n";
    for (const std::string& n : r.notes)
      out += "<p class=\"note\">" + E(n) + "</p>\n";
    out += "</section>\n";
  }
  return out + "</body></html>\n";
}

}  // namespace gpu_autoscaler::report
