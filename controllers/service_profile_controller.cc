#include "controllers/service_profile_controller.h"

#include <algorithm>
#include <set>

#include "api/nvidia.h"
#include "common/json_read.h"
#include "common/str_join.h"
#include "controllers/checkpoint_configmap.h"
#include "kube/conditions.h"
#include "kube/error.h"
#include "kube/event_recorder.h"
#include "kube/indexer.h"
#include "kube/meta_time.h"
#include "kube/quantity.h"
#include "kube/rest_client.h"
#include "kube/selector.h"
#include "reconcile/logging.h"
#include "reconcile/write_result.h"

namespace gpu_autoscaler::controllers {
namespace {

using nlohmann::json;
using profiling::Resource;

Clock::WallTime WallAt(int64_t s) {
  return Clock::WallTime(std::chrono::seconds(s));
}

std::optional<double> QuantityValue(const json& obj, const char* key, bool milli) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_string()) return std::nullopt;
  auto v = milli ? kube::ParseQuantityMilli(obj[key].get<std::string>())
                 : kube::ParseQuantity(obj[key].get<std::string>());
  if (!v.ok()) return std::nullopt;
  return static_cast<double>(*v);
}

std::optional<RequestBounds> BoundsOf(const json& entry, const char* resource, bool milli) {
  if (!entry.contains(resource)) return std::nullopt;
  const json& b = entry[resource];
  auto lower = QuantityValue(b, "lowerBound", milli);
  if (!lower) return std::nullopt;
  return RequestBounds{*lower, QuantityValue(b, "upperBound", milli)};
}

}  // namespace

std::string CheckpointConfigMapName(std::string_view profile) {
  return "serviceprofile-" + std::string(profile) + "-checkpoint";
}

ServiceProfilePlan DecideServiceProfileStatus(const ServiceProfileInput& in) {
  ServiceProfilePlan plan;
  plan.status = in.status.is_object() ? in.status : json::object();
  json& status = plan.status;
  const json before = status;
  const json before_conditions = status.value("conditions", json::array());
  status["observedGeneration"] = in.generation;

  std::string reason = "RecommendationProvided";
  std::string message;
  json recommendations = json::array();
  if (!in.spec) {
    reason = "InvalidSpec";
    message = in.invalid_reason;
  } else if (!in.target_found) {
    reason = "TargetNotFound";
    message = in.target_problem;
  } else {
    std::vector<std::string> containers = in.containers;
    if (containers.empty()) {
      for (const auto& [name, rec] : in.recommendations)
        containers.push_back(name);
    }
    std::vector<std::string> missing;
    uint64_t samples = 0;
    for (const std::string& c : containers) {
      auto rec = in.recommendations.find(c);
      json entry =
          rec == in.recommendations.end()
              ? json()
              : profiling::RecommendationStatus(c, rec->second, *in.spec, in.gpu_memory_bytes);
      if (entry.is_null() || entry.size() <= 1) {  // containerName only
        missing.push_back(c);
        continue;
      }
      if (auto n = in.samples.find(c); n != in.samples.end()) samples += n->second;
      recommendations.push_back(std::move(entry));
    }
    if (recommendations.empty()) {
      reason = "MetricsMissing";
      message = "no usage samples yet for " +
                (containers.empty() ? std::string("any container")
                                    : "containers " + StrJoin(missing, ", ")) +
                " of the " + std::to_string(in.matched_pods) + " pods matching " +
                (in.selector.empty() ? std::string("the target") : "\"" + in.selector + "\"");
      if (in.metrics_error) message += " (" + *in.metrics_error + ")";
    } else {
      message = std::to_string(recommendations.size()) + " containers from " +
                std::to_string(samples) + " samples of " + std::to_string(in.matched_pods) +
                " pods";
      if (!missing.empty()) message += "; no samples yet for " + StrJoin(missing, ", ");
    }
  }

  if (in.target_found) {
    status["pods"] = in.matched_pods;
  } else {
    status.erase("pods");
  }
  if (reason == "RecommendationProvided") {
    if (status.value("recommendations", json()) != recommendations) {
      status["lastRecommendationTime"] = kube::FormatTime(WallAt(in.now));
    }
    status["recommendations"] = std::move(recommendations);
    status["targetSelector"] = in.selector;
  } else {
    // Nothing invented: without a recommendation the webhook applies nothing.
    status.erase("recommendations");
    status.erase("lastRecommendationTime");
    if (in.target_found) {
      status["targetSelector"] = in.selector;
    } else {
      status.erase("targetSelector");
    }
  }
  (void)kube::SetCondition(&status["conditions"],
                           {.type = "RecommendationProvided",
                            .status = reason == "RecommendationProvided" ? "True" : "False",
                            .reason = reason,
                            .message = message,
                            .observed_generation = in.generation},
                           WallAt(in.now));
  if (in.spec && in.target_found) {
    (void)kube::SetCondition(
        &status["conditions"],
        {.type = "MetricsAvailable",
         .status = in.metrics_error ? "False" : "True",
         .reason = in.metrics_error ? "QueryFailed" : "QuerySucceeded",
         .message = in.metrics_error ? *in.metrics_error : "the last usage query succeeded",
         .observed_generation = in.generation},
        WallAt(in.now));
  }

  for (const char* type : {"RecommendationProvided", "MetricsAvailable"}) {
    auto was = kube::FindCondition(before_conditions, type);
    auto now = kube::FindCondition(status["conditions"], type);
    if (!now || (was && was->status == now->status && was->reason == now->reason)) continue;
    const bool bad = now->status == "False";
    if (!was && !bad && std::string_view(type) == "MetricsAvailable") continue;
    plan.events.push_back({bad, now->reason, now->message});
  }
  (void)before;
  return plan;
}

