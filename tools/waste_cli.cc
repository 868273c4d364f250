// `gpu-autoscaler waste`: the idle-GPU waste report from the cost history.
#include <chrono>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "common/flag_duration.h"
#include "cost/waste_report.h"
#include "tools/cost_cli.h"

namespace gpu_autoscaler::cli {
namespace {

constexpr char kWasteUsage[] =
    "Usage: gpu-autoscaler waste [--since TIME] [--until TIME] [--namespace NS]\n"
    "                            [--threshold PCT] [--window DUR] [--all] [-o table|json]\n"
    "                            --db DB\n"
    "\n"
    "Lists the pods whose GPUs sat idle, with the idle GPU-hours and what they cost, from\n"
    "the cost history the manager writes. A GPU is idle when its pod holds it but uses\n"
    "less than --threshold of it for at least --window, as the manager's idle-GPU Events\n"
    "and metrics count it; the whole low stretch counts once it reaches the window.\n"
    "Utilisation comes from the history's per-minute figures (the manager's utilisation\n"
    "source: the node agents or dcgm-exporter); minutes without a figure count as\n"
    "unmeasured, never as idle.\n"
    "\n"
    "Options:\n"
    "  --since TIME          start: a duration before now (24h, 7d) or RFC 3339 (default 24h)\n"
    "  --until TIME          end: now (default), a duration before now or RFC 3339\n"
    "  --namespace NS        only this namespace's pods\n"
    "  --threshold PCT       utilisation below which a GPU is unused (default 5%)\n"
    "  --window DUR          how long before an unused GPU is idle (default 30m)\n"
    "  --all                 list every GPU pod, not only the idle ones\n"
    "  -o, --output FORMAT   table (default) or json\n"
    "  --db DB               SQLite file or postgres:// URL of the cost history\n"
    "  --now TIME            evaluate as of this RFC 3339 time (default: the clock)\n"
    "  -h, --help            show this help\n";

Result<double> ParseThreshold(std::string text) {
  if (text.empty()) return 0.05;
  const bool percent = text.back() == '%';
  if (percent) text.pop_back();
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end == nullptr || *end != '\0' || !(v >= 0) || v > 100) {
    return InvalidArgumentError("bad --threshold: want a percentage such as 5%");
  }
  return v / 100;
}

}  // namespace

