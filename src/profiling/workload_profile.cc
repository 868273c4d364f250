#include "profiling/workload_profile.h"

#include <cmath>
#include <exception>
#include <limits>
#include <type_traits>

#include "common/json_read.h"

namespace gpu_autoscaler::profiling {
namespace {

using nlohmann::json;

constexpr Resource kAllResources[] = {Resource::kCpu, Resource::kMemory, Resource::kGpuMemory,
                                      Resource::kGpuUtilization};

std::string SeenKey(const std::string& pod, const std::string& container, Resource r) {
  return pod + "/" + container + "/" + std::string(ResourceName(r));
}

json Layout(const ExponentialBuckets& b) {
  return json::array({b.first_bucket_size(), b.ratio(), b.num_buckets()});
}

Status Bad(const std::string& what) {
  return InvalidArgumentError("profile checkpoint: " + what);
}

Result<ResourceCheckpoint> ReadResource(const json& j, const std::string& where) {
  if (!j.is_object()) return Bad(where + " is not an object");
  ResourceCheckpoint c;
  auto number = [&](const char* key, auto* out) -> Status {
    using T = std::remove_pointer_t<decltype(out)>;
    auto it = j.find(key);
    if (it == j.end()) return Status::Ok();
    if constexpr (std::is_integral_v<T>) {
      // Integers only from integer members in range: converting 7.8e63 to an
      // int64 is undefined behaviour (found by service_profile_fuzz).
      const bool fits = std::is_signed_v<T>
                            ? it->is_number_integer() &&
                                  !(it->is_number_unsigned() &&
                                    it->template get<uint64_t>() >
                                        static_cast<uint64_t>(std::numeric_limits<T>::max()))
                            : it->is_number_unsigned();
      if (!fits) {
        return Bad(where + "." + key +
                   (std::is_signed_v<T> ? " is not an integer" : " is not a count"));
      }
    } else if (!it->is_number()) {
      return Bad(where + "." + key + " is not a number");
    }
    *out = it->template get<T>();
    return Status::Ok();
  };
  GPU_RETURN_IF_ERROR(number("reference", &c.reference));
  GPU_RETURN_IF_ERROR(number("samples", &c.samples));
  GPU_RETURN_IF_ERROR(number("first", &c.first));
  GPU_RETURN_IF_ERROR(number("last", &c.last));
  GPU_RETURN_IF_ERROR(number("max", &c.max_value));
  GPU_RETURN_IF_ERROR(number("windowEnd", &c.window_end));
  GPU_RETURN_IF_ERROR(number("windowPeak", &c.window_peak));
  auto buckets = j.find("buckets");
  if (buckets != j.end()) {
    if (!buckets->is_array()) return Bad(where + ".buckets is not an array");
    for (const json& pair : *buckets) {
      if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number_integer() ||
          pair[0].get<int64_t>() < 0 || pair[0].get<int64_t>() > std::numeric_limits<int>::max() ||
          !pair[1].is_number()) {
        return Bad(where + ".buckets: want [[bucket, weight], ...]");
      }
      c.buckets.emplace_back(pair[0].get<int>(), pair[1].get<double>());
    }
  }
  return c;
}

Result<WorkloadProfile> Decode(const json& j, RecommenderConfig config) {
  if (!j.is_object()) return Bad("not a JSON object");
  if (const int64_t version = json_read::Integer(j, "version");
      version != kProfileCheckpointVersion) {
    return FailedPreconditionError("profile checkpoint: version " + std::to_string(version) +
                                   ", want " + std::to_string(kProfileCheckpointVersion));
  }
  if (json_read::Integer(j, "halfLifeSeconds") != config.half_life_seconds) {
    return FailedPreconditionError("profile checkpoint: saved with another half-life");
  }
  const json layouts = j.value("buckets", json::object());
  for (Resource r : kAllResources) {
    const std::string name(ResourceName(r));
    if (!layouts.contains(name) || layouts[name] != Layout(config.policy(r).buckets)) {
      return FailedPreconditionError("profile checkpoint: " + name +
                                     " buckets differ from this version's");
    }
  }
  const json containers = j.value("containers", json::object());
  if (!containers.is_object()) return Bad("containers is not an object");
  std::map<std::string, std::array<ResourceCheckpoint, kResourceCount>> restored;
  for (const auto& [name, resources] : containers.items()) {
    if (!resources.is_object()) return Bad("containers." + name + " is not an object");
    std::array<ResourceCheckpoint, kResourceCount> cp{};
    for (Resource r : kAllResources) {
      const std::string rname(ResourceName(r));
      if (!resources.contains(rname)) continue;
      auto c = ReadResource(resources[rname], "containers." + name + "." + rname);
      if (!c.ok()) return c.error();
      cp[static_cast<size_t>(r)] = std::move(*c);
    }
    restored.emplace(name, std::move(cp));
  }
  std::map<std::string, int64_t> seen;
  const json last_seen = j.value("lastSeen", json::object());
  if (!last_seen.is_object()) return Bad("lastSeen is not an object");
  for (const auto& [key, ts] : last_seen.items()) {
    if (!ts.is_number_integer()) return Bad("lastSeen." + key + " is not an integer");
    seen[key] = ts.get<int64_t>();
  }
  return WorkloadProfile::FromParts(std::move(config), restored, std::move(seen));
}

}  // namespace