std::map<std::string, ContainerBounds> BoundsFromStatus(const json& status) {
  std::map<std::string, ContainerBounds> out;
  if (!status.is_object() || !status.contains("recommendations") ||
      !status["recommendations"].is_array()) {
    return out;
  }
  for (const json& entry : status["recommendations"]) {
    if (!entry.is_object() || !entry.contains("containerName") ||
        !entry["containerName"].is_string()) {
      continue;
    }
    ContainerBounds b{BoundsOf(entry, "cpu", true), BoundsOf(entry, "memory", false)};
    if (b.cpu_millis || b.memory_bytes) out[entry["containerName"].get<std::string>()] = b;
  }
  return out;
}

struct ServiceProfileReconciler::Target {
  std::string selector;
  std::vector<std::string> containers;
  int64_t replicas = 0;
};

ServiceProfileReconciler::ServiceProfileReconciler(const kube::Store<kube::GenericObject>& profiles,
                                                   const kube::Store<kube::PodView>& pods,
                                                   const kube::Store<kube::NodeView>& nodes,
                                                   kube::RestClient& client,
                                                   std::shared_ptr<ProfileUsageSource> usage,
                                                   Clock& clock, kube::EventRecorder* recorder,
                                                   ServiceProfileOptions options)
    : profiles_(profiles),
      pods_(pods),
      nodes_(nodes),
      client_(client),
      usage_(std::move(usage)),
      clock_(clock),
      recorder_(recorder),
      options_(options),
      discovery_(client, clock) {}

