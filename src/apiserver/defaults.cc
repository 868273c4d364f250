#include "apiserver/defaults.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "apiserver/defaults_batch.h"
#include "apiserver/priority_admission.h"
#include "kube/quantity.h"

namespace gpu_autoscaler::apiserver {
namespace {

using json = nlohmann::json;

// Sets obj[key] = value unless the key holds a non-null value already.
void Default(json& obj, const char* key, json value) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) obj[key] = std::move(value);
}

// The object at obj[key], created when missing or null; null when obj[key]
// holds something else (validation reports that).
json* Child(json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    obj[key] = json::object();
    return &obj[key];
  }
  return it->is_object() ? &*it : nullptr;
}

json* ExistingObject(json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_object() ? &*it : nullptr;
}

// parsers.ParseImageName: no tag (and no digest) means ":latest".
bool ImageIsLatest(const std::string& image) {
  if (image.find('@') != std::string::npos) return false;
  const std::size_t slash = image.rfind('/');
  const std::size_t colon = image.rfind(':');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) return true;
  return image.substr(colon + 1) == "latest";
}

void DefaultHttpGet(json& handler) {
  json* get = ExistingObject(handler, "httpGet");
  if (get == nullptr) return;
  Default(*get, "path", "/");
  Default(*get, "scheme", "HTTP");
}

void DefaultProbe(json& container, const char* name) {
  json* probe = ExistingObject(container, name);
  if (probe == nullptr) return;
  Default(*probe, "timeoutSeconds", 1);
  Default(*probe, "periodSeconds", 10);
  Default(*probe, "successThreshold", 1);
  Default(*probe, "failureThreshold", 3);
  DefaultHttpGet(*probe);
}

// SetDefaults_Container and friends.
void DefaultContainer(json& c) {
  if (auto image = c.find("image"); image != c.end() && image->is_string()) {
    Default(c, "imagePullPolicy",
            ImageIsLatest(image->get<std::string>()) ? "Always" : "IfNotPresent");
  }
  Default(c, "terminationMessagePath", "/dev/termination-log");
  Default(c, "terminationMessagePolicy", "File");
  Default(c, "resources", json::object());  // a non-pointer struct in Go
  if (auto ports = c.find("ports"); ports != c.end() && ports->is_array()) {
    for (json& port : *ports) {
      if (port.is_object()) Default(port, "protocol", "TCP");
    }
  }
  if (auto env = c.find("env"); env != c.end() && env->is_array()) {
    for (json& var : *env) {
      if (!var.is_object()) continue;
      json* from = ExistingObject(var, "valueFrom");
      json* field_ref = from != nullptr ? ExistingObject(*from, "fieldRef") : nullptr;
      if (field_ref != nullptr) Default(*field_ref, "apiVersion", "v1");
    }
  }
  DefaultProbe(c, "livenessProbe");
  DefaultProbe(c, "readinessProbe");
  DefaultProbe(c, "startupProbe");
  if (json* lifecycle = ExistingObject(c, "lifecycle")) {
    for (const char* hook : {"postStart", "preStop"}) {
      if (json* handler = ExistingObject(*lifecycle, hook)) DefaultHttpGet(*handler);
    }
  }
}

void DefaultVolume(json& v) {
  static const char* kSources[] = {"hostPath",
                                   "emptyDir",
                                   "gcePersistentDisk",
                                   "awsElasticBlockStore",
                                   "gitRepo",
                                   "secret",
                                   "nfs",
                                   "iscsi",
                                   "glusterfs",
                                   "persistentVolumeClaim",
                                   "rbd",
                                   "flexVolume",
                                   "cinder",
                                   "cephfs",
                                   "flocker",
                                   "downwardAPI",
                                   "fc",
                                   "azureFile",
                                   "configMap",
                                   "vsphereVolume",
                                   "quobyte",
                                   "azureDisk",
                                   "photonPersistentDisk",
                                   "projected",
                                   "portworxVolume",
                                   "scaleIO",
                                   "storageos",
                                   "csi",
                                   "ephemeral"};
  bool has_source = false;
  for (const char* source : kSources)
    has_source = has_source || v.contains(source);
  if (!has_source) v["emptyDir"] = json::object();
  for (const char* source : {"secret", "configMap", "projected", "downwardAPI"}) {
    if (json* s = ExistingObject(v, source)) Default(*s, "defaultMode", 420);
  }
  if (json* host_path = ExistingObject(v, "hostPath")) Default(*host_path, "type", "");
}

