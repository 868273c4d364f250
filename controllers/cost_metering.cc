#include "controllers/cost_metering.h"

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <limits>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "api/nvidia.h"
#include "reconcile/logging.h"

namespace gpu_autoscaler::controllers {
namespace {

using reconcile::Log;
using reconcile::LogLevel;

using api::kGpuResource;
// What the webhook rewrites time-sliced and MPS pods to request.
using api::kMigResourcePrefix;
using api::kSharedGpuResource;
constexpr std::string_view kOwnAnnotationPrefix = "gpuautoscaler.io/";
constexpr std::string_view kOther = "other";

// GPUs (shared GPU replicas, or MIG devices) a pod requests, as the
// scheduler counts them; the sharing annotations turn them into a share.
double GpuRequest(const kube::PodView& pod) {
  int64_t gpus = pod.Request(kGpuResource) + pod.Request(kSharedGpuResource);
  auto add_mig = [&](std::span<const kube::ContainerResources> containers, bool max_rule) {
    int64_t total = 0;
    for (const kube::ContainerResources& c : containers) {
      int64_t container_mig = 0;
      for (const kube::ResourceQuantity& q : c.requests.span()) {
        if (q.name.view().substr(0, kMigResourcePrefix.size()) == kMigResourcePrefix)
          container_mig += q.amount;
      }
      total = max_rule ? std::max(total, container_mig) : total + container_mig;
    }
    return total;
  };
  gpus += std::max(add_mig(pod.containers(), false), add_mig(pod.init_containers(), true));
  return static_cast<double>(gpus);
}

// Physical GPUs of a node. A time-sliced or MPS node advertises replicas
// (nvidia.com/gpu.shared, or nvidia.com/gpu without renameByDefault), and GPU
// feature discovery labels the replica count.
int NodeGpus(const kube::NodeView& node) {
  int replicas = 1;
  if (std::optional<std::string_view> r = node.label(api::kGpuReplicasLabel)) {
    int parsed = 0;
    auto [end, ec] = std::from_chars(r->data(), r->data() + r->size(), parsed);
    if (ec == std::errc() && end == r->data() + r->size() && parsed > 1) replicas = parsed;
  }
  const int64_t whole = node.Allocatable(kGpuResource);
  const int64_t shared = node.Allocatable(kSharedGpuResource);
  if (shared > 0) return static_cast<int>(whole + shared / replicas);
  return static_cast<int>(whole / replicas);
}

std::map<std::string, std::string> LabelMap(std::span<const kube::Label> labels) {
  std::map<std::string, std::string> out;
  for (const kube::Label& l : labels)
    out.emplace(l.key.view(), l.value.view());
  return out;
}

}  // namespace

MeterInventory BuildMeterInventory(std::span<const std::shared_ptr<const kube::NodeView>> nodes,
                                   std::span<const std::shared_ptr<const kube::PodView>> pods,
                                   int64_t second) {
  MeterInventory out;
  out.nodes.reserve(nodes.size());
  for (const auto& node : nodes) {
    cost::MeteredNode n;
    n.name = node->name();
    n.instance_type = node->instance_type();
    n.tier = cost::TierFromNodeLabels(LabelMap(node->labels()));
    n.gpu_model = node->gpu_product();
    n.gpus = NodeGpus(*node);
    n.cpu_cores = static_cast<double>(node->Allocatable("cpu")) / 1000.0;
    n.memory_bytes = static_cast<double>(node->Allocatable("memory"));
    out.nodes.push_back(std::move(n));
  }
  out.pods.reserve(pods.size());
  std::map<std::string, std::string> annotations;
  for (const auto& pod : pods) {
    if (pod->node_name().empty()) continue;
    if (pod->phase() == kube::PodPhase::kSucceeded || pod->phase() == kube::PodPhase::kFailed)
      continue;
    const int64_t created = pod->creation_timestamp();
    if (created != kube::kNoTime && created > second) {
      out.valid_until = std::min(out.valid_until, created);
      continue;
    }
    cost::MeteredPod p;
    p.uid = pod->uid();
    p.name = pod->name();
    p.ns = pod->ns();
    p.labels = LabelMap(pod->labels());
    p.node = pod->node_name();
    p.cpu_cores = static_cast<double>(pod->Request("cpu")) / 1000.0;
    p.memory_bytes = static_cast<double>(pod->Request("memory"));
    p.gpus = GpuRequest(*pod);
    if (p.gpus > 0) {
      annotations.clear();
      for (const kube::Annotation& a : pod->annotations()) {
        if (a.key.view().substr(0, kOwnAnnotationPrefix.size()) == kOwnAnnotationPrefix)
          annotations.emplace(a.key.view(), a.value);
      }
      auto sharing = cost::ParseSharingAnnotations(annotations);
      if (sharing.ok()) {
        p.sharing = std::move(*sharing);
      } else {
        out.bad_annotations.push_back(std::string(pod->ns()) + "/" + std::string(pod->name()) +
                                      ": " + sharing.error().message());
      }
    }
    out.pods.push_back(std::move(p));
  }
  return out;
}

struct CostMeteringLoop::Metrics {
  explicit Metrics(prometheus::Registry& registry)
      : metered_seconds(prometheus::BuildCounter()
                            .Name("gpu_autoscaler_cost_metered_seconds_total")
                            .Help("Seconds metered and stored in the cost history")
                            .Register(registry)
                            .Add({})),
        store_errors(prometheus::BuildCounter()
                         .Name("gpu_autoscaler_cost_store_errors_total")
                         .Help("Failed cost-store writes or reads (the seconds are retried)")
                         .Register(registry)
                         .Add({})),
        lost_seconds(prometheus::BuildCounter()
                         .Name("gpu_autoscaler_cost_unmetered_seconds_total")
                         .Help("Seconds older than the backfill limit that were never metered")
                         .Register(registry)
                         .Add({})),
        backlog(prometheus::BuildGauge()
                    .Name("gpu_autoscaler_cost_backlog_seconds")
                    .Help("Complete seconds not yet stored (grows during a store outage)")
                    .Register(registry)
                    .Add({})),
        metered_pods(prometheus::BuildGauge()
                         .Name("gpu_autoscaler_cost_metered_pods")
                         .Help("Pods priced in the last metered second")
                         .Register(registry)
                         .Add({})),
        unpriced_nodes(prometheus::BuildGauge()
                           .Name("gpu_autoscaler_cost_unpriced_nodes")
                           .Help("Nodes the pricing source could not price (not charged)")
                           .Register(registry)
                           .Add({})),
        utilization_source(prometheus::BuildGauge()
                               .Name("gpu_autoscaler_cost_utilization_source")
                               .Help("1 for the GPU utilisation source in use; source=\"none\" "
                                     "means allocation cost only")
                               .Register(registry)),
        rate(prometheus::BuildGauge()
                 .Name("gpu_autoscaler_cost_per_hour")
                 .Help("Current cost rate per hour by attribution (top series by spend, the "
                       "rest under \"other\")")
                 .Register(registry)),
        total(prometheus::BuildGauge()
                  .Name("gpu_autoscaler_cost_metered")
                  .Help("Cost metered by this process since it started, by attribution (top "
                        "series by spend, the rest under \"other\")")
                  .Register(registry)),
        idle_rate(prometheus::BuildGauge()
                      .Name("gpu_autoscaler_node_idle_cost_per_hour")
                      .Help("Cost per hour of capacity no pod holds, by node (top nodes, the rest "
                            "under \"other\")")
                      .Register(registry)),
        idle_gpus(prometheus::BuildGauge()
                      .Name("gpu_autoscaler_node_idle_gpus")
                      .Help("GPUs no pod holds, by node (top nodes by idle cost)")
                      .Register(registry)),
        utilization_errors(
            prometheus::BuildCounter()
                .Name("gpu_autoscaler_cost_utilization_errors_total")
                .Help("Failed utilisation fetches (that tick meters allocation only)")
                .Register(registry)
                .Add({})),
        waste(prometheus::BuildGauge()
                  .Name("gpu_autoscaler_idle_gpu")
                  .Help("Allocated GPUs under the utilisation threshold for the whole window: "
                        "pods idle now, and idle GPU-seconds and their cost since start")
                  .Register(registry)) {}

