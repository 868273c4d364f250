// gpu-autoscaler budget status: each Budget's and ClusterBudget's spend in
// its current period, end-of-period forecasts, the thresholds reached and the
// enforcement in effect, from Budget and ClusterBudget objects (read from the
// cluster, or from a YAML file) and the cost history.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "api/annotations.h"
#include "api/crd_fields.h"
#include "api/resources.h"
#include "common/clock.h"
#include "common/json_read.h"
#include "cost/alerts.h"
#include "cost/budget.h"
#include "cost/budget_evaluation.h"
#include "cost/forecast.h"
#include "cost/store_factory.h"
#include "kube/config.h"
#include "kube/error.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "tools/cost_cli.h"

namespace gpu_autoscaler::cli {
namespace {

constexpr std::string_view kCommand = "budget status";

constexpr char kBudgetUsage[] =
    "Usage: gpu-autoscaler budget status --db DB [--budgets FILE | --kubeconfig FILE]\n"
    "                                    [--context NAME] [-n NAMESPACE] [-o table|json]\n"
    "\n"
    "For every Budget and ClusterBudget (gpuautoscaler.io/v1alpha1): spend in the\n"
    "current period, the linear and Holt-Winters end-of-period forecasts, the\n"
    "thresholds reached and whether its enforcement is in effect. They are listed\n"
    "from the cluster, like kubectl: --kubeconfig, else in-cluster, else $KUBECONFIG,\n"
    "else ~/.kube/config (with the Namespaces' labels, for namespaceSelectors);\n"
    "--budgets reads them from a file instead (a namespaceSelector then selects\n"
    "nothing). ClusterBudgets show as ClusterBudget/NAME.\n"
    "\n"
    "Options:\n"
    "  --db DB               SQLite file or postgres:// URL of the cost history\n"
    "  --budgets FILE        Budget and ClusterBudget objects from a file (YAML documents\n"
    "                        separated by ---, or JSON)\n"
    "  --kubeconfig FILE     cluster to list Budgets from\n"
    "  --context NAME        kubeconfig context (default: current-context)\n"
    "  -n, --namespace NS    only Budgets in this namespace, no ClusterBudgets (default:\n"
    "                        all namespaces and ClusterBudgets)\n"
    "  -o, --output FORMAT   table (default) or json\n"
    "  --now TIME            evaluate as of this RFC 3339 time (default: the clock)\n"
    "  -h, --help            show this help\n";

// Splits a multi-document YAML stream on "---" lines.
std::vector<std::string> SplitDocuments(const std::string& text) {
  std::vector<std::string> docs(1);
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("---", 0) == 0 && line.find_first_not_of("- \t\r") == std::string::npos) {
      docs.emplace_back();
    } else {
      docs.back() += line + "\n";
    }
  }
  std::vector<std::string> out;
  for (std::string& d : docs)
    if (d.find_first_not_of(" \t\r\n") != std::string::npos && d.find(':') != std::string::npos)
      out.push_back(std::move(d));
  return out;
}

struct BudgetStatus {
  cost::Budget budget;
  cost::PeriodWindow period;
  cost::PeriodForecast forecast;
  std::vector<double> reached;  // thresholds, ascending
};

// Budgets from FILE: every YAML document in it.
Result<std::vector<cost::Budget>> BudgetsFromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  std::vector<cost::Budget> budgets;
  for (const std::string& doc : SplitDocuments(text.str())) {
    GPU_ASSIGN_OR_RETURN(cost::Budget budget, cost::ParseBudget(doc, path));
    GPU_RETURN_IF_ERROR(
        api::CheckKnownFields(doc, cost::BudgetKindName(budget.kind)).WithContext(path));
    budgets.push_back(std::move(budget));
  }
  if (budgets.empty()) return NotFoundError(path + ": no Budget objects");
  return budgets;
}

struct ListedBudgets {
  std::vector<cost::Budget> budgets;
  cost::NamespaceLabelIndex namespaces;  // for namespaceSelectors
};

