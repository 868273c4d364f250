#include "controllers/gpu_node_pool_memory.h"

#include <nlohmann/json.hpp>

#include "kube/meta_time.h"

namespace gpu_autoscaler::controllers {

using nlohmann::json;

void RestorePoolMemory(const json& status, Clock::TimePoint now, Clock::WallTime wall,
                       autoscale::PoolMemory* memory) {
  if (!status.is_object()) return;
  auto answered = status.find("answeredInterruptions");
  if (answered != status.end() && answered->is_array()) {
    for (const json& node : *answered)
      if (node.is_string()) memory->interrupted.insert(node.get<std::string>());
  }
  auto offerings = status.find("unavailableOfferings");
  if (offerings == status.end() || !offerings->is_array()) return;
  for (const json& o : *offerings) {
    if (!o.is_object()) continue;
    // A string member, or null when missing or of another type.
    auto text = [&o](const char* key) -> const std::string* {
      auto it = o.find(key);
      return it != o.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
    };
    const std::string* type = text("instanceType");
    const std::string* tier_key = text("tier");
    const std::string* until_text = text("until");
    if (type == nullptr || tier_key == nullptr || until_text == nullptr) continue;
    const auto tier = autoscale::TierFromKey(*tier_key);
    auto until = kube::ParseRfc3339(*until_text);
    if (!tier || !until.ok() || *until <= wall) continue;
    memory->unavailable.Mark(*type, *tier, now,
                             std::chrono::duration_cast<Clock::Duration>(*until - wall));
  }
}

json AnsweredInterruptionsJson(const autoscale::PoolMemory& memory) {
  json out = json::array();
  for (const std::string& node : memory.interrupted)  // a std::set: sorted
    out.push_back(node);
  return out;
}

json UnavailableOfferingsJson(const autoscale::PoolMemory& memory, Clock::TimePoint now,
                              Clock::WallTime wall) {
  json out = json::array();
  for (const auto& [key, until] : memory.unavailable.Live(now)) {
    out.push_back(
        {{"instanceType", key.first},
         {"tier", std::string(autoscale::TierKey(key.second))},
         {"until", kube::FormatTime(wall + std::chrono::duration_cast<Clock::WallTime::duration>(
                                               until - now))}});
  }
  return out;
}

}  // namespace gpu_autoscaler::controllers
