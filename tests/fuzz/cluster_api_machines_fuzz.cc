// Fuzzes what the Cluster API provider reads from the management cluster
// (src/cloud/cluster_api_shrink.h, cluster_api.h): Machines whose status
// other controllers write and whose annotations anyone with access may set,
// and a group's scale-from-zero annotations. The input is a JSON object
// {"group": {...}, "machines": [...], "replicas": n, "min": n, "ids": [...]}.
// Any bytes must read or fail with an error, never crash; where the Machines'
// names are unique, a shrink that is allowed must lower the replicas by
// exactly the Machines it removes, never below the minimum, remove none that
// is being deleted, and leave no other Machine the MachineSet deletes first
// beyond what the replicas pay for. (The seed crash-5b8a… is two nameless
// Machines: one asked for, one being deleted; DecideShrink told them apart by
// name and counted the second as removed.)
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cloud/cluster_api.h"
#include "cloud/cluster_api_shrink.h"

using namespace gpu_autoscaler::cloud;
using nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  json input = json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (input.is_discarded() || !input.is_object()) return 0;
  if (auto group = input.find("group"); group != input.end()) {
    (void)ReadScaleFromZeroCapacity(*group);
  }
  std::vector<MachineFacts> machines;
  if (auto list = input.find("machines"); list != input.end() && list->is_array()) {
    for (const json& m : *list)
      machines.push_back(ReadMachineFacts(m, "cluster.x-k8s.io"));
  }
  std::vector<std::string> ids;
  if (auto list = input.find("ids"); list != input.end() && list->is_array()) {
    for (const json& id : *list)
      if (id.is_string()) ids.push_back(id.get<std::string>());
  }
  auto number = [&](const char* key) {
    auto it = input.find(key);
    return it != input.end() && it->is_number_integer() ? it->get<int>() : 0;
  };
  const int replicas = number("replicas"), min_size = number("min");
  auto plan = DecideShrink("fuzz", machines, ids, replicas, min_size);
  if (!plan.ok()) return 0;
  if (plan->remove.empty()) return 0;
  if (plan->replicas != replicas - static_cast<int>(plan->remove.size())) std::abort();
  if (plan->replicas < min_size) std::abort();
  // The plan names Machines; the invariants below hold where names are
  // unique, as an API server serves them (DecideShrink itself goes by
  // position, and the input above must only not crash it).
  std::vector<std::string> names;
  for (const MachineFacts& m : machines)
    names.push_back(m.name);
  std::sort(names.begin(), names.end());
  if (std::adjacent_find(names.begin(), names.end()) != names.end()) return 0;
  int ahead = 0;
  for (const MachineFacts& m : machines) {
    const bool removed =
        std::find(plan->remove.begin(), plan->remove.end(), m.name) != plan->remove.end();
    if (removed && m.being_deleted) std::abort();
    if (!removed && m.deleted_first) ++ahead;
  }
  if (ahead > static_cast<int>(machines.size()) - replicas) std::abort();
  return 0;
}