Result<ServiceProfileReconciler::Target> ServiceProfileReconciler::ResolveTarget(
    const std::string& ns, const profiling::TargetRef& ref) {
  const size_t slash = ref.api_version.find('/');
  kube::GroupVersionKind gvk{slash == std::string::npos ? "" : ref.api_version.substr(0, slash),
                             ref.api_version.substr(slash == std::string::npos ? 0 : slash + 1),
                             ref.kind};
  auto gvr = discovery_.ResolveKind(gvk);
  if (!gvr.ok()) {
    return NotFoundError("kind " + ref.kind + " (" + ref.api_version +
                         ") is not served: " + gvr.error().message());
  }
  auto object = client_.Get({*gvr, ns, ref.name});
  if (!object.ok()) {
    if (kube::IsNotFound(object.error())) {
      return NotFoundError(ref.kind + " " + ns + "/" + ref.name + " not found");
    }
    return UnavailableError("reading " + ref.kind + " " + ns + "/" + ref.name + ": " +
                            object.error().ToString());
  }
  Target t;
  const json spec = object->value("spec", json::object());
  if (spec.contains("selector") && spec["selector"].is_object()) {
    auto sel = kube::LabelSelector::FromJson(spec["selector"].dump());
    if (!sel.ok()) {
      return InvalidArgumentError(ref.kind + " " + ref.name +
                                  ": spec.selector: " + sel.error().message());
    }
    t.selector = sel->ToString();
  }
  if (spec.contains("replicas") && spec["replicas"].is_number_integer()) {
    t.replicas = spec["replicas"].get<int64_t>();
  } else if (spec.contains("parallelism") && spec["parallelism"].is_number_integer()) {
    t.replicas = spec["parallelism"].get<int64_t>();  // a Job
  }
  if (t.selector.empty()) {
    // Any other kind: its scale subresource names the selector.
    auto scale = client_.GetScale({*gvr, ns, ref.name});
    if (scale.ok()) {
      t.selector = json_read::String(json_read::Object(*scale, "status"), "selector");
      t.replicas = json_read::Integer(json_read::Object(*scale, "spec"), "replicas");
    }
    if (t.selector.empty()) {
      return FailedPreconditionError(ref.kind + " " + ns + "/" + ref.name +
                                     " has no spec.selector and no scale subresource selector");
    }
  }
  const json& containers = json_read::Array(
      json_read::Object(json_read::Object(spec, "template"), "spec"), "containers");
  if (containers.is_array()) {
    for (const json& c : containers)
      if (c.is_object() && c.contains("name") && c["name"].is_string())
        t.containers.push_back(c["name"].get<std::string>());
  }
  return t;
}

ServiceProfileReconciler::Entry& ServiceProfileReconciler::LoadEntry(
    const std::string& ns, const std::string& name, const profiling::RecommenderConfig& config,
    int64_t half_life) {
  const std::string key = ns + "/" + name;
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = entries_[key];
    if (!slot) slot = std::make_shared<Entry>();
    entry = slot;
  }
  if (entry->profile && entry->half_life == half_life) return *entry;
  // First sight (or a new half-life): the checkpoint, when it fits.
  entry->half_life = half_life;
  entry->profile = std::make_unique<profiling::WorkloadProfile>(config);
  auto text =
      ReadCheckpoint(client_, ns, CheckpointConfigMapName(name), std::string(kCheckpointKey));
  if (text.ok() && text->has_value()) {
    const json parsed = json::parse(**text, nullptr, /*allow_exceptions=*/false);
    auto restored = profiling::WorkloadProfile::FromCheckpoint(parsed, config);
    if (restored.ok()) {
      *entry->profile = std::move(*restored);
      reconcile::Log(
          reconcile::LogLevel::kInfo, "restored profile checkpoint",
          {{"profile", key}, {"samples", std::to_string(entry->profile->total_samples())}});
    } else {
      reconcile::Log(reconcile::LogLevel::kWarn, "ignoring profile checkpoint",
                     {{"profile", key}, {"error", restored.error().ToString()}});
    }
  }
  entry->last_checkpoint = clock_.Now();
  return *entry;
}

Status ServiceProfileReconciler::WriteCheckpoint(const std::string& ns, const std::string& name,
                                                 const json& owner, const json& checkpoint) {
  const json& meta = json_read::Object(owner, "metadata");
  return controllers::WriteCheckpoint(client_,
                                      {.ns = ns,
                                       .name = CheckpointConfigMapName(name),
                                       .key = std::string(kCheckpointKey),
                                       .owner = {.api_version = "gpuautoscaler.io/v1alpha1",
                                                 .kind = "ServiceProfile",
                                                 .name = name,
                                                 .uid = json_read::String(meta, "uid")}},
                                      checkpoint.dump());
}

