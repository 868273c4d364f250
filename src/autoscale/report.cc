#include "autoscale/report.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace gpu_autoscaler::autoscale {
namespace {

std::string Format(const char* fmt, double a, double b) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, a, b);
  return buf;
}

std::string Cell(const MeanSd& v, int precision) {
  if (std::isnan(v.mean)) return "-";
  const char* fmt = precision == 2 ? "%.2f ± %.2f" : "%.1f ± %.1f";
  return Format(fmt, v.mean, v.sd);
}

// Display width, counting the two-byte "±" as one column.
size_t Width(const std::string& s) {
  size_t w = 0;
  for (unsigned char c : s)
    w += (c & 0xC0) != 0x80;
  return w;
}

std::string Pad(const std::string& s, size_t width, bool right) {
  const size_t w = Width(s);
  const std::string fill(w < width ? width - w : 0, ' ');
  return right ? fill + s : s + fill;
}

nlohmann::json ToJson(const MeanSd& v) {
  if (std::isnan(v.mean)) return nullptr;
  return {{"mean", v.mean}, {"sd", v.sd}};
}

}  // namespace

std::string FormatTable(const std::vector<PolicySummary>& summaries) {
  struct Row {
    std::string label;
    std::vector<std::string> cells;
  };
  std::vector<Row> rows;
  auto add = [&](std::string label, auto cell) {
    Row row{std::move(label), {}};
    for (const PolicySummary& s : summaries)
      row.cells.push_back(cell(s));
    rows.push_back(std::move(row));
  };
  add("policy", [](const PolicySummary& s) { return s.policy; });
  for (int k : {100, 130}) {
    add("GPU alloc % @" + std::to_string(k),
        [k](const PolicySummary& s) { return Cell(s.alloc_pct[k], 2); });
  }
  for (int k : {100, 130}) {
    add("frag % of cap @" + std::to_string(k),
        [k](const PolicySummary& s) { return Cell(s.frag_pct[k], 2); });
  }
  for (int c = 0; c < kPodClassCount; ++c) {
    add("failed " + std::string(PodClassName(static_cast<PodClass>(c))) + " pods",
        [c](const PolicySummary& s) { return Cell(s.failed_by_class[c], 1); });
  }
  add("failed cpu-only cores",
      [](const PolicySummary& s) { return Cell(s.failed_cpu_only_cores, 1); });
  add("pods per run", [](const PolicySummary& s) { return Cell(s.pods, 1); });
  add("seeds", [](const PolicySummary& s) { return std::to_string(s.runs.size()); });

  size_t label_width = 0;
  std::vector<size_t> widths(summaries.size(), 0);
  for (const Row& row : rows) {
    label_width = std::max(label_width, Width(row.label));
    for (size_t i = 0; i < row.cells.size(); ++i)
      widths[i] = std::max(widths[i], Width(row.cells[i]));
  }
  std::string out;
  for (size_t r = 0; r < rows.size(); ++r) {
    out += Pad(rows[r].label, label_width, false);
    for (size_t i = 0; i < rows[r].cells.size(); ++i)
      out += "  " + Pad(rows[r].cells[i], widths[i], true);
    out += '\n';
    if (r == 0) {
      size_t total = label_width;
      for (size_t w : widths)
        total += 2 + w;
      out += std::string(total, '-') + '\n';
    }
  }
  return out;
}

std::string FormatJson(const std::vector<PolicySummary>& summaries) {
  nlohmann::json doc = nlohmann::json::array();
  for (const PolicySummary& s : summaries) {
    nlohmann::json p;
    p["policy"] = s.policy;
    nlohmann::json seeds = nlohmann::json::array();
    for (const RunResult& r : s.runs)
      seeds.push_back(r.seed);
    p["seeds"] = seeds;
    for (int k : {100, 130}) {
      p["gpu_alloc_pct"][std::to_string(k)] = ToJson(s.alloc_pct[k]);
      p["frag_pct_of_capacity"][std::to_string(k)] = ToJson(s.frag_pct[k]);
      p["frag_pct_of_idle"][std::to_string(k)] = ToJson(s.frag_ratio[k]);
    }
    for (int c = 0; c < kPodClassCount; ++c) {
      const std::string name(PodClassName(static_cast<PodClass>(c)));
      p["failed_pods"][name] = ToJson(s.failed_by_class[c]);
      p["arrived_pods"][name] = ToJson(s.arrived_by_class[c]);
    }
    p["failed_cpu_only_cores"] = ToJson(s.failed_cpu_only_cores);
    p["pods_per_run"] = ToJson(s.pods);
    nlohmann::json runs = nlohmann::json::array();
    for (const RunResult& r : s.runs) {
      runs.push_back(
          {{"seed", r.seed},
           {"pods", r.pods},
           {"placed", r.placed},
           {"gpu_alloc_pct_100", std::isnan(r.alloc_pct[100]) ? nlohmann::json(nullptr)
                                                              : nlohmann::json(r.alloc_pct[100])},
           {"gpu_alloc_pct_130", std::isnan(r.alloc_pct[130]) ? nlohmann::json(nullptr)
                                                              : nlohmann::json(r.alloc_pct[130])}});
    }
    p["runs"] = runs;
    doc.push_back(std::move(p));
  }
  return doc.dump(2) + "\n";
}

std::string FormatArrivedCurve(const std::vector<PolicySummary>& summaries) {
  std::string out = "arrived_pct";
  for (const PolicySummary& s : summaries) {
    out += "," + s.policy + "_alloc_mean," + s.policy + "_alloc_sd," + s.policy + "_frag_mean";
  }
  out += '\n';
  char buf[96];
  for (int k = 0; k < kArrivedColumns; ++k) {
    out += std::to_string(k);
    for (const PolicySummary& s : summaries) {
      std::snprintf(buf, sizeof(buf), ",%.3f,%.3f,%.3f", s.alloc_pct[k].mean, s.alloc_pct[k].sd,
                    s.frag_pct[k].mean);
      out += buf;
    }
    out += '\n';
  }
  return out;
}

}  // namespace gpu_autoscaler::autoscale
