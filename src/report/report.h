// File: src/report/report.h
//
// The cluster report (`gpu-autoscaler report`, the end of `make demo`): what
// GPU sharing freed, cost by team against what it would have been without
// sharing and without spot, Budgets and their alerts, the node pools'
// scale-ups, consolidations and spot interruptions, placement against FGD,
// the pods preempted, and ServiceProfile recommendations.
//
//   ReportInputs in = ...;          // gathered by tools/report_cli.cc (or a test)
//   Report r = BuildReport(in);     // pure: figures only, no I/O
//   std::string html = RenderHtml(r);  // report/render.h
//
// Honest figures, as `gpu-autoscaler roi`: spot is a saving on the bill;
// sharing is attribution (it lowers what pods are charged and frees GPUs for
// other pods) until fewer nodes run; idle capacity is what scaling down can
// still save.
//
// Thread-safety: plain values and a pure function.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gpu_autoscaler::report {

// ---- Inputs -----------------------------------------------------------------

// One row of the cost history grouped by team, capacity tier and GPU model.
struct CostInput {
  std::string team{};  // "" = no team label
  std::string tier{};  // "spot", "on-demand", ...
  std::string gpu_model{};
  bool idle = false;  // idle capacity of nodes (no team)
  double gpu_seconds = 0;
  double gpu_cost = 0;
  double exclusive_gpu_cost = 0;  // had every pod held whole GPUs
  double other_cost = 0;          // CPU and memory requests
  double idle_gpu_seconds = 0;
  double idle_cost = 0;
};

// Cost of one team in one time bucket (a series from the cost history).
struct CostPointInput {
  std::string team{};  // "" = no team label; idle rows are left out
  int64_t bucket = 0;
  double cost = 0;
};

// A running pod that holds GPUs, as the cost meter sees it.
struct PodGpuInput {
  std::string ns{}, name{}, team{};
  std::string mode{};    // "exclusive", "timeSlicing", "mps", "mig"
  double gpu_share = 0;  // GPUs it is charged for (0.25 for one of four time slices)
};

struct SharingPolicyInput {
  std::string name{};
  int matched_pods = 0;
};

struct BudgetInput {
  std::string ns{}, name{}, currency = "USD", enforcement{};
  double amount = 0, spend = 0, percent = 0, forecast = -1;
  std::vector<std::string> true_conditions{};  // "Exceeded", "ForecastExceeded", ...
  std::vector<double> fired_thresholds{};      // status.lastAlert, state fired
};

// One request the alert receiver logged (hack/alert-receiver.py).
struct AlertInput {
  std::string channel{};  // the request path: "/slack", "/hook"
  std::string summary{};
  double threshold = -1;  // percent, when the payload says
  std::string time{};     // RFC 3339, when the payload says
  bool signed_request = false;
};

struct NodePoolInput {
  std::string name{};
  int nodes = 0, desired = 0;
  double hourly_cost = 0;
};

// An Event about a node pool or a node (GPUNodePool actions, the node
// agent's InterruptionDrained, ...), aggregated as the API server keeps them.
struct EventInput {
  std::string kind{}, ns{}, name{};  // involvedObject
  std::string reason{}, message{}, type{};
  int64_t first = 0, last = 0;  // Unix seconds
  int count = 1;
};

// The placement simulator's arrived-workload curve (simulate --arrived-curve).
struct PlacementCurve {
  std::string policy{};
  std::vector<double> arrived_pct{}, alloc_pct{}, frag_pct{};
};

struct RescheduleInput {
  std::string name{};
  bool dry_run = true;
  int planned = 0, executed = 0, blocked = 0;
  double fragmentation = -1;         // percent of idle GPU
  std::vector<std::string> moves{};  // "Executed defrag/infer-1: ..."
};

struct ContainerRecommendation {
  std::string container{}, cpu_target{}, cpu_lower{}, cpu_upper{}, memory_target{}, memory_upper{},
      gpu_share{};
};
struct ProfileInput {
  std::string ns{}, name{}, target{};  // target "Deployment/chat"
  bool provided = false;
  std::string message{};
  std::vector<ContainerRecommendation> containers{};
};

struct ReportInputs {
  std::string cluster{};
  int64_t generated_at = 0;
  int64_t since = 0, until = 0;  // the cost window
  std::string currency = "USD";
  std::vector<CostInput> costs{};
  std::vector<CostPointInput> cost_series{};
  std::map<std::string, double> on_demand_gpu_rate{};  // GPU model -> per GPU-hour
  std::vector<PodGpuInput> pods{};
  std::vector<SharingPolicyInput> sharing_policies{};
  std::vector<BudgetInput> budgets{};
  std::vector<AlertInput> alerts{};
  std::vector<std::string> denied{};  // admission denials the caller saw
  std::vector<NodePoolInput> pools{};
  std::vector<EventInput> events{};
  std::vector<PlacementCurve> placement{};
  std::vector<RescheduleInput> reschedules{};
  std::vector<ProfileInput> profiles{};
  std::vector<std::string> notes{};  // inputs that were missing, said so in the report
};

