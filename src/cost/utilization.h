// File: src/cost/utilization.h
//
// Where per-pod GPU utilisation comes from, for usage cost and idle-GPU
// (waste) detection. A `UtilizationSource` answers the latest figure per pod;
// `PrometheusDcgmSource` reads NVIDIA dcgm-exporter series through the
// Prometheus HTTP API.
//
//   PrometheusDcgmSource source({.url = "http://prometheus.monitoring:9090"});
//   Result<std::vector<PodGpuUsage>> usage = source.Fetch();   // ~once a second
//   if (!usage.ok()) { /* Unavailable / DeadlineExceeded / InvalidArgument, names the URL */ }
//   for (const PodGpuUsage& u : *usage)
//     meter.SetUtilization(index_of(u.ns, u.pod), u.ShareUtilization());
//
// Metrics (dcgm-exporter defaults): `DCGM_FI_DEV_GPU_UTIL` (gauge, percent
// 0..100) and `DCGM_FI_DEV_FB_USED` (gauge, MiB), one series per GPU (or MIG
// instance) with the GPU's labels `gpu`, `UUID`, `Hostname`, `modelName`
// (`GPU_I_ID` for MIG) and, when the GPU is allocated, the pod's `pod`,
// `namespace`, `container` (and `vgpu` for a shared replica). Where Prometheus
// renamed them because the scrape target has its own (`exported_pod`,
// `exported_namespace`, `exported_container`), the `exported_` labels win.
//
// Shared GPUs. With time-slicing or MPS, dcgm-exporter (virtual-GPU mode)
// copies a GPU's figures to every container sharing it instead of splitting
// them, so summing them would count the GPU several times. The decoder
// divides each GPU's utilisation and memory EQUALLY among the distinct
// (namespace, pod, container, vgpu) series that report the same GPU (same
// `UUID` and `GPU_I_ID` on the same `Hostname`). Equal division is what
// time-slicing gives busy clients (round-robin slices) and what MPS gives
// clients capped at 1/replicas; NVML has no per-process split that
// dcgm-exporter exports, so nothing better is measurable from these series.
// Without virtual-GPU mode only one pod carries the GPU's labels and gets the
// whole GPU: the other pods then have no figure (not 0).
//
// Per pod: `gpu_utilization` is the mean over its GPUs of its divided share
// (two pods time-slicing a GPU that is 80 % busy get 0.4 each; a pod on two
// exclusive GPUs at 60 % and 20 % gets 0.4); `gpu_memory_bytes` is the sum
// over its GPUs of its divided share; `gpus` is how many GPUs' worth it was
// seen holding (0.5 each in the first example, 2 in the second).
//
// IMPORTANT for metering: `Meter` multiplies a pod's GPU cost, which already
// covers only the pod's share of a GPU, by the utilisation it is given. So it
// wants utilisation RELATIVE TO THE POD'S SHARE: `ShareUtilization()`
// (= busy GPU-equivalents / gpus: 0.8 for each pod in the first example), not
// `gpu_utilization`, which would divide a shared GPU twice.
//
// Thread-safety: the free functions are pure. PrometheusDcgmSource::Fetch may
// be called from several threads (each call uses its own curl handle and
// connection; once a second that costs nothing worth pooling).
#pragma once

#include <chrono>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gpu_autoscaler::cost {

inline constexpr std::string_view kDcgmGpuUtilMetric = "DCGM_FI_DEV_GPU_UTIL";  // percent
inline constexpr std::string_view kDcgmFbUsedMetric = "DCGM_FI_DEV_FB_USED";    // MiB

struct PodGpuUsage {
  std::string ns{};
  std::string pod{};
  std::string container{};       // AttributeDcgmSamplesByContainer only; "" per pod
  double gpu_utilization = -1;   // 0..1, this pod's divided share, mean over its GPUs; -1 = none
  double gpu_memory_bytes = -1;  // this pod's divided share, summed over its GPUs; -1 = none
  double gpus = 0;               // GPUs' worth seen (sum of 1/sharers); 0 with no utilisation
  int devices = 0;               // distinct GPUs (or MIG instances) with a utilisation figure

  // Utilisation relative to the pod's own share of its GPUs (0..1, -1 when
  // none): what Meter::SetUtilization expects.
  double ShareUtilization() const;
};

class UtilizationSource {
 public:
  virtual ~UtilizationSource() = default;
  virtual std::string_view name() const = 0;  // "prometheus-dcgm", "node-agent"
  // The latest figure per pod, sorted by (namespace, pod). Errors are values.
  virtual Result<std::vector<PodGpuUsage>> Fetch() = 0;
};

// One element of a Prometheus instant-vector result.
struct PromSample {
  std::map<std::string, std::string> labels{};  // includes __name__ when the query kept it
  double timestamp = 0;                         // unix seconds
  double value = 0;                             // may be NaN or +-Inf
};

// Decodes a Prometheus `/api/v1/query` response body. `{"status":"error"}`
// becomes an error carrying errorType and error; anything but a well-formed
// success with resultType "vector" is InvalidArgument naming what is wrong.
// Never throws.
Result<std::vector<PromSample>> DecodePrometheusVector(std::string_view body);

// Attributes dcgm-exporter samples to pods as described above. `samples` may
// mix both metrics (told apart by __name__); other metrics, series without a
// pod, and non-finite or negative values are ignored.
std::vector<PodGpuUsage> AttributeDcgmSamples(std::span<const PromSample> samples);
// The same division, per (namespace, pod, container): what the profiling
// controller feeds its per-container histograms. Sorted by that triple.
std::vector<PodGpuUsage> AttributeDcgmSamplesByContainer(std::span<const PromSample> samples);

struct PrometheusDcgmOptions {
  std::string url{};                         // Prometheus base URL, e.g. "http://prometheus:9090"
  std::string selector{};                    // extra label matchers, e.g. `job="dcgm-exporter"`
  std::chrono::milliseconds timeout{5'000};  // whole request
  std::chrono::milliseconds connect_timeout{2'000};  // TCP (and TLS) connect
  size_t max_body_bytes = 64u << 20;                 // larger answers are an error
};

// One instant query (`GET /api/v1/query?query=...`) against options.url,
// decoded; the errors are Fetch's (below). Options other than the URL,
// timeouts and size limit are not used.
Result<std::vector<PromSample>> QueryPrometheusVector(const PrometheusDcgmOptions& options,
                                                      std::string_view promql);

// Queries `{__name__=~"DCGM_FI_DEV_GPU_UTIL|DCGM_FI_DEV_FB_USED"<,selector>}`
// (one instant query, so both metrics come from the same evaluation time).
// Errors name the URL: Unavailable (connection refused, HTTP 5xx),
// DeadlineExceeded (timeout), InvalidArgument (a body that does not decode,
// or a Prometheus error answer).
class PrometheusDcgmSource : public UtilizationSource {
 public:
  explicit PrometheusDcgmSource(PrometheusDcgmOptions options);
  std::string_view name() const override { return "prometheus-dcgm"; }
  Result<std::vector<PodGpuUsage>> Fetch() override;
  // The PromQL expression Fetch sends.
  std::string Query() const;

 private:
  PrometheusDcgmOptions options_;
};

}  // namespace gpu_autoscaler::cost
