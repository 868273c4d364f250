// File: src/autoscale/report.h
//
// Renders experiment summaries: a side-by-side text table of policies, a JSON
// document, and the arrived-workload curve as CSV (one row per arrived
// percentage 0..130, columns per policy) for plotting.
//
//   std::string table = FormatTable(summaries);
//   std::string json = FormatJson(summaries);
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "autoscale/experiment.h"

namespace gpu_autoscaler::autoscale {

std::string FormatTable(const std::vector<PolicySummary>& summaries);
std::string FormatJson(const std::vector<PolicySummary>& summaries);
// Header: arrived_pct, then <policy>_alloc_mean, <policy>_alloc_sd,
// <policy>_frag_mean per policy.
std::string FormatArrivedCurve(const std::vector<PolicySummary>& summaries);

}  // namespace gpu_autoscaler::autoscale
