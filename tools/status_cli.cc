// `gpu-autoscaler status`: the cluster as the autoscaler sees it. Reads
// Nodes, Pods and Budgets the way kubectl finds a cluster, prices them with
// the same inventory and meter the cost controller uses, and prints GPUs by
// model and tier (total, allocated, shared by mode, idle and what idle costs)
// and the Budgets at risk.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/resources.h"
#include "common/json_read.h"
#include "controllers/cost_metering.h"
#include "cost/budget.h"
#include "cost/duration.h"
#include "cost/metering.h"
#include "cost/pricing.h"
#include "cost/utilization.h"
#include "kube/conditions.h"
#include "kube/config.h"
#include "kube/error.h"
#include "kube/object_codec.h"
#include "kube/rest_client.h"
#include "tools/cluster_list.h"
#include "tools/cluster_meter.h"
#include "tools/cost_cli.h"

namespace gpu_autoscaler::cli {
namespace {

using nlohmann::json;

constexpr char kCommand[] = "status";
constexpr char kUsage[] =
    "Usage: gpu-autoscaler status [--kubeconfig FILE] [--context NAME] [-o table|wide|json]\n"
    "                             [--watch[=INTERVAL]]\n"
    "\n"
    "Shows the cluster as gpu-autoscaler sees it: GPU nodes by GPU model and capacity\n"
    "tier; GPUs total, allocated (fractional for shared GPUs) and shared by mode (MIG, MPS,\n"
    "time-slicing); idle GPUs and what they cost per hour at catalogue prices; and the\n"
    "Budgets at risk (80% spent, exceeded, or forecast to exceed).\n"
    "\n"
    "The cluster is found as kubectl finds it: --kubeconfig, else in-cluster, else\n"
    "$KUBECONFIG, else ~/.kube/config.\n"
    "\n"
    "Options:\n"
    "  --kubeconfig FILE   kubeconfig to use\n"
    "  --context NAME      kubeconfig context (default: current-context)\n"
    "  -o, --output FMT    table (default), wide (adds idle GPUs by node) or json\n"
    "  --watch[=DUR]       print again every DUR (default 5s) until interrupted\n"
    "  --now TIME          evaluate at TIME (RFC 3339), for reproducible output\n"
    "  --prometheus-url URL  read GPU utilisation (NVIDIA dcgm-exporter series) from this\n"
    "                      Prometheus for the UTIL column, as the manager does\n"
    "  -h, --help          show this help\n";

struct Group {
  std::string model, tier;
  int nodes = 0;
  double gpus = 0, allocated = 0, idle = 0, idle_hourly = 0;
  bool unpriced = false;
  double util_weighted = 0, util_gpus = 0;      // sum of share x utilisation, and of share
  std::map<std::string, int> shared_pods{};     // mode -> pods
  std::map<std::string, double> shared_gpus{};  // mode -> GPUs held
};

struct IdleNode {
  std::string node, model, tier;
  double idle = 0, hourly = 0;
};

struct BudgetRisk {
  std::string key, enforcement, currency, why;
  double spend = 0, amount = 0, percent = 0, forecast = 0;
};

struct Report {
  int64_t now = 0;
  std::vector<Group> groups;
  std::vector<IdleNode> idle_nodes;
  std::vector<BudgetRisk> budgets;
  int budgets_total = 0;
  std::string budgets_note;
  std::string utilization_note;  // why UTIL is empty, when it is
};

Result<Report> Build(kube::RestClient& client, int64_t now, cost::UtilizationSource* utilization) {
  Report r;
  r.now = now;
  GPU_ASSIGN_OR_RETURN(ClusterSecond second, MeterClusterAt(client, now));
  const controllers::MeterInventory& inv = second.inventory;
  const cost::InventoryReport& report = second.report;
  const cost::TickResult& tick = second.tick;

  std::map<std::string, size_t> group_of_node;  // node name -> group index
  std::map<std::pair<std::string, std::string>, size_t> groups;
  std::map<std::string, bool> unpriced;
  for (const auto& u : report.unpriced_nodes)
    unpriced[u.node] = true;
  for (const cost::MeteredNode& n : inv.nodes) {
    if (n.gpus <= 0) continue;  // GPU nodes only
    const std::string tier(cost::CapacityTierName(n.tier));
    const std::string model = n.gpu_model.empty() ? "unknown" : n.gpu_model;
    auto [it, inserted] = groups.emplace(std::make_pair(model, tier), r.groups.size());
    if (inserted) r.groups.push_back({.model = model, .tier = tier});
    Group& g = r.groups[it->second];
    ++g.nodes;
    g.gpus += n.gpus;
    g.unpriced |= unpriced.count(n.name) > 0;
    group_of_node[n.name] = it->second;
  }
  std::map<std::string, double> pod_utilization;  // "ns/name" -> utilisation of its share
  if (utilization == nullptr) {
    r.utilization_note = "no utilisation source (--prometheus-url)";
  } else if (auto usage = utilization->Fetch(); !usage.ok()) {
    r.utilization_note = "utilisation unavailable: " + usage.error().message();
  } else {
    for (const cost::PodGpuUsage& u : *usage)
      if (u.ShareUtilization() >= 0) pod_utilization[u.ns + "/" + u.pod] = u.ShareUtilization();
  }
  for (const cost::PodSecondCost& c : tick.pods) {
    const cost::MeteredPod& p = inv.pods[c.pod_index];
    auto it = group_of_node.find(p.node);
    if (it == group_of_node.end() || c.gpu_share <= 0) continue;
    Group& g = r.groups[it->second];
    g.allocated += c.gpu_share;
    if (auto u = pod_utilization.find(p.ns + "/" + p.name); u != pod_utilization.end()) {
      g.util_weighted += c.gpu_share * u->second;
      g.util_gpus += c.gpu_share;
    }
    if (p.sharing.mode != cost::SharingMode::kExclusive) {
      const std::string mode(cost::SharingModeName(p.sharing.mode));
      ++g.shared_pods[mode];
      g.shared_gpus[mode] += c.gpu_share;
    }
  }
  for (const cost::NodeSecondCost& n : tick.nodes) {
    const cost::MeteredNode& node = inv.nodes[n.node_index];
    auto it = group_of_node.find(node.name);
    if (it == group_of_node.end() || n.idle_gpus <= 0) continue;
    Group& g = r.groups[it->second];
    g.idle += n.idle_gpus;
    g.idle_hourly += n.idle_gpu_cost * 3600;
    r.idle_nodes.push_back({node.name, g.model, g.tier, n.idle_gpus, n.idle_gpu_cost * 3600});
  }
  // Unpriced nodes are not metered: their GPUs count as idle, cost unknown.
  for (const cost::MeteredNode& n : inv.nodes) {
    if (n.gpus > 0 && unpriced.count(n.name) > 0) {
      Group& g = r.groups[group_of_node[n.name]];
      g.idle += n.gpus;
      r.idle_nodes.push_back({n.name, g.model, g.tier, static_cast<double>(n.gpus), -1});
    }
  }
  std::sort(r.groups.begin(), r.groups.end(), [](const Group& a, const Group& b) {
    return std::tie(a.model, a.tier) < std::tie(b.model, b.tier);
  });
  std::sort(r.idle_nodes.begin(), r.idle_nodes.end(),
            [](const IdleNode& a, const IdleNode& b) { return a.hourly > b.hourly; });

  // Budgets, then ClusterBudgets (named "ClusterBudget/NAME": no namespace
  // can be spelt that way). ClusterBudgets are optional: an older install
  // without their CRD still reports its Budgets.
  std::vector<json> items;
  auto budgets = client.List(kube::ObjectRef{api::kBudgets, "", "", ""});
  if (budgets.ok()) {
    for (const json& b : budgets->value("items", json::array()))
      items.push_back(b);
    auto cluster = client.List(kube::ObjectRef{api::kClusterBudgets, "", "", ""});
    if (cluster.ok()) {
      for (json b : cluster->value("items", json::array())) {
        b["kind"] = "ClusterBudget";
        items.push_back(std::move(b));
      }
    } else if (!kube::IsNotFound(cluster.error())) {
      budgets = cluster.error();
    }
  }
  if (!budgets.ok()) {
    r.budgets_note = kube::IsNotFound(budgets.error())
                         ? "the Budget CRD is not installed"
                         : "cannot list Budgets: " + budgets.error().ToString();
  } else {
    for (const json& b : items) {
      ++r.budgets_total;
      const json& status = json_read::Object(b, "status");
      const json& conditions = json_read::Array(status, "conditions");
      const json& spec = json_read::Object(b, "spec");
      const json& meta = json_read::Object(b, "metadata");
      BudgetRisk risk;
      risk.key = json_read::String(b, "kind") == "ClusterBudget"
                     ? "ClusterBudget/" + json_read::String(meta, "name")
                     : json_read::String(meta, "namespace") + "/" + json_read::String(meta, "name");
      risk.spend = json_read::Number(status, "currentSpend");
      risk.amount = json_read::Number(spec, "amount");
      risk.percent = json_read::Number(status, "percent");
      risk.currency =
          json_read::String(status, "currency", json_read::String(spec, "currency", "USD"));
      risk.enforcement = json_read::String(spec, "enforcement", "alert");
      const json& forecast = json_read::Object(status, "forecast");
      risk.forecast = std::max(json_read::Number(forecast, "holtWinters"),
                               json_read::Number(forecast, "linear"));
      if (kube::IsConditionTrue(conditions, "Exceeded")) {
        risk.why = "exceeded";
      } else if (risk.percent >= 80) {
        risk.why = "over 80%";
      } else if (kube::IsConditionTrue(conditions, "ForecastExceeded")) {
        risk.why = "forecast over";
      } else if (kube::IsConditionTrue(conditions, "Invalid")) {
        risk.why = "invalid spec";
      }
      if (!risk.why.empty()) r.budgets.push_back(std::move(risk));
    }
    std::sort(r.budgets.begin(), r.budgets.end(),
              [](const BudgetRisk& a, const BudgetRisk& b) { return a.percent > b.percent; });
  }
  return r;
}

std::string SharedText(const Group& g) {
  std::string out;
  for (const char* mode : {"mig", "mps", "timeSlicing"}) {
    auto it = g.shared_pods.find(mode);
    if (it == g.shared_pods.end()) continue;
    if (!out.empty()) out += " ";
    out += std::string(mode) + ":" + std::to_string(it->second) + "/" +
           FormatNumber(g.shared_gpus.at(mode), 2);
  }
  return out.empty() ? "-" : out;
}

// Mean utilisation of the allocated GPUs that have a figure, as "37%"; "-" when none.
std::string UtilText(const Group& g) {
  return g.util_gpus > 0 ? FormatNumber(g.util_weighted / g.util_gpus * 100, 0) + "%" : "-";
}

std::string RenderText(const Report& r, bool wide) {
  std::string out = "GPU nodes at " + FormatTime(r.now) + "\n";
  Table groups({"MODEL", "TIER", "NODES", "GPUS", "ALLOCATED", "SHARED (pods/GPUs)", "IDLE",
                "IDLE $/H", "UTIL"},
               {false, false, true, true, true, false, true, true, false});
  double gpus = 0, allocated = 0, idle = 0, idle_hourly = 0;
  int nodes = 0;
  for (const Group& g : r.groups) {
    groups.AddRow({g.model, g.tier, std::to_string(g.nodes), FormatNumber(g.gpus, 0),
                   FormatNumber(g.allocated, 2), SharedText(g), FormatNumber(g.idle, 2),
                   g.unpriced ? "unpriced" : FormatMoney(g.idle_hourly), UtilText(g)});
    gpus += g.gpus;
    allocated += g.allocated;
    idle += g.idle;
    idle_hourly += g.idle_hourly;
    nodes += g.nodes;
  }
  if (r.groups.size() > 1) {
    groups.AddSeparator();
    groups.AddRow({"total", "", std::to_string(nodes), FormatNumber(gpus, 0),
                   FormatNumber(allocated, 2), "", FormatNumber(idle, 2), FormatMoney(idle_hourly),
                   "-"});
  }
  out += r.groups.empty() ? "  no GPU nodes\n" : groups.Render();
  out +=
      r.utilization_note.empty()
          ? "UTIL: mean GPU utilisation of the allocated GPUs (dcgm-exporter through Prometheus)\n"
          : "UTIL: " + r.utilization_note + "\n";
  if (wide && !r.idle_nodes.empty()) {
    out += "\nIdle GPUs by node\n";
    Table idle_table({"NODE", "MODEL", "TIER", "IDLE GPUS", "IDLE $/H"},
                     {false, false, false, true, true});
    for (const IdleNode& n : r.idle_nodes) {
      idle_table.AddRow({n.node, n.model, n.tier, FormatNumber(n.idle, 2),
                         n.hourly < 0 ? "unpriced" : FormatMoney(n.hourly)});
    }
    out += idle_table.Render();
  }
  out += "\nBudgets at risk";
  if (!r.budgets_note.empty()) {
    out += ": " + r.budgets_note + "\n";
  } else if (r.budgets.empty()) {
    out += ": none of " + std::to_string(r.budgets_total) + "\n";
  } else {
    out +=
        " (" + std::to_string(r.budgets.size()) + " of " + std::to_string(r.budgets_total) + ")\n";
    Table budgets({"BUDGET", "SPENT", "AMOUNT", "PERCENT", "FORECAST", "WHY", "ENFORCEMENT"},
                  {false, true, true, true, true, false, false});
    for (const BudgetRisk& b : r.budgets) {
      budgets.AddRow({b.key, FormatMoney(b.spend) + " " + b.currency, FormatMoney(b.amount),
                      FormatNumber(b.percent, 1) + "%", FormatMoney(b.forecast), b.why,
                      b.enforcement});
    }
    out += budgets.Render();
  }
  return out;
}

json RenderJson(const Report& r) {
  json out = {{"time", FormatTime(r.now)},
              {"groups", json::array()},
              {"idleNodes", json::array()},
              {"budgetsAtRisk", json::array()},
              {"budgetsTotal", r.budgets_total}};
  for (const Group& g : r.groups) {
    json shared = json::object();
    for (const auto& [mode, pods] : g.shared_pods)
      shared[mode] = {{"pods", pods}, {"gpus", g.shared_gpus.at(mode)}};
    out["groups"].push_back(
        {{"gpuModel", g.model},
         {"tier", g.tier},
         {"nodes", g.nodes},
         {"gpus", g.gpus},
         {"allocatedGpus", g.allocated},
         {"shared", shared},
         {"idleGpus", g.idle},
         {"idleCostPerHour", g.unpriced ? json(nullptr) : json(g.idle_hourly)},
         {"utilization", g.util_gpus > 0 ? json(g.util_weighted / g.util_gpus) : json(nullptr)}});
  }
  for (const IdleNode& n : r.idle_nodes)
    out["idleNodes"].push_back(
        {{"node", n.node},
         {"gpuModel", n.model},
         {"tier", n.tier},
         {"idleGpus", n.idle},
         {"idleCostPerHour", n.hourly < 0 ? json(nullptr) : json(n.hourly)}});
  for (const BudgetRisk& b : r.budgets)
    out["budgetsAtRisk"].push_back({{"budget", b.key},
                                    {"spend", b.spend},
                                    {"amount", b.amount},
                                    {"currency", b.currency},
                                    {"percent", b.percent},
                                    {"forecast", b.forecast},
                                    {"reason", b.why},
                                    {"enforcement", b.enforcement}});
  if (!r.budgets_note.empty()) out["budgetsNote"] = r.budgets_note;
  if (!r.utilization_note.empty()) out["utilizationNote"] = r.utilization_note;
  return out;
}

volatile sig_atomic_t g_interrupted = 0;

}  // namespace

int RunStatus(int argc, char** argv) {
  // A bare --watch takes the default interval.
  std::vector<std::string> args(argv, argv + argc);
  for (std::string& a : args)
    if (a == "--watch") a = "--watch=5s";
  std::vector<char*> fixed;
  for (std::string& a : args)
    fixed.push_back(a.data());
  FlagParser flags(
      {"--kubeconfig", "--context", "--output", "--watch", "--now", "--prometheus-url"});
  flags.Alias("-o", "--output");
  if (!flags.Parse(static_cast<int>(fixed.size()), fixed.data()))
    return UsageError(kCommand, flags.error());
  if (flags.help()) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  const std::string output = flags.Get("--output", "table");
  if (output != "table" && output != "wide" && output != "json")
    return UsageError(kCommand, "-o: want table, wide or json, got \"" + output + "\"");
  int64_t watch_seconds = 0;
  if (flags.Has("--watch")) {
    auto d = cost::ParseDurationSeconds(flags.Get("--watch"));
    if (!d.ok() || *d <= 0) return UsageError(kCommand, "--watch: want a duration such as 5s");
    watch_seconds = *d;
  }
  auto config =
      flags.Get("--kubeconfig").empty()
          ? kube::LoadDefaultConfig(flags.Get("--context"))
          : kube::LoadKubeconfigFiles({flags.Get("--kubeconfig")}, flags.Get("--context"));
  if (!config.ok()) return Fail(kCommand, "no cluster to read: " + config.error().ToString());
  config->user_agent = "gpu-autoscaler-cli";
  auto client = kube::RestClient::Create(*config);
  if (!client.ok()) return Fail(kCommand, client.error().ToString());
  std::unique_ptr<cost::PrometheusDcgmSource> utilization;
  if (!flags.Get("--prometheus-url").empty()) {
    utilization = std::make_unique<cost::PrometheusDcgmSource>(
        cost::PrometheusDcgmOptions{.url = flags.Get("--prometheus-url")});
  }
  signal(SIGINT, [](int) { g_interrupted = 1; });
  while (true) {
    auto now = ResolveNow(flags.Get("--now"));
    if (!now.ok()) return UsageError(kCommand, now.error().message());
    auto report = Build(**client, *now, utilization.get());
    if (!report.ok())
      return Fail(kCommand, report.error().message() + " (server " + config->server + ")");
    const std::string text = output == "json" ? RenderJson(*report).dump(2) + "\n"
                                              : RenderText(*report, output == "wide");
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
    if (watch_seconds == 0) return kExitOk;
    for (int64_t i = 0; i < watch_seconds * 10 && !g_interrupted; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (g_interrupted) return kExitOk;
    std::fputs("\n", stdout);
  }
}

}  // namespace gpu_autoscaler::cli
