// Fuzzes the scheduler extender's request decoding and the verbs behind it:
// any bytes sent to /filter, /prioritize, /bind or /preempt must give 200
// with a JSON answer or 400 with {"Error": ...}, never a crash, an exception
// or a hang; a filter answer never keeps a node the request did not name, and
// a preempt answer names at most one of the request's nodes, with at least
// one victim, each a pod bound there of lower priority than the preemptor.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "kube/object_codec.h"
#include "scheduler/extender.h"

namespace {

gpu_autoscaler::scheduler::ClusterCache& Cache() {
  static auto* cache = [] {
    auto c = std::move(gpu_autoscaler::scheduler::ClusterCache::Create({})).value();
    const char* node =
        R"({"metadata":{"name":"n1"},"status":{"allocatable":{"cpu":"8","memory":"32Gi",
        "pods":"110","nvidia.com/gpu":"4"},"conditions":[{"type":"Ready","status":"True"}]}})";
    c->UpsertNode(std::make_shared<const gpu_autoscaler::kube::NodeView>(
        std::move(gpu_autoscaler::kube::DecodeNode(node)).value()));
    // n1 full: four pods of priorities 0..3 (uids u0..u3), one on each GPU,
    // and a CPU-only pod (u4, priority 0) that kube-scheduler may name.
    for (int i = 0; i < 5; ++i) {
      const std::string id = std::to_string(i);
      const std::string requests = i < 4 ? R"({"cpu":"1","nvidia.com/gpu":"1"})" : R"({"cpu":"1"})";
      const std::string pod =
          R"({"metadata":{"name":"p)" + id + R"(","namespace":"default","uid":"u)" + id +
          R"(","annotations":{"gpuautoscaler.io/gpu-indices":")" + std::to_string(i % 4) +
          R"("}},"spec":{"nodeName":"n1","priority":)" + std::to_string(i % 4) +
          R"(,"containers":[{"name":"c","resources":{"requests":)" + requests +
          R"(}}]},"status":{"phase":"Running"}})";
      c->UpsertPod(std::make_shared<const gpu_autoscaler::kube::PodView>(
          std::move(gpu_autoscaler::kube::DecodePod(pod)).value()));
    }
    return c.release();
  }();
  return *cache;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using gpu_autoscaler::scheduler::Extender;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // The first byte picks the verb; the rest is the body.
  static const char* kVerbs[] = {"filter", "prioritize", "bind", "preempt"};
  const char* verb = size > 0 ? kVerbs[data[0] % 4] : "filter";
  if (size > 0) input.remove_prefix(1);
  Extender extender(Cache(), {.bind = [](const auto&) { return gpu_autoscaler::Status::Ok(); }});
  gpu_autoscaler::scheduler::ExtenderReply reply = extender.Handle(verb, input);
  auto parsed = nlohmann::json::parse(reply.body, nullptr, false);
  if (parsed.is_discarded()) std::abort();  // always JSON
  if (reply.status != 200 && reply.status != 400) std::abort();
  if (reply.status == 400 && !(parsed.is_object() && parsed["Error"].is_string())) std::abort();
  if (reply.status == 200 && std::string_view(verb) == "filter") {
    auto args = gpu_autoscaler::scheduler::ParseExtenderArgs(input);
    if (!args.ok()) std::abort();  // 200 only for a request that parsed
    std::set<std::string> asked(args->node_names.begin(), args->node_names.end());
    if (parsed["NodeNames"].is_array()) {
      for (const auto& n : parsed["NodeNames"])
        if (!asked.count(n.get<std::string>())) std::abort();
    }
  }
  if (reply.status == 200 && std::string_view(verb) == "preempt") {
    auto args = gpu_autoscaler::scheduler::ParseExtenderPreemptionArgs(input);
    if (!args.ok()) std::abort();
    auto preemptor = gpu_autoscaler::kube::DecodePod(args->pod_json);
    if (!preemptor.ok()) std::abort();
    const int64_t priority = preemptor->priority().value_or(0);
    const auto& nodes = parsed["NodeNameToMetaVictims"];
    if (!nodes.is_object() || nodes.size() > 1) std::abort();
    for (const auto& [node, victims] : nodes.items()) {
      bool asked = false;
      for (const auto& c : args->candidates)
        asked = asked || c.node == node;
      if (!asked || node != "n1" || victims["Pods"].empty()) std::abort();
      std::set<std::string> seen;
      for (const auto& victim : victims["Pods"]) {
        const std::string uid = victim["UID"].get<std::string>();
        // u0..u4 are the pods on n1; u<i> has priority i % 4.
        if (uid.size() != 2 || uid[0] != 'u' || uid[1] < '0' || uid[1] > '4') std::abort();
        if ((uid[1] - '0') % 4 >= priority || !seen.insert(uid).second) std::abort();
      }
    }
  }
  return 0;
}
