// File: node-agent/reporter.h
//
// Writes what the node has to the API: the NodeResourceReport (object and
// status, by server-side apply with field manager gpu-autoscaler-node-agent)
// and the Node's gpuautoscaler.io/nvlink-islands label. Each Sync reads the
// Node (uid for the ownerReference, labels for the sharing mode), builds the
// inventory and applies only the documents that differ from what it applied
// last (and everything again every `resync`, in case someone deleted them).
//
//   Reporter reporter(client, {.node_name = "gpu-1", .nvml_library = lib});
//   Status s = reporter.Sync({.snapshot = last_good, .nvml_state = nvml->state(), ...});
//
// The NVMLAvailable condition is False, with the reason and NVML's error,
// while NVML is missing, failing or hung; True otherwise (its message lists
// per-GPU call failures, if any).
//
// Thread-safety: not thread-safe; one thread calls Sync. Counters may be
// read from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "kube/conditions.h"
#include "node-agent/inventory.h"
#include "node-agent/nvml/nvml_session.h"

namespace gpu_autoscaler::kube {
class RestClient;
}

namespace gpu_autoscaler::node_agent {

struct ReporterOptions {
  std::string node_name{};
  std::string nvml_library{};
  std::string sysfs_root = "/sys";
  std::chrono::seconds resync{600};
  Clock* clock = &RealClock::Instance();
};

struct SyncInput {
  // The last snapshot NVML gave (kept while NVML is hung or failing), or null.
  std::shared_ptr<const nvml::GpuSnapshot> snapshot{};
  nvml::NvmlState nvml_state = nvml::NvmlState::kNoLibrary;
  Status nvml_error{};
};

class Reporter {
 public:
  Reporter(kube::RestClient& client, ReporterOptions options);

  Status Sync(const SyncInput& input);

  uint64_t writes() const { return writes_.load(); }  // successful applies
  const Inventory& last_inventory() const { return inventory_; }

 private:
  Status Apply(const std::string& what, const std::string& body, std::string* last,
               int64_t* generation);
  std::vector<kube::ObjectCondition> Conditions(const SyncInput& input);

  kube::RestClient& client_;
  ReporterOptions options_;
  Inventory inventory_;
  std::string last_object_;
  std::string last_status_;
  std::string last_label_;
  bool label_known_ = false;
  int64_t generation_ = 0;
  Clock::TimePoint last_resync_{};
  std::map<std::string, kube::ObjectCondition> conditions_;
  std::atomic<uint64_t> writes_{0};
};

}  // namespace gpu_autoscaler::node_agent
