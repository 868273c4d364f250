#include "controllers/gpu_node_pool_spec.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "common/json_read.h"
#include "cost/duration.h"
#include "kube/quantity.h"

namespace gpu_autoscaler::controllers {
namespace {

using autoscale::CapacityTier;
using autoscale::TierIndex;
using nlohmann::json;

constexpr CapacityTier kTiers[] = {CapacityTier::kReserved, CapacityTier::kSpot,
                                   CapacityTier::kOnDemand};

// Typed reads that never throw (common/json_read.h): a field of the wrong
// type reads as absent (the API server's schema validation catches it before
// us in a cluster).
int Int(const json& o, const char* key, int fallback) {
  const json* f = json_read::Find(o, key);
  if (f == nullptr || !f->is_number_integer()) return fallback;
  const int64_t v = f->get<int64_t>();
  return static_cast<int>(std::clamp<int64_t>(v, -1'000'000, 1'000'000));
}
std::optional<double> Num(const json& o, const char* key) {
  const json* f = json_read::Find(o, key);
  if (f == nullptr || !f->is_number()) return std::nullopt;
  return f->get<double>();
}

// "30s", "5m", "1h30m" -> ms; "0s" is allowed (consolidate at once).
bool ParseDuration(const std::string& text, std::chrono::milliseconds* out) {
  if (text == "0" || text == "0s" || text == "0m" || text == "0h") {
    *out = std::chrono::milliseconds(0);
    return true;
  }
  auto seconds = cost::ParseDurationSeconds(text);
  if (!seconds.ok()) return false;
  *out = std::chrono::seconds(*seconds);
  return true;
}

// spec.predictive; defaults: step 5m, seasonality 24h, horizon the
// provisioning delay, headroom 0, method Auto, minHistory one season.
PredictiveSpec ParsePredictive(const json& block, std::chrono::milliseconds provisioning_delay) {
  PredictiveSpec out;
  auto& problems = out.problems;
  const json* enabled = json_read::Find(block, "enabled");
  out.enabled = enabled != nullptr && enabled->is_boolean() && enabled->get<bool>();
  autoscale::PredictiveOptions& o = out.options;
  auto seconds = [&](const char* key, int64_t fallback) -> int64_t {
    const std::string text = json_read::String(block, key);
    if (text.empty()) return fallback;
    std::chrono::milliseconds ms{};
    if (!ParseDuration(text, &ms)) {
      problems.push_back("spec.predictive." + std::string(key) + " \"" + text +
                         "\" is not a duration");
      return fallback;
    }
    return ms.count() / 1000;
  };
  o.step_seconds = seconds("step", 300);
  o.season_seconds = seconds("seasonality", 86400);
  const int64_t delay = std::max<int64_t>(provisioning_delay.count() / 1000, 0);
  o.horizon_seconds = seconds("horizon", delay);
  o.min_history_seconds = seconds("minHistory", o.season_seconds);
  if (o.step_seconds < 10 || o.step_seconds > 3600) {
    problems.push_back("spec.predictive.step must be between 10s and 1h");
    o.step_seconds = 300;
  }
  if (o.season_seconds % o.step_seconds != 0 || o.season_seconds < 2 * o.step_seconds ||
      o.season_seconds > autoscale::kHistoryRetentionSeconds) {
    problems.push_back(
        "spec.predictive.seasonality must be a multiple of step, at least two steps and at "
        "most 168h");
  } else if (static_cast<size_t>(o.season_seconds / o.step_seconds) * 2 >
             autoscale::kMaxHistoryPoints) {
    problems.push_back("spec.predictive.seasonality is more than " +
                       std::to_string(autoscale::kMaxHistoryPoints / 2) + " steps");
  }
  if (o.horizon_seconds > o.season_seconds)
    problems.push_back("spec.predictive.horizon is longer than the seasonality");
  const int64_t kept =
      static_cast<int64_t>(autoscale::MaxHistoryPoints(o.step_seconds, o.season_seconds)) *
      o.step_seconds;
  if (o.min_history_seconds > kept) {
    problems.push_back("spec.predictive.minHistory is longer than the " +
                       std::to_string(kept / 3600) + "h of history kept");
  }
  if (const std::string method = json_read::String(block, "method"); !method.empty())
    out.method = method;
  const HoltWintersOptions hw{.alpha = 0.5, .beta = 0.0, .gamma = 0.3};
  if (out.method == "HoltWinters") {
    o.method = autoscale::DemandForecastOptions{.method = autoscale::ForecastMethod::kHoltWinters,
                                                .holt_winters = hw};
  } else if (out.method == "SeasonalNaive") {
    o.method = autoscale::DemandForecastOptions{.method = autoscale::ForecastMethod::kSeasonalNaive,
                                                .holt_winters = hw};
  } else if (out.method == "RecentPeak") {
    o.method = autoscale::DemandForecastOptions{
        .method = autoscale::ForecastMethod::kRecentPeak, .holt_winters = hw, .window = 5};
  } else if (out.method != "Auto") {
    problems.push_back("spec.predictive.method \"" + out.method +
                       "\" is not Auto, HoltWinters, SeasonalNaive or RecentPeak");
  }
  // headroom: "2" (GPUs) or "20%" (of the forecast).
  if (const std::string text = json_read::String(block, "headroom"); !text.empty()) {
    const bool percent = text.back() == '%';
    const std::string number = percent ? text.substr(0, text.size() - 1) : text;
    double v = -1;
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), v);
    if (number.empty() || ec != std::errc() || end != number.data() + number.size() ||
        !std::isfinite(v) || v < 0 || v > (percent ? 1000.0 : 1e6)) {
      problems.push_back("spec.predictive.headroom \"" + text +
                         "\" is not a number of GPUs or a percentage");
    } else if (percent) {
      o.headroom_fraction = v / 100;
    } else {
      o.headroom_gpus = v;
    }
  }
  return out;
}

}  // namespace