  prometheus::Counter& metered_seconds;
  prometheus::Counter& store_errors;
  prometheus::Counter& lost_seconds;
  prometheus::Gauge& backlog;
  prometheus::Gauge& metered_pods;
  prometheus::Gauge& unpriced_nodes;
  prometheus::Family<prometheus::Gauge>& utilization_source;
  prometheus::Family<prometheus::Gauge>& rate;
  prometheus::Family<prometheus::Gauge>& total;
  prometheus::Family<prometheus::Gauge>& idle_rate;
  prometheus::Family<prometheus::Gauge>& idle_gpus;
  prometheus::Counter& utilization_errors;
  prometheus::Family<prometheus::Gauge>& waste;

  // Attribution series: labels, accumulated cost and the last second's cost.
  struct Series {
    std::map<std::string, std::string> labels;
    double total = 0;
    double last = 0;
  };
  std::vector<Series> series;
  std::unordered_map<std::string, uint32_t> series_ids;
  std::vector<uint32_t> pod_series;  // by inventory pod index
  std::vector<prometheus::Gauge*> published_rate, published_total, published_idle,
      published_idle_gpus;
};

CostMeteringLoop::CostMeteringLoop(const kube::Store<kube::NodeView>& nodes,
                                   const kube::Store<kube::PodView>& pods, StoreFactory open_store,
                                   std::shared_ptr<const cost::PricingSource> pricing,
                                   prometheus::Registry& registry, Clock& clock,
                                   CostMeteringOptions options)
    : nodes_(nodes),
      pods_(pods),
      open_store_(std::move(open_store)),
      clock_(clock),
      options_(std::move(options)),
      pending_pricing_(std::move(pricing)),
      waste_(options_.waste),
      metrics_(std::make_unique<Metrics>(registry)) {
  metrics_->utilization_source
      .Add(
          {{"source", options_.utilization == nullptr ? std::string("none")
                                                      : std::string(options_.utilization->name())}})
      .Set(1);
}

void CostMeteringLoop::FetchUtilization() {
  if (options_.utilization == nullptr) return;
  auto usage = options_.utilization->Fetch();
  if (!usage.ok()) {
    metrics_->utilization_errors.Increment();
    if (!utilization_failing_) {
      Log(LogLevel::kWarn, "GPU utilisation fetch failed; metering allocation cost only",
          {{"source", std::string(options_.utilization->name())},
           {"error", usage.error().ToString()}});
    }
    utilization_failing_ = true;
    utilization_.clear();
    return;
  }
  if (utilization_failing_) {
    Log(LogLevel::kInfo, "GPU utilisation fetch recovered", {});
    utilization_failing_ = false;
  }
  utilization_.clear();
  for (const cost::PodGpuUsage& u : *usage) {
    const double share = u.ShareUtilization();
    if (share >= 0) utilization_[u.ns + "/" + u.pod] = share;
  }
}

void CostMeteringLoop::ApplyUtilization() {
  if (meter_ == nullptr || options_.utilization == nullptr) return;
  for (size_t i = 0; i < inventory_.pods.size(); ++i) {
    const cost::MeteredPod& p = inventory_.pods[i];
    auto it = utilization_.find(p.ns + "/" + p.name);
    meter_->SetUtilization(static_cast<uint32_t>(i), it == utilization_.end() ? -1 : it->second);
  }
}

void CostMeteringLoop::ObserveWaste(const cost::TickResult& tick) {
  if (options_.utilization == nullptr) return;
  std::vector<cost::IdleEvent> events;
  std::map<std::string, double> hourly;  // the GPU cost per hour of each pod seen this tick
  for (const cost::PodSecondCost& c : tick.pods) {
    if (c.gpu_share <= 0) continue;
    const cost::MeteredPod& p = inventory_.pods[c.pod_index];
    const std::string key = p.ns + "/" + p.name;
    hourly[key] = c.gpu_cost * 3600;
    waste_.SetAllocation(key, c.gpu_share, c.gpu_cost);
    auto it = utilization_.find(key);
    if (it != utilization_.end()) waste_.Observe(key, tick.second, it->second, events);
  }
  // Pods the detector still follows but that hold no GPU any more.
  for (const cost::PodWaste& w : waste_.AllWaste()) {
    if (hourly.count(w.pod) == 0) (void)waste_.Remove(w.pod, tick.second, events);
  }
  if (options_.on_idle_event) {
    for (const cost::IdleEvent& e : events)
      options_.on_idle_event(e.pod, e, hourly[e.pod]);
  }
  const cost::WasteTotals totals = waste_.Totals();
  metrics_->waste.Add({{"measure", "pods_idle_now"}}).Set(static_cast<double>(totals.idle_pods));
  metrics_->waste.Add({{"measure", "idle_gpu_seconds"}}).Set(totals.idle_gpu_seconds);
  metrics_->waste.Add({{"measure", "idle_cost"}}).Set(totals.idle_cost);
  metrics_->waste.Add({{"measure", "measured_gpu_seconds"}}).Set(totals.measured_gpu_seconds);
}

CostMeteringLoop::~CostMeteringLoop() = default;

void CostMeteringLoop::SetPricing(std::shared_ptr<const cost::PricingSource> pricing) {
  std::lock_guard<std::mutex> lock(pricing_mu_);
  pending_pricing_ = std::move(pricing);
}

Status CostMeteringLoop::EnsureStore() {
  if (store_ != nullptr) return Status::Ok();
  auto store = open_store_();
  if (!store.ok()) return store.error();
  store_ = std::move(*store);
  return Status::Ok();
}

// One warning per instance type and reason for the nodes not warned about yet:
// a fleet of unknown machines is one problem, not one line per node.
void CostMeteringLoop::WarnUnpricedNodes(const std::vector<cost::UnpricedNode>& unpriced) {
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> fresh;
  for (const cost::UnpricedNode& n : unpriced) {
    if (warned_bad_pods_.emplace("node/" + n.node, n.why.reason).second)
      fresh[{n.why.instance_type, n.why.reason}].push_back(n.node);
  }
  constexpr size_t kNamed = 3;
  for (auto& [key, nodes] : fresh) {
    std::sort(nodes.begin(), nodes.end());
    std::string named;
    for (size_t i = 0; i < nodes.size() && i < kNamed; ++i)
      named += (i == 0 ? "" : ",") + nodes[i];
    if (nodes.size() > kNamed) named += " and " + std::to_string(nodes.size() - kNamed) + " more";
    Log(LogLevel::kWarn,
        nodes.size() == 1 ? "node has no price; its pods are not charged"
                          : "nodes have no price; their pods are not charged",
        {{"nodes", named},
         {"count", std::to_string(nodes.size())},
         {"instance_type", key.first},
         {"reason", key.second}});
  }
}

Status CostMeteringLoop::RebuildInventory(int64_t second) {
  {
    std::lock_guard<std::mutex> lock(pricing_mu_);
    if (pending_pricing_ != nullptr) {
      pricing_ = std::move(pending_pricing_);
      pending_pricing_ = nullptr;
      meter_ = std::make_unique<cost::Meter>(*pricing_, options_.meter);
    }
  }
  if (meter_ == nullptr) return FailedPreconditionError("cost metering has no pricing source");
  const auto nodes = nodes_.List();
  const auto pods = pods_.List();
  inventory_ = BuildMeterInventory(nodes, pods, second);
  inventory_second_ = second;
  const cost::InventoryReport report = meter_->SetInventory(inventory_.nodes, inventory_.pods);
  ApplyUtilization();
  metrics_->unpriced_nodes.Set(static_cast<double>(report.unpriced_nodes.size()));
  for (const std::string& bad : inventory_.bad_annotations) {
    const std::string key = bad.substr(0, bad.find(':'));
    auto [it, inserted] = warned_bad_pods_.emplace(key, bad);
    if (inserted || it->second != bad) {
      it->second = bad;
      Log(LogLevel::kWarn, "pod's sharing annotations do not parse; charged as exclusive",
          {{"pod", bad}});
    }
  }
  WarnUnpricedNodes(report.unpriced_nodes);
  // Attribution series of each pod, for the metrics.
  Metrics& m = *metrics_;
  const cost::AttributionLabels& keys = options_.meter.labels;
  m.pod_series.assign(inventory_.pods.size(), 0);
  std::unordered_map<std::string_view, const cost::MeteredNode*> node_by_name;
  for (const cost::MeteredNode& n : inventory_.nodes)
    node_by_name.emplace(n.name, &n);
  for (size_t i = 0; i < inventory_.pods.size(); ++i) {
    const cost::MeteredPod& p = inventory_.pods[i];
    auto label = [&](const std::string& key) {
      auto it = p.labels.find(key);
      return it == p.labels.end() ? std::string() : it->second;
    };
    std::string gpu_model, tier = "unknown";
    if (auto it = node_by_name.find(p.node); it != node_by_name.end()) {
      gpu_model = p.gpus > 0 ? it->second->gpu_model : "";
      tier = std::string(cost::CapacityTierName(it->second->tier));
    }
    const std::string team = label(keys.team), project = label(keys.project),
                      experiment = label(keys.experiment);
    const std::string id_key = p.ns + '\x1f' + team + '\x1f' + project + '\x1f' + experiment +
                               '\x1f' + gpu_model + '\x1f' + tier;
    auto [it, inserted] = m.series_ids.emplace(id_key, static_cast<uint32_t>(m.series.size()));
    if (inserted) {
      m.series.push_back({{{"namespace", p.ns},
                           {"team", team},
                           {"project", project},
                           {"experiment", experiment},
                           {"gpu_model", gpu_model},
                           {"tier", tier}},
                          0,
                          0});
    }
    m.pod_series[i] = it->second;
  }
  // The meter keeps its own copy of what it needs; the label maps are the
  // largest part of the inventory at scale.
  for (cost::MeteredPod& p : inventory_.pods)
    std::map<std::string, std::string>().swap(p.labels);
  return Status::Ok();
}

namespace {
// Whether the series ranked `rank` (0 = largest) of `count` keeps its own
// labels: the top N do, except that when there are more than N the last
// place goes to "other".
bool KeepsOwnSeries(size_t rank, size_t count, size_t top_n) {
  return count <= top_n || rank + 1 < top_n;
}
}  // namespace

void CostMeteringLoop::PublishMetrics(const cost::TickResult& tick) {
  Metrics& m = *metrics_;
  const size_t top_n = std::max<size_t>(1, options_.metrics_top_n);
  for (prometheus::Gauge* g : m.published_rate)
    m.rate.Remove(g);
  for (prometheus::Gauge* g : m.published_total)
    m.total.Remove(g);
  for (prometheus::Gauge* g : m.published_idle)
    m.idle_rate.Remove(g);
  for (prometheus::Gauge* g : m.published_idle_gpus)
    m.idle_gpus.Remove(g);
  m.published_rate.clear();
  m.published_total.clear();
  m.published_idle.clear();
  m.published_idle_gpus.clear();

  // Attribution series, ranked by cumulative spend (stable over time).
  std::vector<uint32_t> order(m.series.size());
  for (uint32_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return m.series[a].total > m.series[b].total; });
  double other_rate = 0, other_total = 0;
  for (size_t rank = 0; rank < order.size(); ++rank) {
    const Metrics::Series& s = m.series[order[rank]];
    if (KeepsOwnSeries(rank, order.size(), top_n)) {
      m.published_rate.push_back(&m.rate.Add(s.labels));
      m.published_rate.back()->Set(s.last * 3600);
      m.published_total.push_back(&m.total.Add(s.labels));
      m.published_total.back()->Set(s.total);
    } else {
      other_rate += s.last * 3600;
      other_total += s.total;
    }
  }
  if (order.size() > top_n) {
    const std::map<std::string, std::string> other = {
        {"namespace", std::string(kOther)}, {"team", std::string(kOther)},
        {"project", std::string(kOther)},   {"experiment", std::string(kOther)},
        {"gpu_model", std::string(kOther)}, {"tier", std::string(kOther)}};
    m.published_rate.push_back(&m.rate.Add(other));
    m.published_rate.back()->Set(other_rate);
    m.published_total.push_back(&m.total.Add(other));
    m.published_total.back()->Set(other_total);
  }

