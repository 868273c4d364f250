#include "node-agent/local_pods.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "kube/object_codec.h"
#include "kube/reflector.h"
#include "kube/resource.h"

namespace gpu_autoscaler::node_agent {

std::string_view QosLevelName(QosLevel level) {
  switch (level) {
    case QosLevel::kShared:
      return "shared_cores";
    case QosLevel::kDedicated:
      return "dedicated_cores";
    case QosLevel::kReclaimed:
      return "reclaimed_cores";
    case QosLevel::kSystem:
      return "system_cores";
    case QosLevel::kUnknown:
      return "unknown";
  }
  return "unknown";
}

QosLevel ParseQosLevel(std::string_view text) {
  if (text.empty() || text == "shared_cores") return QosLevel::kShared;
  if (text == "dedicated_cores") return QosLevel::kDedicated;
  if (text == "reclaimed_cores") return QosLevel::kReclaimed;
  if (text == "system_cores") return QosLevel::kSystem;
  return QosLevel::kUnknown;
}

std::string_view KubeQosClassName(KubeQosClass c) {
  switch (c) {
    case KubeQosClass::kBestEffort:
      return "BestEffort";
    case KubeQosClass::kBurstable:
      return "Burstable";
    case KubeQosClass::kGuaranteed:
      return "Guaranteed";
  }
  return "BestEffort";
}

namespace {

// Reads one enhancement annotation into key -> value; false when malformed.
bool ParseStringMap(std::string_view json, std::map<std::string, std::string>* out,
                    std::string* error, std::string_view what) {
  nlohmann::json doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    *error = std::string(what) + " is not a JSON object";
    return false;
  }
  for (const auto& [key, value] : doc.items()) {
    if (value.is_string()) {
      (*out)[key] = value.get<std::string>();
    } else if (value.is_boolean()) {
      (*out)[key] = value.get<bool>() ? "true" : "false";
    } else {
      *error = std::string(what) + "." + key + " is not a string";
      return false;
    }
  }
  return true;
}

ResourceAmounts Amounts(std::span<const kube::ResourceQuantity> list) {
  return {.cpu_millis = kube::FindQuantity(list, "cpu"),
          .memory_bytes = kube::FindQuantity(list, "memory"),
          .reclaimed_millicpu = kube::FindQuantity(list, kReclaimedMilliCpu),
          .reclaimed_memory_bytes = kube::FindQuantity(list, kReclaimedMemory)};
}

}  // namespace

QosEnhancements ParseEnhancements(std::optional<std::string_view> memory_json,
                                  std::optional<std::string_view> cpu_json) {
  QosEnhancements e;
  std::map<std::string, std::string> memory;
  std::map<std::string, std::string> cpu;
  if (memory_json && !ParseStringMap(*memory_json, &memory, &e.error, "memory_enhancement")) {
    memory.clear();
  }
  std::string cpu_error;
  if (cpu_json && !ParseStringMap(*cpu_json, &cpu, &cpu_error, "cpu_enhancement")) cpu.clear();
  if (!cpu_error.empty()) e.error += (e.error.empty() ? "" : "; ") + cpu_error;
  e.numa_binding = memory["numa_binding"] == "true";
  e.numa_exclusive = memory["numa_exclusive"] == "true";
  e.cpuset_pool = cpu["cpuset_pool"];
  if (e.cpuset_pool == "default") e.cpuset_pool.clear();
  e.numa_share = cpu["numa_share"] != "false";
  return e;
}

KubeQosClass ComputeKubeQosClass(const kube::PodView& pod) {
  // The kubelet's rule (pkg/apis/core/v1/helper/qos): BestEffort when no
  // container sets a cpu or memory request or limit; Guaranteed when every
  // container limits both and requests equal limits; Burstable otherwise.
  bool any = false;
  bool guaranteed = true;
  auto visit = [&](const kube::ContainerResources& c) {
    for (std::string_view r : {std::string_view("cpu"), std::string_view("memory")}) {
      const int64_t req = kube::FindQuantity(c.requests.span(), r);
      const int64_t lim = kube::FindQuantity(c.limits.span(), r);
      if (req != 0 || lim != 0) any = true;
      if (lim == 0 || (req != 0 && req != lim)) guaranteed = false;
    }
  };
  for (const auto& c : pod.containers())
    visit(c);
  for (const auto& c : pod.init_containers())
    visit(c);
  if (!any) return KubeQosClass::kBestEffort;
  return guaranteed ? KubeQosClass::kGuaranteed : KubeQosClass::kBurstable;
}

