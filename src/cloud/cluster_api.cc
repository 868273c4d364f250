#include "cloud/cluster_api.h"

#include <charconv>

#include <nlohmann/json.hpp>

#include "cloud/cluster_api_shrink.h"
#include "common/failpoint.h"
#include "kube/meta_time.h"
#include "kube/quantity.h"
#include "kube/rest_client.h"

namespace gpu_autoscaler::cloud {
namespace {

using nlohmann::json;

Status FromKube(const kube::Error& e, std::string_view what) {
  ProviderErrorKind kind = ProviderErrorKind::kUnavailable;
  if (e.kind() == kube::Error::Kind::kApi) {
    switch (e.code()) {
      case 400:
      case 422:
        kind = ProviderErrorKind::kInvalid;
        break;
      case 401:
      case 403:
        kind = ProviderErrorKind::kAuth;
        break;
      case 404:
        kind = ProviderErrorKind::kNotFound;
        break;
      case 409:
        kind = ProviderErrorKind::kConflict;  // a resourceVersion precondition failed
        break;
      case 429:
        kind = ProviderErrorKind::kThrottled;
        break;
      default:
        break;
    }
  } else if (e.kind() == kube::Error::Kind::kConfig) {
    kind = ProviderErrorKind::kAuth;
  }
  return ProviderError(kind, std::string(what) + ": " + e.ToString());
}

const json* Find(const json& j, std::initializer_list<std::string_view> path) {
  const json* cur = &j;
  for (std::string_view key : path) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(key);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

std::string StringAt(const json& j, std::initializer_list<std::string_view> path) {
  const json* v = Find(j, path);
  return v && v->is_string() ? v->get<std::string>() : std::string();
}

Result<int> ParseCount(std::string_view text, std::string_view what) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0) {
    return InvalidArgumentError(std::string(what) + ": \"" + std::string(text) +
                                "\" is not a non-negative integer");
  }
  return value;
}

// spec.replicas of a scale subresource; 0 when absent (the API server omits 0).
int ScaleReplicas(const json& scale) {
  const json* replicas = Find(scale, {"spec", "replicas"});
  return replicas && replicas->is_number_integer() ? replicas->get<int>() : 0;
}

struct GroupName {
  std::string kind;  // MachineDeployment | MachineSet
  std::string ns;
  std::string name;
};

Result<GroupName> ParseGroupName(const std::string& group) {
  size_t first = group.find('/');
  size_t second = first == std::string::npos ? first : group.find('/', first + 1);
  if (second == std::string::npos || group.find('/', second + 1) != std::string::npos) {
    return ProviderError(ProviderErrorKind::kInvalid,
                         "cluster-api group \"" + group +
                             "\" is not <Kind>/<namespace>/<name> (Kind MachineDeployment or "
                             "MachineSet)");
  }
  GroupName g{group.substr(0, first), group.substr(first + 1, second - first - 1),
              group.substr(second + 1)};
  if ((g.kind != "MachineDeployment" && g.kind != "MachineSet") || g.ns.empty() || g.name.empty()) {
    return ProviderError(ProviderErrorKind::kInvalid,
                         "cluster-api group \"" + group +
                             "\": Kind must be MachineDeployment or MachineSet, with a namespace "
                             "and a name");
  }
  return g;
}

class ClusterApiProvider final : public NodeGroupProvider {
 public:
  ClusterApiProvider(std::shared_ptr<kube::RestClient> client, ClusterApiOptions options)
      : client_(std::move(client)), options_(std::move(options)) {}

  std::string_view Name() const override { return "cluster-api"; }