// Budgets listed from the cluster (all namespaces unless `ns` is set), then
// ClusterBudgets (unless `ns` is set; none when their CRD is not installed).
// One that does not parse is an error naming it, not a silent omission.
Result<ListedBudgets> BudgetsFromCluster(const std::string& kubeconfig, const std::string& context,
                                         const std::string& ns) {
  auto config = kubeconfig.empty() ? kube::LoadDefaultConfig(context)
                                   : kube::LoadKubeconfigFiles({kubeconfig}, context);
  if (!config.ok()) {
    return config.error().ToStatus().WithContext("no cluster to list Budgets from");
  }
  config->user_agent = "gpu-autoscaler-cli";
  auto client = kube::RestClient::Create(*config);
  if (!client.ok()) return client.error().ToStatus().WithContext("kube client");
  ListedBudgets out;
  bool any_namespace_selector = false;
  for (const kube::GroupVersionResource* gvr : {&api::kBudgets, &api::kClusterBudgets}) {
    const bool cluster = gvr == &api::kClusterBudgets;
    if (cluster && !ns.empty()) break;
    auto list = (*client)->List(kube::ObjectRef{*gvr, cluster ? "" : ns});
    if (!list.ok()) {
      if (cluster && kube::IsNotFound(list.error())) break;
      return list.error().ToStatus().WithContext("listing " + gvr->resource +
                                                 ".gpuautoscaler.io on " + config->server);
    }
    for (nlohmann::json item : json_read::Array(*list, "items")) {
      const nlohmann::json& meta = json_read::Object(item, "metadata");
      const std::string source = cluster ? "ClusterBudget " + json_read::String(meta, "name")
                                         : "Budget " + json_read::String(meta, "namespace") + "/" +
                                               json_read::String(meta, "name");
      item["kind"] = cluster ? "ClusterBudget" : "Budget";  // lists may leave it out
      GPU_ASSIGN_OR_RETURN(cost::Budget budget, cost::ParseBudget(item.dump(), source));
      any_namespace_selector |= budget.spec.scope.namespace_selector.has_value();
      out.budgets.push_back(std::move(budget));
    }
  }
  if (any_namespace_selector) {
    auto list = (*client)->List(kube::ObjectRef{kube::resources::kNamespaces, ""});
    if (!list.ok()) return list.error().ToStatus().WithContext("listing namespaces");
    for (const nlohmann::json& item : json_read::Array(*list, "items")) {
      const nlohmann::json& meta = json_read::Object(item, "metadata");
      const std::string name = json_read::String(meta, "name");
      cost::LabelMap& labels = out.namespaces[name];
      const nlohmann::json& ns_labels = json_read::Object(meta, "labels");
      for (auto it = ns_labels.begin(); it != ns_labels.end(); ++it)
        if (it->is_string()) labels[it.key()] = it->get<std::string>();
      labels.emplace(std::string(api::kNamespaceNameLabel), name);
    }
  }
  return out;
}

Result<BudgetStatus> Evaluate(const cost::Budget& budget, cost::CostStore& store, int64_t now,
                              const cost::NamespaceLabelIndex& namespaces) {
  BudgetStatus status{budget, budget.spec.PeriodAt(now), {}, {}};
  GPU_ASSIGN_OR_RETURN(cost::ScopedSpend spend,
                       cost::QueryScopedSpend(store, status.period.start, now));
  status.forecast = cost::EvaluateBudget(budget, spend, now, &namespaces).forecast;
  // The alert state machine, as the controller would run it now.
  FakeClock clock{Clock::WallTime(std::chrono::seconds(now))};
  cost::BudgetAlerts alerts(budget.spec, clock);
  for (const cost::AlertEvent& e : alerts.Observe(status.forecast.spent)) {
    if (e.action == cost::AlertAction::kFire) status.reached.push_back(e.threshold_percent);
  }
  return status;
}

std::string Percent(double v) {
  return FormatNumber(v, v == static_cast<int64_t>(v) ? 0 : 1) + "%";
}

}  // namespace

