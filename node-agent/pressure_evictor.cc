#include "node-agent/pressure_evictor.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "api/annotations.h"
#include "common/failpoint.h"
#include "common/json_read.h"
#include "kube/event_recorder.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "node-agent/pod_eviction.h"
#include "reconcile/logging.h"

namespace gpu_autoscaler::node_agent {
namespace {

using nlohmann::json;
using reconcile::Log;
using reconcile::LogLevel;

std::string Percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", v);
  return buf;
}

}  // namespace

EvictionTier EvictionTierOf(QosLevel level) {
  switch (level) {
    case QosLevel::kReclaimed:
      return EvictionTier::kReclaimed;
    case QosLevel::kShared:
      return EvictionTier::kShared;
    case QosLevel::kDedicated:
    case QosLevel::kSystem:
    case QosLevel::kUnknown:
      return EvictionTier::kProtected;
  }
  return EvictionTier::kProtected;
}

std::vector<EvictablePod> EvictablePodsOf(
    const LocalPodSnapshot& snapshot,
    const std::function<std::string(const LocalPod&)>& cgroup_dir) {
  std::vector<EvictablePod> out;
  out.reserve(snapshot.pods.size());
  for (const LocalPod& p : snapshot.pods) {
    if (!p.Active()) continue;
    // A reclaimed_cores pod requests Katalyst's reclaimed_* resources instead
    // of cpu and memory: those are its requests (the Event names them).
    out.push_back(
        {.ns = p.ns,
         .name = p.name,
         .uid = p.uid,
         .tier = EvictionTierOf(p.qos_level),
         .memory_request_bytes = p.requests.memory_bytes + p.requests.reclaimed_memory_bytes,
         .cpu_request_millis = p.requests.cpu_millis + p.requests.reclaimed_millicpu,
         .cgroup_dir = cgroup_dir ? cgroup_dir(p) : std::string(),
         .terminating = p.terminating});
  }
  return out;
}

struct PressureEvictor::Metrics {
  prometheus::Family<prometheus::Gauge>& pressure;
  prometheus::Family<prometheus::Gauge>& high;
  prometheus::Family<prometheus::Counter>& evictions;
};

PressureEvictor::PressureEvictor(kube::RestClient& client, kube::EventRecorder* recorder,
                                 prometheus::Registry& registry, PressureEvictorOptions options,
                                 PressureEvictionConfig config)
    : client_(client),
      recorder_(recorder),
      options_(std::move(options)),
      metrics_(new Metrics{
          prometheus::BuildGauge()
              .Name("gpu_autoscaler_node_pressure_percent")
              .Help("The node's pressure stall figure each PSI eviction trigger reads (its "
                    "line and average, in %)")
              .Register(registry),
          prometheus::BuildGauge()
              .Name("gpu_autoscaler_node_pressure_high")
              .Help("1 while the resource's pressure is high (armed above its threshold, not "
                    "yet below disarmBelow)")
              .Register(registry),
          prometheus::BuildCounter()
              .Name("gpu_autoscaler_node_pressure_evictions_total")
              .Help("PSI evictions by resource and result (evicted, gone, blocked_pdb, failed)")
              .Register(registry)}),
      pending_(config),
      planner_(std::move(config)) {
  // Every resource and result exported at 0, so the first eviction shows in rate().
  for (PressureResource r : kPressureResources) {
    for (EvictionResult e : {EvictionResult::kEvicted, EvictionResult::kGone,
                             EvictionResult::kBlockedByPdb, EvictionResult::kFailed}) {
      metrics_->evictions.Add({{"resource", std::string(PressureResourceName(r))},
                               {"result", std::string(EvictionResultName(e))}});
    }
  }
}

PressureEvictor::~PressureEvictor() = default;

Status PressureEvictor::LoadHistory(Clock::TimePoint now, int64_t now_unix) {
  auto node = client_.Get({kube::resources::kNodes, "", options_.node_name});
  if (!node.ok()) return node.error().ToStatus();
  records_.clear();
  const std::string text =
      json_read::String(json_read::Object(json_read::Object(*node, "metadata"), "annotations"),
                        api::kPressureEvictionsAnnotation);
  if (text.empty()) return Status::Ok();
  const json entries = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!entries.is_array()) {
    Log(LogLevel::kWarn, "ignoring a malformed record of earlier PSI evictions on the Node",
        {{"annotation", std::string(api::kPressureEvictionsAnnotation)}});
    return Status::Ok();
  }
  const int64_t window =
      std::chrono::duration_cast<std::chrono::seconds>(planner_.config().rate_window).count();
  for (const json& r : entries) {
    const std::string uid = json_read::String(r, "uid");
    const int64_t at = json_read::Integer(r, "at", INT64_MIN);
    // Compared before subtracting, so a far-off `at` cannot overflow.
    if (uid.empty() || at > now_unix || at <= now_unix - window) continue;
    const int64_t age = now_unix - at;
    planner_.Remember(uid, now - std::chrono::seconds(age));
    records_.push_back({uid, json_read::String(r, "pod"), json_read::String(r, "resource"), at});
  }
  if (!records_.empty()) {
    Log(LogLevel::kInfo, "PSI evictions of an earlier run count against the limits",
        {{"evictions", std::to_string(records_.size())}});
  }
  return Status::Ok();
}

