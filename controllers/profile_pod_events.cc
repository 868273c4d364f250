#include "controllers/profile_pod_events.h"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "reconcile/informer_source.h"

namespace gpu_autoscaler::controllers {

std::string ProfileTargetKey(std::string_view ns, std::string_view kind, std::string_view name) {
  std::string key;
  key.reserve(ns.size() + kind.size() + name.size() + 2);
  key.append(ns).append("/").append(kind).append("/").append(name);
  return key;
}

kube::IndexFunc<kube::GenericObject> ProfileTargetIndexFunc() {
  return [](const kube::GenericObject& obj, std::vector<std::string>* values) {
    auto parsed = obj.Parse();
    if (!parsed.ok() || !parsed->is_object()) return;
    const nlohmann::json spec = parsed->value("spec", nlohmann::json::object());
    if (!spec.is_object()) return;
    const nlohmann::json ref = spec.value("targetRef", nlohmann::json::object());
    if (!ref.is_object()) return;
    const nlohmann::json kind = ref.value("kind", nlohmann::json());
    const nlohmann::json name = ref.value("name", nlohmann::json());
    if (!kind.is_string() || !name.is_string()) return;
    values->push_back(ProfileTargetKey(obj.ns(), kind.get<std::string>(), name.get<std::string>()));
  };
}

std::vector<std::string> PodTargetKeys(std::string_view ns,
                                       std::span<const reconcile::OwnerInfo> owners) {
  const bool any_controller = std::any_of(
      owners.begin(), owners.end(), [](const reconcile::OwnerInfo& o) { return o.controller; });
  std::vector<std::string> keys;
  for (const reconcile::OwnerInfo& o : owners) {
    if (any_controller && !o.controller) continue;
    if (o.kind.empty() || o.name.empty()) continue;
    keys.push_back(ProfileTargetKey(ns, o.kind, o.name));
    if (o.kind == "ReplicaSet") {
      const size_t dash = o.name.rfind('-');
      if (dash != std::string::npos && dash > 0 && dash + 1 < o.name.size()) {
        keys.push_back(
            ProfileTargetKey(ns, "Deployment", std::string_view(o.name).substr(0, dash)));
      }
    }
  }
  return keys;
}

namespace {

bool SameLabels(std::span<const kube::Label> a, std::span<const kube::Label> b) {
  if (a.size() != b.size()) return false;
  for (const kube::Label& l : a) {
    auto v = kube::FindLabel(b, l.key.view());
    if (!v || *v != l.value.view()) return false;
  }
  return true;
}

bool SameOwners(std::span<const kube::OwnerReference> a, std::span<const kube::OwnerReference> b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].uid != b[i].uid || a[i].kind.view() != b[i].kind.view() || a[i].name != b[i].name ||
        a[i].controller != b[i].controller) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool PodChangeMatters(const kube::PodView& before, const kube::PodView& after) {
  return before.phase() != after.phase() || before.terminating() != after.terminating() ||
         before.node_name() != after.node_name() || !SameLabels(before.labels(), after.labels()) ||
         !SameOwners(before.owner_references(), after.owner_references());
}

void ProfilePodSource::Subscribe(std::function<void(const reconcile::ChangedObject&)> on_change) {
  auto shared =
      std::make_shared<std::function<void(const reconcile::ChangedObject&)>>(std::move(on_change));
  using Ptr = kube::SharedInformer<kube::PodView>::ObjectPtr;
  informer_->AddEventHandler(kube::EventHandler<kube::PodView>{
      .on_add = [shared](const Ptr& pod) { (*shared)(reconcile::ToChangedObject(*pod)); },
      .on_update =
          [shared](const Ptr& before, const Ptr& after) {
            if (PodChangeMatters(*before, *after)) (*shared)(reconcile::ToChangedObject(*after));
          },
      .on_delete = [shared](const Ptr& pod, bool) { (*shared)(reconcile::ToChangedObject(*pod)); },
  });
}

reconcile::RequestMapper ProfilesOwningPod(const kube::Store<kube::GenericObject>& profiles) {
  return [&profiles](const reconcile::ChangedObject& pod) {
    std::vector<reconcile::Request> out;
    std::set<std::string> seen;
    for (const std::string& key : PodTargetKeys(pod.ns, pod.owners)) {
      for (const auto& profile : profiles.ByIndex(kProfilesByTargetIndex, key)) {
        std::string name(profile->name());
        if (seen.insert(name).second) out.push_back({std::string(profile->ns()), std::move(name)});
      }
    }
    return out;
  };
}

}  // namespace gpu_autoscaler::controllers
