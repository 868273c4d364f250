#include "cost/utilization.h"

#include <curl/curl.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <tuple>
#include <utility>

namespace gpu_autoscaler::cost {

double PodGpuUsage::ShareUtilization() const {
  if (gpu_utilization < 0 || devices <= 0 || gpus <= 0) return -1;
  return std::clamp(gpu_utilization * devices / gpus, 0.0, 1.0);
}

// ---------------------------------------------------------------------------
// Decoding

namespace {

using json = nlohmann::json;

Status Bad(std::string what) {
  return InvalidArgumentError("prometheus response: " + std::move(what));
}

Result<double> ParseSampleValue(const json& v) {
  if (!v.is_string()) return Bad("sample value is not a string");
  const std::string& s = v.get_ref<const std::string&>();
  if (s.empty()) return Bad("empty sample value");
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return Bad("sample value \"" + s + "\" is not a number");
  return d;
}

Result<std::vector<PromSample>> DecodeUnchecked(std::string_view body) {
  json doc = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Bad("not valid JSON");
  if (!doc.is_object()) return Bad("not a JSON object");
  auto status = doc.find("status");
  if (status == doc.end() || !status->is_string()) return Bad("no \"status\"");
  if (*status != "success") {
    std::string type = "unknown";
    std::string message;
    if (auto t = doc.find("errorType"); t != doc.end() && t->is_string()) type = *t;
    if (auto e = doc.find("error"); e != doc.end() && e->is_string()) message = *e;
    return InvalidArgumentError("prometheus error (" + type + "): " + message);
  }
  auto data = doc.find("data");
  if (data == doc.end() || !data->is_object()) return Bad("no \"data\" object");
  auto type = data->find("resultType");
  if (type == data->end() || !type->is_string()) return Bad("no \"data.resultType\"");
  if (*type != "vector") {
    return Bad("resultType is \"" + type->get<std::string>() + "\", want \"vector\"");
  }
  auto result = data->find("result");
  if (result == data->end() || !result->is_array()) return Bad("no \"data.result\" array");

  std::vector<PromSample> out;
  out.reserve(result->size());
  for (size_t i = 0; i < result->size(); ++i) {
    const json& item = (*result)[i];
    const std::string where = "data.result[" + std::to_string(i) + "]";
    if (!item.is_object()) return Bad(where + " is not an object");
    PromSample s;
    auto metric = item.find("metric");
    if (metric != item.end()) {
      if (!metric->is_object()) return Bad(where + ".metric is not an object");
      for (auto it = metric->begin(); it != metric->end(); ++it) {
        if (!it.value().is_string()) return Bad(where + ".metric." + it.key() + " is not a string");
        s.labels.emplace(it.key(), it.value().get<std::string>());
      }
    }
    auto value = item.find("value");
    if (value == item.end() || !value->is_array() || value->size() != 2) {
      return Bad(where + ".value is not a [time, \"value\"] pair");
    }
    if (!(*value)[0].is_number()) return Bad(where + ".value[0] is not a number");
    s.timestamp = (*value)[0].get<double>();
    auto v = ParseSampleValue((*value)[1]);
    if (!v.ok()) return Bad(where + ".value[1]: " + v.error().message());
    s.value = *v;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

Result<std::vector<PromSample>> DecodePrometheusVector(std::string_view body) {
  try {
    return DecodeUnchecked(body);
  } catch (const std::exception& e) {  // nlohmann type errors; not expected, never escapes
    return Bad(e.what());
  }
}

// ---------------------------------------------------------------------------
// Attribution

namespace {

std::string_view Label(const PromSample& s, std::string_view name) {
  auto it = s.labels.find(std::string(name));
  return it == s.labels.end() ? std::string_view() : std::string_view(it->second);
}

// dcgm-exporter's pod labels, or Prometheus's renamed copies of them.
std::string_view PodLabel(const PromSample& s, std::string_view name) {
  std::string_view exported = Label(s, "exported_" + std::string(name));
  return exported.empty() ? Label(s, name) : exported;
}

using PodKey = std::tuple<std::string, std::string, std::string>;  // namespace, pod, container

struct Consumer {
  PodKey pod;
  double value = 0;
};

// metric -> device -> consumer key -> consumer
using DeviceMap = std::map<std::string, std::map<std::string, Consumer>>;

struct PodAccum {
  // device -> (summed divided value, summed share) per metric
  std::map<std::string, std::pair<double, double>> util;
  std::map<std::string, std::pair<double, double>> mem;
};

std::vector<PodGpuUsage> Attribute(std::span<const PromSample> samples, bool by_container) {
  DeviceMap util_devices;
  DeviceMap mem_devices;
  for (const PromSample& s : samples) {
    const std::string_view metric = Label(s, "__name__");
    DeviceMap* devices = nullptr;
    double scale = 0;
    if (metric == kDcgmGpuUtilMetric) {
      devices = &util_devices;
      scale = 0.01;  // percent -> 0..1
    } else if (metric == kDcgmFbUsedMetric) {
      devices = &mem_devices;
      scale = 1024.0 * 1024.0;  // MiB -> bytes
    } else {
      continue;
    }
    if (!std::isfinite(s.value) || s.value < 0) continue;
    const std::string_view pod = PodLabel(s, "pod");
    if (pod.empty()) continue;  // GPU not allocated to a pod
    const std::string_view ns = PodLabel(s, "namespace");
    std::string_view host = Label(s, "Hostname");
    if (host.empty()) host = Label(s, "instance");
    std::string_view gpu = Label(s, "UUID");
    if (gpu.empty()) gpu = Label(s, "gpu");
    std::string device =
        std::string(host) + '\x1f' + std::string(gpu) + '\x1f' + std::string(Label(s, "GPU_I_ID"));
    std::string consumer = std::string(ns) + '\x1f' + std::string(pod) + '\x1f' +
                           std::string(PodLabel(s, "container")) + '\x1f' +
                           std::string(Label(s, "vgpu"));
    double value = s.value * scale;
    if (metric == kDcgmGpuUtilMetric) value = std::min(value, 1.0);
    (*devices)[std::move(device)][std::move(consumer)] =
        Consumer{{std::string(ns), std::string(pod),
                  by_container ? std::string(PodLabel(s, "container")) : std::string()},
                 value};
  }

  std::map<PodKey, PodAccum> pods;
  auto divide = [&pods](const DeviceMap& devices, bool is_util) {
    for (const auto& [device, consumers] : devices) {
      const double n = static_cast<double>(consumers.size());
      for (const auto& [key, c] : consumers) {
        PodAccum& acc = pods[c.pod];
        auto& slot = (is_util ? acc.util : acc.mem)[device];
        slot.first += c.value / n;
        slot.second += 1.0 / n;
      }
    }
  };
  divide(util_devices, true);
  divide(mem_devices, false);

  std::vector<PodGpuUsage> out;
  out.reserve(pods.size());
  for (const auto& [key, acc] : pods) {
    PodGpuUsage u;
    u.ns = std::get<0>(key);
    u.pod = std::get<1>(key);
    u.container = std::get<2>(key);
    if (!acc.util.empty()) {
      double sum = 0;
      for (const auto& [device, v] : acc.util) {
        sum += v.first;
        u.gpus += v.second;
      }
      u.devices = static_cast<int>(acc.util.size());
      u.gpu_utilization = sum / u.devices;
    }
    if (!acc.mem.empty()) {
      u.gpu_memory_bytes = 0;
      for (const auto& [device, v] : acc.mem)
        u.gpu_memory_bytes += v.first;
    }
    out.push_back(std::move(u));
  }
  return out;  // std::map order: sorted by (namespace, pod, container)
}

}  // namespace

std::vector<PodGpuUsage> AttributeDcgmSamples(std::span<const PromSample> samples) {
  return Attribute(samples, /*by_container=*/false);
}

std::vector<PodGpuUsage> AttributeDcgmSamplesByContainer(std::span<const PromSample> samples) {
  return Attribute(samples, /*by_container=*/true);
}

// ---------------------------------------------------------------------------
// Prometheus over HTTP

namespace {

void CurlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;

struct BodySink {
  std::string body;
  size_t limit = 0;
  bool overflow = false;
};

size_t CollectBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* sink = static_cast<BodySink*>(user);
  const size_t n = size * nmemb;
  if (sink->body.size() + n > sink->limit) {
    sink->overflow = true;
    return 0;  // aborts the transfer
  }
  sink->body.append(data, n);
  return n;
}

std::string TrimSlash(std::string url) {
  while (!url.empty() && url.back() == '/')
    url.pop_back();
  return url;
}

}  // namespace

PrometheusDcgmSource::PrometheusDcgmSource(PrometheusDcgmOptions options)
    : options_(std::move(options)) {
  options_.url = TrimSlash(std::move(options_.url));
}

std::string PrometheusDcgmSource::Query() const {
  std::string q = "{__name__=~\"" + std::string(kDcgmGpuUtilMetric) + "|" +
                  std::string(kDcgmFbUsedMetric) + "\"";
  if (!options_.selector.empty()) q += "," + options_.selector;
  return q + "}";
}

Result<std::vector<PodGpuUsage>> PrometheusDcgmSource::Fetch() {
  auto samples = QueryPrometheusVector(options_, Query());
  if (!samples.ok()) return samples.error();
  return AttributeDcgmSamples(*samples);
}

Result<std::vector<PromSample>> QueryPrometheusVector(const PrometheusDcgmOptions& options_in,
                                                      std::string_view query) {
  PrometheusDcgmOptions options = options_in;
  options.url = TrimSlash(std::move(options.url));
  const std::string endpoint = options.url + "/api/v1/query";
  const std::string where = "prometheus query " + endpoint;
  CurlGlobalInit();
  CurlPtr curl(curl_easy_init());
  if (!curl) return InternalError(where + ": curl_easy_init failed");
  CURL* c = curl.get();
  char* escaped = curl_easy_escape(c, query.data(), static_cast<int>(query.size()));
  if (escaped == nullptr) return InternalError(where + ": cannot escape the query");
  const std::string url = endpoint + "?query=" + escaped;
  curl_free(escaped);

  BodySink sink;
  sink.limit = options.max_body_bytes;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // gzip when offered
  curl_easy_setopt(c, CURLOPT_USERAGENT, "gpu-autoscaler-cost");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, CollectBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  const CURLcode rc = curl_easy_perform(c);
  if (sink.overflow) {
    return ResourceExhaustedError(where + ": response larger than " +
                                  std::to_string(options.max_body_bytes) + " bytes");
  }
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return DeadlineExceededError(where + ": no answer within " +
                                 std::to_string(options.timeout.count()) + " ms");
  }
  if (rc != CURLE_OK) return UnavailableError(where + ": " + curl_easy_strerror(rc));
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);

  auto samples = DecodePrometheusVector(sink.body);
  if (!samples.ok()) {
    // A 5xx without a Prometheus error body is the server being unavailable.
    if (code >= 500) {
      return UnavailableError(where + ": HTTP " + std::to_string(code) + ": " +
                              samples.error().message());
    }
    return Status(samples.error().code(),
                  where + ": HTTP " + std::to_string(code) + ": " + samples.error().message());
  }
  if (code != 200) {
    return UnavailableError(where + ": HTTP " + std::to_string(code));
  }
  return samples;
}

}  // namespace gpu_autoscaler::cost
