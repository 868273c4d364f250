#include "node-agent/agent_config.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>

#include <yaml-cpp/yaml.h>

#include "common/flag_duration.h"
#include "common/strict_yaml.h"

namespace gpu_autoscaler::node_agent {
namespace {

// The strict reader, with the agent's durations and percentages.
class Reader : public StrictYamlReader {
 public:
  using StrictYamlReader::StrictYamlReader;

  Status Duration(const YAML::Node& node, const std::string& path,
                  std::chrono::milliseconds* out) const {
    if (!node.IsDefined()) return Status::Ok();
    const std::string text = node.IsScalar() ? node.Scalar() : "";
    if (!text.empty() && text[0] == '-') return Error(path, "must not be negative");
    if (!ParseFlagDuration(text, out))
      return Error(path, "\"" + text + "\" is not a positive duration such as 500ms, 10s or 5m");
    return Status::Ok();
  }

  Status Percent(const YAML::Node& node, const std::string& path, double* out) const {
    if (!node.IsDefined()) return Status::Ok();
    const std::string text = node.IsScalar() ? node.Scalar() : "";
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(v) || v < 0 || v > 100)
      return Error(path, "expected a percentage from 0 to 100");
    *out = v;
    return Status::Ok();
  }
};

Status ParseTrigger(const YAML::Node& node, const std::string& path, const Reader& r,
                    PressureTrigger* t) {
  if (!node.IsDefined() || node.IsNull()) return Status::Ok();
  GPU_RETURN_IF_ERROR(
      r.Known(node, path, {"enabled", "line", "average", "threshold", "disarmBelow", "window"}));
  GPU_RETURN_IF_ERROR(r.Bool(node["enabled"], path + ".enabled", &t->enabled));
  if (const YAML::Node line = node["line"]; line.IsDefined()) {
    const std::string v = line.IsScalar() ? line.Scalar() : "";
    if (v == "some") {
      t->line = PsiLineKind::kSome;
    } else if (v == "full") {
      t->line = PsiLineKind::kFull;
    } else {
      return r.Error(path + ".line", "expected some or full");
    }
  }
  if (const YAML::Node avg = node["average"]; avg.IsDefined()) {
    const std::string v = avg.IsScalar() ? avg.Scalar() : "";
    bool found = false;
    for (PsiAverage a :
         {PsiAverage::kAvg10, PsiAverage::kAvg60, PsiAverage::kAvg300, PsiAverage::kTotal}) {
      if (v == PsiAverageName(a)) {
        t->average = a;
        found = true;
      }
    }
    if (!found) return r.Error(path + ".average", "expected avg10, avg60, avg300 or total");
  }
  GPU_RETURN_IF_ERROR(r.Percent(node["threshold"], path + ".threshold", &t->threshold));
  GPU_RETURN_IF_ERROR(r.Percent(node["disarmBelow"], path + ".disarmBelow", &t->disarm_below));
  GPU_RETURN_IF_ERROR(r.Duration(node["window"], path + ".window", &t->window));
  if (t->threshold <= 0) return r.Error(path + ".threshold", "must be above 0");
  if (t->disarm_below > t->threshold) {
    char threshold[32];
    std::snprintf(threshold, sizeof threshold, "%g", t->threshold);
    return r.Error(path + ".disarmBelow",
                   "must not be above threshold (" + std::string(threshold) + ")");
  }
  return Status::Ok();
}

// The QoS pools add their fields here.
Status ParseQosSection(const YAML::Node& node, const Reader& r, QosConfig* /*qos*/) {
  if (!node.IsDefined() || node.IsNull()) return Status::Ok();
  return r.Known(node, "qos", {});
}

Result<AgentConfig> Parse(const YAML::Node& root, const Reader& r) {
  AgentConfig cfg;
  if (!root.IsDefined() || root.IsNull()) return cfg;
  GPU_RETURN_IF_ERROR(r.Known(root, "", {"apiVersion", "kind", "pressureEviction", "qos"}));
  if (const YAML::Node kind = root["kind"];
      kind.IsDefined() && (!kind.IsScalar() || kind.Scalar() != "NodeAgentConfig")) {
    return r.Error("kind", "must be NodeAgentConfig");
  }
  if (const YAML::Node pe = root["pressureEviction"]; pe.IsDefined() && !pe.IsNull()) {
    PressureEvictionConfig& c = cfg.pressure_eviction;
    GPU_RETURN_IF_ERROR(r.Known(
        pe, "pressureEviction",
        {"enabled", "interval", "maxEvictions", "rateWindow", "coolDown", "cpu", "memory", "io"}));
    GPU_RETURN_IF_ERROR(r.Bool(pe["enabled"], "pressureEviction.enabled", &c.enabled));
    GPU_RETURN_IF_ERROR(r.Duration(pe["interval"], "pressureEviction.interval", &c.interval));
    if (c.interval < std::chrono::milliseconds(100))
      return r.Error("pressureEviction.interval", "must be at least 100ms");
    GPU_RETURN_IF_ERROR(
        r.Count(pe["maxEvictions"], "pressureEviction.maxEvictions", 0, 1000, &c.max_evictions));
    GPU_RETURN_IF_ERROR(
        r.Duration(pe["rateWindow"], "pressureEviction.rateWindow", &c.rate_window));
    GPU_RETURN_IF_ERROR(r.Duration(pe["coolDown"], "pressureEviction.coolDown", &c.cool_down));
    for (PressureResource res : kPressureResources) {
      const std::string name(PressureResourceName(res));
      GPU_RETURN_IF_ERROR(ParseTrigger(pe[name], "pressureEviction." + name, r,
                                       &c.triggers[static_cast<size_t>(res)]));
    }
  }
  GPU_RETURN_IF_ERROR(ParseQosSection(root["qos"], r, &cfg.qos));
  return cfg;
}

}  // namespace

std::string_view PsiLineKindName(PsiLineKind k) {
  return k == PsiLineKind::kFull ? "full" : "some";
}

std::string_view PsiAverageName(PsiAverage a) {
  switch (a) {
    case PsiAverage::kAvg10:
      return "avg10";
    case PsiAverage::kAvg60:
      return "avg60";
    case PsiAverage::kAvg300:
      return "avg300";
    case PsiAverage::kTotal:
      return "total";
  }
  return "avg10";
}

Result<AgentConfig> ParseAgentConfig(std::string_view yaml, std::string_view source) {
  const Reader reader(source);
  try {
    const YAML::Node root = YAML::Load(std::string(yaml));
    return Parse(root, reader);
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(std::string(source) + ": not valid YAML: " + e.what());
  }
}

}  // namespace gpu_autoscaler::node_agent
