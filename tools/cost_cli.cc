// gpu-autoscaler cost: spend by namespace, team, project, experiment, node,
// GPU model, tier or pod over a time window, from the cost history.
#include "tools/cost_cli.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>

#include "cost/budget.h"
#include "cost/duration.h"
#include "cost/store_factory.h"

namespace gpu_autoscaler::cli {

bool FlagParser::Parse(int argc, char** argv) {
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      help_ = true;
      continue;
    }
    std::string flag(arg);
    std::string value;
    bool has_value = false;
    if (const size_t eq = arg.find('='); arg.starts_with("--") && eq != arg.npos) {
      flag = std::string(arg.substr(0, eq));
      value = std::string(arg.substr(eq + 1));
      has_value = true;
    }
    if (auto alias = aliases_.find(flag); alias != aliases_.end()) flag = alias->second;
    if (std::find(names_.begin(), names_.end(), flag) == names_.end()) {
      error_ = "unknown option \"" + std::string(arg) + "\"";
      return false;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        error_ = flag + " needs a value";
        return false;
      }
      value = argv[++i];
    }
    values_[flag] = value;
  }
  return true;
}

std::string FlagParser::Get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

std::string Table::Render() const {
  std::vector<size_t> widths(header_.size(), 0);
  for (size_t c = 0; c < header_.size(); ++c)
    widths[c] = header_[c].size();
  for (const auto& row : rows_)
    for (size_t c = 0; c < row.size() && c < widths.size(); ++c)
      widths[c] = std::max(widths[c], row[c].size());
  auto line = [&](const std::vector<std::string>& row) {
    std::string out;
    for (size_t c = 0; c < header_.size(); ++c) {
      const std::string& cell = c < row.size() ? row[c] : std::string();
      const std::string pad(widths[c] - cell.size(), ' ');
      if (c > 0) out += "  ";
      out += numeric_[c] ? pad + cell : cell + pad;
    }
    while (!out.empty() && out.back() == ' ')
      out.pop_back();
    return out + "\n";
  };
  std::string out = line(header_);
  for (const auto& row : rows_) {
    if (row.empty()) {
      size_t total = 0;
      for (size_t w : widths)
        total += w;
      out += std::string(total + 2 * (widths.size() - 1), '-') + "\n";
    } else {
      out += line(row);
    }
  }
  return out;
}

std::string Table::RenderCsv() const {
  auto quote = [](const std::string& cell) {
    if (cell.find_first_of(",\"\n") == std::string::npos) return cell;
    std::string out = "\"";
    for (char c : cell)
      out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
  };
  auto line = [&](const std::vector<std::string>& row) {
    std::string out;
    for (size_t c = 0; c < row.size(); ++c)
      out += (c > 0 ? "," : "") + quote(row[c]);
    return out + "\n";
  };
  std::string out = line(header_);
  for (const auto& row : rows_)
    if (!row.empty()) out += line(row);
  return out;
}

std::string FormatNumber(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, std::abs(v) < 1e-12 ? 0.0 : v);
  return buf;
}

std::string FormatMoney(double v) {
  return FormatNumber(v, 2);
}

std::string FormatTime(int64_t unix) {
  return cost::FormatRfc3339(unix);
}

Result<int64_t> ResolveNow(const std::string& flag) {
  std::string text = flag;
  if (text.empty()) {
    const char* env = std::getenv("GPU_AUTOSCALER_NOW");
    if (env != nullptr) text = env;
  }
  if (text.empty()) return static_cast<int64_t>(std::time(nullptr));
  Result<int64_t> now = cost::ParseRfc3339(text);
  if (!now.ok()) return InvalidArgumentError("bad --now \"" + text + "\": want RFC 3339");
  return now;
}

Result<cost::TimeWindow> ResolveWindow(const std::string& since, const std::string& until,
                                       int64_t now) {
  GPU_ASSIGN_OR_RETURN(int64_t from, cost::ParseTimePoint(since.empty() ? "24h" : since, now));
  GPU_ASSIGN_OR_RETURN(int64_t to, cost::ParseTimePoint(until.empty() ? "now" : until, now));
  if (from < 0 || to <= from) {
    return InvalidArgumentError("empty window: --since " + FormatTime(from) +
                                " is not before --until " + FormatTime(to));
  }
  return cost::TimeWindow{from, to};
}

Result<std::unique_ptr<cost::CostStore>> OpenHistory(const std::string& db) {
  if (!cost::IsPostgresUrl(db) && ::access(db.c_str(), R_OK) != 0) {
    return NotFoundError(db + ": no such cost history (want a SQLite file or a postgres:// URL)");
  }
  return cost::OpenCostStoreForReading(db);
}

int Fail(std::string_view command, const std::string& message) {
  std::fprintf(stderr, "gpu-autoscaler %.*s: %s\n", static_cast<int>(command.size()),
               command.data(), message.c_str());
  return kExitError;
}