  // Idle capacity by node, ranked by idle cost now.
  std::vector<const cost::NodeSecondCost*> idle;
  for (const cost::NodeSecondCost& n : tick.nodes)
    if (n.idle_cost() > 0) idle.push_back(&n);
  std::sort(idle.begin(), idle.end(),
            [](const auto* a, const auto* b) { return a->idle_cost() > b->idle_cost(); });
  double other_idle = 0, other_idle_gpus = 0;
  for (size_t rank = 0; rank < idle.size(); ++rank) {
    const cost::NodeSecondCost& n = *idle[rank];
    if (KeepsOwnSeries(rank, idle.size(), top_n)) {
      const std::map<std::string, std::string> labels = {
          {"node", inventory_.nodes[n.node_index].name}};
      m.published_idle.push_back(&m.idle_rate.Add(labels));
      m.published_idle.back()->Set(n.idle_cost() * 3600);
      m.published_idle_gpus.push_back(&m.idle_gpus.Add(labels));
      m.published_idle_gpus.back()->Set(n.idle_gpus);
    } else {
      other_idle += n.idle_cost() * 3600;
      other_idle_gpus += n.idle_gpus;
    }
  }
  if (idle.size() > top_n) {
    m.published_idle.push_back(&m.idle_rate.Add({{"node", std::string(kOther)}}));
    m.published_idle.back()->Set(other_idle);
    m.published_idle_gpus.push_back(&m.idle_gpus.Add({{"node", std::string(kOther)}}));
    m.published_idle_gpus.back()->Set(other_idle_gpus);
  }
  m.metered_pods.Set(static_cast<double>(tick.pods.size()));
}