  Result<NodeGroup> Describe(const std::string& group) override {
    GPU_ASSIGN_OR_RETURN(GroupName g, ParseGroupName(group));
    GPU_ASSIGN_OR_RETURN(json object, GetGroupObject(g));
    NodeGroup out;
    out.name = group;
    GPU_ASSIGN_OR_RETURN(auto limits, SizeLimits(object, group));
    out.min = limits.first;
    out.max = limits.second;
    auto scale = client_->GetScale(Ref(g));
    if (!scale.ok()) return FromKube(scale.error(), "get scale of " + group);
    out.desired = ScaleReplicas(*scale);
    GPU_ASSIGN_OR_RETURN(json machines, ListMachines(g));
    for (const json& m : machines) {
      const MachineFacts facts = ReadMachineFacts(m, options_.group);
      Instance in;
      in.provider_id = facts.provider_id;
      in.id = in.provider_id.empty() ? facts.name : in.provider_id;
      in.zone = StringAt(m, {"spec", "failureDomain"});
      in.state = facts.being_deleted ? "Deleting" : StringAt(m, {"status", "phase"});
      out.instances.push_back(std::move(in));
    }
    return out;
  }

  Status SetDesiredSize(const std::string& group, int desired) override {
    GPU_ASSIGN_OR_RETURN(GroupName g, ResizableGroup(group, desired));
    return PatchReplicas(g, desired);
  }

  Status ResizeFrom(const std::string& group, int expected, int desired) override {
    GPU_ASSIGN_OR_RETURN(GroupName g, ResizableGroup(group, desired));
    auto scale = client_->GetScale(Ref(g));
    if (!scale.ok()) return FromKube(scale.error(), "get scale of " + group);
    const int current = ScaleReplicas(*scale);
    if (current != expected) {
      return ProviderError(ProviderErrorKind::kConflict,
                           group + ": replicas are " + std::to_string(current) + ", not the " +
                               std::to_string(expected) + " read before; someone else resized it");
    }
    GPU_RETURN_IF_ERROR(failpoint::Evaluate("cluster_api.resize.before_scale"));
    // The read above is the precondition: a write in between fails with 409.
    return PatchReplicas(g, desired, StringAt(*scale, {"metadata", "resourceVersion"}));
  }

  Status TerminateInstances(const std::string& group, const std::vector<std::string>& ids,
                            bool decrement_desired) override {
    if (ids.empty()) return Status::Ok();
    GPU_ASSIGN_OR_RETURN(GroupName g, ParseGroupName(group));
    GPU_ASSIGN_OR_RETURN(json object, GetGroupObject(g));
    GPU_ASSIGN_OR_RETURN(auto limits, SizeLimits(object, group));
    GPU_ASSIGN_OR_RETURN(json machines, ListMachines(g));
    std::vector<MachineFacts> facts;
    for (const json& m : machines)
      facts.push_back(ReadMachineFacts(m, options_.group));
    if (!decrement_desired) {
      // Nothing is lowered: the MachineSet replaces what is deleted.
      GPU_ASSIGN_OR_RETURN(std::vector<size_t> found, FindMachines(group, facts, ids));
      for (size_t i : found) {
        if (facts[i].name.empty()) {  // never served; a nameless DELETE would hit the collection
          return ProviderError(
              ProviderErrorKind::kInvalid,
              group + ": the Machine with providerID \"" + facts[i].provider_id + "\" has no name");
        }
        auto deleted = client_->Delete(MachineRef(g.ns, facts[i].name));
        if (!deleted.ok() && deleted.error().code() != 404) {
          return FromKube(deleted.error(), "delete Machine " + g.ns + "/" + facts[i].name);
        }
      }
      return Status::Ok();
    }
    auto scale = client_->GetScale(Ref(g));
    if (!scale.ok()) return FromKube(scale.error(), "get scale of " + group);
    const int current = ScaleReplicas(*scale);
    GPU_ASSIGN_OR_RETURN(ShrinkPlan plan, DecideShrink(group, facts, ids, current, limits.first));
    if (plan.remove.empty()) return Status::Ok();
    // Mark first, then shrink: the MachineSet deletes marked Machines first.
    const std::string stamp = kube::FormatMicroTime(options_.clock->WallNow());
    std::vector<std::string> marked;  // by this call, to be unmarked if it fails
    Status status = Status::Ok();
    for (const std::string& name : plan.mark) {
      json patch = {{"metadata", {{"annotations", {{DeleteMachineKey(), stamp}}}}}};
      auto patched = client_->Patch(MachineRef(g.ns, name), kube::PatchType::kMerge, patch.dump());
      if (!patched.ok()) {
        status = FromKube(patched.error(), "mark Machine " + g.ns + "/" + name + " for deletion");
        break;
      }
      marked.push_back(name);
    }
    if (status.ok()) status = failpoint::Evaluate("cluster_api.terminate.before_scale");
    // The replicas read above are a precondition: had another writer changed
    // them meanwhile, the MachineSet would delete what that writer counted on.
    if (status.ok()) {
      status = PatchReplicas(g, plan.replicas, StringAt(*scale, {"metadata", "resourceVersion"}));
    }
    if (status.ok()) return status;
    // Left marked, a Machine would be the first deleted at the next scale-down
    // by anyone, busy or not, so the marks of a failed call are taken back.
    for (const std::string& name : marked) {
      json patch = {{"metadata", {{"annotations", {{DeleteMachineKey(), nullptr}}}}}};
      auto unmarked = client_->Patch(MachineRef(g.ns, name), kube::PatchType::kMerge, patch.dump());
      if (!unmarked.ok()) {
        status =
            Status(status.code(), status.message() + "; Machine " + g.ns + "/" + name +
                                      " is still marked (" + unmarked.error().ToString() + ")");
      }
    }
    return status;
  }