// ---- The report -------------------------------------------------------------

struct SharingModeRow {
  std::string mode{};
  int pods = 0;
  double held_gpus = 0;   // sum of shares
  double whole_gpus = 0;  // one whole GPU (or more) per pod without sharing
};
struct SharingSection {
  double held_gpus = 0, whole_gpus = 0;
  double freed_gpus() const { return whole_gpus - held_gpus; }
  std::vector<SharingModeRow> modes{};  // shared modes first, "exclusive" last
  std::vector<SharingPolicyInput> policies{};
};

struct TeamCostRow {
  std::string team{};
  double gpu_hours = 0;
  double actual = 0;           // what the team was charged (GPU, CPU, memory)
  double without_sharing = 0;  // whole GPUs per pod (attribution)
  double without_spot = 0;     // spot GPU-hours at the on-demand rate (bill)
};
struct CostSeries {
  std::string team{};
  std::vector<int64_t> time{};
  std::vector<double> cumulative{};
};
struct CostSection {
  std::vector<TeamCostRow> teams{};  // by actual cost, descending
  double actual = 0, without_sharing = 0, without_spot = 0;
  double spot_saving() const { return without_spot - actual; }            // realised
  double sharing_attributed() const { return without_sharing - actual; }  // not a saving yet
  double idle_gpu_hours = 0, idle_cost = 0;  // available by scaling down
  std::vector<CostSeries> series{};
  std::vector<std::string> notes{};  // e.g. spot GPU-hours with no on-demand rate
};

struct AlertRow {
  std::string channel{}, summary{}, time{};
  double threshold = -1;
  bool signed_request = false;
};
struct BudgetSection {
  std::vector<BudgetInput> budgets{};  // by percent, descending
  std::vector<AlertRow> alerts{};
  std::map<std::string, int> alerts_by_channel{};
  std::vector<std::string> denied{};
};

enum class PoolEventKind { kScaleUp, kScaleDown, kInterruption, kOther };
struct PoolEventRow {
  int64_t time = 0;
  std::string object{};  // "GPUNodePool/demo-a10", "Node/x"
  std::string reason{}, message{};
  int count = 1;
  PoolEventKind kind = PoolEventKind::kOther;
  int node_delta = 0;  // nodes added (+) or removed (-) by this event, all its occurrences
};
struct NodeStep {
  int64_t time = 0;
  int nodes = 0;
};
struct PoolSection {
  std::vector<NodePoolInput> pools{};
  std::vector<PoolEventRow> events{};  // by time
  int nodes_added = 0, nodes_removed = 0, interruptions = 0;
  // Pool nodes over time, rebuilt backwards from the pools' current count
  // through the ScaleUp and Terminate events.
  std::vector<NodeStep> nodes_over_time{};
};

struct PlacementRow {
  std::string policy{};
  double alloc_at_100 = -1;  // GPU allocation % when 100% of capacity has arrived
  double alloc_final = -1;   // at the last arrived point
  double final_arrived = 0;
  double vs_fgd = 0;  // alloc_final - FGD's, percentage points
};
struct PlacementSection {
  std::vector<PlacementCurve> curves{};
  std::vector<PlacementRow> rows{};  // as given
  bool has_fgd = false;
  std::vector<RescheduleInput> reschedules{};
};

// A pod evicted so that one of higher priority could run: a core/v1
// "Preempted" Event, as kube-scheduler and our scheduler record them.
struct PreemptionRow {
  int64_t time = 0;
  std::string victim{};  // "ns/name"
  // "ns/name"; kube-scheduler since kubernetes/kubernetes#114923 writes "a pod",
  // and since #119866 "pod <uid>".
  std::string preemptor{};
  std::string node{};       // where the preemptor goes
  std::string pod_group{};  // when the victim went with its whole pod group
};
struct PreemptionSection {
  std::vector<PreemptionRow> rows{};          // by time
  std::map<std::string, int> by_preemptor{};  // victims each preemptor caused
  int whole_groups = 0;                       // distinct pod groups evicted whole
};

struct Report {
  std::string cluster{}, currency{};
  int64_t generated_at = 0, since = 0, until = 0;
  SharingSection sharing;
  CostSection cost;
  BudgetSection budgets;
  PoolSection pools;
  PlacementSection placement;
  PreemptionSection preemptions;
  std::vector<ProfileInput> profiles{};
  std::vector<std::string> notes{};
};

Report BuildReport(const ReportInputs& in);

// The core/v1 Event field selectors that fetch exactly the Events the report
// shows: every GPUNodePool Event, Node Events with an interruption reason
// (one selector per reason: field selectors only AND), and Pod Events with
// reason Preempted.
std::vector<std::string> ShownEventFieldSelectors();
std::string_view PoolEventKindName(PoolEventKind kind);  // "scale-up", "scale-down", ...

}  // namespace gpu_autoscaler::report
