// Fuzzes the report's readers of outside input (report/inputs.h): the alert
// receiver's log, the simulator's arrived curve and API list bodies. Any
// bytes give inputs or an InvalidArgument error, never a crash; whatever
// parses goes through BuildReport and the HTML renderer. The renderer never
// writes <script> or <img> itself, so either in the page is input that was
// not escaped (the corpus's markup.jsonl carries both).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "report/inputs.h"
#include "report/render.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gpu_autoscaler;
  using namespace gpu_autoscaler::report;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto check = [](const auto& result) {
    if (!result.ok() && result.error().code() != StatusCode::kInvalidArgument) std::abort();
  };
  ReportInputs in;
  auto alerts = ParseAlertLog(text);
  check(alerts);
  if (alerts.ok()) in.alerts = *alerts;
  auto curves = ParsePlacementCurve(text);
  check(curves);
  if (curves.ok()) in.placement = *curves;
  const nlohmann::json list = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!list.is_discarded()) {
    auto budgets = ParseBudgets(list);
    check(budgets);
    if (budgets.ok()) in.budgets = *budgets;
    auto pools = ParseNodePools(list);
    check(pools);
    if (pools.ok()) in.pools = *pools;
    auto events = ParseEvents(list);
    check(events);
    if (events.ok()) in.events = *events;
    auto policies = ParseSharingPolicies(list);
    check(policies);
    if (policies.ok()) in.sharing_policies = *policies;
    auto reschedules = ParseReschedulePolicies(list);
    check(reschedules);
    if (reschedules.ok()) in.reschedules = *reschedules;
    auto profiles = ParseServiceProfiles(list);
    check(profiles);
    if (profiles.ok()) in.profiles = *profiles;
  }
  const std::string html = RenderHtml(BuildReport(in));
  if (html.find("<script") != std::string::npos || html.find("<img") != std::string::npos)
    std::abort();
  return 0;
}
