// The JSON types of the built-in kinds' fields (k8s.io/api/*/v1 Go types).
#include "apiserver/builtin_decode.h"

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include <nlohmann/json.hpp>

namespace gpu_autoscaler::apiserver {
namespace {

using json = nlohmann::json;

// What Go's decoder accepts for a field's type.
enum class Accepts {
  kString,       // string (and named string types: SecretType, TaintEffect, ...)
  kInt32,        // an integer literal within int32
  kInt64,        // an integer literal within int64
  kBool,         // true or false
  kStringMap,    // map[string]string: an object of strings
  kObject,       // a struct or a map whose values are not checked here
  kStructList,   // []Struct: an array of objects
  kStringList,   // []string: an array of strings
  kIntOrString,  // intstr.IntOrString: an int32 or a string
  kTime,         // metav1.Time and MicroTime: a string
};

// One field: `path` is its dotted JSON path from the object's root, where a
// step ending in "[]" enters every element of that list; `go_struct` is the
// Go struct that declares the last step ("" for the kind itself); `go_type`
// is Go's spelling of the field's type, for the message.
struct FieldRule {
  std::string_view path;
  std::string_view go_struct;
  Accepts accepts;
  std::string_view go_type;
};

// Rules run in order; a parent comes before its fields, so the outermost
// mismatch is the one reported.
constexpr FieldRule kObjectMeta[] = {
    {"metadata", "", Accepts::kObject, "v1.ObjectMeta"},
    {"metadata.name", "ObjectMeta", Accepts::kString, "string"},
    {"metadata.generateName", "ObjectMeta", Accepts::kString, "string"},
    {"metadata.namespace", "ObjectMeta", Accepts::kString, "string"},
    {"metadata.uid", "ObjectMeta", Accepts::kString, "types.UID"},
    {"metadata.resourceVersion", "ObjectMeta", Accepts::kString, "string"},
    {"metadata.generation", "ObjectMeta", Accepts::kInt64, "int64"},
    {"metadata.creationTimestamp", "ObjectMeta", Accepts::kTime, "v1.Time"},
    {"metadata.deletionTimestamp", "ObjectMeta", Accepts::kTime, "v1.Time"},
    {"metadata.deletionGracePeriodSeconds", "ObjectMeta", Accepts::kInt64, "int64"},
    {"metadata.labels", "ObjectMeta", Accepts::kStringMap, "map[string]string"},
    {"metadata.annotations", "ObjectMeta", Accepts::kStringMap, "map[string]string"},
    {"metadata.finalizers", "ObjectMeta", Accepts::kStringList, "[]string"},
    {"metadata.ownerReferences", "ObjectMeta", Accepts::kStructList, "[]v1.OwnerReference"},
    {"metadata.ownerReferences[].apiVersion", "OwnerReference", Accepts::kString, "string"},
    {"metadata.ownerReferences[].kind", "OwnerReference", Accepts::kString, "string"},
    {"metadata.ownerReferences[].name", "OwnerReference", Accepts::kString, "string"},
    {"metadata.ownerReferences[].uid", "OwnerReference", Accepts::kString, "types.UID"},
    {"metadata.ownerReferences[].controller", "OwnerReference", Accepts::kBool, "bool"},
    {"metadata.ownerReferences[].blockOwnerDeletion", "OwnerReference", Accepts::kBool, "bool"},
    {"metadata.managedFields", "ObjectMeta", Accepts::kStructList, "[]v1.ManagedFieldsEntry"},
};

constexpr FieldRule kConfigMap[] = {
    {"data", "", Accepts::kStringMap, "map[string]string"},
    {"binaryData", "", Accepts::kStringMap, "map[string][]uint8"},
    {"immutable", "", Accepts::kBool, "bool"},
};

constexpr FieldRule kSecret[] = {
    {"data", "", Accepts::kStringMap, "map[string][]uint8"},
    {"stringData", "", Accepts::kStringMap, "map[string]string"},
    {"type", "", Accepts::kString, "v1.SecretType"},
    {"immutable", "", Accepts::kBool, "bool"},
};

constexpr FieldRule kLease[] = {
    {"spec", "", Accepts::kObject, "v1.LeaseSpec"},
    {"spec.holderIdentity", "LeaseSpec", Accepts::kString, "string"},
    {"spec.leaseDurationSeconds", "LeaseSpec", Accepts::kInt32, "int32"},
    {"spec.acquireTime", "LeaseSpec", Accepts::kTime, "v1.MicroTime"},
    {"spec.renewTime", "LeaseSpec", Accepts::kTime, "v1.MicroTime"},
    {"spec.leaseTransitions", "LeaseSpec", Accepts::kInt32, "int32"},
};

// A Container's fields, relative to one element of spec.containers or
// spec.initContainers.
constexpr FieldRule kContainer[] = {
    {"name", "Container", Accepts::kString, "string"},
    {"image", "Container", Accepts::kString, "string"},
    {"imagePullPolicy", "Container", Accepts::kString, "v1.PullPolicy"},
    {"workingDir", "Container", Accepts::kString, "string"},
    {"command", "Container", Accepts::kStringList, "[]string"},
    {"args", "Container", Accepts::kStringList, "[]string"},
    {"env", "Container", Accepts::kStructList, "[]v1.EnvVar"},
    {"env[].name", "EnvVar", Accepts::kString, "string"},
    {"env[].value", "EnvVar", Accepts::kString, "string"},
    {"ports", "Container", Accepts::kStructList, "[]v1.ContainerPort"},
    {"ports[].name", "ContainerPort", Accepts::kString, "string"},
    {"ports[].containerPort", "ContainerPort", Accepts::kInt32, "int32"},
    {"ports[].hostPort", "ContainerPort", Accepts::kInt32, "int32"},
    {"ports[].protocol", "ContainerPort", Accepts::kString, "v1.Protocol"},
    {"resources", "Container", Accepts::kObject, "v1.ResourceRequirements"},
    {"resources.limits", "ResourceRequirements", Accepts::kObject, "v1.ResourceList"},
    {"resources.requests", "ResourceRequirements", Accepts::kObject, "v1.ResourceList"},
    {"securityContext", "Container", Accepts::kObject, "v1.SecurityContext"},
    {"stdin", "Container", Accepts::kBool, "bool"},
    {"tty", "Container", Accepts::kBool, "bool"},
};

constexpr FieldRule kPod[] = {
    {"spec", "", Accepts::kObject, "v1.PodSpec"},
    {"spec.containers", "PodSpec", Accepts::kStructList, "[]v1.Container"},
    {"spec.initContainers", "PodSpec", Accepts::kStructList, "[]v1.Container"},
    {"spec.restartPolicy", "PodSpec", Accepts::kString, "v1.RestartPolicy"},
    {"spec.terminationGracePeriodSeconds", "PodSpec", Accepts::kInt64, "int64"},
    {"spec.activeDeadlineSeconds", "PodSpec", Accepts::kInt64, "int64"},
    {"spec.nodeSelector", "PodSpec", Accepts::kStringMap, "map[string]string"},
    {"spec.serviceAccountName", "PodSpec", Accepts::kString, "string"},
    {"spec.nodeName", "PodSpec", Accepts::kString, "string"},
    {"spec.hostNetwork", "PodSpec", Accepts::kBool, "bool"},
    {"spec.affinity", "PodSpec", Accepts::kObject, "v1.Affinity"},
    {"spec.schedulerName", "PodSpec", Accepts::kString, "string"},
    {"spec.tolerations", "PodSpec", Accepts::kStructList, "[]v1.Toleration"},
    {"spec.tolerations[].key", "Toleration", Accepts::kString, "string"},
    {"spec.tolerations[].operator", "Toleration", Accepts::kString, "v1.TolerationOperator"},
    {"spec.tolerations[].value", "Toleration", Accepts::kString, "string"},
    {"spec.tolerations[].effect", "Toleration", Accepts::kString, "v1.TaintEffect"},
    {"spec.tolerations[].tolerationSeconds", "Toleration", Accepts::kInt64, "int64"},
    {"spec.priorityClassName", "PodSpec", Accepts::kString, "string"},
    {"spec.priority", "PodSpec", Accepts::kInt32, "int32"},
    {"spec.runtimeClassName", "PodSpec", Accepts::kString, "string"},
    {"spec.preemptionPolicy", "PodSpec", Accepts::kString, "v1.PreemptionPolicy"},
    {"status", "", Accepts::kObject, "v1.PodStatus"},
    {"status.phase", "PodStatus", Accepts::kString, "v1.PodPhase"},
    {"status.conditions", "PodStatus", Accepts::kStructList, "[]v1.PodCondition"},
    {"status.conditions[].type", "PodCondition", Accepts::kString, "v1.PodConditionType"},
    {"status.conditions[].status", "PodCondition", Accepts::kString, "v1.ConditionStatus"},
    {"status.conditions[].reason", "PodCondition", Accepts::kString, "string"},
    {"status.conditions[].message", "PodCondition", Accepts::kString, "string"},
    {"status.message", "PodStatus", Accepts::kString, "string"},
    {"status.reason", "PodStatus", Accepts::kString, "string"},
    {"status.hostIP", "PodStatus", Accepts::kString, "string"},
    {"status.podIP", "PodStatus", Accepts::kString, "string"},
    {"status.startTime", "PodStatus", Accepts::kTime, "v1.Time"},
    {"status.qosClass", "PodStatus", Accepts::kString, "v1.PodQOSClass"},
};

constexpr FieldRule kNode[] = {
    {"spec", "", Accepts::kObject, "v1.NodeSpec"},
    {"spec.podCIDR", "NodeSpec", Accepts::kString, "string"},
    {"spec.podCIDRs", "NodeSpec", Accepts::kStringList, "[]string"},
    {"spec.providerID", "NodeSpec", Accepts::kString, "string"},
    {"spec.unschedulable", "NodeSpec", Accepts::kBool, "bool"},
    {"spec.taints", "NodeSpec", Accepts::kStructList, "[]v1.Taint"},
    {"spec.taints[].key", "Taint", Accepts::kString, "string"},
    {"spec.taints[].value", "Taint", Accepts::kString, "string"},
    {"spec.taints[].effect", "Taint", Accepts::kString, "v1.TaintEffect"},
    {"spec.taints[].timeAdded", "Taint", Accepts::kTime, "v1.Time"},
    {"status", "", Accepts::kObject, "v1.NodeStatus"},
    {"status.capacity", "NodeStatus", Accepts::kObject, "v1.ResourceList"},
    {"status.allocatable", "NodeStatus", Accepts::kObject, "v1.ResourceList"},
    {"status.conditions", "NodeStatus", Accepts::kStructList, "[]v1.NodeCondition"},
    {"status.conditions[].type", "NodeCondition", Accepts::kString, "v1.NodeConditionType"},
    {"status.conditions[].status", "NodeCondition", Accepts::kString, "v1.ConditionStatus"},
    {"status.conditions[].reason", "NodeCondition", Accepts::kString, "string"},
    {"status.conditions[].message", "NodeCondition", Accepts::kString, "string"},
    {"status.nodeInfo", "NodeStatus", Accepts::kObject, "v1.NodeSystemInfo"},
};

constexpr FieldRule kEvent[] = {
    {"involvedObject", "", Accepts::kObject, "v1.ObjectReference"},
    {"involvedObject.kind", "ObjectReference", Accepts::kString, "string"},
    {"involvedObject.namespace", "ObjectReference", Accepts::kString, "string"},
    {"involvedObject.name", "ObjectReference", Accepts::kString, "string"},
    {"involvedObject.uid", "ObjectReference", Accepts::kString, "types.UID"},
    {"involvedObject.apiVersion", "ObjectReference", Accepts::kString, "string"},
    {"involvedObject.resourceVersion", "ObjectReference", Accepts::kString, "string"},
    {"involvedObject.fieldPath", "ObjectReference", Accepts::kString, "string"},
    {"reason", "", Accepts::kString, "string"},
    {"message", "", Accepts::kString, "string"},
    {"source", "", Accepts::kObject, "v1.EventSource"},
    {"source.component", "EventSource", Accepts::kString, "string"},
    {"source.host", "EventSource", Accepts::kString, "string"},
    {"firstTimestamp", "", Accepts::kTime, "v1.Time"},
    {"lastTimestamp", "", Accepts::kTime, "v1.Time"},
    {"count", "", Accepts::kInt32, "int32"},
    {"type", "", Accepts::kString, "string"},
    {"eventTime", "", Accepts::kTime, "v1.MicroTime"},
    {"action", "", Accepts::kString, "string"},
    {"reportingComponent", "", Accepts::kString, "string"},
    {"reportingInstance", "", Accepts::kString, "string"},
};

constexpr FieldRule kPodDisruptionBudget[] = {
    {"spec", "", Accepts::kObject, "v1.PodDisruptionBudgetSpec"},
    {"spec.minAvailable", "PodDisruptionBudgetSpec", Accepts::kIntOrString, "intstr.IntOrString"},
    {"spec.maxUnavailable", "PodDisruptionBudgetSpec", Accepts::kIntOrString, "intstr.IntOrString"},
    {"spec.selector", "PodDisruptionBudgetSpec", Accepts::kObject, "v1.LabelSelector"},
    {"spec.selector.matchLabels", "LabelSelector", Accepts::kStringMap, "map[string]string"},
};

constexpr FieldRule kPriorityClass[] = {
    {"value", "", Accepts::kInt32, "int32"},
    {"globalDefault", "", Accepts::kBool, "bool"},
    {"description", "", Accepts::kString, "string"},
    {"preemptionPolicy", "", Accepts::kString, "v1.PreemptionPolicy"},
};

std::span<const FieldRule> KindRules(std::string_view group, std::string_view kind) {
  if (group.empty()) {
    if (kind == "ConfigMap") return kConfigMap;
    if (kind == "Secret") return kSecret;
    if (kind == "Pod") return kPod;
    if (kind == "Node") return kNode;
    if (kind == "Event") return kEvent;
  } else if (group == "coordination.k8s.io" && kind == "Lease") {
    return kLease;
  } else if (group == "policy" && kind == "PodDisruptionBudget") {
    return kPodDisruptionBudget;
  } else if (group == "scheduling.k8s.io" && kind == "PriorityClass") {
    return kPriorityClass;
  }
  return {};
}

bool IntegerWithin(const json& v, int64_t lo, int64_t hi) {
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(hi);
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    return i >= lo && i <= hi;
  }
  return false;
}

bool Int32(const json& v) {
  return IntegerWithin(v, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max());
}

// How encoding/json names a JSON value in "cannot unmarshal X": numbers that
// do not fit an integer type carry their literal.
std::string Describe(const json& v, Accepts target) {
  switch (v.type()) {
    case json::value_t::string:
      return "string";
    case json::value_t::boolean:
      return "bool";
    case json::value_t::object:
      return "object";
    case json::value_t::array:
      return "array";
    default:
      break;
  }
  if (target == Accepts::kInt32 || target == Accepts::kInt64 || target == Accepts::kIntOrString) {
    return "number " + v.dump();
  }
  return "number";
}

// Whether `v` (not null) decodes into the rule's type; on a mismatch inside a
// container, `bad` is the offending element and `element_type` its Go type.
bool Decodes(const json& v, Accepts accepts, const json** bad, std::string_view* element_type) {
  switch (accepts) {
    case Accepts::kString:
    case Accepts::kTime:
      return v.is_string();
    case Accepts::kInt32:
      return Int32(v);
    case Accepts::kInt64:
      return IntegerWithin(v, std::numeric_limits<int64_t>::min(),
                           std::numeric_limits<int64_t>::max());
    case Accepts::kBool:
      return v.is_boolean();
    case Accepts::kObject:
      return v.is_object();
    case Accepts::kIntOrString:
      return v.is_string() || Int32(v);
    case Accepts::kStringMap:
      if (!v.is_object()) return false;
      for (const auto& [key, value] : v.items()) {
        if (!value.is_null() && !value.is_string()) {
          *bad = &value;
          *element_type = "string";
          return false;
        }
      }
      return true;
    case Accepts::kStringList:
    case Accepts::kStructList: {
      if (!v.is_array()) return false;
      const bool strings = accepts == Accepts::kStringList;
      for (const json& element : v) {
        if (element.is_null() || (strings ? element.is_string() : element.is_object())) continue;
        *bad = &element;
        *element_type = strings ? "string" : "";
        return false;
      }
      return true;
    }
  }
  return false;
}

std::string WithoutListMarks(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path.compare(i, 2, "[]") == 0) {
      ++i;
      continue;
    }
    out += path[i];
  }
  return out;
}

