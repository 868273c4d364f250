#include "controllers/gpu_node_pool_spec.h"

#include <algorithm>
#include <map>
#include <set>

#include "cost/duration.h"
#include "kube/quantity.h"

namespace gpu_autoscaler::controllers {
namespace {

using autoscale::CapacityTier;
using autoscale::TierIndex;
using nlohmann::json;

constexpr CapacityTier kTiers[] = {CapacityTier::kReserved, CapacityTier::kSpot,
                                   CapacityTier::kOnDemand};

std::string Str(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
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

}  // namespace

ParsedNodePool ParseNodePool(const json& object, const std::string& default_secret_namespace) {
  ParsedNodePool out;
  auto& problems = out.problems;
  out.spec.name = object.contains("metadata") ? Str(object["metadata"], "name") : "";
  const json spec = object.value("spec", json::object());
  if (!spec.is_object()) {
    problems.push_back("spec is not an object");
    return out;
  }

  const json provider = spec.value("provider", json::object());
  out.provider.type = Str(provider, "type");
  if (out.provider.type.empty()) {
    problems.push_back("spec.provider.type is required");
  } else if (std::find(kProviderTypes.begin(), kProviderTypes.end(), out.provider.type) ==
             kProviderTypes.end()) {
    problems.push_back("spec.provider.type \"" + out.provider.type +
                       "\" is not one of aws-asg, gcp-mig, azure-vmss, cluster-api, simulated");
  }
  out.provider.region = Str(provider, "region");
  out.provider.zone = Str(provider, "zone");
  out.provider.project = Str(provider, "project");
  out.provider.subscription_id = Str(provider, "subscriptionID");
  out.provider.resource_group = Str(provider, "resourceGroup");
  if (std::string delay = Str(provider, "provisioningDelay"); !delay.empty()) {
    if (!ParseDuration(delay, &out.provider.provisioning_delay))
      problems.push_back("spec.provider.provisioningDelay \"" + delay + "\" is not a duration");
  }
  if (const json ref = provider.value("credentialsSecretRef", json()); ref.is_object()) {
    out.provider.secret_name = Str(ref, "name");
    out.provider.secret_namespace = Str(ref, "namespace");
    if (out.provider.secret_namespace.empty())
      out.provider.secret_namespace = default_secret_namespace;
    if (out.provider.secret_name.empty())
      problems.push_back("spec.provider.credentialsSecretRef.name is required");
  }
  const json pool_groups = provider.value("groups", json::object());

  const json types = spec.value("instanceTypes", json::array());
  if (!types.is_array() || types.empty()) problems.push_back("spec.instanceTypes is empty");
  for (size_t i = 0; types.is_array() && i < types.size(); ++i) {
    const json& t = types[i];
    const std::string at = "spec.instanceTypes[" + std::to_string(i) + "]";
    autoscale::PoolInstanceType it;
    it.name = Str(t, "name");
    it.gpu_model = Str(t, "gpuModel");
    it.gpu_count = t.value("gpuCount", 0);
    it.max_pods = t.value("maxPods", 110);
    for (const char* field : {"cpu", "memory"}) {
      const std::string text = Str(t, field);
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
    const json price = t.value("price", json::object());
    for (CapacityTier tier : kTiers) {
      const std::string key(autoscale::TierKey(tier));
      if (price.contains(key) && price[key].is_number())
        it.price[TierIndex(tier)] = price[key].get<double>();
    }
    // Groups: the instance type's own, else the pool's.
    std::array<std::string, autoscale::kTierCount> groups{};
    const json own = t.value("groups", json::object());
    for (CapacityTier tier : kTiers) {
      const std::string key(autoscale::TierKey(tier));
      groups[TierIndex(tier)] = Str(own, key.c_str());
      if (groups[TierIndex(tier)].empty()) groups[TierIndex(tier)] = Str(pool_groups, key.c_str());
    }
    out.spec.instance_types.push_back(std::move(it));
    out.provider.groups.push_back(std::move(groups));
  }

  out.spec.min_nodes = spec.value("minNodes", 0);
  out.spec.max_nodes = spec.value("maxNodes", 10);
  const json tiers = spec.value("tiers", json::object());
  for (CapacityTier tier : kTiers) {
    const int t = TierIndex(tier);
    const std::string key(autoscale::TierKey(tier));
    bool any_group = false;
    for (const auto& g : out.provider.groups)
      any_group = any_group || !g[t].empty();
    autoscale::PoolTier& pt = out.spec.tiers[t];
    pt.enabled = any_group;
    if (const json cfg = tiers.value(key, json()); cfg.is_object()) {
      pt.weight = cfg.value("weight", 1.0);
      pt.max_nodes = cfg.value("maxNodes", autoscale::kUnlimitedNodes);
    }
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
  if (spec.contains("costPerHourCeiling") && spec["costPerHourCeiling"].is_number())
    out.spec.cost_per_hour_ceiling = spec["costPerHourCeiling"].get<double>();

  const json down = spec.value("scaleDown", json::object());
  const std::string policy = Str(down, "policy");
  if (policy == "WhenEmpty") {
    out.spec.policy = autoscale::ConsolidationPolicy::kWhenEmpty;
  } else if (!policy.empty() && policy != "WhenUnderutilized") {
    problems.push_back("spec.scaleDown.policy \"" + policy +
                       "\" is not WhenEmpty or WhenUnderutilized");
  }
  if (const std::string after = Str(down, "consolidateAfter"); after == "Never") {
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
  out.spec.utilization_threshold = down.value("utilizationThreshold", 0.5);

  const json disruption = spec.value("disruption", json::object());
  if (const json budgets = disruption.value("budgets", json()); budgets.is_array()) {
    out.spec.budgets.clear();
    for (size_t i = 0; i < budgets.size(); ++i) {
      const std::string at = "spec.disruption.budgets[" + std::to_string(i) + "]";
      auto b = autoscale::ParseBudgetNodes(Str(budgets[i], "nodes"));
      if (!b.ok()) {
        problems.push_back(at + ": " + b.error().message());
        continue;
      }
      b->schedule = Str(budgets[i], "schedule");
      if (const std::string d = Str(budgets[i], "duration"); !d.empty()) {
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
  return out;
}

}  // namespace gpu_autoscaler::controllers