int UsageError(std::string_view command, const std::string& message) {
  std::fprintf(stderr, "gpu-autoscaler %.*s: %s\nTry 'gpu-autoscaler %.*s --help'.\n",
               static_cast<int>(command.size()), command.data(), message.c_str(),
               static_cast<int>(command.size()), command.data());
  return kExitUsage;
}

namespace {

constexpr char kCostUsage[] =
    "Usage: gpu-autoscaler cost [--by DIMS] [--since TIME] [--until TIME]\n"
    "                           [--filter DIM=VALUE,...] [-o table|json|csv] --db DB\n"
    "\n"
    "Reports GPU, CPU, memory and idle cost over a time window from the cost history,\n"
    "grouped by one or more dimensions. Rows are sorted by total cost; spend without\n"
    "a label is shown as (unlabelled), idle node capacity as (idle).\n"
    "\n"
    "Options:\n"
    "  --by DIMS             comma-separated: namespace, team, project, experiment, node,\n"
    "                        model, tier, pod (default namespace)\n"
    "  --since TIME          start: a duration before now (24h, 7d) or RFC 3339\n"
    "                        (default 24h)\n"
    "  --until TIME          end: now (default), a duration before now or RFC 3339\n"
    "  --filter DIM=VALUE    keep only matching spend; repeat with commas\n"
    "                        (team=vision,tier=spot); an empty VALUE selects unlabelled\n"
    "  --resolution RES      precision of the window edges: second, minute (default), hour\n"
    "  -o, --output FORMAT   table (default), json or csv\n"
    "  --db DB               SQLite file or postgres:// URL of the cost history\n"
    "  --now TIME            evaluate as of this RFC 3339 time (default: the clock)\n"
    "  -h, --help            show this help\n";

Result<std::vector<cost::Dimension>> ParseDimensions(const std::string& text) {
  std::vector<cost::Dimension> dims;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string part = text.substr(start, comma == std::string::npos ? comma : comma - start);
    if (!part.empty()) {
      GPU_ASSIGN_OR_RETURN(cost::Dimension d, cost::ParseDimension(part));
      if (std::find(dims.begin(), dims.end(), d) == dims.end()) dims.push_back(d);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (dims.empty()) return InvalidArgumentError("--by is empty");
  return dims;
}

Result<std::vector<cost::DimensionFilter>> ParseFilters(const std::string& text) {
  std::vector<cost::DimensionFilter> filters;
  size_t start = 0;
  while (!text.empty() && start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string part = text.substr(start, comma == std::string::npos ? comma : comma - start);
    const size_t eq = part.find('=');
    if (eq == std::string::npos) {
      return InvalidArgumentError("bad --filter \"" + part + "\": want DIM=VALUE");
    }
    GPU_ASSIGN_OR_RETURN(cost::Dimension d, cost::ParseDimension(part.substr(0, eq)));
    filters.push_back({d, part.substr(eq + 1)});
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return filters;
}

Result<cost::Resolution> ParseResolution(const std::string& text) {
  if (text == "second") return cost::Resolution::kSecond;
  if (text == "minute" || text.empty()) return cost::Resolution::kMinute;
  if (text == "hour") return cost::Resolution::kHour;
  return InvalidArgumentError("bad --resolution \"" + text + "\": want second, minute or hour");
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Display form of a key: idle capacity has no owner, unlabelled spend is named.
std::string KeyLabel(cost::Dimension d, const cost::CostRow& row, size_t i) {
  const bool owner_dim =
      d != cost::Dimension::kNode && d != cost::Dimension::kModel && d != cost::Dimension::kTier;
  if (row.idle && owner_dim) return "(idle)";
  if (row.keys[i].empty()) return d == cost::Dimension::kModel ? "(no GPU)" : "(unlabelled)";
  return row.keys[i];
}

nlohmann::json TotalsJson(const cost::CostTotals& t) {
  return {{"gpu_hours", t.gpu_seconds / 3600},
          {"idle_gpu_hours", t.idle_gpu_seconds / 3600},
          {"gpu_cost", t.gpu_cost},
          {"cpu_cost", t.cpu_cost},
          {"memory_cost", t.memory_cost},
          {"idle_cost", t.idle_cost},
          {"usage_cost", t.usage_cost},
          {"total_cost", t.total_cost()}};
}

}  // namespace

int RunCost(int argc, char** argv) {
  constexpr std::string_view kCommand = "cost";
  FlagParser flags(
      {"--by", "--since", "--until", "--filter", "--resolution", "--output", "--db", "--now"});
  flags.Alias("-o", "--output");
  if (!flags.Parse(argc, argv)) return UsageError(kCommand, flags.error());
  if (flags.help()) {
    std::fputs(kCostUsage, stdout);
    return kExitOk;
  }
  const std::string output = flags.Get("--output", "table");
  if (output != "table" && output != "json" && output != "csv") {
    return UsageError(kCommand, "bad -o \"" + output + "\": want table, json or csv");
  }
  if (flags.Get("--db").empty()) return UsageError(kCommand, "--db is required");
  Result<std::vector<cost::Dimension>> dims = ParseDimensions(flags.Get("--by", "namespace"));
  if (!dims.ok()) return UsageError(kCommand, dims.error().message());
  Result<std::vector<cost::DimensionFilter>> filters = ParseFilters(flags.Get("--filter"));
  if (!filters.ok()) return UsageError(kCommand, filters.error().message());
  Result<cost::Resolution> resolution = ParseResolution(flags.Get("--resolution"));
  if (!resolution.ok()) return UsageError(kCommand, resolution.error().message());
  Result<int64_t> now = ResolveNow(flags.Get("--now"));
  if (!now.ok()) return UsageError(kCommand, now.error().message());
  Result<cost::TimeWindow> window = ResolveWindow(flags.Get("--since"), flags.Get("--until"), *now);
  if (!window.ok()) return UsageError(kCommand, window.error().message());

  Result<std::unique_ptr<cost::CostStore>> store = OpenHistory(flags.Get("--db"));
  if (!store.ok()) return Fail(kCommand, store.error().message());
  Result<cost::CostReport> report = (*store)->Query(
      {.window = *window, .resolution = *resolution, .group_by = *dims, .filters = *filters});
  if (!report.ok()) return Fail(kCommand, report.error().message());

  cost::CostTotals total;
  for (const cost::CostRow& row : report->rows)
    total.Add(row.totals);

  if (output == "json") {
    nlohmann::json doc;
    doc["since"] = FormatTime(report->window.since);
    doc["until"] = FormatTime(report->window.until);
    doc["resolution"] = std::string(cost::ResolutionName(report->resolution));
    doc["group_by"] = nlohmann::json::array();
    for (cost::Dimension d : *dims)
      doc["group_by"].push_back(std::string(cost::DimensionName(d)));
    doc["rows"] = nlohmann::json::array();
    for (const cost::CostRow& row : report->rows) {
      nlohmann::json r = TotalsJson(row.totals);
      for (size_t i = 0; i < dims->size(); ++i)
        r[std::string(cost::DimensionName((*dims)[i]))] = row.keys[i];
      r["idle"] = row.idle;
      doc["rows"].push_back(std::move(r));
    }
    doc["total"] = TotalsJson(total);
    std::printf("%s\n", doc.dump(2).c_str());
    return kExitOk;
  }

  std::vector<std::string> header;
  std::vector<bool> numeric;
  for (cost::Dimension d : *dims) {
    header.push_back(Upper(cost::DimensionName(d)));
    numeric.push_back(false);
  }
  for (const char* column : {"GPU-HOURS", "GPU", "CPU", "MEMORY", "IDLE", "TOTAL", "SHARE"}) {
    header.push_back(column);
    numeric.push_back(true);
  }
  Table table(header, numeric);
  auto cells = [&](const cost::CostTotals& t, std::vector<std::string>& row) {
    row.push_back(FormatNumber(t.gpu_seconds / 3600, 2));
    row.push_back(FormatMoney(t.gpu_cost));
    row.push_back(FormatMoney(t.cpu_cost));
    row.push_back(FormatMoney(t.memory_cost));
    row.push_back(FormatMoney(t.idle_cost));
    row.push_back(FormatMoney(t.total_cost()));
    const double share = total.total_cost() > 0 ? 100 * t.total_cost() / total.total_cost() : 0;
    row.push_back(FormatNumber(share, 1) + "%");
  };
  for (const cost::CostRow& row : report->rows) {
    std::vector<std::string> cells_row;
    for (size_t i = 0; i < dims->size(); ++i)
      cells_row.push_back(output == "csv" && !row.idle ? row.keys[i]
                                                       : KeyLabel((*dims)[i], row, i));
    cells(row.totals, cells_row);
    table.AddRow(std::move(cells_row));
  }
  if (output == "csv") {
    std::fputs(table.RenderCsv().c_str(), stdout);
    return kExitOk;
  }
  table.AddSeparator();
  std::vector<std::string> total_row = {"TOTAL"};
  total_row.resize(dims->size());
  cells(total, total_row);
  table.AddRow(std::move(total_row));
  std::printf("Cost by %s, %s to %s (%s precision, %s)\n\n", flags.Get("--by", "namespace").c_str(),
              FormatTime(report->window.since).c_str(), FormatTime(report->window.until).c_str(),
              std::string(cost::ResolutionName(report->resolution)).c_str(),
              std::string((*store)->backend()).c_str());
  std::fputs(table.Render().c_str(), stdout);
  return kExitOk;
}

}  // namespace gpu_autoscaler::cli
