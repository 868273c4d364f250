// Replays GPU workloads against a simulated cloud under three autoscaling
// strategies (reactive, predictive, oracle) and reports GPU-hours, pending
// time and cost on the part of each trace after the training split
// (docs/predictive-scaling.md). Workloads: the openb pod lists' creation and
// deletion times, and the GenTD26 QPS series turned into replica demand.
//
//   build/default/bench/autoscale_replay --json out.json --series-dir docs/
//
// Run with --help for the flags.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "autoscale/trace.h"
#include "autoscale/trace_replay.h"
#include "autoscale/trace_replay_workload.h"
#include "common/gzip_file.h"
#include "common/status.h"
#include "cost/usage_trace.h"

namespace as = gpu_autoscaler::autoscale;
using gpu_autoscaler::Result;
using gpu_autoscaler::Status;

namespace {

constexpr const char* kUsage =
    "Usage: autoscale_replay [flags]\n"
    "Replays GPU workloads against a simulated cloud under three autoscaling strategies\n"
    "(reactive, predictive, oracle) and reports GPU-hours, pending time and cost on the\n"
    "part of each trace after the training split.\n"
    "\n"
    "Workloads:\n"
    "  --workload NAME          openb, genai or both (default both)\n"
    "  --openb-pods FILE        openb pod list with creation_time and deletion_time\n"
    "                           (default bench/data/openb/openb_pod_list_default.csv)\n"
    "  --qps FILE               GenTD26 qps.csv or qps.csv.gz (default "
    "bench/data/genai/qps.csv.gz)\n"
    "  --replica-capacity QPS   requests per second one replica (one GPU) serves (default 0.5)\n"
    "  --min-replicas N         replicas kept at zero load (default 1)\n"
    "Cloud and pool:\n"
    "  --gpus-per-node N        GPUs per node (default 8)\n"
    "  --provisioning-delay S   seconds from request to a ready node (default 90)\n"
    "  --scale-down-delay S     seconds an empty node waits before removal (default 600)\n"
    "  --predictive-scale-down-delay S   the same for predictive, whose forecast\n"
    "                           target keeps the nodes it expects to need (default 0)\n"
    "  --max-nodes N            pool limit (default: none)\n"
    "  --through-controller     decide with the GPUNodePool controller's own decision\n"
    "                           (batching window, placement-engine scale-up plan,\n"
    "                           consolidateAfter) instead of the replay's first-fit model\n"
    "  --price P                price per GPU-hour (default 2.0)\n"
    "Predictive scaling:\n"
    "  --step S                 forecast step; must divide a day (default 60)\n"
    "  --train-fraction F       first fraction of the pods used to tune the forecaster;\n"
    "                           the report covers the rest (default 0.5)\n"
    "  --coverage F             the forecast plus headroom must cover the actual peak at\n"
    "                           this fraction of the training steps (default 0.9)\n"
    "Output:\n"
    "  --json FILE              results as JSON ('-': stdout, instead of the table)\n"
    "  --series-dir DIR         writes DIR/autoscale_<workload>_series.csv: demand and\n"
    "                           capacity per step over the report window, for plotting\n"
    "  --series-hours H         only the first H hours of the report window (default: all)\n"
    "  --progress / --no-progress   progress bar on stderr (default: when it is a terminal)\n"
    "  -h, --help               this text\n";

struct Flags {
  std::string workload = "both";
  std::string openb_pods =
      std::string(GPA_SOURCE_DIR) + "/bench/data/openb/openb_pod_list_default.csv";
  std::string qps = std::string(GPA_SOURCE_DIR) + "/bench/data/genai/qps.csv.gz";
  double replica_capacity = 0.5;
  int min_replicas = 1;
  as::ReplayOptions replay;
  double train_fraction = 0.5;
  double coverage = 0.9;
  std::string json;
  std::string series_dir;
  double series_hours = 0;  // 0: all
  bool progress = isatty(2) != 0;
};

int UsageError(const std::string& message) {
  std::fprintf(stderr, "autoscale_replay: %s\nTry 'autoscale_replay --help'.\n", message.c_str());
  return 2;
}

bool ParseNumber(const char* text, double* out) {
  char* end = nullptr;
  *out = std::strtod(text, &end);
  return end != text && *end == '\0' && std::isfinite(*out);
}

bool ParseInt(const char* text, int64_t* out) {
  char* end = nullptr;
  *out = std::strtoll(text, &end, 10);
  return end != text && *end == '\0';
}

Result<as::ReplayWorkload> LoadOpenb(const std::string& path) {
  GPU_ASSIGN_OR_RETURN(std::vector<as::TimedPod> pods, as::LoadTimedPodCsv(path));
  return as::WorkloadFromTimedPods("openb", pods);
}

Result<as::ReplayWorkload> LoadGenai(const Flags& f) {
  GPU_ASSIGN_OR_RETURN(std::string text, gpu_autoscaler::ReadMaybeGzipFile(f.qps));
  const std::string name = f.qps.substr(f.qps.find_last_of('/') + 1);
  // The rows name a container that may be empty; request_type is always set.
  GPU_ASSIGN_OR_RETURN(
      gpu_autoscaler::cost::UsageTrace trace,
      gpu_autoscaler::cost::ParseUsageTraceCsv(
          text, name, 0, 1e12,
          {.value = "value", .timestamp = "timestamp_anon", .pod = "request_type"}));
  std::vector<as::RateSample> samples;
  samples.reserve(trace.samples.size());
  for (const auto& s : trace.samples)
    samples.push_back({.time = s.timestamp, .value = s.value});
  const std::vector<as::RateSample> per_minute = as::SumRatePerBucket(samples, 60);
  return as::WorkloadFromRate(
      "genai", per_minute, 60,
      {.capacity_per_replica = f.replica_capacity, .min_replicas = f.min_replicas});
}

struct WorkloadRun {
  std::string name;
  size_t pods = 0;
  as::ReplayTraining training;
  std::vector<as::ReplayResult> results;  // reactive, predictive, oracle
  std::vector<double> demand_peaks;       // per step from 0
};

void DrawProgress(const std::string& label, double fraction) {
  const int width = 30;
  const int done = static_cast<int>(fraction * width + 0.5);
  std::fprintf(stderr, "\r%-24s [%s%s] %3.0f%%", label.c_str(), std::string(done, '#').c_str(),
               std::string(width - done, ' ').c_str(), fraction * 100);
  std::fflush(stderr);
}

Result<WorkloadRun> RunWorkload(const as::ReplayWorkload& w, const Flags& f) {
  WorkloadRun run;
  run.name = w.name;
  run.pods = w.pods.size();
  GPU_ASSIGN_OR_RETURN(run.training,
                       as::TrainPredictive(w, f.replay, f.train_fraction, f.coverage));
  as::ReplayOptions o = f.replay;
  o.report_from = run.training.split_time;
  o.forecast = run.training.tuned.options;
  o.headroom_gpus = run.training.tuned.headroom;
  for (as::ScalingStrategy s : {as::ScalingStrategy::kReactive, as::ScalingStrategy::kPredictive,
                                as::ScalingStrategy::kOracle}) {
    const std::string label = w.name + " " + std::string(as::ScalingStrategyName(s));
    if (f.progress) {
      o.progress = [&label](double x) { DrawProgress(label, x); };
      DrawProgress(label, 0);
    }
    GPU_ASSIGN_OR_RETURN(as::ReplayResult r, as::ReplayTrace(w, s, o));
    if (f.progress) {
      DrawProgress(label, 1);
      std::fprintf(stderr, "\n");
    }
    run.results.push_back(std::move(r));
  }
  int64_t end = 0;
  for (const auto& r : run.results)
    end = std::max(end, r.end_time);
  run.demand_peaks = as::DemandPeaks(w, 0, end + f.replay.step, f.replay.step);
  return run;
}

void PrintTable(const std::vector<WorkloadRun>& runs, const Flags& f) {
  std::printf(
      "pool: %d GPUs/node, provisioning delay %llds, scale-down delay %llds, %.2f per GPU-hour%s\n",
      f.replay.gpus_per_node, static_cast<long long>(f.replay.provisioning_delay),
      static_cast<long long>(f.replay.scale_down_delay), f.replay.price_per_gpu_hour,
      f.replay.through_controller ? "; decided by the GPUNodePool controller's DecidePool" : "");
  for (const WorkloadRun& run : runs) {
    const as::ReplayTraining& t = run.training;
    std::printf("\n%s: %zu GPU pods; trained on [0, %.1f h) (%lld steps of %llds), report after\n",
                run.name.c_str(), run.pods, t.split_time / 3600.0,
                static_cast<long long>(t.training_steps), static_cast<long long>(f.replay.step));
    std::printf(
        "  forecaster: %s + %.2f GPUs headroom (of %d candidates: the least mean capacity above\n"
        "  the actual peak, %.2f GPUs, at %.0f%% coverage on the training part; MAE %.2f GPUs)\n",
        as::DescribeForecast(t.tuned.options).c_str(), t.tuned.headroom, t.tuned.candidates,
        t.tuned.mean_over, 100 * f.coverage, t.tuned.score.mean_absolute_error);
    if (t.training_steps < 2 * 86400 / f.replay.step) {
      std::printf(
          "  (training is shorter than two days: Holt-Winters runs as Holt's linear trend and\n"
          "   seasonal-naive as last-value until they have seen the seasons they need)\n");
    }
    const double oracle_hours = run.results.back().gpu_hours;
    std::printf("  %-11s %10s %9s %9s %9s %9s %9s %8s %10s\n", "strategy", "GPU-hours", "vs-oracle",
                "used", "pend-p50", "pend-p99", "pend-mean", "delayed", "cost");
    for (const as::ReplayResult& r : run.results) {
      std::printf("  %-11s %10.1f %8.2fx %8.1f%% %8.0fs %8.0fs %8.1fs %7.1f%% %10.2f\n",
                  std::string(as::ScalingStrategyName(r.strategy)).c_str(), r.gpu_hours,
                  oracle_hours > 0 ? r.gpu_hours / oracle_hours : 0,
                  r.gpu_hours > 0 ? 100 * r.demand_gpu_hours / r.gpu_hours : 0, r.pending_p50,
                  r.pending_p99, r.pending_mean, r.pods > 0 ? 100.0 * r.pods_delayed / r.pods : 0,
                  r.cost);
    }
    std::printf("  delayed pods (of %lld):", static_cast<long long>(run.results[0].pods));
    for (const as::ReplayResult& r : run.results) {
      std::printf(" %s %lld (%lld of %lld multi-GPU)",
                  std::string(as::ScalingStrategyName(r.strategy)).c_str(),
                  static_cast<long long>(r.pods_delayed),
                  static_cast<long long>(r.pods_multi_gpu_delayed),
                  static_cast<long long>(r.pods_multi_gpu));
    }
    std::printf("\n");
  }
}

nlohmann::json ToJson(const std::vector<WorkloadRun>& runs, const Flags& f) {
  nlohmann::json out;
  out["pool"] = {{"through_controller", f.replay.through_controller},
                 {"gpus_per_node", f.replay.gpus_per_node},
                 {"provisioning_delay_s", f.replay.provisioning_delay},
                 {"scale_down_delay_s", f.replay.scale_down_delay},
                 {"max_nodes", f.replay.max_nodes},
                 {"price_per_gpu_hour", f.replay.price_per_gpu_hour},
                 {"step_s", f.replay.step}};
  for (const WorkloadRun& run : runs) {
    nlohmann::json w;
    w["name"] = run.name;
    w["gpu_pods"] = run.pods;
    w["split_time_s"] = run.training.split_time;
    w["forecaster"] = as::DescribeForecast(run.training.tuned.options);
    w["training_mae_gpus"] = run.training.tuned.score.mean_absolute_error;
    w["headroom_gpus"] = run.training.tuned.headroom;
    w["training_mean_over_gpus"] = run.training.tuned.mean_over;
    w["coverage"] = f.coverage;
    for (const as::ReplayResult& r : run.results) {
      w["strategies"].push_back({{"strategy", as::ScalingStrategyName(r.strategy)},
                                 {"gpu_hours", r.gpu_hours},
                                 {"demand_gpu_hours", r.demand_gpu_hours},
                                 {"cost", r.cost},
                                 {"pods", r.pods},
                                 {"pods_delayed", r.pods_delayed},
                                 {"pods_multi_gpu", r.pods_multi_gpu},
                                 {"pods_multi_gpu_delayed", r.pods_multi_gpu_delayed},
                                 {"pods_cancelled", r.pods_cancelled},
                                 {"pods_unplaceable", r.pods_unplaceable},
                                 {"pending_p50_s", r.pending_p50},
                                 {"pending_p99_s", r.pending_p99},
                                 {"pending_mean_s", r.pending_mean},
                                 {"pending_max_s", r.pending_max},
                                 {"nodes_requested", r.nodes_requested},
                                 {"peak_nodes", r.peak_nodes}});
    }
    out["workloads"].push_back(std::move(w));
  }
  return out;
}

Status WriteSeries(const WorkloadRun& run, const Flags& f) {
  const std::string path = f.series_dir + "/autoscale_" + run.name + "_series.csv";
  std::ofstream out(path);
  if (!out) return gpu_autoscaler::FailedPreconditionError("cannot write " + path);
  out << "hours,demand_peak_gpus";
  for (const auto& r : run.results) {
    const std::string n(as::ScalingStrategyName(r.strategy));
    out << "," << n << "_ready_gpus," << n << "_provisioned_gpus";
  }
  out << "\n";
  const int64_t from = run.training.split_time;
  size_t steps = 0;
  for (const auto& r : run.results)
    steps = std::max(steps, r.series.size());
  for (size_t k = 0; k < steps; ++k) {
    const int64_t t = static_cast<int64_t>(k) * f.replay.step;
    if (t < from) continue;
    if (f.series_hours > 0 && t - from > f.series_hours * 3600) break;
    char line[64];
    std::snprintf(line, sizeof(line), "%.4f,%.3f", (t - from) / 3600.0,
                  k < run.demand_peaks.size() ? run.demand_peaks[k] : 0.0);
    out << line;
    for (const auto& r : run.results) {
      if (k < r.series.size()) {
        out << "," << r.series[k].ready_gpus << "," << r.series[k].provisioned_gpus;
      } else {
        out << ",0,0";
      }
    }
    out << "\n";
  }
  if (!out) return gpu_autoscaler::DataLossError("error writing " + path);
  return Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  f.replay.price_per_gpu_hour = 2.0;
  f.replay.step = 60;  // the GenTD26 series is per minute
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--progress" || a == "--no-progress") {
      f.progress = a == "--progress";
      continue;
    }
    if (a == "--through-controller") {
      f.replay.through_controller = true;
      continue;
    }
    if (i + 1 >= argc) return UsageError("unknown flag or missing value: " + std::string(a));
    const char* v = argv[++i];
    double d = 0;
    int64_t n = 0;
    auto bad = [&] { return UsageError("bad value for " + std::string(a) + ": " + v); };
    if (a == "--workload") {
      f.workload = v;
      if (f.workload != "openb" && f.workload != "genai" && f.workload != "both") return bad();
    } else if (a == "--openb-pods") {
      f.openb_pods = v;
    } else if (a == "--qps") {
      f.qps = v;
    } else if (a == "--replica-capacity") {
      if (!ParseNumber(v, &f.replica_capacity) || f.replica_capacity <= 0) return bad();
    } else if (a == "--min-replicas") {
      if (!ParseInt(v, &n) || n < 0 || n > 100000) return bad();
      f.min_replicas = static_cast<int>(n);
    } else if (a == "--gpus-per-node") {
      if (!ParseInt(v, &n) || n < 1 || n > 64) return bad();
      f.replay.gpus_per_node = static_cast<int>(n);
    } else if (a == "--provisioning-delay") {
      if (!ParseInt(v, &n) || n < 0) return bad();
      f.replay.provisioning_delay = n;
    } else if (a == "--scale-down-delay") {
      if (!ParseInt(v, &n) || n < 0) return bad();
      f.replay.scale_down_delay = n;
    } else if (a == "--predictive-scale-down-delay") {
      if (!ParseInt(v, &n) || n < 0) return bad();
      f.replay.predictive_scale_down_delay = n;
    } else if (a == "--max-nodes") {
      if (!ParseInt(v, &n) || n < 0 || n > 1000000) return bad();
      f.replay.max_nodes = static_cast<int>(n);
    } else if (a == "--price") {
      if (!ParseNumber(v, &d) || d < 0) return bad();
      f.replay.price_per_gpu_hour = d;
    } else if (a == "--step") {
      if (!ParseInt(v, &n) || n < 1 || 86400 % n != 0) return bad();
      f.replay.step = n;
    } else if (a == "--train-fraction") {
      if (!ParseNumber(v, &f.train_fraction) || f.train_fraction <= 0 || f.train_fraction >= 1)
        return bad();
    } else if (a == "--coverage") {
      if (!ParseNumber(v, &f.coverage) || f.coverage < 0 || f.coverage > 1) return bad();
    } else if (a == "--json") {
      f.json = v;
    } else if (a == "--series-hours") {
      if (!ParseNumber(v, &f.series_hours) || f.series_hours <= 0) return bad();
    } else if (a == "--series-dir") {
      f.series_dir = v;
    } else {
      return UsageError("unknown flag: " + std::string(a));
    }
  }

  std::vector<as::ReplayWorkload> workloads;
  if (f.workload != "genai") {
    Result<as::ReplayWorkload> w = LoadOpenb(f.openb_pods);
    if (!w.ok()) return UsageError(w.error().ToString());
    workloads.push_back(std::move(*w));
  }
  if (f.workload != "openb") {
    Result<as::ReplayWorkload> w = LoadGenai(f);
    if (!w.ok()) return UsageError(w.error().ToString());
    workloads.push_back(std::move(*w));
  }
  std::vector<WorkloadRun> runs;
  for (const as::ReplayWorkload& w : workloads) {
    Result<WorkloadRun> run = RunWorkload(w, f);
    if (!run.ok()) {
      std::fprintf(stderr, "autoscale_replay: %s: %s\n", w.name.c_str(),
                   run.error().ToString().c_str());
      return 1;
    }
    if (!f.series_dir.empty()) {
      if (Status s = WriteSeries(*run, f); !s.ok()) {
        std::fprintf(stderr, "autoscale_replay: %s\n", s.ToString().c_str());
        return 1;
      }
    }
    runs.push_back(std::move(*run));
  }
  if (f.json == "-") {
    std::printf("%s\n", ToJson(runs, f).dump(2).c_str());
    return 0;
  }
  PrintTable(runs, f);
  if (!f.json.empty()) {
    std::ofstream out(f.json);
    out << ToJson(runs, f).dump(2) << "\n";
    if (!out) {
      std::fprintf(stderr, "autoscale_replay: cannot write %s\n", f.json.c_str());
      return 1;
    }
  }
  return 0;
}