int RunWaste(int argc, char** argv) {
  constexpr std::string_view kCommand = "waste";
  // --all takes no value: turn it into "--all=1" for the shared parser.
  std::vector<std::string> args(argv, argv + argc);
  for (std::string& a : args)
    if (a == "--all") a = "--all=1";
  std::vector<char*> argv2;
  for (std::string& a : args)
    argv2.push_back(a.data());
  FlagParser flags({"--since", "--until", "--namespace", "--threshold", "--window", "--all",
                    "--output", "--db", "--now"});
  flags.Alias("-o", "--output");
  if (!flags.Parse(static_cast<int>(argv2.size()), argv2.data()))
    return UsageError(kCommand, flags.error());
  if (flags.help()) {
    std::fputs(kWasteUsage, stdout);
    return kExitOk;
  }
  const std::string output = flags.Get("--output", "table");
  if (output != "table" && output != "json") {
    return UsageError(kCommand, "bad -o \"" + output + "\": want table or json");
  }
  if (flags.Get("--db").empty()) return UsageError(kCommand, "--db is required");
  Result<double> threshold = ParseThreshold(flags.Get("--threshold"));
  if (!threshold.ok()) return UsageError(kCommand, threshold.error().message());
  std::chrono::milliseconds window_length{30 * 60 * 1000};
  if (flags.Has("--window") &&
      (!ParseFlagDuration(flags.Get("--window"), &window_length) || window_length.count() < 1000)) {
    return UsageError(kCommand, "bad --window \"" + flags.Get("--window") +
                                    "\": want a duration of at least 1s such as 30m");
  }
  Result<int64_t> now = ResolveNow(flags.Get("--now"));
  if (!now.ok()) return UsageError(kCommand, now.error().message());
  Result<cost::TimeWindow> window = ResolveWindow(flags.Get("--since"), flags.Get("--until"), *now);
  if (!window.ok()) return UsageError(kCommand, window.error().message());

  Result<std::unique_ptr<cost::CostStore>> store = OpenHistory(flags.Get("--db"));
  if (!store.ok()) return Fail(kCommand, store.error().message());
  cost::CostQuery query{.window = *window,
                        .resolution = cost::Resolution::kMinute,
                        .group_by = {cost::Dimension::kPod},
                        .bucket = cost::Resolution::kMinute};
  if (flags.Has("--namespace"))
    query.filters.push_back({cost::Dimension::kNamespace, flags.Get("--namespace")});
  Result<cost::CostReport> history = (*store)->Query(query);
  if (!history.ok()) return Fail(kCommand, history.error().message());
  const cost::WasteOptions options{
      .threshold = *threshold,
      .window_seconds = std::chrono::duration_cast<std::chrono::seconds>(window_length).count()};
  const cost::WasteReport report = cost::WasteFromHistory(history->rows, 60, options);
  const bool all = flags.Has("--all");

  if (output == "json") {
    nlohmann::json doc = {{"since", FormatTime(history->window.since)},
                          {"until", FormatTime(history->window.until)},
                          {"threshold", options.threshold},
                          {"window_seconds", options.window_seconds},
                          {"pods", nlohmann::json::array()}};
    for (const cost::PodWaste& p : report.pods) {
      if (!all && p.idle_gpu_seconds <= 0) continue;
      nlohmann::json row = {{"pod", p.pod},
                            {"gpus", p.gpu_share},
                            {"measured_gpu_hours", p.measured_gpu_seconds / 3600},
                            {"idle_gpu_hours", p.idle_gpu_seconds / 3600},
                            {"idle_cost", p.idle_cost},
                            {"idle_periods", p.idle_periods},
                            {"idle_now", p.idle}};
      if (p.idle) row["idle_since"] = FormatTime(p.idle_since);
      doc["pods"].push_back(std::move(row));
    }
    doc["total"] = {{"pods", report.totals.pods},
                    {"idle_now", report.totals.idle_pods},
                    {"measured_gpu_hours", report.totals.measured_gpu_seconds / 3600},
                    {"measured_cost", report.totals.measured_cost},
                    {"idle_gpu_hours", report.totals.idle_gpu_seconds / 3600},
                    {"idle_cost", report.totals.idle_cost}};
    std::printf("%s\n", doc.dump(2).c_str());
    return kExitOk;
  }

  std::printf("Idle GPUs, %s to %s (below %s%% for %s or longer, %s)\n\n",
              FormatTime(history->window.since).c_str(), FormatTime(history->window.until).c_str(),
              FormatNumber(options.threshold * 100, 1).c_str(),
              FormatNumber(static_cast<double>(options.window_seconds) / 60, 0).append("m").c_str(),
              std::string((*store)->backend()).c_str());
  Table table({"POD", "GPUS", "MEASURED GPU-H", "IDLE GPU-H", "IDLE COST", "IDLE NOW"},
              {false, true, true, true, true, false});
  size_t listed = 0;
  for (const cost::PodWaste& p : report.pods) {
    if (!all && p.idle_gpu_seconds <= 0) continue;
    table.AddRow({p.pod, FormatNumber(p.gpu_share, 2),
                  FormatNumber(p.measured_gpu_seconds / 3600, 2),
                  FormatNumber(p.idle_gpu_seconds / 3600, 2), FormatMoney(p.idle_cost),
                  p.idle ? "since " + FormatTime(p.idle_since) : "-"});
    ++listed;
  }
  if (listed > 0) std::fputs(table.Render().c_str(), stdout);
  const cost::WasteTotals& t = report.totals;
  if (t.measured_gpu_seconds <= 0) {
    std::printf("No GPU utilisation in the history for this window: nothing can be called idle.\n");
    return kExitOk;
  }
  std::printf(
      "%s%zu of %zu GPU pods idle for %s GPU-hours, costing %s (%s%% of their measured "
      "GPU cost); %zu idle now.\n",
      listed > 0 ? "\n" : "",
      static_cast<size_t>(
          std::count_if(report.pods.begin(), report.pods.end(),
                        [](const cost::PodWaste& p) { return p.idle_periods > 0; })),
      t.pods, FormatNumber(t.idle_gpu_seconds / 3600, 2).c_str(), FormatMoney(t.idle_cost).c_str(),
      FormatNumber(t.measured_cost > 0 ? 100 * t.idle_cost / t.measured_cost : 0, 1).c_str(),
      t.idle_pods);
  return kExitOk;
}

}  // namespace gpu_autoscaler::cli