  Result<std::string> InstanceIdFromProviderId(std::string_view provider_id) const override {
    if (provider_id.empty()) {
      return ProviderError(ProviderErrorKind::kInvalid, "empty providerID");
    }
    return std::string(provider_id);
  }

 private:
  kube::GroupVersionResource Gvr(std::string_view kind) const {
    std::string resource = kind == "MachineDeployment" ? "machinedeployments"
                           : kind == "MachineSet"      ? "machinesets"
                                                       : "machines";
    return {options_.group, options_.version, resource, /*namespaced=*/true};
  }
  kube::ObjectRef Ref(const GroupName& g) const { return {Gvr(g.kind), g.ns, g.name}; }
  kube::ObjectRef MachineRef(const std::string& ns, const std::string& name) const {
    return {Gvr("Machine"), ns, name};
  }
  std::string Key(std::string_view suffix) const { return options_.group + std::string(suffix); }
  std::string DeleteMachineKey() const { return Key(kCapiDeleteMachineSuffix); }

  Result<json> GetGroupObject(const GroupName& g) {
    auto object = client_->Get(Ref(g));
    if (!object.ok()) return FromKube(object.error(), "get " + g.kind + " " + g.ns + "/" + g.name);
    return std::move(*object);
  }

  Result<std::pair<int, int>> SizeLimits(const json& object, const std::string& group) const {
    const std::string min_text =
        StringAt(object, {"metadata", "annotations", Key(kCapiMinSizeSuffix)});
    const std::string max_text =
        StringAt(object, {"metadata", "annotations", Key(kCapiMaxSizeSuffix)});
    if (min_text.empty() || max_text.empty()) {
      return ProviderError(ProviderErrorKind::kInvalid,
                           group + " is not managed: it needs both " + Key(kCapiMinSizeSuffix) +
                               " and " + Key(kCapiMaxSizeSuffix) + " annotations");
    }
    auto min = ParseCount(min_text, Key(kCapiMinSizeSuffix));
    if (!min.ok()) return ProviderError(ProviderErrorKind::kInvalid, min.error().message());
    auto max = ParseCount(max_text, Key(kCapiMaxSizeSuffix));
    if (!max.ok()) return ProviderError(ProviderErrorKind::kInvalid, max.error().message());
    if (*min > *max) {
      return ProviderError(ProviderErrorKind::kInvalid,
                           group + ": min size " + min_text + " is above max size " + max_text);
    }
    return std::make_pair(*min, *max);
  }

  Result<json> ListMachines(const GroupName& g) {
    const std::string label =
        g.kind == "MachineDeployment" ? Key("/deployment-name") : Key("/set-name");
    auto list = client_->List({Gvr("Machine"), g.ns}, {.label_selector = label + "=" + g.name});
    if (!list.ok()) return FromKube(list.error(), "list Machines of " + g.ns + "/" + g.name);
    const json* items = Find(*list, {"items"});
    return items && items->is_array() ? *items : json::array();
  }