Result<int64_t> CostMeteringLoop::RunOnce() {
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(clock_.WallNow().time_since_epoch()).count();
  const int64_t last_complete = now - 1;
  if (Status s = EnsureStore(); !s.ok()) {
    metrics_->store_errors.Increment();
    return s.WithContext("opening the cost store");
  }
  if (!cursor_.has_value()) {
    auto newest = store_->NewestSecond();
    if (!newest.ok()) {
      metrics_->store_errors.Increment();
      store_.reset();  // reconnect next time
      return newest.error().WithContext("reading the newest stored second");
    }
    const int64_t oldest_allowed = last_complete - options_.max_backfill_seconds + 1;
    if (!newest->has_value()) {
      cursor_ = last_complete;
    } else if (**newest + 1 < oldest_allowed) {
      const int64_t lost = oldest_allowed - (**newest + 1);
      metrics_->lost_seconds.Increment(static_cast<double>(lost));
      Log(LogLevel::kWarn, "cost history gap is longer than the backfill limit; not metered",
          {{"seconds", std::to_string(lost)},
           {"max_backfill_seconds", std::to_string(options_.max_backfill_seconds)}});
      cursor_ = oldest_allowed;
    } else {
      cursor_ = std::min(**newest + 1, last_complete + 1);
      if (*cursor_ <= last_complete) {
        Log(LogLevel::kInfo, "resuming cost metering after the newest stored second",
            {{"from", std::to_string(*cursor_)},
             {"gap_seconds", std::to_string(last_complete - *cursor_ + 1)}});
      }
    }
    inventory_changed_.store(true);
  }
  FetchUtilization();
  ApplyUtilization();
  if (!warned_no_utilization_ && options_.utilization == nullptr) {
    warned_no_utilization_ = true;
    Log(LogLevel::kInfo,
        "no GPU utilisation source configured: metering allocation cost only (no usage cost "
        "or waste)",
        {});
  }

  int64_t stored = 0;
  Metrics& m = *metrics_;
  // Kept current chunk by chunk: a meter that falls behind (a big cluster on a
  // busy machine) stays in this loop, and the gauge is how anyone sees it.
  auto publish_backlog = [&] {
    m.backlog.Set(static_cast<double>(std::max<int64_t>(0, last_complete - *cursor_ + 1)));
  };
  publish_backlog();
  while (*cursor_ <= last_complete) {
    const bool changed = inventory_changed_.exchange(false, std::memory_order_acq_rel);
    if (changed || meter_ == nullptr || *cursor_ >= inventory_.valid_until ||
        *cursor_ < inventory_second_) {
      GPU_RETURN_IF_ERROR(RebuildInventory(*cursor_));
    }
    // One store transaction per chunk: the runs that changed at its first
    // second (the inventory and utilisation are constant within it), then
    // the watermark moves to its end.
    const int64_t chunk_end = std::min(
        {last_complete, *cursor_ + options_.chunk_seconds - 1, inventory_.valid_until - 1});
    const int64_t seconds = chunk_end - *cursor_ + 1;
    meter_->Tick(*cursor_, tick_);
    run_changes_.Clear();
    meter_->DiffRuns(tick_, run_changes_);
    chunk_totals_.assign(m.series.size(), 0.0);
    chunk_last_.assign(m.series.size(), 0.0);
    for (const cost::PodSecondCost& c : tick_.pods) {
      const uint32_t id = m.pod_series[c.pod_index];
      chunk_totals_[id] += c.total() * static_cast<double>(seconds);
      chunk_last_[id] += c.total();
    }
    const cost::RunBatch batch{.from = *cursor_,
                               .through = chunk_end + 1,
                               .complete = run_changes_.complete,
                               .started = run_changes_.started,
                               .ended = run_changes_.ended};
    auto appended = store_->AppendRuns(batch);
    if (!appended.ok()) {
      m.store_errors.Increment();
      publish_backlog();
      store_.reset();       // reconnect next time; the cursor stays
      meter_->ResetRuns();  // the store may hold less than was reported
      return appended.error().WithContext("storing cost runs");
    }
    tick_.second = chunk_end;  // the same rates: the chunk's last second
    // Only stored seconds count in the metrics, so a retried chunk is not doubled.
    for (size_t id = 0; id < chunk_totals_.size(); ++id) {
      m.series[id].total += chunk_totals_[id];
      m.series[id].last = chunk_last_[id];
    }
    m.metered_seconds.Increment(static_cast<double>(chunk_end - *cursor_ + 1));
    stored += chunk_end - *cursor_ + 1;
    cursor_ = chunk_end + 1;
    publish_backlog();
  }
  if (stored > 0) {
    PublishMetrics(tick_);
    ObserveWaste(tick_);
  }
  return stored;
}

Status CostMeteringLoop::Run(std::stop_token stop) {
  std::mutex mu;
  std::condition_variable cv;
  std::stop_callback wake(stop, [&] {
    std::lock_guard<std::mutex> lock(mu);
    cv.notify_all();
  });
  bool failing = false;
  while (!stop.stop_requested()) {
    auto result = RunOnce();
    if (!result.ok()) {
      if (!failing) {
        Log(LogLevel::kError, "cost metering failed; retrying each tick (no second is lost)",
            {{"error", result.error().ToString()}});
      }
      failing = true;
    } else if (failing) {
      Log(LogLevel::kInfo, "cost metering recovered", {{"seconds", std::to_string(*result)}});
      failing = false;
    }
    std::unique_lock<std::mutex> lock(mu);
    const auto deadline = clock_.Now() + options_.interval;
    while (!stop.stop_requested() && clock_.Now() < deadline)
      clock_.WaitUntil(lock, cv, deadline);
  }
  return Status::Ok();
}

}  // namespace gpu_autoscaler::controllers
