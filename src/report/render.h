// File: src/report/render.h
//
// The report as one self-contained HTML page: summary figures, inline SVG
// charts (report/svg_chart.h) and tables; no script and nothing fetched, so
// it opens offline and in a headless browser. Every string that came from
// the cluster (names, messages, alert text) is HTML-escaped.
//
//   std::string html = RenderHtml(BuildReport(inputs));
//
// The text rendering lives with the CLI (tools/report_cli.cc), which shares
// the other commands' tables.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "report/report.h"

namespace gpu_autoscaler::report {

std::string RenderHtml(const Report& report);

// "2026-12-05T06:01:02Z"; "-" for 0.
std::string FormatUnixTime(int64_t unix);

}  // namespace gpu_autoscaler::report
