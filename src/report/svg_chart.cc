#include "report/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace gpu_autoscaler::report {
namespace {

constexpr double kWidth = 640, kHeight = 300;
constexpr double kLeft = 64, kRight = 40, kTop = 40, kBottom = 56;
constexpr const char* kPalette[] = {"#2563eb", "#f97316", "#16a34a", "#9333ea",
                                    "#dc2626", "#0891b2", "#ca8a04", "#4b5563"};

const char* Color(size_t i) {
  return kPalette[i % (sizeof(kPalette) / sizeof(kPalette[0]))];
}

std::string Num(double v, int decimals = 2) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, std::isfinite(v) ? v : 0.0);
  return buf;
}

// A tick label: as few decimals as the step needs.
std::string TickLabel(double v, double step) {
  int decimals = 0;
  for (double s = step; decimals < 6 && std::fabs(s - std::round(s)) > 1e-9; s *= 10)
    ++decimals;
  return Num(v, decimals);
}

// A 1-2-5 step giving about `ticks` intervals over [0, max].
double NiceStep(double max, int ticks) {
  if (!(max > 0)) return 1;
  const double raw = max / ticks;
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (raw <= m * magnitude) return m * magnitude;
  return 10 * magnitude;
}

std::string ClockLabel(double unix) {
  const int64_t t = static_cast<int64_t>(unix);
  const int64_t day = ((t % 86400) + 86400) % 86400;
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%02d:%02d:%02d", static_cast<int>(day / 3600),
                static_cast<int>(day / 60 % 60), static_cast<int>(day % 60));
  return buf;
}

std::string Open(std::string_view kind, const std::string& id, const std::string& title) {
  return "<svg class=\"chart\" data-chart=\"" + HtmlEscape(id) + "\" data-kind=\"" +
         std::string(kind) + "\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " +
         Num(kWidth, 0) + " " + Num(kHeight, 0) + "\" width=\"" + Num(kWidth, 0) + "\" height=\"" +
         Num(kHeight, 0) + "\" role=\"img\" aria-label=\"" + HtmlEscape(title) + "\">\n<title>" +
         HtmlEscape(title) + "</title>\n" + "<text class=\"chart-title\" x=\"" + Num(kLeft, 0) +
         "\" y=\"18\" font-size=\"14\" font-weight=\"600\">" + HtmlEscape(title) + "</text>\n";
}

std::string Legend(const std::vector<std::string>& names) {
  std::string out;
  double x = kLeft;
  for (size_t i = 0; i < names.size(); ++i) {
    out += "<rect class=\"legend\" x=\"" + Num(x, 1) +
           "\" y=\"26\" width=\"10\" height=\"10\" fill=\"" + Color(i) + "\"/><text x=\"" +
           Num(x + 14, 1) + "\" y=\"35\" font-size=\"11\">" + HtmlEscape(names[i]) + "</text>\n";
    x += 24 + 6.5 * static_cast<double>(names[i].size());
  }
  return out;
}

// Horizontal grid lines and y tick labels over [0, top]; returns top.
double YAxis(double max, const std::string& unit, std::string* out) {
  const double step = NiceStep(max, 5);
  const double top = std::max(step, std::ceil(max / step - 1e-9) * step);
  const double plot_h = kHeight - kTop - kBottom;
  for (double v = 0; v <= top + step / 2; v += step) {
    const double y = kTop + plot_h - v / top * plot_h;
    *out += "<line class=\"grid\" x1=\"" + Num(kLeft, 0) + "\" x2=\"" + Num(kWidth - kRight, 0) +
            "\" y1=\"" + Num(y, 1) + "\" y2=\"" + Num(y, 1) + "\" stroke=\"#e5e7eb\"/><text x=\"" +
            Num(kLeft - 6, 0) + "\" y=\"" + Num(y + 4, 1) +
            "\" font-size=\"11\" text-anchor=\"end\">" + TickLabel(v, step) + "</text>\n";
  }
  if (!unit.empty()) {
    *out += "<text x=\"12\" y=\"" + Num(kTop + plot_h / 2, 0) +
            "\" font-size=\"11\" text-anchor=\"middle\" transform=\"rotate(-90 12 " +
            Num(kTop + plot_h / 2, 0) + ")\">" + HtmlEscape(unit) + "</text>\n";
  }
  *out += "<line class=\"axis\" x1=\"" + Num(kLeft, 0) + "\" x2=\"" + Num(kWidth - kRight, 0) +
          "\" y1=\"" + Num(kTop + plot_h, 1) + "\" y2=\"" + Num(kTop + plot_h, 1) +
          "\" stroke=\"#374151\"/>\n";
  return top;
}

}  // namespace