  // A merge patch of the scale subresource, as Cluster Autoscaler sends it;
  // with `resource_version`, the API server refuses it (409) if the scale
  // changed since it was read.
  // The group, when `desired` is within its size limits.
  Result<GroupName> ResizableGroup(const std::string& group, int desired) {
    GPU_ASSIGN_OR_RETURN(GroupName g, ParseGroupName(group));
    GPU_ASSIGN_OR_RETURN(json object, GetGroupObject(g));
    GPU_ASSIGN_OR_RETURN(auto limits, SizeLimits(object, group));
    if (desired < limits.first || desired > limits.second) {
      return ProviderError(ProviderErrorKind::kInvalid,
                           group + ": size " + std::to_string(desired) + " is outside [" +
                               std::to_string(limits.first) + ", " + std::to_string(limits.second) +
                               "]");
    }
    return g;
  }

  Status PatchReplicas(const GroupName& g, int replicas, const std::string& resource_version = "") {
    json patch = {{"spec", {{"replicas", replicas}}}};
    if (!resource_version.empty()) patch["metadata"] = {{"resourceVersion", resource_version}};
    auto patched = client_->Patch(Ref(g).WithSub("scale"), kube::PatchType::kMerge, patch.dump());
    if (!patched.ok()) {
      return FromKube(patched.error(), "scale " + g.kind + " " + g.ns + "/" + g.name + " to " +
                                           std::to_string(replicas));
    }
    return Status::Ok();
  }

  std::shared_ptr<kube::RestClient> client_;
  ClusterApiOptions options_;
};

}  // namespace

Result<ScaleFromZeroCapacity> ReadScaleFromZeroCapacity(const json& object) {
  const json* annotations = Find(object, {"metadata", "annotations"});
  auto get = [&](std::string_view key) -> std::string {
    if (!annotations || !annotations->is_object()) return "";
    auto it = annotations->find(std::string(kCapiCapacityPrefix) + std::string(key));
    return it != annotations->end() && it->is_string() ? it->get<std::string>() : "";
  };
  const std::string cpu = get("cpu"), memory = get("memory");
  if (cpu.empty() || memory.empty()) {
    return NotFoundError("scale from zero needs both " + std::string(kCapiCapacityPrefix) +
                         "cpu and " + std::string(kCapiCapacityPrefix) + "memory");
  }
  ScaleFromZeroCapacity out;
  auto invalid = [](std::string_view key, std::string_view value) {
    return InvalidArgumentError(std::string(kCapiCapacityPrefix) + std::string(key) + ": \"" +
                                std::string(value) + "\" is not a valid quantity");
  };
  auto cpu_milli = kube::ParseQuantityMilli(cpu);
  if (!cpu_milli.ok()) return invalid("cpu", cpu);
  out.cpu_milli = *cpu_milli;
  auto bytes = kube::ParseQuantity(memory);
  if (!bytes.ok()) return invalid("memory", memory);
  out.memory_bytes = *bytes;
  if (std::string max_pods = get("maxPods"); !max_pods.empty()) {
    auto n = ParseCount(max_pods, std::string(kCapiCapacityPrefix) + "maxPods");
    if (!n.ok()) return n.error();
    out.max_pods = *n;
  }
  const std::string gpu_type = get("gpu-type"), gpu_count = get("gpu-count");
  if (!gpu_type.empty() && !gpu_count.empty()) {  // both, or no GPU capacity
    auto n = ParseCount(gpu_count, std::string(kCapiCapacityPrefix) + "gpu-count");
    if (!n.ok()) return n.error();
    out.gpu_type = gpu_type;
    out.gpu_count = *n;
  }
  out.labels = get("labels");
  out.taints = get("taints");
  return out;
}

std::unique_ptr<NodeGroupProvider> NewClusterApiProvider(std::shared_ptr<kube::RestClient> client,
                                                         ClusterApiOptions options) {
  return std::make_unique<ClusterApiProvider>(std::move(client), std::move(options));
}

}  // namespace gpu_autoscaler::cloud
