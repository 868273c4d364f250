#include "controllers/gpu_node_pool_scale_down.h"

#include <algorithm>

#include "common/json_read.h"
#include "kube/error.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "reconcile/logging.h"

namespace gpu_autoscaler::controllers {

using nlohmann::json;

bool InstanceShuttingDown(const cloud::Instance& instance) {
  const std::string_view state = instance.state;
  return state.starts_with("Terminat") || state.starts_with("DELETING") ||
         state.starts_with("ABANDONING") || state == "Deleting" || state == "Deleted";
}

std::string EncodeTerminationIntent(const TerminationIntent& intent) {
  return json{{"id", intent.id},
              {"pool", intent.pool},
              {"group", intent.group},
              {"instance", intent.instance_id},
              {"tier", std::string(autoscale::TierKey(intent.tier))},
              {"interrupted", intent.interrupted},
              {"desiredBefore", intent.desired_before}}
      .dump();
}

Result<TerminationIntent> ParseTerminationIntent(std::string_view text) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Status(StatusCode::kInvalidArgument, "not a JSON object");
  TerminationIntent out;
  auto text_field = [&](const char* key, std::string* to) -> Status {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
      return Status(StatusCode::kInvalidArgument, std::string(key) + " is not a non-empty string");
    *to = it->get<std::string>();
    return Status::Ok();
  };
  GPU_RETURN_IF_ERROR(text_field("id", &out.id));
  GPU_RETURN_IF_ERROR(text_field("pool", &out.pool));
  GPU_RETURN_IF_ERROR(text_field("group", &out.group));
  GPU_RETURN_IF_ERROR(text_field("instance", &out.instance_id));
  std::string tier;
  GPU_RETURN_IF_ERROR(text_field("tier", &tier));
  auto parsed_tier = autoscale::TierFromKey(tier);
  if (!parsed_tier) return Status(StatusCode::kInvalidArgument, "unknown tier \"" + tier + "\"");
  out.tier = *parsed_tier;
  auto interrupted = j.find("interrupted");
  if (interrupted != j.end()) {
    if (!interrupted->is_boolean())
      return Status(StatusCode::kInvalidArgument, "interrupted is not a boolean");
    out.interrupted = interrupted->get<bool>();
  }
  auto before = j.find("desiredBefore");
  if (before == j.end() || !before->is_number_integer() || before->get<int64_t>() < 0 ||
      before->get<int64_t>() > 1'000'000) {
    return Status(StatusCode::kInvalidArgument, "desiredBefore is not a size");
  }
  out.desired_before = before->get<int>();
  return out;
}

TerminationSteps DecideTermination(const TerminationIntent& intent,
                                   const TerminationObservation& observed) {
  if (!observed.group_known) return {};
  return {
      .call_provider = observed.instance_listed && observed.group_desired >= intent.desired_before,
      .record = !observed.recorded,
      .delete_node = true};
}

std::string TerminationMessage(const TerminationIntent& intent) {
  return "terminated " + intent.node + " (" + intent.instance_id + ") in group " + intent.group +
         (intent.interrupted ? " after its interruption notice" : "");
}

std::vector<TerminationIntent> FindTerminationIntents(const kube::Store<kube::NodeView>& nodes,
                                                      const std::string& pool) {
  std::vector<TerminationIntent> out;
  for (const auto& node : nodes.List()) {
    auto text = node->annotation(kTerminationIntentAnnotation);
    if (!text) continue;
    auto intent = ParseTerminationIntent(*text);
    if (!intent.ok()) {
      reconcile::Log(reconcile::LogLevel::kWarn, "unreadable termination intent",
                     {{"node", node->name()}, {"error", intent.error().ToString()}});
      continue;
    }
    if (intent->pool != pool) continue;
    intent->node = std::string(node->name());
    out.push_back(std::move(*intent));
  }
  std::sort(out.begin(), out.end(),
            [](const TerminationIntent& a, const TerminationIntent& b) { return a.node < b.node; });
  return out;
}

bool ActionRecorded(const json& actions, std::string_view id) {
  if (!actions.is_array() || id.empty()) return false;
  return std::any_of(actions.begin(), actions.end(),
                     [&](const json& a) { return json_read::String(a, "id") == id; });
}

Status WriteTerminationIntent(kube::RestClient& client, TerminationIntent* intent) {
  const kube::ObjectRef ref{kube::resources::kNodes, "", intent->node};
  auto node = client.Get(ref);
  if (!node.ok()) return node.error().ToStatus();
  json& meta = (*node)["metadata"];
  intent->id = json_read::String(meta, "uid");
  if (intent->id.empty()) intent->id = intent->node + "/" + intent->instance_id;
  if (!meta.contains("annotations") || !meta["annotations"].is_object())
    meta["annotations"] = json::object();
  const std::string key(kTerminationIntentAnnotation);
  if (meta["annotations"].contains(key)) {
    return Status(StatusCode::kAlreadyExists, "node " + intent->node + " already has an intent");
  }
  meta["annotations"][key] = EncodeTerminationIntent(*intent);
  auto written = client.Replace(ref, *node);  // with the read resourceVersion
  if (!written.ok()) return written.error().ToStatus();
  return Status::Ok();
}

Status DeleteTerminatedNode(kube::RestClient& client, const TerminationIntent& intent) {
  kube::DeleteOptions options;
  // The uid is the intent's id unless the Node had none (then any Node of that name).
  if (intent.id != intent.node + "/" + intent.instance_id) options.precondition_uid = intent.id;
  auto deleted = client.Delete({kube::resources::kNodes, "", intent.node}, options);
  if (deleted.ok() || kube::IsNotFound(deleted.error())) return Status::Ok();
  return deleted.error().ToStatus();
}

}  // namespace gpu_autoscaler::controllers
