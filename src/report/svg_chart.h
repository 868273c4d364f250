// File: src/report/svg_chart.h
//
// Inline SVG charts for the HTML report: grouped bars and lines (plain or
// steps), with axes, ticks and a legend; no script, no external resources.
// Every mark carries data-* attributes (data-chart on the <svg>, data-series
// and data-value on bars, data-points on lines) so a test can find the
// charts in the rendered DOM. All text is HTML-escaped.
//
//   BarChart c{.id = "team-cost", .title = "Cost by team", .unit = "USD",
//              .series = {"actual", "without sharing"},
//              .groups = {{"vision", {1.2, 2.4}}}};
//   std::string svg = RenderBarChart(c);
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gpu_autoscaler::report {

// &, <, >, " and ' as entities: safe in text and in quoted attributes.
std::string HtmlEscape(std::string_view s);

struct BarGroup {
  std::string label{};
  std::vector<double> values{};  // one per series
};
struct BarChart {
  std::string id{}, title{}, unit{};
  std::vector<std::string> series{};
  std::vector<BarGroup> groups{};
};
std::string RenderBarChart(const BarChart& chart);

struct LineSeries {
  std::string name{};
  std::vector<double> x{}, y{};
};
struct LineMarker {  // a labelled vertical line, e.g. a spot interruption
  double x = 0;
  std::string label{};
};
struct LineChart {
  std::string id{}, title{}, x_label{}, y_label{};
  bool x_is_unix_time = false;  // x ticks as HH:MM:SS UTC
  bool steps = false;           // hold each value until the next point
  std::vector<LineSeries> series{};
  std::vector<LineMarker> markers{};
};
std::string RenderLineChart(const LineChart& chart);

}  // namespace gpu_autoscaler::report
