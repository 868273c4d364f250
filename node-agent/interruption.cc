#include "node-agent/interruption.h"

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "api/annotations.h"
#include "common/json_read.h"
#include "kube/event_recorder.h"
#include "kube/meta_time.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "node-agent/pod_eviction.h"
#include "reconcile/logging.h"

namespace gpu_autoscaler::node_agent {
namespace {

using nlohmann::json;
using reconcile::Log;
using reconcile::LogLevel;

bool Goes(cloud::InterruptionNotice::Kind kind) {
  return kind != cloud::InterruptionNotice::Kind::kRebalanceRecommendation;
}

}  // namespace

DrainCandidate DrainCandidateOf(const json& pod) {
  DrainCandidate c;
  const json& meta = json_read::Object(pod, "metadata");
  const json& spec = json_read::Object(pod, "spec");
  c.ns = json_read::String(meta, "namespace");
  c.name = json_read::String(meta, "name");
  c.priority = json_read::Int32(spec, "priority", c.priority);
  const std::string priority_class = json_read::String(spec, "priorityClassName");
  c.critical =
      priority_class == "system-cluster-critical" || priority_class == "system-node-critical";
  for (const json& owner : json_read::Array(meta, "ownerReferences")) {
    if (json_read::String(owner, "kind") == "DaemonSet" && json_read::Bool(owner, "controller")) {
      c.daemonset = true;
    }
  }
  const json& annotations = json_read::Object(meta, "annotations");
  const std::string phase = json_read::String(json_read::Object(pod, "status"), "phase");
  c.skip = annotations.contains("kubernetes.io/config.mirror") || phase == "Succeeded" ||
           phase == "Failed";
  for (const json& t : json_read::Array(spec, "tolerations")) {
    const std::string key = json_read::String(t, "key");
    const std::string op = json_read::String(t, "operator", "Equal");
    const std::string effect = json_read::String(t, "effect");
    if ((key == api::kInterruptionTaintKey || (key.empty() && op == "Exists")) &&
        (effect.empty() || effect == "NoSchedule")) {
      c.skip = true;
    }
  }
  return c;
}

std::vector<std::vector<size_t>> PlanDrainWaves(const std::vector<DrainCandidate>& pods) {
  std::vector<std::vector<size_t>> waves(4);
  for (size_t i = 0; i < pods.size(); ++i) {
    if (pods[i].skip) continue;
    waves[(pods[i].critical ? 2 : 0) + (pods[i].daemonset ? 1 : 0)].push_back(i);
  }
  for (auto& wave : waves) {
    std::stable_sort(wave.begin(), wave.end(),
                     [&](size_t a, size_t b) { return pods[a].priority > pods[b].priority; });
  }
  std::erase_if(waves, [](const std::vector<size_t>& w) { return w.empty(); });
  return waves;
}

InterruptionHandler::InterruptionHandler(kube::RestClient& client, kube::EventRecorder* recorder,
                                         InterruptionOptions options)
    : client_(client), recorder_(recorder), options_(std::move(options)) {}

void InterruptionHandler::Run(cloud::InterruptionSource& source, std::stop_token stop) {
  bool drained = false;
  bool rebalance_seen = false;
  while (!stop.stop_requested()) {
    auto notice = source.Poll();
    if (!notice.ok()) {
      Log(LogLevel::kWarn, "polling the interruption notice failed",
          {{"error", notice.error().ToString()}});
    } else if (notice->has_value()) {
      const cloud::InterruptionNotice& n = **notice;
      if (!Goes(n.kind)) {
        if (!rebalance_seen && recorder_) {
          ++notices_;
          recorder_->Record({"v1", "Node", "", options_.node_name, ""}, kube::EventType::kNormal,
                            "RebalanceRecommendation",
                            "the cloud recommends moving work off this node: " + n.detail);
        }
        rebalance_seen = true;
      } else if (!drained) {
        ++notices_;
        Result<DrainReport> report = InternalError("not run");
        try {  // a malformed object from the API server must not kill the agent
          report = Drain(n, stop);
        } catch (const json::exception& e) {
          report = InternalError(std::string("unexpected object from the API server: ") + e.what());
        }
        if (report.ok()) {
          drained = true;
        } else {
          Log(LogLevel::kError, "draining after an interruption notice failed; retrying",
              {{"notice", cloud::InterruptionKindName(n.kind)},
               {"error", report.error().ToString()}});
        }
      }
    }
    if (!SleepFor(*options_.clock, options_.poll_interval, stop)) return;
  }
}

Status InterruptionHandler::MarkNode(const cloud::InterruptionNotice& notice) {
  const kube::ObjectRef ref{kube::resources::kNodes, "", options_.node_name};
  const std::string kind(cloud::InterruptionKindName(notice.kind));
  const std::string not_after =
      notice.not_after_unix > 0
          ? kube::FormatMicroTime(Clock::WallTime(std::chrono::seconds(notice.not_after_unix)))
          : "";
  // Read-modify-write with the resourceVersion as precondition, so a taint
  // someone else adds meanwhile is not lost; retried on conflict.
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto node = client_.Get(ref);
    if (!node.ok()) return node.error().ToStatus().WithContext("read node " + options_.node_name);
    json taints = json_read::Array(json_read::Object(*node, "spec"), "taints");
    const bool tainted = std::any_of(taints.begin(), taints.end(), [](const json& t) {
      return json_read::String(t, "key") == api::kInterruptionTaintKey;
    });
    if (!tainted) {
      taints.push_back({{"key", api::kInterruptionTaintKey},
                        {"value", kind},
                        {"effect", "NoSchedule"},
                        {"timeAdded", kube::FormatMicroTime(options_.clock->WallNow())}});
    }
    json patch = {{"metadata",
                   {{"resourceVersion",
                     json_read::String(json_read::Object(*node, "metadata"), "resourceVersion")},
                    {"annotations",
                     {{api::kInterruptionNoticeAnnotation,
                       not_after.empty() ? kind : kind + " " + not_after}}}}},
                  {"spec", {{"unschedulable", true}, {"taints", taints}}}};
    auto patched = client_.Patch(ref, kube::PatchType::kMerge, patch.dump());
    if (patched.ok()) return Status::Ok();
    if (patched.error().code() != 409) {
      return patched.error().ToStatus().WithContext("taint node " + options_.node_name);
    }
  }
  return AbortedError("taint node " + options_.node_name + ": conflicts on every attempt");
}

