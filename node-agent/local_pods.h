// File: node-agent/local_pods.h
//
// The pods bound to this node, from one pod informer with fieldSelector
// spec.nodeName=<node>, as plain value structs (LocalPod) that the QoS pool
// planner, the PSI evictor and the per-pod GPU attribution read: identity,
// phase, priority, owner kind, the Kubernetes QoS class, Katalyst's QoS level
// (katalyst.kubewharf.io/qos_level) and enhancements, and each container's
// cpu/memory/reclaimed_* requests and limits.
//
//   LocalPodCache pods(client, {.node_name = "gpu-1"});
//   pods.AddChangeHandler([&](uint64_t generation) { wake_planner(); });
//   pods.Start();
//   pods.WaitForSync(stop, 60s);
//   auto snap = pods.Snapshot();           // immutable, sorted by namespace/name
//   for (const LocalPod& p : snap->pods) ...
//   std::optional<LocalPod> p = pods.UidToPod("4f1c...");
//
// Katalyst's default applies: a pod without a qos_level annotation is
// shared_cores. An unrecognised value is kept as QosLevel::kUnknown with the
// raw text so callers can report it (the planner treats it as shared_cores).
// Tests feed pods through Upsert/Remove without an informer.
//
// Thread-safety: every public method is safe from any thread. Change handlers
// run on the informer's dispatch thread (or the caller of Upsert/Remove), one
// at a time, after the new snapshot is visible; they must not block.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "kube/pod_view.h"
#include "kube/shared_informer.h"

namespace gpu_autoscaler::kube {
class RestClient;
}

namespace gpu_autoscaler::node_agent {

// Katalyst's annotation keys and resource names (katalyst-api pkg/consts).
inline constexpr std::string_view kQosLevelAnnotation = "katalyst.kubewharf.io/qos_level";
inline constexpr std::string_view kMemoryEnhancementAnnotation =
    "katalyst.kubewharf.io/memory_enhancement";
inline constexpr std::string_view kCpuEnhancementAnnotation =
    "katalyst.kubewharf.io/cpu_enhancement";
inline constexpr std::string_view kReclaimedMilliCpu =
    "resource.katalyst.kubewharf.io/reclaimed_millicpu";
inline constexpr std::string_view kReclaimedMemory =
    "resource.katalyst.kubewharf.io/reclaimed_memory";

enum class QosLevel : uint8_t { kShared, kDedicated, kReclaimed, kSystem, kUnknown };
// "shared_cores", "dedicated_cores", "reclaimed_cores", "system_cores", "unknown".
std::string_view QosLevelName(QosLevel level);
// "" (no annotation) is shared_cores; anything unrecognised is kUnknown.
QosLevel ParseQosLevel(std::string_view text);

enum class KubeQosClass : uint8_t { kBestEffort, kBurstable, kGuaranteed };
std::string_view KubeQosClassName(KubeQosClass c);  // "BestEffort", "Burstable", "Guaranteed"

struct QosEnhancements {
  bool numa_binding = false;    // memory_enhancement
  bool numa_exclusive = false;  // memory_enhancement
  std::string cpuset_pool{};    // cpu_enhancement; "" means the default pool
  bool numa_share = true;       // cpu_enhancement numa_share:"false" forbids it
  std::string error{};          // a malformed enhancement annotation, for reporting
  friend bool operator==(const QosEnhancements&, const QosEnhancements&) = default;
};

// Parses the two enhancement annotations (JSON objects of string to string);
// a value that is not such an object leaves the defaults and sets `error`.
QosEnhancements ParseEnhancements(std::optional<std::string_view> memory_json,
                                  std::optional<std::string_view> cpu_json);

// Amounts: cpu and reclaimed_millicpu in millicores, memory and
// reclaimed_memory in bytes. 0 when absent.
struct ResourceAmounts {
  int64_t cpu_millis = 0;
  int64_t memory_bytes = 0;
  int64_t reclaimed_millicpu = 0;
  int64_t reclaimed_memory_bytes = 0;
  friend bool operator==(const ResourceAmounts&, const ResourceAmounts&) = default;
};

struct LocalContainer {
  std::string name{};
  ResourceAmounts requests{};
  ResourceAmounts limits{};
  friend bool operator==(const LocalContainer&, const LocalContainer&) = default;
};

struct LocalPod {
  std::string uid{};
  std::string ns{};
  std::string name{};
  kube::PodPhase phase = kube::PodPhase::kUnknown;
  std::optional<int32_t> priority{};
  std::string owner_kind{};  // the controller owner's kind, "" for a bare pod
  bool terminating = false;
  KubeQosClass qos_class = KubeQosClass::kBestEffort;
  QosLevel qos_level = QosLevel::kShared;
  std::string qos_level_raw{};  // the annotation as written ("" when absent)
  QosEnhancements enhancements{};
  std::vector<LocalContainer> containers{};
  // The pod's effective amounts, as the scheduler counts them: max(sum of
  // containers, largest init container).
  ResourceAmounts requests{};
  ResourceAmounts limits{};

  // True while the pod holds node resources (not Succeeded or Failed).
  bool Active() const {
    return phase != kube::PodPhase::kSucceeded && phase != kube::PodPhase::kFailed;
  }
  friend bool operator==(const LocalPod&, const LocalPod&) = default;
};

// The Kubernetes QoS class computed from the pod's containers (the kubelet's
// rule; status.qosClass is not needed).
KubeQosClass ComputeKubeQosClass(const kube::PodView& pod);
LocalPod MakeLocalPod(const kube::PodView& pod);

struct LocalPodSnapshot {
  uint64_t generation = 0;       // bumps on every change to the set or a pod
  std::vector<LocalPod> pods{};  // sorted by namespace, then name
  std::map<std::string, size_t, std::less<>> by_uid{};

  const LocalPod* FindUid(std::string_view uid) const;
};

struct LocalPodCacheOptions {
  std::string node_name{};
  Clock* clock = &RealClock::Instance();
};

class LocalPodCache {
 public:
  using ChangeHandler = std::function<void(uint64_t generation)>;

  // `client` may be null: then Start does nothing and only Upsert/Remove feed
  // the cache (unit tests).
  LocalPodCache(kube::RestClient* client, LocalPodCacheOptions options);
  ~LocalPodCache();
  LocalPodCache(const LocalPodCache&) = delete;
  LocalPodCache& operator=(const LocalPodCache&) = delete;

  // Registers a handler called after every change. Register before Start.
  void AddChangeHandler(ChangeHandler handler);

  void Start();
  void Stop();
  bool WaitForSync(std::stop_token stop, Clock::Duration timeout);
  bool HasSynced() const;

  std::shared_ptr<const LocalPodSnapshot> Snapshot() const;
  uint64_t generation() const;
  std::optional<LocalPod> UidToPod(std::string_view uid) const;

  // Feeds the cache directly. A pod bound to another node is ignored.
  void Upsert(const kube::PodView& pod);
  void Remove(std::string_view uid);

 private:
  void Publish(std::map<std::string, LocalPod, std::less<>> next);

  const LocalPodCacheOptions options_;
  std::shared_ptr<kube::SharedInformer<kube::PodView>> informer_;
  mutable std::mutex mu_;
  std::map<std::string, LocalPod, std::less<>> pods_;  // by uid; guarded by mu_
  std::shared_ptr<const LocalPodSnapshot> snapshot_;   // guarded by mu_
  std::vector<ChangeHandler> handlers_;                // guarded by mu_
  std::mutex publish_mu_;                              // serializes writers and handlers
};

}  // namespace gpu_autoscaler::node_agent