Status PressureEvictor::RecordEviction(const PlannedEviction& e, int64_t now_unix) {
  const int64_t window =
      std::chrono::duration_cast<std::chrono::seconds>(planner_.config().rate_window).count();
  std::vector<Record> kept;
  for (const Record& r : records_)
    if (now_unix - r.at < window) kept.push_back(r);
  kept.push_back(
      {e.uid, e.ns + "/" + e.name, std::string(PressureResourceName(e.resource)), now_unix});
  json entries = json::array();
  for (const Record& r : kept)
    entries.push_back({{"uid", r.uid}, {"pod", r.pod}, {"resource", r.resource}, {"at", r.at}});
  const json patch = {
      {"metadata",
       {{"annotations", {{std::string(api::kPressureEvictionsAnnotation), entries.dump()}}}}}};
  auto patched = client_.Patch({kube::resources::kNodes, "", options_.node_name},
                               kube::PatchType::kMerge, patch.dump());
  if (!patched.ok()) return patched.error().ToStatus();
  records_ = std::move(kept);
  return Status::Ok();
}

void PressureEvictor::CompleteRecordedEvictions(const std::vector<EvictablePod>& pods,
                                                std::stop_token stop) {
  for (const Record& r : records_) {
    auto pod = std::find_if(pods.begin(), pods.end(), [&](const EvictablePod& p) {
      return p.uid == r.uid && !p.terminating;
    });
    if (pod == pods.end()) continue;  // evicted (terminating or gone) or replaced
    const EvictionOutcome out = EvictPod(client_, pod->ns, pod->name, *options_.clock,
                                         options_.clock->Now(), Clock::Duration::zero(), stop);
    const bool ok = out.result == EvictionResult::kEvicted || out.result == EvictionResult::kGone;
    if (!r.resource.empty()) {
      metrics_->evictions
          .Add({{"resource", r.resource}, {"result", std::string(EvictionResultName(out.result))}})
          .Increment();
    }
    const std::string message =
        "completing a " + r.resource + " pressure eviction recorded before the agent restarted";
    Log(ok ? LogLevel::kInfo : LogLevel::kError, message,
        {{"pod", r.pod},
         {"result", std::string(EvictionResultName(out.result))},
         {"error", out.error}});
    if (recorder_ && out.result != EvictionResult::kGone) {
      recorder_->Record({"v1", "Pod", pod->ns, pod->name, pod->uid}, kube::EventType::kWarning,
                        ok ? "PressureEviction" : "PressureEvictionFailed",
                        ok ? message : message + " (eviction refused: " + out.error + ")");
    }
  }
}

void PressureEvictor::SetConfig(const PressureEvictionConfig& config) {
  std::lock_guard<std::mutex> lock(config_mu_);
  pending_ = config;
  config_changed_ = true;
}