// SetDefaults_PodSpec (also used for pod templates).
void DefaultPodSpec(json& spec) {
  Default(spec, "dnsPolicy", "ClusterFirst");
  Default(spec, "restartPolicy", "Always");
  Default(spec, "terminationGracePeriodSeconds", 30);
  Default(spec, "securityContext", json::object());
  Default(spec, "schedulerName", "default-scheduler");
  const bool host_network = spec.value("hostNetwork", false) == true;
  for (const char* list : {"containers", "initContainers", "ephemeralContainers"}) {
    auto it = spec.find(list);
    if (it == spec.end() || !it->is_array()) continue;
    for (json& c : *it) {
      if (!c.is_object()) continue;
      DefaultContainer(c);
      if (!host_network) continue;
      if (auto ports = c.find("ports"); ports != c.end() && ports->is_array()) {
        for (json& port : *ports) {
          if (port.is_object() && port.contains("containerPort")) {
            Default(port, "hostPort", port["containerPort"]);
          }
        }
      }
    }
  }
  if (auto volumes = spec.find("volumes"); volumes != spec.end() && volumes->is_array()) {
    for (json& v : *volumes) {
      if (v.is_object()) DefaultVolume(v);
    }
  }
}

// SetDefaults_Pod: requests default to limits, per resource.
void DefaultRequestsFromLimits(json& spec) {
  for (const char* list : {"containers", "initContainers"}) {
    auto it = spec.find(list);
    if (it == spec.end() || !it->is_array()) continue;
    for (json& c : *it) {
      if (!c.is_object()) continue;
      json* resources = ExistingObject(c, "resources");
      json* limits = resources != nullptr ? ExistingObject(*resources, "limits") : nullptr;
      if (limits == nullptr) continue;
      json* requests = Child(*resources, "requests");
      if (requests == nullptr) continue;
      for (const auto& [name, amount] : limits->items()) {
        if (!requests->contains(name)) (*requests)[name] = amount;
      }
    }
  }
}

// Go drops empty `omitempty` maps and slices when it serializes a decoded
// body, so `labels: {}` or `volumes: []` never reach storage.
void DropEmptyOmitEmptyMetadata(json& obj) {
  json* meta = ExistingObject(obj, "metadata");
  if (meta == nullptr) return;
  for (const char* field : {"labels", "annotations", "finalizers", "ownerReferences"}) {
    auto it = meta->find(field);
    if (it != meta->end() && (it->is_null() || (it->is_structured() && it->empty()))) {
      meta->erase(it);
    }
  }
}

void DropEmptyInPodSpec(json& v, int depth) {
  if (depth > 64 || !v.is_structured()) return;
  if (v.is_array()) {
    for (json& e : v)
      DropEmptyInPodSpec(e, depth + 1);
    return;
  }
  for (auto it = v.begin(); it != v.end();) {
    const bool empty_map =
        it->is_object() && it->empty() &&
        (it.key() == "nodeSelector" || it.key() == "limits" || it.key() == "requests");
    const bool empty_list = it->is_array() && it->empty() && it.key() != "containers";
    if (empty_map || empty_list) {
      it = v.erase(it);
    } else {
      DropEmptyInPodSpec(*it, depth + 1);
      ++it;
    }
  }
}

void DecodeDefaultsPod(json& pod) {
  json* spec = Child(pod, "spec");
  if (spec == nullptr) return;
  DropEmptyInPodSpec(*spec, 0);
  DefaultPodSpec(*spec);
  Default(*spec, "enableServiceLinks", true);
  DefaultRequestsFromLimits(*spec);
}

void DecodeDefaultsWorkload(std::string_view kind, json& obj) {
  json* spec = Child(obj, "spec");
  if (spec == nullptr) return;
  if (kind == "Deployment") {
    Default(*spec, "replicas", 1);
    Default(*spec, "revisionHistoryLimit", 10);
    Default(*spec, "progressDeadlineSeconds", 600);
    json* strategy = Child(*spec, "strategy");
    if (strategy != nullptr) {
      Default(*strategy, "type", "RollingUpdate");
      if ((*strategy)["type"] == "RollingUpdate") {
        json* rolling = Child(*strategy, "rollingUpdate");
        if (rolling != nullptr) {
          Default(*rolling, "maxUnavailable", "25%");
          Default(*rolling, "maxSurge", "25%");
        }
      }
    }
  }
  if (kind == "Job") defaults_internal::DecodeDefaultsJob(obj);
  json* tmpl = Child(*spec, "template");
  if (tmpl == nullptr) return;
  if (json* meta = Child(*tmpl, "metadata")) Default(*meta, "creationTimestamp", nullptr);
  if (json* pod_spec = Child(*tmpl, "spec")) {
    DropEmptyInPodSpec(*pod_spec, 0);
    DefaultPodSpec(*pod_spec);
  }
}

