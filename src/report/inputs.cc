#include "report/inputs.h"

#include <charconv>
#include <chrono>
#include <cmath>

#include "common/json_read.h"
#include "kube/meta_time.h"

namespace gpu_autoscaler::report {
namespace {

using nlohmann::json;

// Typed reads treat a wrong type as absent (common/json_read.h): the report
// shows what it can. An integer beyond ±1e9 reads as 0.
int Int(const json& o, std::string_view key) {
  const double v = json_read::Number(o, key);
  return v > 1e9 || v < -1e9 ? 0 : static_cast<int>(v);
}

int64_t UnixTime(const std::string& text) {
  if (text.empty()) return 0;
  auto t = kube::ParseRfc3339(text);
  if (!t.ok()) return 0;
  return std::chrono::duration_cast<std::chrono::seconds>(t->time_since_epoch()).count();
}

Result<const json*> ListItems(const json& list, std::string_view what) {
  const json& items = json_read::Member(list, "items");
  if (!items.is_array())
    return InvalidArgumentError(std::string(what) + ": want a list with an items array");
  return &items;
}

std::vector<std::string> TrueConditions(const json& status) {
  std::vector<std::string> out;
  for (const json& c : json_read::Array(status, "conditions"))
    if (json_read::String(c, "status") == "True") out.push_back(json_read::String(c, "type"));
  return out;
}

Result<double> ParseNumber(std::string_view s, std::string_view where) {
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v))
    return InvalidArgumentError(std::string(where) + ": \"" + std::string(s.substr(0, 40)) +
                                "\" is not a number");
  return v;
}

std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == text.npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

std::vector<std::string_view> SplitComma(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    out.push_back(line.substr(start, comma == line.npos ? line.npos : comma - start));
    if (comma == line.npos) return out;
    start = comma + 1;
  }
}

}  // namespace

Result<std::vector<AlertInput>> ParseAlertLog(std::string_view jsonl) {
  if (jsonl.size() > kMaxInputBytes) return InvalidArgumentError("alert log: over 64 MiB");
  std::vector<AlertInput> alerts;
  int number = 0;
  for (std::string_view line : SplitLines(jsonl)) {
    ++number;
    if (line.find_first_not_of(" \t") == line.npos) continue;
    const std::string where = "alert log line " + std::to_string(number);
    json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!record.is_object()) return InvalidArgumentError(where + ": not a JSON object");
    AlertInput a;
    a.channel = json_read::String(record, "path");
    a.signed_request = !json_read::String(record, "signature").empty();
    const std::string body_text = json_read::String(record, "body");
    json body = json::parse(body_text, nullptr, /*allow_exceptions=*/false);
    if (body.is_object()) {
      a.summary = json_read::String(body, "summary");
      if (a.summary.empty())
        a.summary = json_read::String(json_read::Member(body, "payload"), "summary");  // PagerDuty
      if (a.summary.empty()) a.summary = json_read::String(body, "text");              // Slack
      a.threshold = json_read::Number(body, "thresholdPercent", -1);
      if (a.threshold < 0)
        a.threshold = json_read::Number(
            json_read::Member(json_read::Member(body, "payload"), "custom_details"),
            "threshold_percent", -1);
      a.time = json_read::String(body, "time");
      if (a.time.empty())
        a.time = json_read::String(json_read::Member(body, "payload"), "timestamp");
    }
    if (a.summary.empty()) a.summary = body_text.substr(0, 200);
    alerts.push_back(std::move(a));
  }
  return alerts;
}

