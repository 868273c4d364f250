#include "node-agent/reporter.h"

#include <nlohmann/json.hpp>

#include "api/annotations.h"
#include "api/resources.h"
#include "common/json_read.h"
#include "kube/meta_time.h"
#include "kube/rest_client.h"
#include "node-agent/report.h"
#include "reconcile/logging.h"

namespace gpu_autoscaler::node_agent {

using reconcile::Log;
using reconcile::LogLevel;

Reporter::Reporter(kube::RestClient& client, ReporterOptions options)
    : client_(client), options_(std::move(options)) {}

std::vector<kube::ObjectCondition> Reporter::Conditions(const SyncInput& in) {
  kube::ObjectCondition c{.type = kNvmlCondition};
  switch (in.nvml_state) {
    case nvml::NvmlState::kUp: {
      c.status = "True";
      c.reason = "Available";
      c.message = "NVML answers";
      std::string failures;
      if (in.snapshot) {
        for (const auto& g : in.snapshot->gpus) {
          for (const std::string& e : g.errors)
            failures += (failures.empty() ? "" : "; ") + e;
        }
      }
      if (!failures.empty()) {
        c.reason = "CallsFailing";
        c.message = "NVML answers, but some calls fail: " + failures;
      }
      break;
    }
    case nvml::NvmlState::kNoLibrary:
      c.status = "False";
      c.reason = "LibraryNotFound";
      c.message = "no NVML on this node (no NVIDIA driver?): " + in.nvml_error.message();
      break;
    case nvml::NvmlState::kInitFailed:
      c.status = "False";
      c.reason = "InitFailed";
      c.message = in.nvml_error.message();
      break;
    case nvml::NvmlState::kFailed:
      c.status = "False";
      c.reason = "CallFailed";
      c.message = in.nvml_error.message();
      break;
    case nvml::NvmlState::kHung:
      c.status = "False";
      c.reason = "CallTimedOut";
      c.message = in.nvml_error.message();
      break;
  }
  auto it = conditions_.find(c.type);
  if (it != conditions_.end() && it->second.status == c.status) {
    c.last_transition_time = it->second.last_transition_time;
  } else {
    c.last_transition_time = kube::FormatTime(options_.clock->WallNow());
  }
  conditions_[c.type] = c;
  return {c};
}

Status Reporter::Apply(const std::string& what, const std::string& body, std::string* last,
                       int64_t* generation) {
  if (*last == body) return Status::Ok();
  kube::ObjectRef ref{api::kNodeResourceReports, "", options_.node_name,
                      what == "status" ? "status" : ""};
  if (what == "node") ref = kube::ObjectRef{kube::resources::kNodes, "", options_.node_name, ""};
  auto reply = client_.Patch(ref, kube::PatchType::kApply, body,
                             {.field_manager = kFieldManager, .force = true});
  if (!reply.ok()) {
    last->clear();
    return UnavailableError("applying the " + what + ": " + reply.error().ToString());
  }
  if (generation != nullptr) {
    *generation = json_read::Integer(json_read::Object(*reply, "metadata"), "generation");
  }
  *last = body;
  ++writes_;
  return Status::Ok();
}

Status Reporter::Sync(const SyncInput& in) {
  auto node = client_.Get({kube::resources::kNodes, "", options_.node_name, ""});
  if (!node.ok()) {
    return UnavailableError("reading Node " + options_.node_name + ": " + node.error().ToString());
  }
  const nlohmann::json& meta = json_read::Object(*node, "metadata");
  const std::string uid = json_read::String(meta, "uid");
  std::map<std::string, std::string> labels;
  for (const auto& [k, v] : json_read::Object(meta, "labels").items()) {
    if (v.is_string()) labels[k] = v.get<std::string>();
  }
  auto numa = ReadNumaTopology(options_.sysfs_root);
  if (!numa.ok()) {
    Log(LogLevel::kWarn, "reading NUMA topology", {{"error", numa.error().message()}});
  }
  std::map<std::string, int> gpu_numa;
  if (in.snapshot) {
    for (const auto& g : in.snapshot->gpus) {
      if (auto n = PciNumaNode(options_.sysfs_root, g.pci_bus_id)) gpu_numa[g.pci_bus_id] = *n;
    }
  }
  Inventory inv = BuildInventory(in.snapshot.get(), labels,
                                 numa.ok() ? *numa : std::vector<NumaNode>{}, gpu_numa);
  if (!inv.sharing.problem.empty() && inv.sharing.problem != inventory_.sharing.problem) {
    Log(LogLevel::kWarn, "ignoring a device plugin label", {{"problem", inv.sharing.problem}});
  }
  const Clock::TimePoint now = options_.clock->Now();
  if (now - last_resync_ >= options_.resync) {  // write everything again now and then
    last_resync_ = now;
    last_object_.clear();
    last_status_.clear();
    label_known_ = false;
  }
  GPU_RETURN_IF_ERROR(
      Apply("object", ReportObjectApply(options_.node_name, uid), &last_object_, &generation_));
  const std::vector<kube::ObjectCondition> conditions = Conditions(in);
  GPU_RETURN_IF_ERROR(Apply("status",
                            ReportStatusApply(options_.node_name, inv,
                                              {.state = std::string(NvmlStateName(in.nvml_state)),
                                               .library = options_.nvml_library},
                                              conditions, generation_),
                            &last_status_, nullptr));
  // The label follows the islands NVML reported; without a snapshot it stays as it is.
  if (in.snapshot) {
    auto current = labels.find(std::string(api::kNvlinkIslandsLabel));
    const std::string have = current == labels.end() ? "" : current->second;
    if (have != inv.nvlink_label || !label_known_) {
      std::string body = NodeLabelApply(options_.node_name, inv.nvlink_label);
      std::string last;  // compare with the Node itself, not with our last write
      GPU_RETURN_IF_ERROR(Apply("node", body, &last, nullptr));
      label_known_ = true;
      if (have != inv.nvlink_label) {
        Log(LogLevel::kInfo, "set the Node's NVLink islands",
            {{"node", options_.node_name},
             {"label", api::kNvlinkIslandsLabel},
             {"value", inv.nvlink_label}});
      }
    }
  }
  inventory_ = std::move(inv);
  return Status::Ok();
}

}  // namespace gpu_autoscaler::node_agent