void DecodeDefaultsEvent(json& event) {
  // Fields without omitempty in core/v1 Event: Go always serializes them.
  Default(event, "involvedObject", json::object());
  Default(event, "source", json::object());
  if (!event.contains("firstTimestamp")) event["firstTimestamp"] = nullptr;
  if (!event.contains("lastTimestamp")) event["lastTimestamp"] = nullptr;
  if (!event.contains("eventTime")) event["eventTime"] = nullptr;
  Default(event, "reportingComponent", "");
  Default(event, "reportingInstance", "");
}

void DecodeDefaultsCrd(json& crd) {
  json* spec = Child(crd, "spec");
  if (spec == nullptr) return;
  Default(*spec, "conversion", json{{"strategy", "None"}});
  // SetDefaults_CustomResourceDefinition records the storage version.
  json* status = Child(crd, "status");
  if (status == nullptr) return;
  auto stored = status->find("storedVersions");
  if (stored != status->end() && stored->is_array() && !stored->empty()) return;
  auto versions = spec->find("versions");
  if (versions == spec->end() || !versions->is_array()) return;
  for (const json& v : *versions) {
    if (v.is_object() && v.value("storage", false) == true && v.contains("name")) {
      (*status)["storedVersions"] = json::array({v["name"]});
      return;
    }
  }
}

// SetDefaults_PriorityClass, and how Go renders the v1 type: `value` has no
// omitempty (absent reads as 0); `globalDefault` and `description` do.
void DecodeDefaultsPriorityClass(json& pc) {
  Default(pc, "value", 0);
  Default(pc, "preemptionPolicy", "PreemptLowerPriority");
  for (auto [key, zero] : {std::pair<const char*, json>{"globalDefault", false},
                           std::pair<const char*, json>{"description", ""}}) {
    auto it = pc.find(key);
    if (it != pc.end() && (it->is_null() || *it == zero)) pc.erase(it);
  }
}

// DefaultTolerationSeconds admission plugin.
void AddDefaultTolerations(json& spec) {
  json* tolerations = nullptr;
  auto it = spec.find("tolerations");
  if (it == spec.end() || it->is_null()) {
    spec["tolerations"] = json::array();
    tolerations = &spec["tolerations"];
  } else if (it->is_array()) {
    tolerations = &*it;
  } else {
    return;
  }
  bool not_ready = false;
  bool unreachable = false;
  for (const json& t : *tolerations) {
    if (!t.is_object()) continue;
    const std::string key = t.value("key", "");
    const std::string effect = t.value("effect", "");
    if (effect != "NoExecute" && !effect.empty()) continue;
    not_ready = not_ready || key.empty() || key == "node.kubernetes.io/not-ready";
    unreachable = unreachable || key.empty() || key == "node.kubernetes.io/unreachable";
  }
  for (auto [tolerated, key] : {std::pair{not_ready, "node.kubernetes.io/not-ready"},
                                std::pair{unreachable, "node.kubernetes.io/unreachable"}}) {
    if (tolerated) continue;
    tolerations->push_back({{"key", key},
                            {"operator", "Exists"},
                            {"effect", "NoExecute"},
                            {"tolerationSeconds", 300}});
  }
  if (tolerations->empty()) spec.erase("tolerations");
}

void AdmitPod(json& pod) {
  json* spec = Child(pod, "spec");
  if (spec == nullptr) return;
  // ServiceAccount plugin; v1 mirrors the name into the deprecated field.
  Default(*spec, "serviceAccountName", "default");
  if ((*spec)["serviceAccountName"] == "") (*spec)["serviceAccountName"] = "default";
  (*spec)["serviceAccount"] = (*spec)["serviceAccountName"];
  // Priority plugin: the server resolves spec.priority from its stored
  // PriorityClasses before this runs (so this only fills what is absent);
  // without a server, from the classes every server starts with.
  if (auto p = spec->find("priority"); p == spec->end() || p->is_null()) {
    (void)AdmitPodPriority(pod, SystemPriorityClassLookup());
  }
  Default(*spec, "priority", 0);
  Default(*spec, "preemptionPolicy", "PreemptLowerPriority");
  AddDefaultTolerations(*spec);
}

