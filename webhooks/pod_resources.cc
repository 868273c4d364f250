#include "webhooks/pod_resources.h"

#include "webhooks/json_patch_builder.h"
#include "webhooks/mutate.h"

namespace gpu_autoscaler::webhooks {
namespace {

using Entries = std::vector<std::pair<std::string, std::string>>;

std::map<std::string, std::string> ToMap(const Entries& list) {
  return {list.begin(), list.end()};
}

std::string ObjectJson(const std::map<std::string, std::string>& m) {
  std::string out = "{";
  for (const auto& [k, v] : m) {
    if (out.size() > 1) out.push_back(',');
    AppendJsonString(out, k);
    out.push_back(':');
    AppendJsonString(out, v);
  }
  out.push_back('}');
  return out;
}

void PatchContainer(const ContainerInfo& c, const ContainerResourceEdit& edit,
                    const std::string& base, JsonPatchBuilder& patch, ContainerInfo& after) {
  const auto old_requests = ToMap(c.core_requests);
  const auto old_limits = ToMap(c.core_limits);
  if (old_requests == edit.requests && old_limits == edit.limits) return;
  after.core_requests.assign(edit.requests.begin(), edit.requests.end());
  after.core_limits.assign(edit.limits.begin(), edit.limits.end());
  const std::string resources = base + "/resources";
  if (!c.has_resources) {
    std::string obj = "{";
    if (!edit.requests.empty()) obj += R"("requests":)" + ObjectJson(edit.requests);
    if (!edit.limits.empty()) {
      obj += std::string(obj.size() > 1 ? "," : "") + R"("limits":)" + ObjectJson(edit.limits);
    }
    obj.push_back('}');
    patch.Add(resources, obj);
    after.has_resources = true;
    after.has_requests = !edit.requests.empty();
    after.has_limits = !edit.limits.empty();
    return;
  }
  struct Section {
    const char* name;
    bool present;
    const std::map<std::string, std::string>& before;
    const std::map<std::string, std::string>& now;
    bool& after_present;
  };
  for (Section s :
       {Section{"requests", c.has_requests, old_requests, edit.requests, after.has_requests},
        Section{"limits", c.has_limits, old_limits, edit.limits, after.has_limits}}) {
    if (s.before == s.now) continue;
    const std::string dir = resources + "/" + s.name;
    if (!s.present) {
      if (s.now.empty()) continue;
      patch.Add(dir, ObjectJson(s.now));
      s.after_present = true;
      continue;
    }
    for (const auto& [k, v] : s.before) {
      if (!s.now.contains(k)) patch.Remove(dir + "/" + EscapeJsonPointerToken(k));
    }
    for (const auto& [k, v] : s.now) {
      auto old = s.before.find(k);
      if (old == s.before.end()) {
        patch.Add(dir + "/" + EscapeJsonPointerToken(k), JsonPatchString(v));
      } else if (old->second != v) {
        patch.Replace(dir + "/" + EscapeJsonPointerToken(k), JsonPatchString(v));
      }
    }
  }
}

}  // namespace

std::string CoreQuantity(const Entries& list, std::string_view name) {
  for (const auto& [k, v] : list)
    if (k == name) return v;
  return {};
}

PodResourceEdits PodResourceEdits::From(const PodInfo& pod) {
  PodResourceEdits e;
  for (const ContainerInfo& c : pod.containers)
    e.containers.push_back({ToMap(c.core_requests), ToMap(c.core_limits)});
  for (const ContainerInfo& c : pod.init_containers)
    e.init_containers.push_back({ToMap(c.core_requests), ToMap(c.core_limits)});
  return e;
}

std::string ResourcePatch(const PodInfo& pod, const PodResourceEdits& edits, PodInfo* after) {
  *after = pod;
  JsonPatchBuilder patch;
  for (size_t i = 0; i < pod.containers.size() && i < edits.containers.size(); ++i) {
    PatchContainer(pod.containers[i], edits.containers[i], "/spec/containers/" + std::to_string(i),
                   patch, after->containers[i]);
  }
  for (size_t i = 0; i < pod.init_containers.size() && i < edits.init_containers.size(); ++i) {
    PatchContainer(pod.init_containers[i], edits.init_containers[i],
                   "/spec/initContainers/" + std::to_string(i), patch, after->init_containers[i]);
  }
  std::map<std::string, std::string> changed;
  for (const auto& [k, v] : edits.annotations) {
    auto it = pod.annotations.find(k);
    if (it == pod.annotations.end() || it->second != v) changed[k] = v;
  }
  if (!changed.empty() && pod.has_metadata) {
    if (!pod.has_annotations) {
      patch.Add("/metadata/annotations", ObjectJson(changed));
      after->has_annotations = true;
    } else {
      for (const auto& [k, v] : changed)
        patch.Add("/metadata/annotations/" + EscapeJsonPointerToken(k), JsonPatchString(v));
    }
    for (const auto& [k, v] : changed)
      after->annotations[k] = v;
  }
  return std::move(patch).Finish();
}

}  // namespace gpu_autoscaler::webhooks
