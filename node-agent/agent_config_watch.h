// File: node-agent/agent_config_watch.h
//
// Keeps the node agent's configuration (agent_config.h) in step with its
// ConfigMap (--config-map=NAMESPACE/NAME, key config.yaml), through an
// informer on that one ConfigMap (fieldSelector metadata.name), so a change
// applies without a restart:
//   - a valid new version replaces the configuration in force and calls the
//     change handlers (a log line and the metric; no Event, since every
//     node's agent would add one);
//   - a bad one (bad YAML, unknown field, negative window, disarmBelow above
//     threshold, or no config.yaml key) is refused: a log line, a Warning
//     InvalidConfig Event on the ConfigMap naming the field, and the last
//     good configuration stays;
//   - no ConfigMap, or a deleted one, means the defaults.
// Metric: gpu_autoscaler_node_config_reloads_total{result="applied"|"rejected"}.
//
//   auto watch = AgentConfigWatch::Create(client, &recorder, registry, "gpu-system/agent-config");
//   (*watch)->OnChange([&](const AgentConfig& c) { evictor.SetConfig(c.pressure_eviction); });
//   (*watch)->Start();
//
// Thread-safety: current() and Apply() may be called from any thread; change
// handlers run on the informer's dispatch thread, one at a time. Register
// handlers before Start.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "node-agent/agent_config.h"

namespace prometheus {
class Registry;
template <typename T>
class Family;
class Counter;
}  // namespace prometheus

namespace gpu_autoscaler::kube {
class EventRecorder;
class InformerBase;
class RestClient;
}  // namespace gpu_autoscaler::kube

namespace gpu_autoscaler::node_agent {

class AgentConfigWatch {
 public:
  using ChangeHandler = std::function<void(const AgentConfig&)>;

  // `config_map` is "NAMESPACE/NAME", or "" for the defaults only. `client`
  // null: no informer (tests call Apply). `recorder` may be null.
  static Result<std::unique_ptr<AgentConfigWatch>> Create(kube::RestClient* client,
                                                          kube::EventRecorder* recorder,
                                                          prometheus::Registry& registry,
                                                          const std::string& config_map);
  ~AgentConfigWatch();

  void OnChange(ChangeHandler handler);
  void Start();
  bool HasSynced() const;

  AgentConfig current() const;

  // Applies one version of the ConfigMap (the informer's handler).
  Status Apply(const nlohmann::json& config_map);
  // The ConfigMap was deleted: back to the defaults.
  void Remove();

 private:
  AgentConfigWatch(kube::EventRecorder* recorder, prometheus::Registry& registry,
                   std::string config_map);
  void Publish(const AgentConfig& config);

  kube::EventRecorder* recorder_;
  const std::string config_map_;
  prometheus::Family<prometheus::Counter>& reloads_;
  std::shared_ptr<kube::InformerBase> informer_;
  mutable std::mutex mu_;
  AgentConfig current_;                  // guarded by mu_
  std::vector<ChangeHandler> handlers_;  // set before Start
};

}  // namespace gpu_autoscaler::node_agent
