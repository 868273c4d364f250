#include "controllers/gpu_node_pool_predictive.h"

#include <algorithm>
#include <cmath>

#include "common/str_join.h"
#include "controllers/checkpoint_configmap.h"
#include "kube/meta_time.h"
#include "reconcile/logging.h"

namespace gpu_autoscaler::controllers {
namespace {

int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
}

double Round3(double v) {
  return std::round(v * 1000) / 1000;
}

}  // namespace

std::string DemandHistoryConfigMapName(std::string_view pool) {
  return "gpunodepool-" + std::string(pool) + "-demand";
}

double PoolDemandGpus(const autoscale::PoolSnapshot& s) {
  int64_t milli = 0;
  auto add = [&](const autoscale::PodSpec& d) {
    milli += static_cast<int64_t>(d.num_gpu) * d.gpu_milli;
  };
  for (const autoscale::PodObservation& p : s.pods)
    if (p.demand && !p.terminating) add(*p.demand);
  for (const autoscale::PendingPod& p : s.pending)
    add(p.demand);
  return static_cast<double>(milli) / autoscale::kMilliPerGpu;
}

PredictivePass PoolPredictor::Pass(kube::RestClient& client, const PredictivePoolRef& ref,
                                   const PredictiveSpec& predictive,
                                   const autoscale::NodePoolSpec& pool, int64_t generation,
                                   double demand_gpus, int64_t now_unix, Clock::WallTime wall) {
  PredictivePass out;
  if (!predictive.problems.empty()) {
    out.reason = "InvalidSpec";
    out.message = StrJoin(predictive.problems, "; ") + "; the pool scales reactively";
    return out;
  }
  if (!predictive.enabled) {
    out.reason = "Disabled";
    out.message = "spec.predictive.enabled is not true";
    return out;
  }
  out.enabled = true;
  const autoscale::PredictiveOptions& o = predictive.options;
  const std::string cm_name = DemandHistoryConfigMapName(ref.pool);
  const std::string where = ref.ns + "/" + cm_name;

  // First sight: the checkpoint.
  if (!loaded_) {
    auto text = ReadCheckpoint(client, ref.ns, cm_name, std::string(kDemandHistoryKey));
    if (!text.ok()) {
      out.reason = "CheckpointUnreadable";
      out.message = "reading ConfigMap " + where + ": " + text.error().message();
      return out;
    }
    loaded_ = true;
    history_ = {.step_seconds = o.step_seconds};
    if (text->has_value()) {
      auto decoded = autoscale::DecodeDemandHistory(**text);
      if (!decoded.ok()) {
        reset_problem_ = "the demand history in ConfigMap " + where +
                         " was unreadable and starts over: " + decoded.error().message();
        out.warning = reset_problem_;
        unwritten_ = true;  // replaced when the first step ends
        reconcile::Log(
            reconcile::LogLevel::kWarn, "discarding demand history checkpoint",
            {{"pool", ref.pool}, {"configmap", where}, {"error", decoded.error().message()}});
      } else if (decoded->step_seconds != o.step_seconds) {
        reconcile::Log(reconcile::LogLevel::kInfo, "demand history step changed; starting over",
                       {{"pool", ref.pool}, {"configmap", where}});
      } else {
        history_ = std::move(*decoded);
        reconcile::Log(reconcile::LogLevel::kInfo, "restored demand history",
                       {{"pool", ref.pool},
                        {"configmap", where},
                        {"points", std::to_string(history_.observed())}});
      }
    }
  }
  if (history_.step_seconds != o.step_seconds) {  // the spec's step changed
    history_ = {.step_seconds = o.step_seconds};
    open_step_ = -1;
  }

  // The step under way keeps its peak; a step that ended joins the history
  // and the checkpoint (once per step; a failed write is retried with the
  // next step).
  const int64_t step_start = FloorDiv(now_unix, o.step_seconds) * o.step_seconds;
  bool closed = false;
  if (open_step_ >= 0 && step_start > open_step_) {
    if (history_.Append(open_step_, open_peak_,
                        autoscale::MaxHistoryPoints(o.step_seconds, o.season_seconds))) {
      unwritten_ = true;
    }
    closed = true;
    open_step_ = -1;
  }
  if (open_step_ < 0) {
    open_step_ = step_start;
    open_peak_ = demand_gpus;
  } else {
    open_peak_ = std::max(open_peak_, demand_gpus);
  }
  if (closed && unwritten_) {
    const Status written = WriteCheckpoint(client,
                                           {.ns = ref.ns,
                                            .name = cm_name,
                                            .key = std::string(kDemandHistoryKey),
                                            .owner = {.api_version = "gpuautoscaler.io/v1alpha1",
                                                      .kind = "GPUNodePool",
                                                      .name = ref.pool,
                                                      .uid = ref.uid}},
                                           autoscale::EncodeDemandHistory(history_));
    if (written.ok()) {
      unwritten_ = false;
    } else {
      reconcile::Log(reconcile::LogLevel::kWarn, "writing demand history checkpoint",
                     {{"pool", ref.pool}, {"configmap", where}, {"error", written.message()}});
    }
  }

  // The floor, once per step (or when the spec or the history changes).
  const std::string key = std::to_string(generation) + "/" + std::to_string(history_.start) + "/" +
                          std::to_string(history_.gpus.size()) + "/" + std::to_string(step_start) +
                          "/" +
                          std::to_string(FloorDiv(now_unix + o.horizon_seconds, o.step_seconds));
  if (key != cache_key_) {
    cached_ = autoscale::DecidePredictiveFloor(history_, o, pool, now_unix);
    cache_key_ = key;
    updated_ = kube::FormatTime(wall);
  }
  out.floor = cached_;
  out.predicting = cached_.predicting;
  out.floor_nodes = cached_.predicting ? cached_.floor_nodes : 0;
  out.reason = cached_.reason;
  out.message = cached_.message;
  if (cached_.predicting) {
    reset_problem_.clear();
  } else if (!reset_problem_.empty()) {
    out.reason = "HistoryReset";
    out.message = reset_problem_ + "; " + cached_.message;
  }
  out.status = {{"historyPoints", static_cast<int64_t>(cached_.history_points)},
                {"lastUpdated", updated_}};
  if (cached_.predicting) {
    out.status["method"] = cached_.method;
    out.status["horizonSteps"] = cached_.horizon_steps;
    out.status["forecastGPUs"] = Round3(cached_.forecast_gpus);
    out.status["headroomGPUs"] = Round3(cached_.headroom_gpus);
    out.status["floorNodes"] = cached_.floor_nodes;
    if (!cached_.limited_by.empty()) out.status["limitedBy"] = cached_.limited_by;
  }
  return out;
}

}  // namespace gpu_autoscaler::controllers
