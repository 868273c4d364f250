// gpu-autoscaler report: one page on what the autoscaler did and what it
// saved, from the API server (pods and nodes through the cost meter,
// GPUSharingPolicy, Budget, GPUNodePool, ReschedulePolicy and ServiceProfile
// statuses, Events), the cost history and optional files the demo writes (the
// alert receiver's log, the placement simulator's curve, admission denials).
// Figures: report/report.h; HTML: report/render.h; text: here.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "api/resources.h"
#include "controllers/cost_metering.h"
#include "cost/metering.h"
#include "cost/pricing.h"
#include "kube/config.h"
#include "kube/error.h"
#include "kube/rest_client.h"
#include "report/event_reader.h"
#include "report/inputs.h"
#include "report/render.h"
#include "report/report.h"
#include "tools/cluster_list.h"
#include "tools/cluster_meter.h"
#include "tools/cost_cli.h"

namespace gpu_autoscaler::cli {
namespace {

using nlohmann::json;
namespace rp = report;

constexpr std::string_view kCommand = "report";
// Events per list request (kubectl's default chunk size).
constexpr int64_t kEventPageSize = 500;

constexpr char kUsage[] =
    "Usage: gpu-autoscaler report [--kubeconfig FILE] [--context NAME] [--db DB]\n"
    "                             [--since TIME] [--until TIME] [--alerts FILE]\n"
    "                             [--placement FILE] [--denied FILE] [--cluster NAME]\n"
    "                             [-o text|html] [--out FILE] [--html-out FILE]\n"
    "\n"
    "One report on the cluster: GPUs freed by sharing; cost by team against what it\n"
    "would have been without sharing (attribution: it lowers what pods are charged,\n"
    "not the bill, until fewer nodes run) and without spot (the on-demand rate: a\n"
    "saving on the bill); Budgets, the alerts a receiver logged and denied pods; node\n"
    "pool scale-ups, consolidations and spot interruptions; placement policies\n"
    "against FGD; ReschedulePolicy runs and ServiceProfile recommendations.\n"
    "The HTML page is self-contained: inline SVG charts, no script, nothing fetched.\n"
    "\n"
    "Options:\n"
    "  --kubeconfig FILE   cluster to read (default: $KUBECONFIG, ~/.kube/config, in-cluster)\n"
    "  --context NAME      kubeconfig context\n"
    "  --db DB             SQLite file or postgres:// URL of the cost history (the manager's\n"
    "                      --cost-db); without it the cost section is empty\n"
    "  --since TIME        cost window start: a duration before now (1h) or RFC 3339 "
    "(default 24h)\n"
    "  --until TIME        cost window end (default: now)\n"
    "  --alerts FILE       alert receiver log, one JSON object a line {path, body, signature}\n"
    "  --placement FILE    `gpu-autoscaler simulate --arrived-curve` CSV\n"
    "  --denied FILE       admission denials, one a line\n"
    "  --cluster NAME      name shown in the title\n"
    "  -o, --output FMT    text (default) or html\n"
    "  --out FILE          write there instead of standard output\n"
    "  --html-out FILE     also write the HTML page there, from the same figures (the demo\n"
    "                      prints the text and keeps the page)\n"
    "  --now TIME          evaluate as of this RFC 3339 time (default: the clock)\n"
    "  -h, --help          show this help\n";

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgumentError("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().size() > rp::kMaxInputBytes) return InvalidArgumentError(path + ": over 64 MiB");
  return text.str();
}

// Lists a resource as JSON; a CRD that is not installed is a note, not a failure.
Result<json> ListJson(kube::RestClient& client, const kube::GroupVersionResource& gvr,
                      std::vector<std::string>* notes) {
  auto list = client.List(kube::ObjectRef{gvr, "", "", ""});
  if (list.ok()) return *list;
  if (kube::IsNotFound(list.error())) {
    notes->push_back(gvr.resource + ": not served by this API server (CRD not installed)");
    return json{{"items", json::array()}};
  }
  return list.error().ToStatus().WithContext("listing " + gvr.resource);
}

Status ReadCluster(kube::RestClient& client, int64_t now, rp::ReportInputs* in) {
  // The cost meter's view of this second: each pod's GPU share and sharing mode.
  GPU_ASSIGN_OR_RETURN(ClusterSecond second, MeterClusterAt(client, now));
  const controllers::MeterInventory& inventory = second.inventory;
  const cost::TickResult& tick = second.tick;
  const std::string team_label = cost::AttributionLabels{}.team;
  for (const cost::PodSecondCost& c : tick.pods) {
    const cost::MeteredPod& p = inventory.pods[c.pod_index];
    if (c.gpu_share <= 0) continue;
    auto team = p.labels.find(team_label);
    in->pods.push_back({.ns = p.ns,
                        .name = p.name,
                        .team = team == p.labels.end() ? "" : team->second,
                        .mode = std::string(cost::SharingModeName(p.sharing.mode)),
                        .gpu_share = c.gpu_share});
  }
  struct Reader {
    const kube::GroupVersionResource* gvr;
    std::function<Status(const json&)> parse;
  };
  auto into = [](auto* target) {
    return [target](auto parsed) -> Status {
      if (!parsed.ok()) return parsed.error();
      *target = std::move(*parsed);
      return Status();
    };
  };
  const std::vector<Reader> readers = {
      {&api::kGpuSharingPolicies,
       [&](const json& l) { return into(&in->sharing_policies)(rp::ParseSharingPolicies(l)); }},
      {&api::kBudgets, [&](const json& l) { return into(&in->budgets)(rp::ParseBudgets(l)); }},
      {&api::kGpuNodePools, [&](const json& l) { return into(&in->pools)(rp::ParseNodePools(l)); }},
      {&api::kReschedulePolicies,
       [&](const json& l) { return into(&in->reschedules)(rp::ParseReschedulePolicies(l)); }},
      {&api::kServiceProfiles,
       [&](const json& l) { return into(&in->profiles)(rp::ParseServiceProfiles(l)); }},
  };
  for (const Reader& r : readers) {
    GPU_ASSIGN_OR_RETURN(json list, ListJson(client, *r.gvr, &in->notes));
    GPU_RETURN_IF_ERROR(r.parse(list).WithContext(r.gvr->resource));
  }
  // Only the Events the report shows, selected by the API server, in pages.
  GPU_ASSIGN_OR_RETURN(in->events, rp::ReadShownEvents(client, kEventPageSize));
  return Status();
}

Status ReadCosts(const std::string& db, const cost::TimeWindow& window, rp::ReportInputs* in) {
  GPU_ASSIGN_OR_RETURN(auto store, OpenHistory(db));
  GPU_ASSIGN_OR_RETURN(auto pricing, cost::CatalogPricingSource::Builtin());
  in->currency = std::string(pricing->currency());
  using cost::Dimension;
  GPU_ASSIGN_OR_RETURN(
      cost::CostReport by_team,
      store->Query(
          {.window = window, .group_by = {Dimension::kTeam, Dimension::kTier, Dimension::kModel}}));
  for (const cost::CostRow& row : by_team.rows) {
    const cost::CostTotals& t = row.totals;
    rp::CostInput c{.team = row.keys.size() > 0 ? row.keys[0] : "",
                    .tier = row.keys.size() > 1 ? row.keys[1] : "",
                    .gpu_model = row.keys.size() > 2 ? row.keys[2] : "",
                    .idle = row.idle,
                    .gpu_seconds = t.gpu_seconds,
                    .gpu_cost = t.gpu_cost,
                    .exclusive_gpu_cost = t.exclusive_gpu_cost,
                    .other_cost = t.cpu_cost + t.memory_cost,
                    .idle_gpu_seconds = t.idle_gpu_seconds,
                    .idle_cost = t.idle_cost};
    if (c.tier == "spot" && !in->on_demand_gpu_rate.count(c.gpu_model))
      in->on_demand_gpu_rate[c.gpu_model] = pricing->GpuModelRate(c.gpu_model);
    in->costs.push_back(std::move(c));
  }
  // A minute series is enough for hours; longer windows take hours.
  const cost::Resolution bucket =
      window.until - window.since > 6 * 3600 ? cost::Resolution::kHour : cost::Resolution::kMinute;
  GPU_ASSIGN_OR_RETURN(
      cost::CostReport series,
      store->Query({.window = window, .group_by = {Dimension::kTeam}, .bucket = bucket}));
  for (const cost::CostRow& row : series.rows) {
    if (row.idle) continue;
    in->cost_series.push_back({.team = row.keys.empty() ? "" : row.keys[0],
                               .bucket = row.bucket,
                               .cost = row.totals.total_cost()});
  }
  in->since = by_team.window.since;
  in->until = by_team.window.until;
  return Status();
}

std::string Money(double v) {
  return FormatNumber(v, std::abs(v) < 10 ? 4 : 2);
}

std::string RenderText(const rp::Report& r) {
  std::string out = "GPU autoscaler report" + (r.cluster.empty() ? "" : " - " + r.cluster) + ", " +
                    FormatTime(r.generated_at) + "\n";
  const rp::SharingSection& s = r.sharing;
  out += "\nGPU sharing: pods hold " + FormatNumber(s.held_gpus, 2) + " GPUs instead of " +
         FormatNumber(s.whole_gpus, 0) + " whole GPUs: " + FormatNumber(s.freed_gpus(), 2) +
         " GPUs freed for other pods (capacity; the bill falls when fewer nodes run)\n";
  Table modes({"MODE", "PODS", "GPUS HELD", "WITHOUT SHARING"}, {false, true, true, true});
  for (const rp::SharingModeRow& m : s.modes)
    modes.AddRow({m.mode, std::to_string(m.pods), FormatNumber(m.held_gpus, 2),
                  FormatNumber(m.whole_gpus, 0)});
  out += modes.Render();

  const rp::CostSection& c = r.cost;
  out += "\nCost by team, " + FormatTime(r.since) + " to " + FormatTime(r.until) + " (" +
         r.currency + ")\n";
  Table teams({"TEAM", "GPU-HOURS", "ACTUAL", "WITHOUT SHARING", "WITHOUT SPOT"},
              {false, true, true, true, true});
  for (const rp::TeamCostRow& t : c.teams)
    teams.AddRow({t.team, FormatNumber(t.gpu_hours, 3), Money(t.actual), Money(t.without_sharing),
                  Money(t.without_spot)});
  teams.AddSeparator();
  teams.AddRow({"total", "", Money(c.actual), Money(c.without_sharing), Money(c.without_spot)});
  teams.AddRow({"idle capacity", FormatNumber(c.idle_gpu_hours, 3), Money(c.idle_cost), "", ""});
  out += teams.Render();
  out += "spot saved " + Money(c.spot_saving()) + " on the bill; sharing moved " +
         Money(c.sharing_attributed()) + " (attribution, not a saving until fewer nodes run); " +
         "idle capacity cost " + Money(c.idle_cost) + " (available by scaling down)\n";
  for (const std::string& n : c.notes)
    out += "note: " + n + "\n";

  const rp::BudgetSection& b = r.budgets;
  out += "\nBudgets\n";
  Table budgets({"BUDGET", "SPENT", "AMOUNT", "PERCENT", "CONDITIONS", "ENFORCEMENT"},
                {false, true, true, true, false, false});
  for (const rp::BudgetInput& x : b.budgets) {
    std::string conditions;
    for (const std::string& cond : x.true_conditions)
      conditions += (conditions.empty() ? "" : ",") + cond;
    budgets.AddRow({x.ns + "/" + x.name, Money(x.spend) + " " + x.currency, Money(x.amount),
                    FormatNumber(x.percent, 1) + "%", conditions.empty() ? "-" : conditions,
                    x.enforcement});
  }
  out += b.budgets.empty() ? "  none\n" : budgets.Render();
  out += std::to_string(b.alerts.size()) + " alerts received";
  for (const auto& [channel, n] : b.alerts_by_channel)
    out += ", " + std::to_string(n) + " on " + channel;
  out += "\n";
  for (const rp::AlertRow& a : b.alerts) {
    const size_t pad = a.channel.size() < 8 ? 8 - a.channel.size() : 1;
    out += "  " + a.channel + std::string(pad, ' ') + a.summary + "\n";
  }
  for (const std::string& d : b.denied)
    out += "denied at admission: " + d + "\n";

  const rp::PoolSection& p = r.pools;
  out += "\nNode pools: " + std::to_string(p.nodes_added) + " nodes added, " +
         std::to_string(p.nodes_removed) + " removed, " + std::to_string(p.interruptions) +
         " spot interruption(s)\n";
  Table events({"TIME", "KIND", "OBJECT", "REASON", "COUNT", "MESSAGE"},
               {false, false, false, false, true, false});
  for (const rp::PoolEventRow& e : p.events)
    events.AddRow({FormatTime(e.time), std::string(rp::PoolEventKindName(e.kind)), e.object,
                   e.reason, std::to_string(e.count), e.message});
  out += p.events.empty() ? "  no node pool events\n" : events.Render();

  const rp::PlacementSection& pl = r.placement;
  out += "\nPlacement against FGD (GPU allocation %, simulator)\n";
  Table placement({"POLICY", "AT 100% ARRIVED", "AT END", "VS FGD"}, {false, true, true, true});
  for (const rp::PlacementRow& row : pl.rows)
    placement.AddRow({row.policy, FormatNumber(row.alloc_at_100, 2),
                      FormatNumber(row.alloc_final, 2),
                      pl.has_fgd ? FormatNumber(row.vs_fgd, 2) : "-"});
  out += pl.rows.empty() ? "  no simulation given (--placement)\n" : placement.Render();
  for (const rp::RescheduleInput& x : pl.reschedules) {
    out += "ReschedulePolicy " + x.name + ": " + (x.dry_run ? "dry run" : "live") + ", planned " +
           std::to_string(x.planned) + ", executed " + std::to_string(x.executed) + "\n";
    for (const std::string& m : x.moves)
      out += "  " + m + "\n";
  }

  const rp::PreemptionSection& pre = r.preemptions;
  out += "\nPreemptions: " + std::to_string(pre.rows.size()) +
         " pod(s) evicted for pods of higher priority";
  if (pre.whole_groups > 0) {
    out += ", " + std::to_string(pre.whole_groups) + " pod group(s) evicted whole";
  }
  out += "\n";
  Table preempted({"TIME", "VICTIM", "PREEMPTOR", "NODE", "POD GROUP"},
                  {false, false, false, false, false});
  for (const rp::PreemptionRow& row : pre.rows)
    preempted.AddRow({FormatTime(row.time), row.victim, row.preemptor, row.node,
                      row.pod_group.empty() ? "-" : row.pod_group});
  if (!pre.rows.empty()) out += preempted.Render();

  out += "\nServiceProfiles\n";
  for (const rp::ProfileInput& x : r.profiles) {
    out += "  " + x.ns + "/" + x.name + " (" + x.target +
           "): " + (x.provided ? "recommendation provided" : "no recommendation yet") + "\n";
    for (const rp::ContainerRecommendation& rec : x.containers)
      out += "    " + rec.container + ": cpu " + rec.cpu_target + ", memory " + rec.memory_target +
             (rec.gpu_share.empty() ? "" : ", GPU share " + rec.gpu_share) + "\n";
  }
  if (r.profiles.empty()) out += "  none\n";
  for (const std::string& n : r.notes)
    out += "note: " + n + "\n";
  return out;
}

}  // namespace

int RunReport(int argc, char** argv) {
  FlagParser flags({"--kubeconfig", "--context", "--db", "--since", "--until", "--alerts",
                    "--placement", "--denied", "--cluster", "--output", "--out", "--html-out",
                    "--now"});
  flags.Alias("-o", "--output");
  if (!flags.Parse(argc, argv)) return UsageError(kCommand, flags.error());
  if (flags.help()) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  const std::string output = flags.Get("--output", "text");
  if (output != "text" && output != "html")
    return UsageError(kCommand, "-o: want text or html, got \"" + output + "\"");
  auto now = ResolveNow(flags.Get("--now"));
  if (!now.ok()) return UsageError(kCommand, now.error().message());
  auto window = ResolveWindow(flags.Get("--since", "24h"), flags.Get("--until"), *now);
  if (!window.ok()) return UsageError(kCommand, window.error().message());

  rp::ReportInputs in;
  in.cluster = flags.Get("--cluster");
  in.generated_at = *now;
  in.since = window->since;
  in.until = window->until;
  // Files first: a typo in a path fails before the cluster is read.
  if (flags.Has("--alerts")) {
    auto text = ReadFile(flags.Get("--alerts"));
    if (!text.ok()) return Fail(kCommand, text.error().message());
    auto alerts = rp::ParseAlertLog(*text);
    if (!alerts.ok())
      return Fail(kCommand, flags.Get("--alerts") + ": " + alerts.error().message());
    in.alerts = std::move(*alerts);
  }
  if (flags.Has("--placement")) {
    auto text = ReadFile(flags.Get("--placement"));
    if (!text.ok()) return Fail(kCommand, text.error().message());
    auto curves = rp::ParsePlacementCurve(*text);
    if (!curves.ok())
      return Fail(kCommand, flags.Get("--placement") + ": " + curves.error().message());
    in.placement = std::move(*curves);
  }
  if (flags.Has("--denied")) {
    auto text = ReadFile(flags.Get("--denied"));
    if (!text.ok()) return Fail(kCommand, text.error().message());
    std::istringstream lines(*text);
    for (std::string line; std::getline(lines, line);)
      if (line.find_first_not_of(" \t\r") != std::string::npos) in.denied.push_back(line);
  }

  auto config =
      flags.Get("--kubeconfig").empty()
          ? kube::LoadDefaultConfig(flags.Get("--context"))
          : kube::LoadKubeconfigFiles({flags.Get("--kubeconfig")}, flags.Get("--context"));
  if (!config.ok()) return Fail(kCommand, "no cluster to read: " + config.error().ToString());
  config->user_agent = "gpu-autoscaler-cli";
  auto client = kube::RestClient::Create(*config);
  if (!client.ok()) return Fail(kCommand, client.error().ToString());
  if (Status s = ReadCluster(**client, *now, &in); !s.ok())
    return Fail(kCommand, s.message() + " (server " + config->server + ")");
  if (flags.Get("--db").empty()) {
    in.notes.push_back("no cost history given (--db): the cost section is empty");
  } else if (Status s = ReadCosts(flags.Get("--db"), *window, &in); !s.ok()) {
    return Fail(kCommand, s.message());
  }

  const rp::Report report = rp::BuildReport(in);
  if (flags.Has("--html-out")) {
    std::ofstream page(flags.Get("--html-out"), std::ios::binary | std::ios::trunc);
    page << rp::RenderHtml(report);
    page.close();
    if (!page) return Fail(kCommand, "cannot write " + flags.Get("--html-out"));
  }
  const std::string text = output == "html" ? rp::RenderHtml(report) : RenderText(report);
  if (!flags.Has("--out")) {
    std::fputs(text.c_str(), stdout);
    return kExitOk;
  }
  std::ofstream out(flags.Get("--out"), std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Fail(kCommand, "cannot write " + flags.Get("--out"));
  return kExitOk;
}

}  // namespace gpu_autoscaler::cli
