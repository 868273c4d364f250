#include "profiling/custom_metrics.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <utility>

#include <nlohmann/json.hpp>

#include "cost/budget.h"
#include "kube/selector.h"

namespace gpu_autoscaler::profiling {
namespace {

using nlohmann::json;
// Bodies are dumped with error_handler_t::replace: paths and selectors come
// from the network, may hold bytes that are not UTF-8, and reach messages
// (nlohmann's default throws on them).

constexpr std::array<std::string_view, 2> kMetricNames = {kGpuUtilizationMetric,
                                                          kGpuMemoryUsedBytesMetric};

std::string GroupVersion() {
  return std::string(kCustomMetricsGroup) + "/" + std::string(kCustomMetricsVersion);
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

Status PathNotFound(std::string_view path) {
  return NotFoundError("the server could not find the requested resource (" + std::string(path) +
                       ")");
}

// The figure for `metric`, in thousandths of its unit; false when the pod has none.
bool MetricMilli(std::string_view metric, const cost::PodGpuUsage& usage, int64_t* milli) {
  double value = -1;
  if (metric == kGpuUtilizationMetric) {
    const double share = usage.ShareUtilization();
    if (share >= 0) value = share * 100.0;
  } else if (metric == kGpuMemoryUsedBytesMetric) {
    value = usage.gpu_memory_bytes;
  }
  if (!(value >= 0) || !std::isfinite(value) || value > 9.0e15) return false;
  *milli = std::llround(value * 1000.0);
  return true;
}

json MetricValue(const CustomMetricsRequest& request, const MetricsPod& pod, int64_t milli,
                 const std::string& timestamp) {
  return json{{"describedObject",
               {{"kind", "Pod"}, {"namespace", pod.ns}, {"name", pod.name}, {"apiVersion", "v1"}}},
              {"metric", {{"name", request.metric}}},
              {"timestamp", timestamp},
              {"windowSeconds", 0},
              {"value", FormatDecimalQuantityMilli(milli)}};
}

}  // namespace

std::span<const std::string_view> CustomMetricNames() {
  return kMetricNames;
}

Result<CustomMetricsRequest> ParseCustomMetricsRequest(const CustomMetricsQuery& query) {
  const std::vector<std::string_view> parts = SplitPath(query.path);
  if (parts.size() < 2 || parts[0] != "apis" || parts[1] != kCustomMetricsGroup) {
    return PathNotFound(query.path);
  }
  CustomMetricsRequest request;
  if (parts.size() == 2) {
    request.kind = CustomMetricsRequest::Kind::kGroup;
    return request;
  }
  if (parts[2] != kCustomMetricsVersion) return PathNotFound(query.path);
  if (parts.size() == 3) {
    request.kind = CustomMetricsRequest::Kind::kResourceList;
    return request;
  }
  // namespaces/NS/pods/NAME/METRIC; namespace-level metrics, other kinds and
  // cluster-scoped forms are not served.
  if (parts.size() != 8 || parts[3] != "namespaces" || parts[5] != "pods") {
    return PathNotFound(query.path);
  }
  request.ns = std::string(parts[4]);
  request.metric = std::string(parts[7]);
  if (std::find(kMetricNames.begin(), kMetricNames.end(), parts[7]) == kMetricNames.end()) {
    return NotFoundError("the server could not find the metric " + request.metric +
                         " for pods (this server has gpu_utilization and gpu_memory_used_bytes)");
  }
  if (parts[6] == "*") {
    request.kind = CustomMetricsRequest::Kind::kPodsBySelector;
  } else {
    request.kind = CustomMetricsRequest::Kind::kPod;
    request.pod = std::string(parts[6]);
  }
  auto selector = kube::LabelSelector::Parse(query.label_selector);
  if (!selector.ok()) return selector.error().WithContext("labelSelector");
  auto metric_selector = kube::LabelSelector::Parse(query.metric_label_selector);
  if (!metric_selector.ok()) return metric_selector.error().WithContext("metricLabelSelector");
  request.label_selector = std::string(query.label_selector);
  request.metric_label_selector = std::string(query.metric_label_selector);
  return request;
}

Result<std::string> BuildCustomMetricsAnswer(const CustomMetricsRequest& request,
                                             std::span<const MetricsPod> pods,
                                             std::span<const cost::PodGpuUsage> usage,
                                             int64_t now_unix_seconds) {
  using Kind = CustomMetricsRequest::Kind;
  if (request.kind == Kind::kGroup) {
    const json version = {{"groupVersion", GroupVersion()},
                          {"version", std::string(kCustomMetricsVersion)}};
    return json{{"kind", "APIGroup"},
                {"apiVersion", "v1"},
                {"name", std::string(kCustomMetricsGroup)},
                {"versions", json::array({version})},
                {"preferredVersion", version}}
        .dump(-1, ' ', false, json::error_handler_t::replace);
  }
  if (request.kind == Kind::kResourceList) {
    json resources = json::array();
    for (std::string_view metric : kMetricNames) {
      resources.push_back({{"name", "pods/" + std::string(metric)},
                           {"singularName", ""},
                           {"namespaced", true},
                           {"kind", "MetricValueList"},
                           {"verbs", {"get"}}});
    }
    return json{{"kind", "APIResourceList"},
                {"apiVersion", "v1"},
                {"groupVersion", GroupVersion()},
                {"resources", std::move(resources)}}
        .dump(-1, ' ', false, json::error_handler_t::replace);
  }

  GPU_ASSIGN_OR_RETURN(kube::LabelSelector selector,
                       kube::LabelSelector::Parse(request.label_selector));
  GPU_ASSIGN_OR_RETURN(kube::LabelSelector metric_selector,
                       kube::LabelSelector::Parse(request.metric_label_selector));
  // The series carry no metric labels of their own: a metric selector either
  // matches the empty label set or selects nothing.
  const bool metric_selected = metric_selector.Matches(std::map<std::string, std::string>{});

  std::map<std::pair<std::string_view, std::string_view>, const cost::PodGpuUsage*> by_pod;
  for (const cost::PodGpuUsage& u : usage)
    by_pod[{u.ns, u.pod}] = &u;
  std::vector<const MetricsPod*> chosen;
  for (const MetricsPod& pod : pods) {
    if (pod.ns != request.ns) continue;
    if (request.kind == Kind::kPod ? pod.name != request.pod : !selector.Matches(pod.labels)) {
      continue;
    }
    chosen.push_back(&pod);
  }
  std::sort(chosen.begin(), chosen.end(),
            [](const MetricsPod* a, const MetricsPod* b) { return a->name < b->name; });
  chosen.erase(
      std::unique(chosen.begin(), chosen.end(),
                  [](const MetricsPod* a, const MetricsPod* b) { return a->name == b->name; }),
      chosen.end());

  const std::string timestamp = cost::FormatRfc3339(now_unix_seconds);
  json items = json::array();
  for (const MetricsPod* pod : chosen) {
    auto it = by_pod.find({pod->ns, pod->name});
    int64_t milli = 0;
    if (!metric_selected || it == by_pod.end() || !MetricMilli(request.metric, *it->second, &milli))
      continue;  // no figure: left out, never invented
    items.push_back(MetricValue(request, *pod, milli, timestamp));
  }
  if (request.kind == Kind::kPod) {
    if (chosen.empty()) {
      return NotFoundError("pods \"" + request.pod + "\" not found in namespace " + request.ns);
    }
    if (items.empty()) {
      return NotFoundError("the server could not find the metric " + request.metric + " for pods " +
                           request.pod + " (no GPU figure for it)");
    }
  }
  return json{{"kind", "MetricValueList"},
              {"apiVersion", GroupVersion()},
              {"metadata", json::object()},
              {"items", std::move(items)}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

CustomMetricsError CustomMetricsStatus(const Status& error) {
  int code = 500;
  std::string reason = "InternalError";
  if (error.code() == StatusCode::kNotFound) {
    code = 404;
    reason = "NotFound";
  } else if (error.code() == StatusCode::kInvalidArgument) {
    code = 400;
    reason = "BadRequest";
  } else if (error.code() == StatusCode::kUnauthenticated) {
    code = 401;
    reason = "Unauthorized";
  } else if (error.code() == StatusCode::kPermissionDenied) {
    code = 403;
    reason = "Forbidden";
  } else if (error.code() == StatusCode::kUnavailable ||
             error.code() == StatusCode::kDeadlineExceeded) {
    code = 503;
    reason = "ServiceUnavailable";
  }
  return {code, json{{"kind", "Status"},
                     {"apiVersion", "v1"},
                     {"metadata", json::object()},
                     {"status", "Failure"},
                     {"message", error.message()},
                     {"reason", reason},
                     {"code", code}}
                    .dump(-1, ' ', false, json::error_handler_t::replace)};
}

std::string FormatDecimalQuantityMilli(int64_t milli) {
  if (milli == 0) return "0";
  const bool negative = milli < 0;
  // |INT64_MIN| does not fit; one milli less is invisible at that size.
  uint64_t magnitude = negative ? static_cast<uint64_t>(-(milli + 1)) + 1 : milli;
  std::string text;
  if (magnitude % 1000 != 0) {
    text = std::to_string(magnitude) + "m";
  } else {
    magnitude /= 1000;
    static constexpr std::array<const char*, 7> kSuffixes = {"", "k", "M", "G", "T", "P", "E"};
    size_t exponent = 0;
    while (exponent + 1 < kSuffixes.size() && magnitude % 1000 == 0) {
      magnitude /= 1000;
      ++exponent;
    }
    text = std::to_string(magnitude) + kSuffixes[exponent];
  }
  return negative ? "-" + text : text;
}

}  // namespace gpu_autoscaler::profiling
