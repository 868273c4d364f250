#include "node-agent/pressure_evictor.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <cstdio>

#include "kube/event_recorder.h"
#include "node-agent/pod_eviction.h"
#include "reconcile/logging.h"

namespace gpu_autoscaler::node_agent {
namespace {

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
    const EvictionOutcome out = EvictPod(client_, e.ns, e.name, *options_.clock, clock.Now(),
                                         Clock::Duration::zero(), stop);
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