std::string HtmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string RenderBarChart(const BarChart& chart) {
  std::string out = Open("bar", chart.id, chart.title);
  out += Legend(chart.series);
  double max = 0;
  for (const BarGroup& g : chart.groups)
    for (double v : g.values)
      if (std::isfinite(v)) max = std::max(max, v);
  const double top = YAxis(max, chart.unit, &out);
  const double plot_w = kWidth - kLeft - kRight;
  const double plot_h = kHeight - kTop - kBottom;
  const double group_w = plot_w / static_cast<double>(std::max<size_t>(1, chart.groups.size()));
  const double bar_w =
      std::min(48.0, group_w * 0.8 / static_cast<double>(std::max<size_t>(1, chart.series.size())));
  for (size_t gi = 0; gi < chart.groups.size(); ++gi) {
    const BarGroup& g = chart.groups[gi];
    const double bars_w = bar_w * static_cast<double>(chart.series.size());
    const double x0 = kLeft + group_w * static_cast<double>(gi) + (group_w - bars_w) / 2;
    for (size_t si = 0; si < chart.series.size() && si < g.values.size(); ++si) {
      const double v = std::isfinite(g.values[si]) ? std::max(0.0, g.values[si]) : 0;
      const double h = v / top * plot_h;
      const double x = x0 + bar_w * static_cast<double>(si);
      out += "<rect class=\"bar\" data-series=\"" + HtmlEscape(chart.series[si]) +
             "\" data-label=\"" + HtmlEscape(g.label) + "\" data-value=\"" + Num(v, 4) + "\" x=\"" +
             Num(x, 1) + "\" y=\"" + Num(kTop + plot_h - h, 1) + "\" width=\"" + Num(bar_w - 2, 1) +
             "\" height=\"" + Num(h, 1) + "\" fill=\"" + Color(si) + "\"><title>" +
             HtmlEscape(g.label + ", " + chart.series[si] + ": " + Num(v, 2) +
                        (chart.unit.empty() ? "" : " " + chart.unit)) +
             "</title></rect>\n";
    }
    out += "<text class=\"group-label\" x=\"" + Num(x0 + bars_w / 2, 1) + "\" y=\"" +
           Num(kTop + plot_h + 16, 1) + "\" font-size=\"11\" text-anchor=\"middle\">" +
           HtmlEscape(g.label) + "</text>\n";
  }
  return out + "</svg>\n";
}

std::string RenderLineChart(const LineChart& chart) {
  std::string out = Open("line", chart.id, chart.title);
  std::vector<std::string> names;
  for (const LineSeries& s : chart.series)
    names.push_back(s.name);
  out += Legend(names);
  double x_min = INFINITY, x_max = -INFINITY, y_max = 0;
  for (const LineSeries& s : chart.series) {
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      x_min = std::min(x_min, s.x[i]);
      x_max = std::max(x_max, s.x[i]);
      y_max = std::max(y_max, s.y[i]);
    }
  }
  for (const LineMarker& m : chart.markers) {
    x_min = std::min(x_min, m.x);
    x_max = std::max(x_max, m.x);
  }
  if (!std::isfinite(x_min)) {
    x_min = 0;
    x_max = 1;
  }
  if (x_max <= x_min) x_max = x_min + 1;
  const double top = YAxis(y_max, chart.y_label, &out);
  const double plot_w = kWidth - kLeft - kRight;
  const double plot_h = kHeight - kTop - kBottom;
  auto px = [&](double x) { return kLeft + (x - x_min) / (x_max - x_min) * plot_w; };
  auto py = [&](double y) { return kTop + plot_h - std::max(0.0, y) / top * plot_h; };
  // x ticks: five evenly spaced (times), or a 1-2-5 step (numbers).
  if (chart.x_is_unix_time) {
    for (int i = 0; i <= 4; ++i) {
      const double x = x_min + (x_max - x_min) * i / 4;
      out += "<text x=\"" + Num(px(x), 1) + "\" y=\"" + Num(kTop + plot_h + 16, 1) +
             "\" font-size=\"11\" text-anchor=\"middle\">" + ClockLabel(x) + "</text>\n";
    }
  } else {
    const double step = NiceStep(x_max - x_min, 6);
    for (double x = std::ceil(x_min / step) * step; x <= x_max + step / 1000; x += step) {
      out += "<text x=\"" + Num(px(x), 1) + "\" y=\"" + Num(kTop + plot_h + 16, 1) +
             "\" font-size=\"11\" text-anchor=\"middle\">" + TickLabel(x, step) + "</text>\n";
    }
  }
  if (!chart.x_label.empty()) {
    out += "<text x=\"" + Num(kLeft + plot_w / 2, 0) + "\" y=\"" + Num(kHeight - 12, 0) +
           "\" font-size=\"11\" text-anchor=\"middle\">" + HtmlEscape(chart.x_label) + "</text>\n";
  }
  for (const LineMarker& m : chart.markers) {
    out += "<line class=\"marker\" data-label=\"" + HtmlEscape(m.label) + "\" x1=\"" +
           Num(px(m.x), 1) + "\" x2=\"" + Num(px(m.x), 1) + "\" y1=\"" + Num(kTop, 0) + "\" y2=\"" +
           Num(kTop + plot_h, 0) + "\" stroke=\"#dc2626\" stroke-dasharray=\"4 3\"><title>" +
           HtmlEscape(m.label) + "</title></line>\n<text x=\"" + Num(px(m.x) + 3, 1) + "\" y=\"" +
           Num(kTop + 10, 0) + "\" font-size=\"10\" fill=\"#dc2626\">" + HtmlEscape(m.label) +
           "</text>\n";
  }
  for (size_t si = 0; si < chart.series.size(); ++si) {
    const LineSeries& s = chart.series[si];
    std::string points;
    int count = 0;
    double prev_y = 0;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      if (chart.steps && count > 0) points += Num(px(s.x[i]), 1) + "," + Num(py(prev_y), 1) + " ";
      points += Num(px(s.x[i]), 1) + "," + Num(py(s.y[i]), 1) + " ";
      prev_y = s.y[i];
      ++count;
    }
    if (!points.empty()) points.pop_back();
    out += "<polyline class=\"line\" data-series=\"" + HtmlEscape(s.name) + "\" data-points=\"" +
           std::to_string(count) + "\" fill=\"none\" stroke=\"" + Color(si) +
           "\" stroke-width=\"2\" points=\"" + points + "\"><title>" + HtmlEscape(s.name) +
           "</title></polyline>\n";
  }
  return out + "</svg>\n";
}

}  // namespace gpu_autoscaler::report