WorkloadProfile::WorkloadProfile(RecommenderConfig config) : config_(std::move(config)) {}

WorkloadProfile WorkloadProfile::FromParts(
    RecommenderConfig config,
    const std::map<std::string, std::array<ResourceCheckpoint, kResourceCount>>& containers,
    std::map<std::string, int64_t> last_seen) {
  WorkloadProfile p(std::move(config));
  for (const auto& [name, cp] : containers) {
    auto [it, inserted] = p.containers_.emplace(name, ContainerUsage(p.config_));
    it->second.Restore(cp);
  }
  p.last_seen_ = std::move(last_seen);
  return p;
}

int WorkloadProfile::Ingest(std::span<const UsageSample> samples) {
  int added = 0;
  for (const UsageSample& s : samples) {
    if (!std::isfinite(s.value) || s.value < 0) continue;
    int64_t& last = last_seen_[SeenKey(s.pod, s.container, s.resource)];
    if (last != 0 && s.timestamp <= last) continue;
    last = s.timestamp;
    auto it = containers_.find(s.container);
    if (it == containers_.end())
      it = containers_.emplace(s.container, ContainerUsage(config_)).first;
    it->second.Add(s.resource, s.timestamp, s.value, s.weight);
    ++added;
  }
  return added;
}

void WorkloadProfile::ForgetPodsExcept(const std::set<std::string>& live_pods) {
  std::erase_if(last_seen_, [&](const auto& kv) {
    const std::string& key = kv.first;
    return !live_pods.contains(key.substr(0, key.find('/')));
  });
}

uint64_t WorkloadProfile::total_samples() const {
  uint64_t n = 0;
  for (const auto& [name, usage] : containers_)
    for (Resource r : kAllResources)
      n += usage.samples(r);
  return n;
}

std::map<std::string, Recommendation> WorkloadProfile::Recommend(const gpu::GpuSpec& gpu) const {
  std::map<std::string, Recommendation> out;
  for (const auto& [name, usage] : containers_)
    out.emplace(name, profiling::Recommend(usage, config_, gpu));
  return out;
}

json WorkloadProfile::Checkpoint() const {
  json j = {{"version", kProfileCheckpointVersion},
            {"halfLifeSeconds", config_.half_life_seconds},
            {"buckets", json::object()},
            {"containers", json::object()},
            {"lastSeen", json::object()}};
  for (Resource r : kAllResources)
    j["buckets"][std::string(ResourceName(r))] = Layout(config_.policy(r).buckets);
  for (const auto& [name, usage] : containers_) {
    json& c = j["containers"][name];
    c = json::object();
    const auto saved = usage.Save();
    for (Resource r : kAllResources) {
      const ResourceCheckpoint& cp = saved[static_cast<size_t>(r)];
      if (cp.samples == 0) continue;
      json buckets = json::array();
      for (const auto& [b, w] : cp.buckets)
        buckets.push_back(json::array({b, w}));
      c[std::string(ResourceName(r))] = {{"reference", cp.reference},
                                         {"buckets", std::move(buckets)},
                                         {"samples", cp.samples},
                                         {"first", cp.first},
                                         {"last", cp.last},
                                         {"max", cp.max_value},
                                         {"windowEnd", cp.window_end},
                                         {"windowPeak", cp.window_peak}};
    }
  }
  for (const auto& [key, ts] : last_seen_)
    j["lastSeen"][key] = ts;
  return j;
}

Result<WorkloadProfile> WorkloadProfile::FromCheckpoint(const json& checkpoint,
                                                        RecommenderConfig config) {
  try {
    return Decode(checkpoint, std::move(config));
  } catch (const std::exception& e) {  // nlohmann type errors on odd values
    return Bad(e.what());
  }
}

}  // namespace gpu_autoscaler::profiling