LocalPod MakeLocalPod(const kube::PodView& pod) {
  LocalPod p;
  p.uid = std::string(pod.uid());
  p.ns = std::string(pod.ns());
  p.name = std::string(pod.name());
  p.phase = pod.phase();
  p.priority = pod.priority();
  if (const kube::OwnerReference* owner = pod.controller_ref()) {
    p.owner_kind = std::string(owner->kind.view());
  }
  p.terminating = pod.terminating();
  p.qos_class = ComputeKubeQosClass(pod);
  p.qos_level_raw = std::string(pod.annotation(kQosLevelAnnotation).value_or(""));
  p.qos_level = ParseQosLevel(p.qos_level_raw);
  p.enhancements = ParseEnhancements(pod.annotation(kMemoryEnhancementAnnotation),
                                     pod.annotation(kCpuEnhancementAnnotation));
  for (const auto& c : pod.containers()) {
    p.containers.push_back({.name = std::string(c.name),
                            .requests = Amounts(c.requests.span()),
                            .limits = Amounts(c.limits.span())});
  }
  p.requests = {.cpu_millis = pod.Request("cpu"),
                .memory_bytes = pod.Request("memory"),
                .reclaimed_millicpu = pod.Request(kReclaimedMilliCpu),
                .reclaimed_memory_bytes = pod.Request(kReclaimedMemory)};
  p.limits = {.cpu_millis = pod.Limit("cpu"),
              .memory_bytes = pod.Limit("memory"),
              .reclaimed_millicpu = pod.Limit(kReclaimedMilliCpu),
              .reclaimed_memory_bytes = pod.Limit(kReclaimedMemory)};
  return p;
}

const LocalPod* LocalPodSnapshot::FindUid(std::string_view uid) const {
  auto it = by_uid.find(uid);
  return it == by_uid.end() ? nullptr : &pods[it->second];
}

LocalPodCache::LocalPodCache(kube::RestClient* client, LocalPodCacheOptions options)
    : options_(std::move(options)), snapshot_(std::make_shared<const LocalPodSnapshot>()) {
  if (client == nullptr) return;
  kube::InformerOptions informer_options;
  informer_options.clock = options_.clock;
  informer_options.field_selector = "spec.nodeName=" + options_.node_name;
  informer_ = std::make_shared<kube::SharedInformer<kube::PodView>>(
      kube::NewRestListerWatcher(client, kube::ObjectRef{kube::resources::kPods}, "",
                                 informer_options.field_selector),
      kube::PodViewCodec(), informer_options, "local pods of " + options_.node_name);
  informer_->AddEventHandler({.on_add = [this](const auto& pod) { Upsert(*pod); },
                              .on_update =
                                  [this](const auto& old_pod, const auto& pod) {
                                    if (old_pod != pod) Upsert(*pod);
                                  },
                              .on_delete = [this](const auto& pod, bool) { Remove(pod->uid()); }});
}

LocalPodCache::~LocalPodCache() {
  Stop();
}

void LocalPodCache::AddChangeHandler(ChangeHandler handler) {
  std::lock_guard<std::mutex> lock(mu_);
  handlers_.push_back(std::move(handler));
}

void LocalPodCache::Start() {
  if (informer_) informer_->Start();
}

void LocalPodCache::Stop() {
  if (informer_) informer_->Stop();
}

bool LocalPodCache::WaitForSync(std::stop_token stop, Clock::Duration timeout) {
  return informer_ == nullptr || informer_->WaitForSync(std::move(stop), timeout);
}

bool LocalPodCache::HasSynced() const {
  return informer_ == nullptr || informer_->HasSynced();
}

std::shared_ptr<const LocalPodSnapshot> LocalPodCache::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

uint64_t LocalPodCache::generation() const {
  return Snapshot()->generation;
}

std::optional<LocalPod> LocalPodCache::UidToPod(std::string_view uid) const {
  auto snap = Snapshot();
  const LocalPod* p = snap->FindUid(uid);
  return p == nullptr ? std::nullopt : std::optional<LocalPod>(*p);
}

void LocalPodCache::Upsert(const kube::PodView& pod) {
  if (!options_.node_name.empty() && pod.node_name() != options_.node_name) return;
  LocalPod local = MakeLocalPod(pod);
  std::lock_guard<std::mutex> publish(publish_mu_);
  std::map<std::string, LocalPod, std::less<>> next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pods_.find(local.uid);
    if (it != pods_.end() && it->second == local) return;  // nothing we read changed
    next = pods_;
  }
  next[local.uid] = std::move(local);
  Publish(std::move(next));
}

void LocalPodCache::Remove(std::string_view uid) {
  std::lock_guard<std::mutex> publish(publish_mu_);
  std::map<std::string, LocalPod, std::less<>> next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pods_.find(uid) == pods_.end()) return;
    next = pods_;
  }
  next.erase(next.find(uid));
  Publish(std::move(next));
}

void LocalPodCache::Publish(std::map<std::string, LocalPod, std::less<>> next) {
  auto snap = std::make_shared<LocalPodSnapshot>();
  std::vector<ChangeHandler> handlers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    snap->generation = snapshot_->generation + 1;
    pods_ = std::move(next);
    handlers = handlers_;
  }
  for (const auto& [uid, pod] : pods_)
    snap->pods.push_back(pod);
  std::sort(snap->pods.begin(), snap->pods.end(), [](const LocalPod& a, const LocalPod& b) {
    return std::tie(a.ns, a.name, a.uid) < std::tie(b.ns, b.name, b.uid);
  });
  for (size_t i = 0; i < snap->pods.size(); ++i)
    snap->by_uid.emplace(snap->pods[i].uid, i);
  const uint64_t generation = snap->generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_ = std::move(snap);
  }
  for (const auto& h : handlers)
    h(generation);
}

}  // namespace gpu_autoscaler::node_agent
