// File: src/profiling/custom_metrics.h
//
// The custom-metrics API (`custom.metrics.k8s.io/v1beta2`) that lets a stock
// HorizontalPodAutoscaler scale on GPU use, as Katalyst's custom-metrics
// server and prometheus-adapter serve it: the request-path parser and the
// answer builder, pure (the HTTPS server is controllers/custom_metrics_server.h).
// It sits with profiling because it is one more consumer of per-pod measured
// usage (cost::PodGpuUsage), like the recommender.
//
//   auto req = ParseCustomMetricsRequest({.path = r.path,
//                                         .label_selector = r.QueryParam("labelSelector")});
//   if (!req.ok()) reply(CustomMetricsStatus(req.error()));   // metav1.Status, 400/404
//   std::vector<MetricsPod> pods = ...;            // the pods of req->ns, with labels
//   auto body = BuildCustomMetricsAnswer(*req, pods, usage, now_unix_seconds);
//
// Paths, as the aggregator forwards them:
//   /apis/custom.metrics.k8s.io                         APIGroup
//   /apis/custom.metrics.k8s.io/v1beta2                 APIResourceList: pods/<metric>
//   /apis/custom.metrics.k8s.io/v1beta2/namespaces/NS/pods/NAME/METRIC   one pod
//   /apis/custom.metrics.k8s.io/v1beta2/namespaces/NS/pods/*/METRIC      labelSelector
// (the HPA's `Pods` metric source calls the last one with its scale target's
// selector). Metrics: `gpu_utilization`, percent of the pod's own GPU share
// (cost::PodGpuUsage::ShareUtilization × 100, so a pod on a quarter of a
// time-sliced GPU that uses all of its quarter reads 100), and
// `gpu_memory_used_bytes`. Values are Quantity strings in canonical form
// ("42500m", "2Gi" is never produced: DecimalSI, e.g. "1500k").
//
// Missing data: a selected pod without a figure is left out of the list, not
// given 0 (the HPA then treats it as missing: at target on a scale-down, 0 on
// a scale-up); a named pod without a figure is 404, as prometheus-adapter
// answers. Unknown metric, namespace-level or other object kinds: 404.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "cost/utilization.h"

namespace gpu_autoscaler::profiling {

inline constexpr std::string_view kCustomMetricsGroup = "custom.metrics.k8s.io";
inline constexpr std::string_view kCustomMetricsVersion = "v1beta2";
inline constexpr std::string_view kGpuUtilizationMetric = "gpu_utilization";
inline constexpr std::string_view kGpuMemoryUsedBytesMetric = "gpu_memory_used_bytes";

// The metric names served, in discovery order.
std::span<const std::string_view> CustomMetricNames();

struct CustomMetricsQuery {
  std::string_view path{};                   // decoded, without the query
  std::string_view label_selector{};         // decoded `labelSelector`
  std::string_view metric_label_selector{};  // decoded `metricLabelSelector`
};

struct CustomMetricsRequest {
  enum class Kind { kGroup, kResourceList, kPod, kPodsBySelector };
  Kind kind = Kind::kResourceList;
  std::string ns{};
  std::string pod{};  // kPod only
  std::string metric{};
  std::string label_selector{};
  std::string metric_label_selector{};
};

// NotFound for a path outside the API (or a metric this server does not
// have), InvalidArgument for a selector that does not parse.
Result<CustomMetricsRequest> ParseCustomMetricsRequest(const CustomMetricsQuery& query);

// A pod as the answer needs it; `labels` decide the selector.
struct MetricsPod {
  std::string ns{};
  std::string name{};
  std::map<std::string, std::string> labels{};
};

// The JSON body for a parsed request: APIGroup, APIResourceList or
// MetricValueList (timestamp `now_unix_seconds`, windowSeconds 0: dcgm gauges
// are instantaneous). `pods` are the candidate pods (any namespace; the
// request's namespace and selector filter them), `usage` the latest figures.
// NotFound for a named pod that does not exist or has no figure.
Result<std::string> BuildCustomMetricsAnswer(const CustomMetricsRequest& request,
                                             std::span<const MetricsPod> pods,
                                             std::span<const cost::PodGpuUsage> usage,
                                             int64_t now_unix_seconds);

// A metav1.Status body for an error: NotFound → 404 "NotFound",
// InvalidArgument → 400 "BadRequest", Unauthenticated → 401 "Unauthorized",
// PermissionDenied → 403 "Forbidden", Unavailable/DeadlineExceeded (the
// utilisation source) → 503 "ServiceUnavailable", others → 500 "InternalError".
struct CustomMetricsError {
  int http_status = 500;
  std::string body{};
};
CustomMetricsError CustomMetricsStatus(const Status& error);

// Canonical DecimalSI Quantity text for `milli` thousandths: 42500 → "42500m",
// 3000 → "3", 1500000000 → "1500k", 0 → "0".
std::string FormatDecimalQuantityMilli(int64_t milli);

}  // namespace gpu_autoscaler::profiling