bool Is(std::string_view group, std::string_view kind, std::string_view want_group,
        std::string_view want_kind) {
  return group == want_group && kind == want_kind;
}

bool IsBuiltinGroup(std::string_view group) {
  static const std::set<std::string_view> kGroups = {"",
                                                     "apps",
                                                     "batch",
                                                     "policy",
                                                     "coordination.k8s.io",
                                                     "apiextensions.k8s.io",
                                                     "events.k8s.io",
                                                     "autoscaling",
                                                     "networking.k8s.io",
                                                     "rbac.authorization.k8s.io",
                                                     "scheduling.k8s.io",
                                                     "storage.k8s.io"};
  return kGroups.count(group) > 0;
}

bool IsWorkload(std::string_view group, std::string_view kind) {
  if (group == "apps") {
    return kind == "Deployment" || kind == "ReplicaSet" || kind == "StatefulSet" ||
           kind == "DaemonSet";
  }
  return (group == "batch" && kind == "Job") || (group.empty() && kind == "ReplicationController");
}

// Sum of cpu/memory amounts per resource; only positive amounts count.
void AddAmounts(const json* list, std::map<std::string, int64_t>& totals,
                std::set<std::string>* found) {
  if (list == nullptr || !list->is_object()) return;
  for (const auto& [name, amount] : list->items()) {
    if (name != "cpu" && name != "memory") continue;
    std::string text = amount.is_string() ? amount.get<std::string>() : amount.dump();
    auto parsed = kube::ResourceAmount(name, text);
    if (!parsed.ok() || *parsed <= 0) continue;
    totals[name] += *parsed;
    if (found != nullptr) found->insert(name);
  }
}

// Stage 3 fills only what is absent, so that calling it again on an update
// (where the server carries the stored status over) changes nothing. On a real
// create the status is absent: the server drops it for kinds with a status
// subresource.
bool Absent(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() || (it->is_object() && it->empty());
}

}  // namespace

std::string_view PodQosClass(const json& pod_spec) {
  std::map<std::string, int64_t> requests;
  std::map<std::string, int64_t> limits;
  bool guaranteed = true;
  for (const char* list : {"containers", "initContainers"}) {
    auto it = pod_spec.find(list);
    if (it == pod_spec.end() || !it->is_array()) continue;
    for (const json& c : *it) {
      if (!c.is_object()) continue;
      auto resources = c.find("resources");
      if (resources == c.end() || !resources->is_object()) {
        guaranteed = false;
        continue;
      }
      auto find = [&](const char* key) -> const json* {
        auto r = resources->find(key);
        return r == resources->end() ? nullptr : &*r;
      };
      AddAmounts(find("requests"), requests, nullptr);
      std::set<std::string> limits_found;
      AddAmounts(find("limits"), limits, &limits_found);
      if (limits_found.size() != 2) guaranteed = false;
    }
  }
  if (requests.empty() && limits.empty()) return "BestEffort";
  if (guaranteed) {
    for (const auto& [name, amount] : requests) {
      auto limit = limits.find(name);
      if (limit == limits.end() || limit->second != amount) guaranteed = false;
    }
  }
  if (guaranteed && requests.size() == limits.size()) return "Guaranteed";
  return "Burstable";
}

void ApplyDecodeDefaults(std::string_view group, std::string_view kind, json& obj) {
  if (!obj.is_object()) return;
  try {
    if (IsBuiltinGroup(group)) DropEmptyOmitEmptyMetadata(obj);
    if (Is(group, kind, "", "Pod")) {
      DecodeDefaultsPod(obj);
    } else if (Is(group, kind, "", "Namespace")) {
      if (json* status = Child(obj, "status")) Default(*status, "phase", "Active");
    } else if (Is(group, kind, "", "Event")) {
      DecodeDefaultsEvent(obj);
    } else if (Is(group, kind, "apiextensions.k8s.io", "CustomResourceDefinition")) {
      DecodeDefaultsCrd(obj);
    } else if (Is(group, kind, "scheduling.k8s.io", "PriorityClass")) {
      DecodeDefaultsPriorityClass(obj);
    } else if (IsWorkload(group, kind)) {
      DecodeDefaultsWorkload(kind, obj);
    }
  } catch (const json::exception&) {
    // A body of the wrong shape is left for validation to report.
  }
}