Result<std::vector<PlacementCurve>> ParsePlacementCurve(std::string_view csv) {
  if (csv.size() > kMaxInputBytes) return InvalidArgumentError("placement curve: over 64 MiB");
  std::vector<std::string_view> lines = SplitLines(csv);
  while (!lines.empty() && lines.back().empty())
    lines.pop_back();
  if (lines.empty()) return InvalidArgumentError("placement curve: empty");
  const std::vector<std::string_view> header = SplitComma(lines[0]);
  if (header.empty() || header[0] != "arrived_pct" || (header.size() - 1) % 3 != 0 ||
      header.size() < 4) {
    return InvalidArgumentError(
        "placement curve: want the header arrived_pct,<policy>_alloc_mean,<policy>_alloc_sd,"
        "<policy>_frag_mean,... (gpu-autoscaler simulate --arrived-curve)");
  }
  std::vector<PlacementCurve> curves;
  for (size_t col = 1; col + 2 < header.size(); col += 3) {
    std::string_view name = header[col];
    if (!name.ends_with("_alloc_mean") || name.size() == 11)
      return InvalidArgumentError("placement curve: column " + std::to_string(col + 1) +
                                  " is not <policy>_alloc_mean");
    curves.push_back({.policy = std::string(name.substr(0, name.size() - 11))});
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string where = "placement curve line " + std::to_string(i + 1);
    const std::vector<std::string_view> cells = SplitComma(lines[i]);
    if (cells.size() != header.size())
      return InvalidArgumentError(where + ": " + std::to_string(cells.size()) + " cells, want " +
                                  std::to_string(header.size()));
    GPU_ASSIGN_OR_RETURN(double arrived, ParseNumber(cells[0], where));
    for (size_t p = 0; p < curves.size(); ++p) {
      GPU_ASSIGN_OR_RETURN(double alloc, ParseNumber(cells[1 + 3 * p], where));
      GPU_ASSIGN_OR_RETURN(double frag, ParseNumber(cells[3 + 3 * p], where));
      curves[p].arrived_pct.push_back(arrived);
      curves[p].alloc_pct.push_back(alloc);
      curves[p].frag_pct.push_back(frag);
    }
  }
  return curves;
}

Result<std::vector<BudgetInput>> ParseBudgets(const json& list) {
  GPU_ASSIGN_OR_RETURN(const json* items, ListItems(list, "budgets"));
  std::vector<BudgetInput> out;
  for (const json& b : *items) {
    const json& meta = json_read::Member(b, "metadata");
    const json& spec = json_read::Member(b, "spec");
    const json& status = json_read::Member(b, "status");
    BudgetInput in{.ns = json_read::String(meta, "namespace"),
                   .name = json_read::String(meta, "name")};
    in.amount = json_read::Number(spec, "amount");
    in.currency = json_read::String(status, "currency");
    if (in.currency.empty()) in.currency = json_read::String(spec, "currency");
    if (in.currency.empty()) in.currency = "USD";
    in.enforcement = json_read::String(spec, "enforcement");
    if (in.enforcement.empty()) in.enforcement = "alert";
    in.spend = json_read::Number(status, "currentSpend");
    in.percent = json_read::Number(status, "percent");
    const json& forecast = json_read::Member(status, "forecast");
    in.forecast = std::max(json_read::Number(forecast, "holtWinters", -1),
                           json_read::Number(forecast, "linear", -1));
    in.true_conditions = TrueConditions(status);
    for (const json& a : json_read::Array(status, "lastAlert"))
      if (json_read::String(a, "state") != "resolved" && json_read::Number(a, "threshold", -1) >= 0)
        in.fired_thresholds.push_back(json_read::Number(a, "threshold"));
    out.push_back(std::move(in));
  }
  return out;
}

Result<std::vector<NodePoolInput>> ParseNodePools(const json& list) {
  GPU_ASSIGN_OR_RETURN(const json* items, ListItems(list, "gpunodepools"));
  std::vector<NodePoolInput> out;
  for (const json& p : *items) {
    const json& status = json_read::Member(p, "status");
    out.push_back({.name = json_read::String(json_read::Member(p, "metadata"), "name"),
                   .nodes = Int(status, "nodes"),
                   .desired = Int(status, "desired"),
                   .hourly_cost = json_read::Number(status, "hourlyCost")});
  }
  return out;
}