// Collects the values at `path` under `node`, entering every element of a
// list step (a path ending in "[]" collects the elements). Parents of the wrong type are skipped:
// their own rule reports them.
void ValuesAt(const json& node, std::string_view path, std::vector<const json*>& out) {
  if (!node.is_object()) return;
  const std::size_t dot = path.find('.');
  std::string_view step = path.substr(0, dot);
  const bool list = step.ends_with("[]");
  if (list) step.remove_suffix(2);
  const auto it = node.find(std::string(step));
  if (it == node.end()) return;
  if (dot == std::string_view::npos && !list) {
    out.push_back(&*it);
    return;
  }
  if (!list) return ValuesAt(*it, path.substr(dot + 1), out);
  if (!it->is_array()) return;
  for (const json& element : *it) {
    if (dot == std::string_view::npos) {
      out.push_back(&element);
    } else {
      ValuesAt(element, path.substr(dot + 1), out);
    }
  }
}

// Checks `rules` against `node`, which sits at `prefix` in an object of kind
// `kind` ("" or "spec.containers." with its dot).
std::optional<std::string> CheckRules(std::span<const FieldRule> rules, std::string_view kind,
                                      const json& node, std::string_view prefix) {
  std::vector<const json*> values;
  for (const FieldRule& rule : rules) {
    values.clear();
    ValuesAt(node, rule.path, values);
    for (const json* v : values) {
      if (v->is_null()) continue;
      const json* bad = v;
      std::string_view go_type = rule.go_type;
      if (Decodes(*v, rule.accepts, &bad, &go_type)) continue;
      if (go_type.empty()) go_type = rule.go_type.substr(2);  // []v1.X: its element v1.X
      const Accepts described = bad == v ? rule.accepts : Accepts::kString;
      const std::string_view go_struct = rule.go_struct.empty() ? kind : rule.go_struct;
      return "json: cannot unmarshal " + Describe(*bad, described) + " into Go struct field " +
             std::string(go_struct) + "." + std::string(prefix) + WithoutListMarks(rule.path) +
             " of type " + std::string(go_type);
    }
  }
  return std::nullopt;
}

// A Pod's containers and init containers, each against kContainer.
std::optional<std::string> CheckContainers(const json& pod) {
  std::vector<const json*> containers;
  for (const char* list : {"spec.containers", "spec.initContainers"}) {
    containers.clear();
    ValuesAt(pod, std::string(list) + "[]", containers);
    const std::string prefix = std::string(list) + ".";
    for (const json* container : containers) {
      if (auto why = CheckRules(kContainer, "Pod", *container, prefix)) return why;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> BuiltinDecodeError(std::string_view group, std::string_view kind,
                                              const json& obj) {
  if (!obj.is_object()) return std::nullopt;
  if (auto why = CheckRules(kObjectMeta, kind, obj, "")) return why;
  if (auto why = CheckRules(KindRules(group, kind), kind, obj, "")) return why;
  if (group.empty() && kind == "Pod") return CheckContainers(obj);
  return std::nullopt;
}

}  // namespace gpu_autoscaler::apiserver