EvictionPlan PressureEvictor::Tick(std::stop_token stop) {
  {
    std::lock_guard<std::mutex> lock(config_mu_);
    if (config_changed_) {
      planner_.SetConfig(pending_);
      config_changed_ = false;
    }
  }
  const PressureEvictionConfig& config = planner_.config();
  Clock& clock = *options_.clock;
  const Clock::TimePoint now = clock.Now();

  const PressureReading node = ReadNodePressure(options_.proc_root);
  if (node.error != logged_read_error_) {
    if (!node.error.empty())
      Log(LogLevel::kWarn, "reading the node's PSI", {{"error", node.error}});
    logged_read_error_ = node.error;
  }
  NodePressure pressure{};
  for (PressureResource r : kPressureResources) {
    const std::optional<PsiFile>& file = node[r];
    const std::string key = "node/" + std::string(PressureResourceName(r));
    std::optional<double> some_rate;
    std::optional<double> full_rate;
    if (file) {
      some_rate = psi_rates_.Update(key + "/some", file->some.total_us, now);
      if (file->full) full_rate = psi_rates_.Update(key + "/full", file->full->total_us, now);
    }
    pressure[static_cast<size_t>(r)] =
        SelectPressure(file, some_rate, full_rate, config.trigger(r));
  }

  std::vector<EvictablePod> pods = options_.pods ? options_.pods() : std::vector<EvictablePod>();
  std::vector<EvictionCandidate> candidates;
  candidates.reserve(pods.size());
  for (const EvictablePod& p : pods) {
    EvictionCandidate c{.ns = p.ns,
                        .name = p.name,
                        .uid = p.uid,
                        .tier = p.tier,
                        .memory_request_bytes = p.memory_request_bytes,
                        .cpu_request_millis = p.cpu_request_millis,
                        .usage = {},
                        .terminating = p.terminating};
    // Protected pods are never picked: their cgroups are not worth reading.
    if (!p.cgroup_dir.empty() && p.tier != EvictionTier::kProtected)
      c.usage = usage_rates_.Update(p.uid, ReadCgroupUsage(p.cgroup_dir), now);
    candidates.push_back(std::move(c));
  }
  // Pods gone for a while no longer need their counters.
  const Clock::Duration keep = 3 * config.interval;
  usage_rates_.Prune(now - keep);

  const int64_t now_unix =
      std::chrono::duration_cast<std::chrono::seconds>(clock.WallNow().time_since_epoch()).count();
  if (!options_.node_name.empty() && !history_loaded_) {
    // No eviction before the earlier ones are known: they count against the limits.
    if (Status s = LoadHistory(now, now_unix); !s.ok()) {
      Log(LogLevel::kWarn, "reading earlier PSI evictions from the Node; retrying next round",
          {{"error", s.ToString()}});
      return EvictionPlan{};
    }
    history_loaded_ = true;
    CompleteRecordedEvictions(pods, stop);
  }
  EvictionPlan plan = planner_.Plan(now, pressure, candidates);
  for (PressureResource r : kPressureResources) {
    const std::map<std::string, std::string> labels = {
        {"resource", std::string(PressureResourceName(r))}};
    if (const auto& v = pressure[static_cast<size_t>(r)]) {
      metrics_->pressure.Add(labels).Set(*v);
    }
    metrics_->high.Add(labels).Set(planner_.high(r) ? 1 : 0);
  }
  std::string held;
  for (const auto& [r, why] : plan.held)
    held += (held.empty() ? "" : ", ") + std::string(PressureResourceName(r)) + ": " + why;
  if (held != logged_held_) {
    if (!held.empty())
      Log(LogLevel::kWarn, "pressure is high but nothing is evicted", {{"why", held}});
    logged_held_ = held;
  }

  for (const PlannedEviction& e : plan.evictions) {
    std::string message = e.message;
    for (const EvictablePod& p : pods) {
      if (p.uid != e.uid || p.cgroup_dir.empty()) continue;
      const PressureReading own = ReadCgroupPressure(p.cgroup_dir);
      const PressureTrigger& t = config.trigger(e.resource);
      if (const auto& f = own[e.resource]; f && t.average != PsiAverage::kTotal) {
        if (auto v = SelectPressure(f, std::nullopt, std::nullopt, t)) {
          message += "; the pod itself stalled " + Percent(*v) + " (" +
                     std::string(PressureResourceName(e.resource)) + " " +
                     std::string(PsiLineKindName(t.line)) + " " +
                     std::string(PsiAverageName(t.average)) + ")";
        }
      }
    }
    if (!options_.node_name.empty()) {
      if (Status s = RecordEviction(e, now_unix); !s.ok()) {
        // Counted by the planner, not called: retried once the limits allow.
        Log(LogLevel::kError, "recording a PSI eviction on the Node failed; not evicting",
            {{"pod", e.ns + "/" + e.name}, {"error", s.ToString()}});
        continue;
      }
    }
    // Crash points (docs/reliability.md): recorded, not yet called; called,
    // its Event and metric not yet written.
    if (Status fp = failpoint::Evaluate("node_agent.pressure_eviction.before_evict"); !fp.ok()) {
      continue;
    }
    const EvictionOutcome out = EvictPod(client_, e.ns, e.name, *options_.clock, clock.Now(),
                                         Clock::Duration::zero(), stop);
    (void)failpoint::Evaluate("node_agent.pressure_eviction.after_evict");
    metrics_->evictions
        .Add({{"resource", std::string(PressureResourceName(e.resource))},
              {"result", std::string(EvictionResultName(out.result))}})
        .Increment();
    const bool ok = out.result == EvictionResult::kEvicted || out.result == EvictionResult::kGone;
    Log(ok ? LogLevel::kInfo : LogLevel::kError,
        ok ? "evicted a pod for node pressure" : "evicting a pod for node pressure failed",
        {{"pod", e.ns + "/" + e.name},
         {"result", std::string(EvictionResultName(out.result))},
         {"reason", message},
         {"error", out.error}});
    if (recorder_ && out.result != EvictionResult::kGone) {
      recorder_->Record({"v1", "Pod", e.ns, e.name, e.uid}, kube::EventType::kWarning,
                        ok ? "PressureEviction" : "PressureEvictionFailed",
                        ok ? message : message + " (eviction refused: " + out.error + ")");
    }
  }
  return plan;
}

void PressureEvictor::Run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    try {  // a malformed answer must not end PSI eviction
      Tick(stop);
    } catch (const std::exception& e) {
      Log(LogLevel::kError, "PSI eviction round failed", {{"error", e.what()}});
    }
    std::chrono::milliseconds interval;
    {
      std::lock_guard<std::mutex> lock(config_mu_);
      interval = pending_.interval;
    }
    if (!SleepFor(*options_.clock, interval, stop)) return;
  }
}

}  // namespace gpu_autoscaler::node_agent