Result<std::vector<EventInput>> ParseEvents(const json& list) {
  GPU_ASSIGN_OR_RETURN(const json* items, ListItems(list, "events"));
  std::vector<EventInput> out;
  for (const json& e : *items) {
    const json& object = json_read::Member(e, "involvedObject");
    EventInput in{.kind = json_read::String(object, "kind"),
                  .ns = json_read::String(object, "namespace"),
                  .name = json_read::String(object, "name"),
                  .reason = json_read::String(e, "reason"),
                  .message = json_read::String(e, "message"),
                  .type = json_read::String(e, "type")};
    in.last = UnixTime(json_read::String(e, "lastTimestamp"));
    if (in.last == 0) in.last = UnixTime(json_read::String(e, "eventTime"));
    if (in.last == 0)
      in.last = UnixTime(json_read::String(json_read::Member(e, "metadata"), "creationTimestamp"));
    in.first = UnixTime(json_read::String(e, "firstTimestamp"));
    if (in.first == 0 || in.first > in.last) in.first = in.last;
    in.count = std::max(1, Int(e, "count"));
    out.push_back(std::move(in));
  }
  return out;
}

Result<std::vector<SharingPolicyInput>> ParseSharingPolicies(const json& list) {
  GPU_ASSIGN_OR_RETURN(const json* items, ListItems(list, "gpusharingpolicies"));
  std::vector<SharingPolicyInput> out;
  for (const json& p : *items)
    out.push_back({.name = json_read::String(json_read::Member(p, "metadata"), "name"),
                   .matched_pods = Int(json_read::Member(p, "status"), "matchedPods")});
  return out;
}

Result<std::vector<RescheduleInput>> ParseReschedulePolicies(const json& list) {
  GPU_ASSIGN_OR_RETURN(const json* items, ListItems(list, "reschedulepolicies"));
  std::vector<RescheduleInput> out;
  for (const json& p : *items) {
    const json& status = json_read::Member(p, "status");
    const json& run = json_read::Member(status, "lastRun");
    RescheduleInput in{
        .name = json_read::String(json_read::Member(p, "metadata"), "name"),
        .dry_run = json_read::Bool(run, "dryRun",
                                   json_read::Bool(json_read::Member(p, "spec"), "dryRun", true)),
        .planned = Int(run, "planned"),
        .executed = Int(run, "executed"),
        .blocked = Int(run, "blocked"),
        .fragmentation = json_read::Number(run, "fragmentationRatio", -1)};
    for (const json& m : json_read::Array(status, "plannedMoves")) {
      in.moves.push_back(json_read::String(m, "result") + " " + json_read::String(m, "namespace") +
                         "/" + json_read::String(m, "pod") + " " +
                         json_read::String(m, "fromNode") + " -> " +
                         json_read::String(m, "toNode") + ": " + json_read::String(m, "reason"));
    }
    out.push_back(std::move(in));
  }
  return out;
}

Result<std::vector<ProfileInput>> ParseServiceProfiles(const json& list) {
  GPU_ASSIGN_OR_RETURN(const json* items, ListItems(list, "serviceprofiles"));
  std::vector<ProfileInput> out;
  for (const json& p : *items) {
    const json& meta = json_read::Member(p, "metadata");
    const json& target = json_read::Member(json_read::Member(p, "spec"), "targetRef");
    const json& status = json_read::Member(p, "status");
    ProfileInput in{
        .ns = json_read::String(meta, "namespace"),
        .name = json_read::String(meta, "name"),
        .target = json_read::String(target, "kind") + "/" + json_read::String(target, "name")};
    for (const json& c : json_read::Array(status, "conditions")) {
      if (json_read::String(c, "type") != "RecommendationProvided") continue;
      in.provided = json_read::String(c, "status") == "True";
      in.message = json_read::String(c, "message");
    }
    for (const json& r : json_read::Array(status, "recommendations")) {
      const json& cpu = json_read::Member(r, "cpu");
      const json& memory = json_read::Member(r, "memory");
      in.containers.push_back(
          {.container = json_read::String(r, "containerName"),
           .cpu_target = json_read::String(cpu, "target"),
           .cpu_lower = json_read::String(cpu, "lowerBound"),
           .cpu_upper = json_read::String(cpu, "upperBound"),
           .memory_target = json_read::String(memory, "target"),
           .memory_upper = json_read::String(memory, "upperBound"),
           .gpu_share = json_read::String(json_read::Member(r, "gpu"), "share")});
    }
    out.push_back(std::move(in));
  }
  return out;
}

}  // namespace gpu_autoscaler::report
