#include "node-agent/agent_config_watch.h"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <nlohmann/json.hpp>

#include "common/json_read.h"
#include "kube/event_recorder.h"
#include "kube/object_codec.h"
#include "kube/reflector.h"
#include "kube/resource.h"
#include "kube/shared_informer.h"
#include "reconcile/logging.h"

namespace gpu_autoscaler::node_agent {
namespace {

using nlohmann::json;
using reconcile::Log;
using reconcile::LogLevel;

}  // namespace

AgentConfigWatch::AgentConfigWatch(kube::EventRecorder* recorder, prometheus::Registry& registry,
                                   std::string config_map)
    : recorder_(recorder),
      config_map_(std::move(config_map)),
      reloads_(prometheus::BuildCounter()
                   .Name("gpu_autoscaler_node_config_reloads_total")
                   .Help("Versions of the agent's ConfigMap applied or rejected (a rejected one "
                         "keeps the last good configuration)")
                   .Register(registry)) {}

AgentConfigWatch::~AgentConfigWatch() {
  if (informer_) informer_->Stop();
}

Result<std::unique_ptr<AgentConfigWatch>> AgentConfigWatch::Create(kube::RestClient* client,
                                                                   kube::EventRecorder* recorder,
                                                                   prometheus::Registry& registry,
                                                                   const std::string& config_map) {
  if (config_map.empty()) {  // no ConfigMap: the defaults, for good
    return std::unique_ptr<AgentConfigWatch>(new AgentConfigWatch(recorder, registry, ""));
  }
  const size_t slash = config_map.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == config_map.size() ||
      config_map.find('/', slash + 1) != std::string::npos) {
    return InvalidArgumentError("--config-map: want NAMESPACE/NAME, got \"" + config_map + "\"");
  }
  std::unique_ptr<AgentConfigWatch> watch(new AgentConfigWatch(recorder, registry, config_map));
  if (client == nullptr) return watch;
  kube::InformerOptions options;
  options.ns = config_map.substr(0, slash);
  options.field_selector = "metadata.name=" + config_map.substr(slash + 1);
  auto informer = std::make_shared<kube::SharedInformer<kube::GenericObject>>(
      kube::NewRestListerWatcher(client, {kube::resources::kConfigMaps, options.ns, "", ""}, "",
                                 options.field_selector),
      kube::GenericObjectCodec(), options, "informer configmap " + config_map);
  AgentConfigWatch* self = watch.get();
  auto apply = [self](const std::shared_ptr<const kube::GenericObject>& obj) {
    auto tree = obj->Parse();
    if (tree.ok()) (void)self->Apply(*tree);
  };
  informer->AddEventHandler(kube::EventHandler<kube::GenericObject>{
      .on_add = apply,
      .on_update = [apply](const auto&, const auto& now) { apply(now); },
      .on_delete = [self](const auto&, bool) { self->Remove(); }});
  watch->informer_ = std::move(informer);
  return watch;
}

void AgentConfigWatch::OnChange(ChangeHandler handler) {
  handlers_.push_back(std::move(handler));
}

void AgentConfigWatch::Start() {
  if (informer_) informer_->Start();
}

bool AgentConfigWatch::HasSynced() const {
  return !informer_ || informer_->HasSynced();
}

bool AgentConfigWatch::WaitForSync(std::stop_token stop, std::chrono::milliseconds timeout) {
  return !informer_ || informer_->WaitForSync(std::move(stop), timeout);
}

AgentConfig AgentConfigWatch::current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

void AgentConfigWatch::Publish(const AgentConfig& config) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (current_ == config) return;
    current_ = config;
  }
  for (const ChangeHandler& h : handlers_)
    h(config);
}

Status AgentConfigWatch::Apply(const json& config_map) {
  const std::string key(kAgentConfigKey);
  Result<AgentConfig> parsed =
      InvalidArgumentError("ConfigMap " + config_map_ + " has no data key " + key);
  if (const json* text = json_read::Find(json_read::Object(config_map, "data"), key);
      text != nullptr && text->is_string()) {
    parsed = ParseAgentConfig(text->get<std::string>(), "ConfigMap " + config_map_);
  }
  if (!parsed.ok()) {
    Log(LogLevel::kError, "rejected a new configuration; the last good one stays",
        {{"configmap", config_map_}, {"error", parsed.error().message()}});
    if (recorder_) {
      recorder_->Record(kube::EventObject::Of(config_map), kube::EventType::kWarning,
                        "InvalidConfig",
                        parsed.error().message() + " (the last good configuration stays in force)");
    }
    reloads_.Add({{"result", "rejected"}}).Increment();  // last: tests wait on it
    return parsed.error();
  }
  reloads_.Add({{"result", "applied"}}).Increment();
  Log(LogLevel::kInfo, "configuration applied", {{"configmap", config_map_}});
  Publish(*parsed);
  return Status::Ok();
}

void AgentConfigWatch::Remove() {
  Log(LogLevel::kWarn, "the agent's ConfigMap was deleted; using the defaults",
      {{"configmap", config_map_}});
  Publish(AgentConfig{});
}

}  // namespace gpu_autoscaler::node_agent
