// gpu-autoscaler roi: what spot capacity saved on the bill over a window,
// what GPU sharing moved between pods (attribution, not a saving until fewer
// nodes run), and what idle capacity still costs (the saving available from
// scaling idle nodes down), from the cost history and the pricing catalogue.
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cost/pricing.h"
#include "cost/store_factory.h"
#include "tools/cost_cli.h"

namespace gpu_autoscaler::cli {
namespace {

constexpr std::string_view kCommand = "roi";

constexpr char kRoiUsage[] =
    "Usage: gpu-autoscaler roi [--since TIME] [--until TIME] --db DB [--pricing FILE]\n"
    "                          [-o table|json]\n"
    "\n"
    "Over a window:\n"
    "  spot     realised: GPU cost on spot nodes against the GPU model's on-demand\n"
    "           rate from the pricing catalogue (CPU and memory not counted);\n"
    "  sharing  attributed: GPU cost of fractional pods (MIG slices, time-slicing,\n"
    "           MPS) against one whole GPU per pod. It lowers what pods are charged,\n"
    "           not the bill: the nodes cost the same until fewer of them run;\n"
    "  idle     cost of GPU node capacity no pod held: available by scaling down,\n"
    "           which is how sharing becomes a saving on the bill.\n"
    "\n"
    "Options:\n"
    "  --since TIME          start: a duration before now (24h, 7d) or RFC 3339 (default 7d)\n"
    "  --until TIME          end: now (default), a duration before now or RFC 3339\n"
    "  --db DB               SQLite file or postgres:// URL of the cost history\n"
    "  --pricing FILE        pricing overrides merged over the built-in catalogue\n"
    "  -o, --output FORMAT   table (default) or json\n"
    "  --now TIME            evaluate as of this RFC 3339 time (default: the clock)\n"
    "  -h, --help            show this help\n";

struct Line {
  double gpu_hours = 0;  // spot and idle only
  double baseline = 0;
  double actual = 0;
  double savings() const { return baseline - actual; }
};

}  // namespace

int RunRoi(int argc, char** argv) {
  FlagParser flags({"--since", "--until", "--db", "--pricing", "--output", "--now"});
  flags.Alias("-o", "--output");
  if (!flags.Parse(argc, argv)) return UsageError(kCommand, flags.error());
  if (flags.help()) {
    std::fputs(kRoiUsage, stdout);
    return kExitOk;
  }
  const std::string output = flags.Get("--output", "table");
  if (output != "table" && output != "json") {
    return UsageError(kCommand, "bad -o \"" + output + "\": want table or json");
  }
  if (flags.Get("--db").empty()) return UsageError(kCommand, "--db is required");
  Result<int64_t> now = ResolveNow(flags.Get("--now"));
  if (!now.ok()) return UsageError(kCommand, now.error().message());
  Result<cost::TimeWindow> window =
      ResolveWindow(flags.Get("--since", "7d"), flags.Get("--until"), *now);
  if (!window.ok()) return UsageError(kCommand, window.error().message());

  Result<std::unique_ptr<cost::CatalogPricingSource>> pricing =
      cost::CatalogPricingSource::Builtin();
  if (!pricing.ok()) return Fail(kCommand, pricing.error().message());
  if (!flags.Get("--pricing").empty()) {
    if (Status s = (*pricing)->ApplyOverrideFile(flags.Get("--pricing")); !s.ok()) {
      return Fail(kCommand, s.message());
    }
  }
  Result<std::unique_ptr<cost::CostStore>> store = OpenHistory(flags.Get("--db"));
  if (!store.ok()) return Fail(kCommand, store.error().message());
  Result<cost::CostReport> report = (*store)->Query(
      {.window = *window, .group_by = {cost::Dimension::kTier, cost::Dimension::kModel}});
  if (!report.ok()) return Fail(kCommand, report.error().message());

  Line sharing;
  Line spot;
  Line idle;
  std::map<std::string, double> unpriced_spot_gpu_hours;  // model -> GPU-hours
  for (const cost::CostRow& row : report->rows) {
    const cost::CostTotals& t = row.totals;
    // Fractional pods only: whole-GPU pods have equal baseline and actual.
    if (t.exclusive_gpu_cost > t.gpu_cost) {
      sharing.baseline += t.exclusive_gpu_cost;
      sharing.actual += t.gpu_cost;
    }
    idle.gpu_hours += t.idle_gpu_seconds / 3600;
    idle.actual += t.idle_cost;
    if (row.keys[0] == cost::CapacityTierName(cost::CapacityTier::kSpot) && t.gpu_seconds > 0) {
      const double rate = (*pricing)->GpuModelRate(row.keys[1]);
      if (rate <= 0) {
        unpriced_spot_gpu_hours[row.keys[1].empty() ? "(unknown)" : row.keys[1]] +=
            t.gpu_seconds / 3600;
        continue;
      }
      spot.gpu_hours += t.gpu_seconds / 3600;
      spot.baseline += t.gpu_seconds / 3600 * rate;
      spot.actual += t.gpu_cost;
    }
  }
  // Only spot changed the bill. Sharing changed who is charged for the same
  // nodes; it saves money once idle capacity is scaled down (the idle line).
  const double realised = spot.savings();

  if (output == "json") {
    auto line = [](const Line& l) {
      return nlohmann::json{
          {"baseline", l.baseline}, {"actual", l.actual}, {"savings", l.savings()}};
    };
    nlohmann::json doc = {{"since", FormatTime(report->window.since)},
                          {"until", FormatTime(report->window.until)},
                          {"currency", std::string((*pricing)->currency())},
                          {"sharing", line(sharing)},
                          {"sharing_is", "attribution"},
                          {"spot", line(spot)},
                          {"spot_gpu_hours", spot.gpu_hours},
                          {"realised_savings", realised},
                          {"idle", {{"gpu_hours", idle.gpu_hours}, {"cost", idle.actual}}},
                          {"unpriced_spot_gpu_hours", unpriced_spot_gpu_hours}};
    std::printf("%s\n", doc.dump(2).c_str());
    return kExitOk;
  }
  Table table({"SOURCE", "GPU-HOURS", "BASELINE", "ACTUAL", "SAVINGS", "AGAINST"},
              {false, true, true, true, true, false});
  table.AddRow({"Spot capacity", FormatNumber(spot.gpu_hours, 2), FormatMoney(spot.baseline),
                FormatMoney(spot.actual), FormatMoney(spot.savings()), "on-demand GPU rate"});
  table.AddSeparator();
  table.AddRow({"Realised (bill)", "", "", "", FormatMoney(realised), ""});
  table.AddSeparator();
  table.AddRow({"GPU sharing", "", FormatMoney(sharing.baseline), FormatMoney(sharing.actual),
                FormatMoney(sharing.savings()), "attributed: one whole GPU per pod"});
  table.AddRow({"Idle capacity", FormatNumber(idle.gpu_hours, 2), "", FormatMoney(idle.actual),
                FormatMoney(idle.actual), "available: scale idle nodes down"});
  std::printf("Savings, %s to %s (%s)\n\n", FormatTime(report->window.since).c_str(),
              FormatTime(report->window.until).c_str(),
              std::string((*pricing)->currency()).c_str());
  std::fputs(table.Render().c_str(), stdout);
  if (sharing.savings() > 0) {
    std::printf(
        "note: GPU sharing lowered what pods were charged by %s; the nodes' bill is unchanged "
        "until fewer GPU nodes run (scale idle capacity down)\n",
        FormatMoney(sharing.savings()).c_str());
  }
  for (const auto& [model, hours] : unpriced_spot_gpu_hours) {
    std::printf("note: %.2f spot GPU-hours of %s not counted: no on-demand rate in the catalogue\n",
                hours, model.c_str());
  }
  return kExitOk;
}

}  // namespace gpu_autoscaler::cli