ParsedNodePool ParseNodePool(const json& object, const std::string& default_secret_namespace) {
  ParsedNodePool out;
  auto& problems = out.problems;
  out.spec.name = json_read::String(json_read::Object(object, "metadata"), "name");
  const json* spec_field = json_read::Find(object, "spec");
  if (spec_field == nullptr || !spec_field->is_object()) {
    problems.push_back("spec is not an object");
    return out;
  }
  const json& spec = *spec_field;

  const json provider = json_read::Object(spec, "provider");
  out.provider.type = json_read::String(provider, "type");
  if (out.provider.type.empty()) {
    problems.push_back("spec.provider.type is required");
  } else if (std::find(kProviderTypes.begin(), kProviderTypes.end(), out.provider.type) ==
             kProviderTypes.end()) {
    problems.push_back("spec.provider.type \"" + out.provider.type +
                       "\" is not one of aws-asg, gcp-mig, azure-vmss, cluster-api, simulated");
  }
  out.provider.region = json_read::String(provider, "region");
  out.provider.zone = json_read::String(provider, "zone");
  out.provider.project = json_read::String(provider, "project");
  out.provider.subscription_id = json_read::String(provider, "subscriptionID");
  out.provider.resource_group = json_read::String(provider, "resourceGroup");
  if (std::string delay = json_read::String(provider, "provisioningDelay"); !delay.empty()) {
    if (!ParseDuration(delay, &out.provider.provisioning_delay))
      problems.push_back("spec.provider.provisioningDelay \"" + delay + "\" is not a duration");
  }
  if (const json* ref_field = json_read::Find(provider, "credentialsSecretRef");
      ref_field && ref_field->is_object()) {
    const json& ref = *ref_field;
    out.provider.secret_name = json_read::String(ref, "name");
    out.provider.secret_namespace = json_read::String(ref, "namespace");
    if (out.provider.secret_namespace.empty())
      out.provider.secret_namespace = default_secret_namespace;
    if (out.provider.secret_name.empty())
      problems.push_back("spec.provider.credentialsSecretRef.name is required");
  }
  for (const json& g : json_read::Array(json_read::Object(provider, "simulated"), "capacityErrors"))
    if (g.is_string()) out.provider.simulated_capacity_errors.push_back(g.get<std::string>());
  for (const json& g : json_read::Array(json_read::Object(provider, "simulated"), "launchFailures"))
    if (g.is_string()) out.provider.simulated_launch_failures.push_back(g.get<std::string>());
  const json pool_groups = json_read::Object(provider, "groups");

  const json types = json_read::Array(spec, "instanceTypes");
  if (types.empty()) problems.push_back("spec.instanceTypes is empty");
  for (size_t i = 0; i < types.size(); ++i) {
    const json& t = types[i];
    const std::string at = "spec.instanceTypes[" + std::to_string(i) + "]";
    autoscale::PoolInstanceType it;
    it.name = json_read::String(t, "name");
    it.gpu_model = json_read::String(t, "gpuModel");
    it.gpu_count = Int(t, "gpuCount", 0);
    it.max_pods = Int(t, "maxPods", 110);
    for (const char* field : {"cpu", "memory"}) {
      const std::string text = json_read::String(t, field);
      if (text.empty()) continue;
      const bool cpu = std::string_view(field) == "cpu";
      auto q = cpu ? kube::ParseQuantityMilli(text) : kube::ParseQuantity(text);
      if (!q.ok()) {
        problems.push_back(at + "." + field + " \"" + text + "\" is not a quantity");
        continue;
      }
      if (cpu) {
        it.cpu_milli = *q;
      } else {
        it.memory_mib = *q / (1024 * 1024);
      }
    }
    const json price = json_read::Object(t, "price");
    for (CapacityTier tier : kTiers) {
      const std::string key(autoscale::TierKey(tier));
      it.price[TierIndex(tier)] = Num(price, key.c_str());
      if (it.price[TierIndex(tier)] && !(*it.price[TierIndex(tier)] >= 0)) {
        problems.push_back(at + ".price." + key + " is negative");
      }
    }
    // Groups: the instance type's own, else the pool's.
    std::array<std::string, autoscale::kTierCount> groups{};
    const json own = json_read::Object(t, "groups");
    for (CapacityTier tier : kTiers) {
      const std::string key(autoscale::TierKey(tier));
      groups[TierIndex(tier)] = json_read::String(own, key.c_str());
      if (groups[TierIndex(tier)].empty())
        groups[TierIndex(tier)] = json_read::String(pool_groups, key.c_str());
    }
    out.spec.instance_types.push_back(std::move(it));
    out.provider.groups.push_back(std::move(groups));
  }

  out.spec.min_nodes = Int(spec, "minNodes", 0);
  out.weight = Int(spec, "weight", 0);
  if (json_read::Find(spec, "weight") != nullptr && (out.weight < 1 || out.weight > 100))
    problems.push_back("spec.weight must be between 1 and 100");
  out.spec.max_nodes = Int(spec, "maxNodes", 10);
  const json tiers = json_read::Object(spec, "tiers");
  for (CapacityTier tier : kTiers) {
    const int t = TierIndex(tier);
    const std::string key(autoscale::TierKey(tier));
    bool any_group = false;
    for (const auto& g : out.provider.groups)
      any_group = any_group || !g[t].empty();
    autoscale::PoolTier& pt = out.spec.tiers[t];
    pt.enabled = any_group;
    const json cfg = json_read::Object(tiers, key.c_str());
    pt.weight = Num(cfg, "weight").value_or(1.0);
    pt.max_nodes = Int(cfg, "maxNodes", autoscale::kUnlimitedNodes);
    if (pt.max_nodes < autoscale::kUnlimitedNodes)
      problems.push_back("spec.tiers." + key + ".maxNodes is negative");
  }
  // One group per offering: two instance types in one group cannot be told apart.
  std::map<std::string, std::string> owner;
  for (size_t i = 0; i < out.provider.groups.size(); ++i) {
    for (CapacityTier tier : kTiers) {
      const std::string& g = out.provider.groups[i][TierIndex(tier)];
      if (g.empty()) continue;
      const std::string who =
          out.spec.instance_types[i].name + "/" + std::string(autoscale::TierKey(tier));
      auto [it, fresh] = owner.emplace(g, who);
      if (!fresh) {
        problems.push_back("group \"" + g + "\" serves both " + it->second + " and " + who +
                           "; give each instance type its own groups");
      }
    }
  }
  out.spec.cost_per_hour_ceiling = Num(spec, "costPerHourCeiling");

  const json down = json_read::Object(spec, "scaleDown");
  const std::string policy = json_read::String(down, "policy");
  if (policy == "WhenEmpty") {
    out.spec.policy = autoscale::ConsolidationPolicy::kWhenEmpty;
  } else if (!policy.empty() && policy != "WhenUnderutilized") {
    problems.push_back("spec.scaleDown.policy \"" + policy +
                       "\" is not WhenEmpty or WhenUnderutilized");
  }
  if (const std::string after = json_read::String(down, "consolidateAfter"); after == "Never") {
    out.spec.consolidate_after.reset();
  } else if (!after.empty()) {
    std::chrono::milliseconds ms{};
    if (ParseDuration(after, &ms)) {
      out.spec.consolidate_after = ms;
    } else {
      problems.push_back("spec.scaleDown.consolidateAfter \"" + after +
                         "\" is not a duration or Never");
    }
  }
  out.spec.utilization_threshold = Num(down, "utilizationThreshold").value_or(0.5);

  const json disruption = json_read::Object(spec, "disruption");
  if (const json* budgets_field = json_read::Find(disruption, "budgets");
      budgets_field != nullptr && budgets_field->is_array()) {
    const json& budgets = *budgets_field;
    out.spec.budgets.clear();
    for (size_t i = 0; i < budgets.size(); ++i) {
      const std::string at = "spec.disruption.budgets[" + std::to_string(i) + "]";
      auto b = autoscale::ParseBudgetNodes(json_read::String(budgets[i], "nodes"));
      if (!b.ok()) {
        problems.push_back(at + ": " + b.error().message());
        continue;
      }
      b->schedule = json_read::String(budgets[i], "schedule");
      if (const std::string d = json_read::String(budgets[i], "duration"); !d.empty()) {
        std::chrono::milliseconds ms{};
        if (!ParseDuration(d, &ms) || ms.count() == 0) {
          problems.push_back(at + ".duration \"" + d + "\" is not a duration");
        } else {
          b->duration_seconds = ms.count() / 1000;
        }
      }
      out.spec.budgets.push_back(*b);
    }
  }
  for (std::string& p : autoscale::ValidateNodePool(out.spec))
    problems.push_back(std::move(p));
  if (const json* block = json_read::Find(spec, "predictive");
      block != nullptr && block->is_object())
    out.predictive = ParsePredictive(*block, out.provider.provisioning_delay);
  return out;
}

}  // namespace gpu_autoscaler::controllers