int RunBudget(int argc, char** argv) {
  if (argc < 1 || std::string_view(argv[0]) == "-h" || std::string_view(argv[0]) == "--help") {
    std::fputs(kBudgetUsage, argc < 1 ? stderr : stdout);
    return argc < 1 ? kExitUsage : kExitOk;
  }
  if (std::string_view(argv[0]) != "status") {
    return UsageError("budget", "unknown subcommand \"" + std::string(argv[0]) + "\"");
  }
  FlagParser flags(
      {"--budgets", "--db", "--output", "--now", "--kubeconfig", "--context", "--namespace"});
  flags.Alias("-o", "--output");
  flags.Alias("-n", "--namespace");
  if (!flags.Parse(argc - 1, argv + 1)) return UsageError(kCommand, flags.error());
  if (flags.help()) {
    std::fputs(kBudgetUsage, stdout);
    return kExitOk;
  }
  const std::string output = flags.Get("--output", "table");
  if (output != "table" && output != "json") {
    return UsageError(kCommand, "bad -o \"" + output + "\": want table or json");
  }
  const std::string path = flags.Get("--budgets");
  if (!path.empty() && !flags.Get("--kubeconfig").empty()) {
    return UsageError(kCommand, "--budgets and --kubeconfig are exclusive");
  }
  if (flags.Get("--db").empty()) return UsageError(kCommand, "--db is required");
  Result<int64_t> now = ResolveNow(flags.Get("--now"));
  if (!now.ok()) return UsageError(kCommand, now.error().message());

  ListedBudgets listed;
  if (path.empty()) {
    auto from_cluster = BudgetsFromCluster(flags.Get("--kubeconfig"), flags.Get("--context"),
                                           flags.Get("--namespace"));
    if (!from_cluster.ok()) return Fail(kCommand, from_cluster.error().message());
    listed = std::move(*from_cluster);
  } else {
    auto from_file = BudgetsFromFile(path);
    if (!from_file.ok()) return Fail(kCommand, from_file.error().message());
    listed.budgets = std::move(*from_file);
  }
  std::vector<cost::Budget>& budgets = listed.budgets;
  if (const std::string ns = flags.Get("--namespace"); !ns.empty()) {
    std::erase_if(budgets, [&](const cost::Budget& b) { return b.ns != ns; });
  }
  if (budgets.empty()) {
    std::printf("No Budgets%s.\n", path.empty() ? " in the cluster" : "");
    return kExitOk;
  }

  Result<std::unique_ptr<cost::CostStore>> store = OpenHistory(flags.Get("--db"));
  if (!store.ok()) return Fail(kCommand, store.error().message());
  std::vector<BudgetStatus> statuses;
  for (const cost::Budget& budget : budgets) {
    Result<BudgetStatus> status = Evaluate(budget, **store, *now, listed.namespaces);
    if (!status.ok()) return Fail(kCommand, budget.name + ": " + status.error().message());
    statuses.push_back(std::move(*status));
  }

  if (output == "json") {
    nlohmann::json doc = nlohmann::json::array();
    for (const BudgetStatus& s : statuses) {
      const cost::BudgetSpec& spec = s.budget.spec;
      doc.push_back(
          {{"kind", std::string(cost::BudgetKindName(s.budget.kind))},
           {"name", s.budget.name},
           {"namespace", s.budget.ns},
           {"period", {{"start", FormatTime(s.period.start)}, {"end", FormatTime(s.period.end)}}},
           {"currency", spec.currency},
           {"amount", spec.amount},
           {"spent", s.forecast.spent},
           {"forecast", {{"linear", s.forecast.linear}, {"holtWinters", s.forecast.holt_winters}}},
           {"thresholdsReached", s.reached},
           {"enforcement", std::string(cost::EnforcementName(spec.enforcement))},
           {"enforcing",
            s.forecast.spent >= spec.amount && spec.enforcement != cost::Enforcement::kAlert}});
    }
    std::printf("%s\n", doc.dump(2).c_str());
    return kExitOk;
  }
  Table table({"BUDGET", "PERIOD", "SPENT", "AMOUNT", "USED", "FORECAST", "FORECAST-HW",
               "THRESHOLDS", "ENFORCEMENT"},
              {false, false, true, true, true, true, true, false, false});
  for (const BudgetStatus& s : statuses) {
    const cost::BudgetSpec& spec = s.budget.spec;
    std::string reached;
    for (double t : s.reached)
      reached += (reached.empty() ? "" : ",") + Percent(t);
    std::string enforcement(cost::EnforcementName(spec.enforcement));
    if (s.forecast.spent >= spec.amount && spec.enforcement != cost::Enforcement::kAlert) {
      enforcement += " (active)";
    }
    const bool cluster = s.budget.kind == cost::BudgetKind::kClusterBudget;
    table.AddRow({(cluster               ? "ClusterBudget/"
                   : s.budget.ns.empty() ? ""
                                         : s.budget.ns + "/") +
                      s.budget.name,
                  std::string(cost::BudgetPeriodName(spec.period)), FormatMoney(s.forecast.spent),
                  FormatMoney(spec.amount) + " " + spec.currency,
                  Percent(spec.amount > 0 ? 100 * s.forecast.spent / spec.amount : 0),
                  FormatMoney(s.forecast.linear), FormatMoney(s.forecast.holt_winters),
                  reached.empty() ? "-" : reached, enforcement});
  }
  std::printf("Budgets as of %s\n\n", FormatTime(*now).c_str());
  std::fputs(table.Render().c_str(), stdout);
  return kExitOk;
}

}  // namespace gpu_autoscaler::cli