void ApplyAdmissionDefaults(std::string_view group, std::string_view kind, json& obj) {
  if (!obj.is_object()) return;
  try {
    if (Is(group, kind, "", "Pod")) AdmitPod(obj);
  } catch (const json::exception&) {
  }
}

void PrepareForCreate(std::string_view group, std::string_view kind, json& obj) {
  if (!obj.is_object()) return;
  try {
    if (Is(group, kind, "", "Pod")) {
      if (!Absent(obj, "status")) return;
      const json* spec = ExistingObject(obj, "spec");
      obj["status"] = {{"phase", "Pending"},
                       {"qosClass", spec != nullptr ? PodQosClass(*spec) : "BestEffort"}};
    } else if (Is(group, kind, "", "Namespace")) {
      json* spec = Child(obj, "spec");
      if (spec != nullptr && !spec->contains("finalizers")) {
        (*spec)["finalizers"] = json::array({"kubernetes"});
      }
    } else if (Is(group, kind, "policy", "PodDisruptionBudget")) {
      if (!Absent(obj, "status")) return;
      obj["status"] = {{"currentHealthy", 0},
                       {"desiredHealthy", 0},
                       {"disruptionsAllowed", 0},
                       {"expectedPods", 0}};
    } else if (Is(group, kind, "apiextensions.k8s.io", "CustomResourceDefinition")) {
      json* status = Child(obj, "status");
      if (status == nullptr) return;
      Default(*status, "acceptedNames", json{{"kind", ""}, {"plural", ""}});
      if (!status->contains("conditions")) (*status)["conditions"] = nullptr;
      json stored = json::array();
      if (const json* spec = ExistingObject(obj, "spec")) {
        if (auto versions = spec->find("versions");
            versions != spec->end() && versions->is_array()) {
          for (const json& v : *versions) {
            if (v.is_object() && v.value("storage", false) == true && v.contains("name")) {
              stored.push_back(v["name"]);
            }
          }
        }
      }
      Default(*status, "storedVersions", std::move(stored));
    } else if (IsWorkload(group, kind)) {
      Default(obj, "status", json::object());
    }
  } catch (const json::exception&) {
  }
}

void PrepareForValidation(std::string_view group, std::string_view kind, json& obj) {
  try {
    if (Is(group, kind, "batch", "Job")) defaults_internal::GenerateJobSelector(obj);
  } catch (const json::exception&) {
  }
}

void ApplyDefaults(std::string_view group, std::string_view kind, json& obj) {
  ApplyDecodeDefaults(group, kind, obj);
  ApplyAdmissionDefaults(group, kind, obj);
  PrepareForCreate(group, kind, obj);
}

bool TracksGeneration(std::string_view group, std::string_view kind) {
  if (group.empty()) {
    return kind == "ReplicationController";
  }
  if (group == "coordination.k8s.io" || group == "events.k8s.io") return false;
  return true;
}

void MarkCrdEstablished(json& crd, std::string_view time) {
  if (!crd.is_object()) return;
  try {
    json accepted = json::object();
    if (const json* spec = ExistingObject(crd, "spec")) {
      if (auto names = spec->find("names"); names != spec->end() && names->is_object()) {
        accepted = *names;
      }
    }
    Default(accepted, "kind", "");
    Default(accepted, "plural", "");
    json* status = Child(crd, "status");
    if (status == nullptr) return;
    (*status)["acceptedNames"] = std::move(accepted);
    const std::string at(time);
    (*status)["conditions"] = json::array({
        {{"type", "NamesAccepted"},
         {"status", "True"},
         {"lastTransitionTime", at},
         {"reason", "NoConflicts"},
         {"message", "no conflicts found"}},
        {{"type", "Established"},
         {"status", "True"},
         {"lastTransitionTime", at},
         {"reason", "InitialNamesAccepted"},
         {"message", "the initial names have been accepted"}},
    });
  } catch (const json::exception&) {
  }
}

}  // namespace gpu_autoscaler::apiserver
