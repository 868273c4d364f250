// Fuzzes the scheduler extender's request decoding and the verbs behind it:
// any bytes sent to /filter, /prioritize or /bind must give 200 with a JSON
// answer or 400 with {"Error": ...}, never a crash, an exception or a hang,
// and a filter answer never keeps a node the request did not name.
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
    return c.release();
  }();
  return *cache;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using gpu_autoscaler::scheduler::Extender;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // The first byte picks the verb; the rest is the body.
  static const char* kVerbs[] = {"filter", "prioritize", "bind"};
  const char* verb = size > 0 ? kVerbs[data[0] % 3] : "filter";
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
  return 0;
}
