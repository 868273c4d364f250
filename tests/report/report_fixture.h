// File: tests/report/report_fixture.h
//
// Report inputs shaped like the demo's (hack/demo.sh): two teams on spot and
// on-demand A100s, time-sliced notebooks, a Budget past 100% with six alerts
// and a denied pod, a node pool that scaled up, lost a spot node and scaled
// down, the openb placement curves and a ServiceProfile. Names carry HTML
// metacharacters where the cluster could put them, to check escaping.
//
//   report::ReportInputs in = testing::DemoLikeReportInputs();
//
// Thread-safety: pure function.
#pragma once

#include "report/report.h"

namespace gpu_autoscaler::testing {

inline report::ReportInputs DemoLikeReportInputs() {
  using namespace report;
  constexpr int64_t kT0 = 1'796'000'000;  // 2026-11-30T00:53:20Z
  ReportInputs in;
  in.cluster = "demo";
  in.generated_at = kT0 + 600;
  in.since = kT0 - 3000;
  in.until = kT0 + 600;
  in.on_demand_gpu_rate = {{"NVIDIA-A100-SXM4-40GB", 4.0975}};
  in.costs = {
      {.team = "vision",
       .tier = "spot",
       .gpu_model = "NVIDIA-A100-SXM4-40GB",
       .gpu_seconds = 8 * 180.0,
       .gpu_cost = 0.64,
       .exclusive_gpu_cost = 0.64,
       .other_cost = 0.05},
      {.team = "nlp",
       .tier = "spot",
       .gpu_model = "NVIDIA-A100-SXM4-40GB",
       .gpu_seconds = 180.0,
       .gpu_cost = 0.08,
       .exclusive_gpu_cost = 0.32,
       .other_cost = 0.04},
      {.team = "nlp",
       .tier = "on-demand",
       .gpu_model = "NVIDIA-A100-SXM4-40GB",
       .gpu_seconds = 2 * 180.0,
       .gpu_cost = 0.41,
       .exclusive_gpu_cost = 0.41,
       .other_cost = 0.02},
      {.idle = true, .idle_gpu_seconds = 20 * 180.0, .idle_cost = 2.9},
  };
  for (int minute = 0; minute < 4; ++minute) {
    in.cost_series.push_back({.team = "vision", .bucket = kT0 + 60 * minute, .cost = 0.17});
    in.cost_series.push_back({.team = "nlp", .bucket = kT0 + 60 * minute, .cost = 0.14});
  }
  for (int i = 0; i < 4; ++i)
    in.pods.push_back({.ns = "team-nlp",
                       .name = "notebook-" + std::to_string(i),
                       .team = "nlp",
                       .mode = "timeSlicing",
                       .gpu_share = 0.25});
  in.pods.push_back({.ns = "team-vision",
                     .name = "train-resnet-0",
                     .team = "vision",
                     .mode = "exclusive",
                     .gpu_share = 4});
  in.pods.push_back({.ns = "team-vision",
                     .name = "train-resnet-1",
                     .team = "vision",
                     .mode = "exclusive",
                     .gpu_share = 4});
  in.pods.push_back({.ns = "team-nlp",
                     .name = "finetune-llama",
                     .team = "nlp",
                     .mode = "exclusive",
                     .gpu_share = 2});
  in.sharing_policies = {{.name = "timeslicing-<notebooks>", .matched_pods = 4}};
  in.budgets = {{.ns = "team-nlp",
                 .name = "nlp-gpus",
                 .enforcement = "alert",
                 .amount = 500,
                 .spend = 0.55,
                 .percent = 0.11},
                {.ns = "team-vision",
                 .name = "vision-gpus",
                 .enforcement = "blockNewGPUPods",
                 .amount = 0.30,
                 .spend = 0.69,
                 .percent = 230,
                 .true_conditions = {"Exceeded"},
                 .fired_thresholds = {50, 80, 100}}};
  for (double threshold : {50.0, 80.0, 100.0}) {
    const std::string t = std::to_string(static_cast<int>(threshold));
    in.alerts.push_back({.channel = "/slack",
                         .summary = "Budget team-vision/vision-gpus reached " + t + "%",
                         .threshold = threshold});
    in.alerts.push_back({.channel = "/hook",
                         .summary = "Budget team-vision/vision-gpus reached " + t + "%",
                         .threshold = threshold,
                         .signed_request = true});
  }
  in.denied = {
      "admission webhook \"budget.gpuautoscaler.io\" denied the request: Budget "
      "team-vision/vision-gpus exceeded <blockNewGPUPods>"};
  in.pools = {{.name = "demo-a10", .nodes = 0, .desired = 0}};
  in.events = {
      {.kind = "GPUNodePool",
       .name = "demo-a10",
       .reason = "ScaleUp",
       .message = "+2 sim.a10x2 in group a10-spot for 3 pending GPU pods",
       .first = kT0 + 300,
       .last = kT0 + 300},
      {.kind = "GPUNodePool",
       .name = "demo-a10",
       .reason = "Interruption",
       .message = "node sim-a10-1 (sim.a10x2 spot) will be reclaimed",
       .first = kT0 + 360,
       .last = kT0 + 360},
      {.kind = "Node",
       .name = "sim-a10-1",
       .reason = "InterruptionDrained",
       .message = "drained 2 pods in 1.2s",
       .first = kT0 + 362,
       .last = kT0 + 362},
      {.kind = "GPUNodePool",
       .name = "demo-a10",
       .reason = "Terminate",
       .message = "terminated sim-a10-1 (i-1) in group a10-spot after its interruption notice",
       .first = kT0 + 370,
       .last = kT0 + 370},
      {.kind = "GPUNodePool",
       .name = "demo-a10",
       .reason = "ScaleUp",
       .message = "+1 sim.a10x2 in group a10-ondemand for 2 pending GPU pods",
       .first = kT0 + 380,
       .last = kT0 + 380},
      {.kind = "GPUNodePool",
       .name = "demo-a10",
       .reason = "Terminate",
       .message = "terminated empty nodes",
       .first = kT0 + 450,
       .last = kT0 + 455,
       .count = 2},
      {.kind = "Pod",
       .ns = "batch",
       .name = "render-0",
       .reason = "Evicted",
       .message = "x",
       .first = kT0 + 361,
       .last = kT0 + 361},
  };
  in.placement = {
      {.policy = "Random",
       .arrived_pct = {0, 50, 100, 130},
       .alloc_pct = {0, 48, 84, 86},
       .frag_pct = {0, 5, 12, 13}},
      {.policy = "BestFit",
       .arrived_pct = {0, 50, 100, 130},
       .alloc_pct = {0, 50, 92, 94},
       .frag_pct = {0, 2, 6, 6}},
      {.policy = "FGD",
       .arrived_pct = {0, 50, 100, 130},
       .alloc_pct = {0, 50, 95, 97},
       .frag_pct = {0, 1, 3, 3}},
  };
  in.reschedules = {{.name = "defrag-demo",
                     .dry_run = false,
                     .planned = 1,
                     .executed = 1,
                     .fragmentation = 100,
                     .moves = {"Executed defrag/infer-1 t4-2 -> t4-1: frees 2 GPUs"}}};
  in.profiles = {{.ns = "team-nlp",
                  .name = "chat",
                  .target = "Deployment/chat",
                  .provided = true,
                  .message = "2 pods, 40 samples",
                  .containers = {{.container = "server",
                                  .cpu_target = "350m",
                                  .cpu_lower = "300m",
                                  .memory_target = "629145600"}}}};
  return in;
}

}  // namespace gpu_autoscaler::testing