Result<DrainReport> InterruptionHandler::Drain(const cloud::InterruptionNotice& notice,
                                               std::stop_token stop) {
  Clock& clock = *options_.clock;
  const auto started = clock.Now();
  const auto now_wall = clock.WallNow();
  Clock::Duration budget = options_.default_notice;
  if (notice.not_after_unix > 0) {
    budget = Clock::WallTime(std::chrono::seconds(notice.not_after_unix)) - now_wall;
  }
  const auto deadline = started + std::max<Clock::Duration>(budget, Clock::Duration::zero());

  GPU_RETURN_IF_ERROR(MarkNode(notice));
  ++drains_;
  auto list = client_.List({kube::resources::kPods, ""},
                           {.field_selector = "spec.nodeName=" + options_.node_name});
  if (!list.ok()) {
    return list.error().ToStatus().WithContext("list pods on " + options_.node_name);
  }
  std::vector<DrainCandidate> pods;
  for (const json& item : (*list)["items"])
    pods.push_back(DrainCandidateOf(item));
  const auto waves = PlanDrainWaves(pods);

  DrainReport report;
  for (const auto& wave : waves)
    report.pods += static_cast<int>(wave.size());
  std::mutex mu;
  for (const auto& wave : waves) {
    std::atomic<size_t> next{0};
    auto worker = [&] {
      for (size_t i = next++; i < wave.size(); i = next++) {
        const DrainCandidate& pod = pods[wave[i]];
        const EvictionOutcome out =
            EvictPod(client_, pod.ns, pod.name, clock, deadline, options_.pdb_retry, stop);
        std::lock_guard<std::mutex> l(mu);
        switch (out.result) {
          case EvictionResult::kEvicted:
          case EvictionResult::kGone:
            ++report.evicted;
            break;
          case EvictionResult::kBlockedByPdb:
            ++report.blocked_pdb;
            break;
          case EvictionResult::kFailed:
            ++report.failed;
            Log(LogLevel::kWarn, "eviction failed",
                {{"pod", pod.ns + "/" + pod.name}, {"error", out.error}});
            break;
        }
      }
    };
    const int threads =
        std::max(1, std::min<int>(options_.eviction_parallelism, static_cast<int>(wave.size())));
    std::vector<std::jthread> pool;
    for (int t = 1; t < threads; ++t)
      pool.emplace_back(worker);
    worker();
    pool.clear();  // joins
  }
  report.took = std::chrono::duration_cast<std::chrono::milliseconds>(clock.Now() - started);
  report.in_time = report.evicted == report.pods && clock.Now() <= deadline;

  const std::string message =
      std::string(cloud::InterruptionKindName(notice.kind)) + ": evicted " +
      std::to_string(report.evicted) + " of " + std::to_string(report.pods) + " pods in " +
      std::to_string(report.took.count()) + " ms" +
      (report.blocked_pdb
           ? ", " + std::to_string(report.blocked_pdb) + " blocked by a PodDisruptionBudget"
           : "") +
      (report.failed ? ", " + std::to_string(report.failed) + " failed" : "") +
      (report.in_time ? "" : " (not all before the deadline)");
  Log(report.in_time ? LogLevel::kInfo : LogLevel::kWarn, "interruption drain finished",
      {{"node", options_.node_name}, {"result", message}});
  if (recorder_) {
    recorder_->Record({"v1", "Node", "", options_.node_name, ""},
                      report.in_time ? kube::EventType::kNormal : kube::EventType::kWarning,
                      "InterruptionDrained", message);
  }
  return report;
}

}  // namespace gpu_autoscaler::node_agent