std::string ServiceProfileReconciler::GpuModelOf(
    const std::vector<std::shared_ptr<const kube::PodView>>& pods) const {
  for (const auto& pod : pods) {
    if (pod->node_name().empty()) continue;
    auto node = nodes_.Get("", pod->node_name());
    if (!node) continue;
    auto product = node->label(api::kGpuProductLabel);
    if (!product) continue;
    auto canonical = gpu::NormalizeGpuProduct(*product);
    if (canonical.ok()) return *canonical;
  }
  return "";
}

reconcile::ReconcileResult ServiceProfileReconciler::Reconcile(const reconcile::Request& request,
                                                               std::stop_token) {
  auto cached = profiles_.Get(request.ns, request.name);
  if (cached == nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.erase(request.Key());
    return reconcile::Done{};
  }
  auto object = cached->Parse();
  if (!object.ok()) return reconcile::TerminalError{object.error().ToString()};
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(clock_.WallNow().time_since_epoch()).count();

  ServiceProfileInput in;
  in.generation = cached->generation();
  in.status = object->value("status", json::object());
  in.now = now;
  auto spec = profiling::ParseServiceProfileSpec(object->value("spec", json()));
  std::vector<std::shared_ptr<const kube::PodView>> pods;
  Target target;
  Entry* entry = nullptr;
  if (!spec.ok()) {
    in.invalid_reason = spec.error().message();
  } else {
    in.spec = *spec;
    auto resolved = ResolveTarget(request.ns, spec->target);
    if (!resolved.ok()) {
      if (resolved.error().code() == StatusCode::kUnavailable) {
        return reconcile::TransientError{resolved.error().message()};
      }
      in.target_problem = resolved.error().message();
    } else {
      target = std::move(*resolved);
      in.target_found = true;
      in.selector = target.selector;
      in.containers = target.containers;
      auto selector = kube::LabelSelector::Parse(target.selector);
      for (const auto& pod : pods_.ByIndex(kube::kNamespaceIndex, request.ns)) {
        if (!selector.ok() || selector->empty()) break;
        std::map<std::string, std::string> labels;
        for (const kube::Label& l : pod->labels())
          labels.emplace(l.key.view(), l.value.view());
        if (selector->Matches(labels)) pods.push_back(pod);
      }
      in.matched_pods = static_cast<int64_t>(pods.size());

      profiling::RecommenderConfig config = profiling::OurConfig();
      config.half_life_seconds = spec->half_life_seconds;
      entry = &LoadEntry(request.ns, request.name, config, spec->half_life_seconds);

      std::map<std::string, std::shared_ptr<const kube::PodView>> by_name;
      std::set<std::string> live;
      for (const auto& pod : pods) {
        by_name.emplace(pod->name(), pod);
        live.emplace(pod->name());
      }
      if (usage_ == nullptr) {
        in.metrics_error = "no Prometheus configured (profiles.prometheusURL, --prometheus-url)";
      } else if (auto usage = usage_->Fetch(); !usage.ok()) {
        in.metrics_error = usage.error().message();
      } else {
        std::vector<profiling::UsageSample> samples;
        for (const ContainerUsageSample& s : **usage) {
          if (s.ns != request.ns || !spec->metrics.contains(s.resource)) continue;
          auto pod = by_name.find(s.pod);
          if (pod == by_name.end()) continue;
          double weight = 1;
          if (s.resource == Resource::kCpu) {
            // VPA: a CPU sample weighs the container's request, at least 0.1 core.
            int64_t millis = 0;
            for (const kube::ContainerResources& c : pod->second->containers())
              if (c.name == s.container) millis = kube::FindQuantity(c.requests.span(), "cpu");
            weight = std::max(0.1, static_cast<double>(millis) / 1000.0);
          }
          samples.push_back({s.pod, s.container, s.resource, s.timestamp, s.value, weight});
        }
        if (entry->profile->Ingest(samples) > 0) entry->dirty = true;
      }
      entry->profile->ForgetPodsExcept(live);

      std::string model = spec->gpu_model;
      if (model.empty()) model = GpuModelOf(pods);
      const gpu::GpuSpec* gpu = model.empty() ? nullptr : gpu::FindGpu(model);
      if (gpu == nullptr) gpu = &gpu::GetGpu(gpu::GpuModel::kA100_80GB);
      in.gpu_memory_bytes = profiling::GpuMemoryBytes(*gpu);
      in.recommendations = entry->profile->Recommend(*gpu);
      for (const auto& [name, usage] : entry->profile->containers()) {
        uint64_t n = 0;
        for (Resource r : spec->metrics)
          n += usage.samples(r);
        in.samples[name] = n;
      }
    }
  }

  ServiceProfilePlan plan = DecideServiceProfileStatus(in);
  json written_object = *object;
  if (plan.status != in.status) {
    json body = *object;
    body["status"] = plan.status;
    auto written = client_.Replace(
        kube::ObjectRef{kServiceProfiles, request.ns, request.name}.WithSub("status"), body);
    if (!written.ok()) return reconcile::WriteFailed("writing status", written.error());
    written_object = *written;
    if (recorder_ != nullptr) {
      for (const auto& ev : plan.events) {
        recorder_->Record(kube::EventObject::Of(written_object),
                          ev.warning ? kube::EventType::kWarning : kube::EventType::kNormal,
                          ev.reason, ev.message);
      }
    }
  }

  if (entry != nullptr && entry->dirty &&
      clock_.Now() - entry->last_checkpoint >= options_.checkpoint_interval) {
    Status s =
        WriteCheckpoint(request.ns, request.name, written_object, entry->profile->Checkpoint());
    if (s.ok()) {
      entry->dirty = false;
      entry->last_checkpoint = clock_.Now();
    } else {
      reconcile::Log(reconcile::LogLevel::kWarn, "writing profile checkpoint",
                     {{"profile", request.Key()}, {"error", s.ToString()}});
    }
  }

  // Auto: evict drifted pods, only from a recommendation (never on missing data).
  if (entry != nullptr && in.spec && in.spec->mode == profiling::UpdateMode::kAuto &&
      plan.status.contains("recommendations") &&
      clock_.Now() - entry->last_update_pass >= options_.updater_interval) {
    entry->last_update_pass = clock_.Now();
    UpdaterInput u;
    u.bounds = BoundsFromStatus(plan.status);
    u.replicas = target.replicas;
    u.limits = options_.limits;
    for (const auto& pod : pods) {
      UpdaterPod p;
      p.name = std::string(pod->name());
      p.running = pod->phase() == kube::PodPhase::kRunning && !pod->terminating();
      for (const kube::ContainerResources& c : pod->containers()) {
        const std::string name(c.name);
        for (const kube::ResourceQuantity& q : c.requests.span()) {
          if (q.name.view() == "cpu") p.cpu_millis[name] = q.amount;
          if (q.name.view() == "memory") p.memory_bytes[name] = q.amount;
        }
      }
      u.pods.push_back(std::move(p));
    }
    EvictionPlan evictions = DecideProfileEvictions(u);
    for (const DriftEviction& e : evictions.evictions) {
      auto evicted = client_.Evict(request.ns, e.pod);
      kube::EventObject pod_ref{
          .api_version = "v1", .kind = "Pod", .ns = request.ns, .name = e.pod};
      if (!evicted.ok()) {
        reconcile::Log(reconcile::LogLevel::kWarn, "eviction refused",
                       {{"pod", request.ns + "/" + e.pod}, {"error", evicted.error().ToString()}});
        continue;
      }
      if (recorder_ != nullptr) {
        const std::string why = "evicted by ServiceProfile " + request.name +
                                " to apply its recommendation: " + e.message;
        recorder_->Record(pod_ref, kube::EventType::kNormal, "EvictedByServiceProfile", why);
        recorder_->Record(kube::EventObject::Of(written_object), kube::EventType::kNormal,
                          "EvictedDriftedPod", "pod " + e.pod + ": " + e.message);
      }
    }
  }
  return reconcile::RequeueAfter{options_.interval};
}

}  // namespace gpu_autoscaler::controllers
