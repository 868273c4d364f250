#include "cost/metering.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <unordered_map>

#include "gpu/mig.h"

namespace gpu_autoscaler::cost {

std::string_view SharingModeName(SharingMode mode) {
  switch (mode) {
    case SharingMode::kExclusive:
      return "exclusive";
    case SharingMode::kTimeSlicing:
      return "timeSlicing";
    case SharingMode::kMps:
      return "mps";
    case SharingMode::kMig:
      return "mig";
  }
  return "exclusive";
}

namespace {

const std::string* Find(const std::map<std::string, std::string>& m, std::string_view key) {
  auto it = m.find(std::string(key));
  return it == m.end() ? nullptr : &it->second;
}

Result<double> ParseNumber(std::string_view annotation, const std::string& text) {
  double v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(v)) {
    return InvalidArgumentError("annotation " + std::string(annotation) + ": \"" + text +
                                "\" is not a number");
  }
  return v;
}

}  // namespace

Result<GpuSharing> ParseSharingAnnotations(const std::map<std::string, std::string>& annotations) {
  GpuSharing sharing{};
  if (const std::string* mode = Find(annotations, kSharingModeAnnotation)) {
    if (*mode == "exclusive") {
      sharing.mode = SharingMode::kExclusive;
    } else if (*mode == "timeSlicing") {
      sharing.mode = SharingMode::kTimeSlicing;
    } else if (*mode == "mps") {
      sharing.mode = SharingMode::kMps;
    } else if (*mode == "mig") {
      sharing.mode = SharingMode::kMig;
    } else {
      return InvalidArgumentError("annotation " + std::string(kSharingModeAnnotation) + ": \"" +
                                  *mode + "\" is not one of exclusive, timeSlicing, mps, mig");
    }
  }
  if (const std::string* profile = Find(annotations, kMigProfileAnnotation)) {
    sharing.mig_profile = *profile;
  }
  if (const std::string* replicas = Find(annotations, kReplicasAnnotation)) {
    GPU_ASSIGN_OR_RETURN(double r, ParseNumber(kReplicasAnnotation, *replicas));
    if (r < 1 || r != std::floor(r) || r > 1024) {
      return InvalidArgumentError("annotation " + std::string(kReplicasAnnotation) + ": \"" +
                                  *replicas + "\" is not a whole number in [1, 1024]");
    }
    sharing.replicas = static_cast<int>(r);
  }
  if (const std::string* pct = Find(annotations, kMpsThreadPercentageAnnotation)) {
    GPU_ASSIGN_OR_RETURN(double p, ParseNumber(kMpsThreadPercentageAnnotation, *pct));
    if (p <= 0 || p > 100) {
      return InvalidArgumentError("annotation " + std::string(kMpsThreadPercentageAnnotation) +
                                  ": \"" + *pct + "\" is not a percentage in (0, 100]");
    }
    sharing.mps_thread_percentage = p;
  }
  if (sharing.mode == SharingMode::kMig && sharing.mig_profile.empty()) {
    return InvalidArgumentError("annotation " + std::string(kSharingModeAnnotation) +
                                ": mode mig needs " + std::string(kMigProfileAnnotation));
  }
  return sharing;
}

Result<double> MigSliceFraction(std::string_view gpu_model, std::string_view profile) {
  auto canonical = gpu::NormalizeGpuProduct(gpu_model);
  if (!canonical.ok()) canonical = gpu::NormalizeGpuProduct("NVIDIA-" + std::string(gpu_model));
  if (!canonical.ok()) {
    return InvalidArgumentError("GPU model \"" + std::string(gpu_model) +
                                "\" has no MIG profiles we know");
  }
  const gpu::GpuSpec* spec = gpu::FindGpu(*canonical);
  const gpu::MigProfile* p = spec ? gpu::FindProfile(*spec, profile) : nullptr;
  if (!p) {
    return InvalidArgumentError("MIG profile \"" + std::string(profile) + "\" does not exist on " +
                                *canonical);
  }
  return gpu::ComputeFraction(*p);
}

CapacityTier TierFromNodeLabels(const std::map<std::string, std::string>& labels) {
  auto is = [&](std::string_view key, std::string_view value) {
    const std::string* v = Find(labels, key);
    if (!v) return false;
    return std::equal(v->begin(), v->end(), value.begin(), value.end(), [](char a, char b) {
      return std::tolower(static_cast<unsigned char>(a)) ==
             std::tolower(static_cast<unsigned char>(b));
    });
  };
  // Our own label wins: it is how operators mark reserved/committed capacity.
  if (const std::string* ours = Find(labels, kCapacityTierLabel)) {
    if (auto tier = ParseCapacityTier(*ours); tier.ok()) return *tier;
  }
  if (is("karpenter.sh/capacity-type", "spot") || is("eks.amazonaws.com/capacityType", "SPOT") ||
      is("cloud.google.com/gke-spot", "true") || is("cloud.google.com/gke-preemptible", "true") ||
      is("kubernetes.azure.com/scalesetpriority", "spot")) {
    return CapacityTier::kSpot;
  }
  if (is("karpenter.sh/capacity-type", "reserved")) return CapacityTier::kReserved;
  return CapacityTier::kOnDemand;
}

// Per-node rates and per-pod precomputed costs. The tick walks flat arrays.
struct Meter::State {
  struct Node {
    std::string name{};
    std::string gpu_model{};
    CapacityTier tier = CapacityTier::kOnDemand;
    double gpu_capacity = 0;  // GPUs
    double cpu_capacity = 0;  // cores
    double mem_capacity = 0;  // bytes
    double gpu_rate = 0;      // per GPU-second
    double cpu_rate = 0;      // per core-second
    double mem_rate = 0;      // per byte-second
    double total_rate = 0;    // the whole node, per second
  };
  struct Pod {
    uint32_t node = 0;  // index into nodes
    double gpu_share = 0;
    double cpu_cores = 0;
    double memory_bytes = 0;
    double gpu_cost = 0;  // per second
    double cpu_cost = 0;
    double memory_cost = 0;
  };
  struct PodIdentity {  // only read when building storage rows
    std::string uid{}, name{}, ns{}, team{}, project{}, experiment{};
  };

  std::vector<Node> nodes{};
  std::vector<Pod> pods{};                  // metered pods only
  std::vector<uint32_t> pod_input_index{};  // metered pod -> SetInventory index
  std::vector<int32_t> metered_index{};     // SetInventory index -> metered pod or -1
  std::vector<PodIdentity> identities{};    // by metered pod
  std::vector<double> utilization{};        // by metered pod
  // Tick scratch, sized once per inventory.
  mutable std::vector<double> alloc_gpu, alloc_cpu, alloc_mem, alloc_cost;
};

Meter::Meter(const PricingSource& pricing, MeterOptions options)
    : pricing_(pricing), options_(std::move(options)), state_(std::make_unique<State>()) {}
Meter::~Meter() = default;

size_t Meter::pod_count() const {
  return state_->pods.size();
}
size_t Meter::node_count() const {
  return state_->nodes.size();
}

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// GPUs a pod holds, as a fraction of whole GPUs.
Result<double> GpuShare(const MeteredPod& pod, std::string_view gpu_model) {
  if (pod.gpus <= 0) return 0.0;
  const GpuSharing& s = pod.sharing;
  switch (s.mode) {
    case SharingMode::kExclusive:
      return pod.gpus;
    case SharingMode::kTimeSlicing:
      if (s.replicas <= 0) return InvalidArgumentError("time-slicing without a replica count");
      return pod.gpus / s.replicas;
    case SharingMode::kMps:
      if (s.mps_thread_percentage > 0) return pod.gpus * s.mps_thread_percentage / 100.0;
      if (s.replicas <= 0) {
        return InvalidArgumentError("MPS without a thread percentage or replica count");
      }
      return pod.gpus / s.replicas;
    case SharingMode::kMig: {
      GPU_ASSIGN_OR_RETURN(double fraction, MigSliceFraction(gpu_model, s.mig_profile));
      return pod.gpus * fraction;
    }
  }
  return pod.gpus;
}

std::string PodName(const MeteredPod& pod) {
  return pod.ns + "/" + pod.name;
}

}  // namespace

InventoryReport Meter::SetInventory(std::span<const MeteredNode> nodes,
                                    std::span<const MeteredPod> pods) {
  InventoryReport report;
  auto next = std::make_unique<State>();
  State& st = *next;
  std::unordered_map<std::string_view, int32_t> node_by_name;  // -1: unpriced
  node_by_name.reserve(nodes.size());
  st.nodes.reserve(nodes.size());
  for (const MeteredNode& n : nodes) {
    PriceQuery q{.instance_type = n.instance_type,
                 .tier = n.tier,
                 .gpu_model = n.gpu_model,
                 .gpu_count = n.gpus,
                 .vcpus = n.cpu_cores,
                 .memory_gib = n.memory_bytes / kGiB};
    PriceResult price = pricing_.Price(q);
    if (!price.ok()) {
      report.unpriced_nodes.push_back({n.name, price.error()});
      node_by_name[n.name] = -1;
      continue;
    }
    State::Node node;
    node.name = n.name;
    node.gpu_model = n.gpu_model.empty() ? price->gpu_model : n.gpu_model;
    node.tier = n.tier;
    // Allocatable capacity when the node reports it: the whole node price is
    // then spread over what pods can actually request, and nothing is lost.
    node.gpu_capacity = n.gpus > 0 ? n.gpus : price->gpu_count;
    node.cpu_capacity = n.cpu_cores > 0 ? n.cpu_cores : price->vcpus;
    node.mem_capacity = n.memory_bytes > 0 ? n.memory_bytes : price->memory_gib * kGiB;
    node.gpu_rate = node.gpu_capacity > 0 ? price->gpu_hourly / 3600.0 / node.gpu_capacity : 0;
    node.cpu_rate = node.cpu_capacity > 0 ? price->cpu_hourly / 3600.0 / node.cpu_capacity : 0;
    node.mem_rate = node.mem_capacity > 0 ? price->memory_hourly / 3600.0 / node.mem_capacity : 0;
    node.total_rate = price->hourly / 3600.0;
    node_by_name[n.name] = static_cast<int32_t>(st.nodes.size());
    st.nodes.push_back(std::move(node));
  }

  st.metered_index.assign(pods.size(), -1);
  st.pods.reserve(pods.size());
  st.identities.reserve(pods.size());
  for (size_t i = 0; i < pods.size(); ++i) {
    const MeteredPod& p = pods[i];
    if (p.node.empty()) continue;  // not scheduled: holds nothing yet
    auto it = node_by_name.find(p.node);
    if (it == node_by_name.end()) {
      report.pods_on_unknown_nodes.push_back(PodName(p));
      continue;
    }
    if (it->second < 0) {
      report.pods_on_unpriced_nodes.push_back(PodName(p));
      continue;
    }
    const State::Node& node = st.nodes[it->second];
    auto share = GpuShare(p, node.gpu_model);
    double gpu_share = 0;
    if (share.ok()) {
      gpu_share = *share;
    } else {
      // Charge the whole requested GPUs rather than nothing, and say so.
      report.bad_pods.push_back(PodName(p) + ": " + share.error().message() +
                                "; charged as exclusive");
      gpu_share = p.gpus;
    }
    State::Pod pod;
    pod.node = static_cast<uint32_t>(it->second);
    pod.gpu_share = gpu_share;
    pod.cpu_cores = std::max(0.0, p.cpu_cores);
    pod.memory_bytes = std::max(0.0, p.memory_bytes);
    pod.gpu_cost = gpu_share * node.gpu_rate;
    pod.cpu_cost = pod.cpu_cores * node.cpu_rate;
    pod.memory_cost = pod.memory_bytes * node.mem_rate;
    auto label = [&](const std::string& key) {
      const std::string* v = Find(p.labels, key);
      return v ? *v : std::string();
    };
    st.metered_index[i] = static_cast<int32_t>(st.pods.size());
    st.pod_input_index.push_back(static_cast<uint32_t>(i));
    st.pods.push_back(pod);
    st.identities.push_back({p.uid, p.name, p.ns, label(options_.labels.team),
                             label(options_.labels.project), label(options_.labels.experiment)});
    st.utilization.push_back(p.gpu_utilization);
  }
  st.alloc_gpu.assign(st.nodes.size(), 0);
  st.alloc_cpu.assign(st.nodes.size(), 0);
  st.alloc_mem.assign(st.nodes.size(), 0);
  st.alloc_cost.assign(st.nodes.size(), 0);
  state_ = std::move(next);
  inventory_changed_ = true;
  changed_pods_.clear();
  return report;
}

void Meter::SetUtilization(uint32_t pod_index, double utilization) {
  State& st = *state_;
  if (pod_index >= st.metered_index.size()) return;
  int32_t m = st.metered_index[pod_index];
  if (m < 0) return;
  const double value = utilization < 0 ? -1 : std::min(utilization, 1.0);
  if (st.utilization[m] != value && !inventory_changed_)
    changed_pods_.push_back(static_cast<uint32_t>(m));
  st.utilization[m] = value;
}

void Meter::Tick(int64_t second, TickResult& out) const {
  const State& st = *state_;
  const size_t pod_count = st.pods.size();
  const size_t node_count = st.nodes.size();
  out.second = second;
  out.pods.resize(pod_count);
  out.nodes.resize(node_count);
  std::fill(st.alloc_gpu.begin(), st.alloc_gpu.end(), 0.0);
  std::fill(st.alloc_cpu.begin(), st.alloc_cpu.end(), 0.0);
  std::fill(st.alloc_mem.begin(), st.alloc_mem.end(), 0.0);
  std::fill(st.alloc_cost.begin(), st.alloc_cost.end(), 0.0);

  double allocated = 0;
  for (size_t i = 0; i < pod_count; ++i) {
    const State::Pod& p = st.pods[i];
    PodSecondCost& c = out.pods[i];
    c.pod_index = st.pod_input_index[i];
    c.gpu_share = p.gpu_share;
    c.gpu_cost = p.gpu_cost;
    c.cpu_cost = p.cpu_cost;
    c.memory_cost = p.memory_cost;
    const double u = st.utilization[i];
    c.usage_cost = u >= 0 ? p.gpu_cost * u : 0;
    c.idle_share_cost = 0;
    st.alloc_gpu[p.node] += p.gpu_share;
    st.alloc_cpu[p.node] += p.cpu_cores;
    st.alloc_mem[p.node] += p.memory_bytes;
    const double cost = p.gpu_cost + p.cpu_cost + p.memory_cost;
    st.alloc_cost[p.node] += cost;
    allocated += cost;
  }

  double idle = 0;
  for (size_t n = 0; n < node_count; ++n) {
    const State::Node& node = st.nodes[n];
    NodeSecondCost& c = out.nodes[n];
    c.node_index = static_cast<uint32_t>(n);
    c.total_cost = node.total_rate;
    // Over-committed capacity (more held than exists) leaves no idle cost.
    c.idle_gpus = std::max(0.0, node.gpu_capacity - st.alloc_gpu[n]);
    c.idle_gpu_cost = c.idle_gpus * node.gpu_rate;
    c.idle_cpu_cost = std::max(0.0, node.cpu_capacity - st.alloc_cpu[n]) * node.cpu_rate;
    c.idle_memory_cost = std::max(0.0, node.mem_capacity - st.alloc_mem[n]) * node.mem_rate;
    idle += c.idle_cost();
  }

  if (options_.share_idle) {
    // Each pod takes its node's idle cost in proportion to its allocation
    // cost; the idle rows keep only what no pod could take.
    for (size_t i = 0; i < pod_count; ++i) {
      const State::Pod& p = st.pods[i];
      const double node_alloc = st.alloc_cost[p.node];
      if (node_alloc <= 0) continue;
      const NodeSecondCost& nc = out.nodes[p.node];
      out.pods[i].idle_share_cost =
          nc.idle_cost() * (p.gpu_cost + p.cpu_cost + p.memory_cost) / node_alloc;
    }
    for (size_t n = 0; n < node_count; ++n) {
      if (st.alloc_cost[n] <= 0) continue;
      NodeSecondCost& c = out.nodes[n];
      idle -= c.idle_cost();
      allocated += c.idle_cost();
      c.idle_gpu_cost = c.idle_cpu_cost = c.idle_memory_cost = 0;
      c.idle_gpus = 0;
    }
  }
  out.allocated_cost = allocated;
  out.idle_cost = idle;
}

CostSample Meter::PodRow(const PodSecondCost& c, int64_t second) const {
  const State& st = *state_;
  const int32_t m = st.metered_index[c.pod_index];
  const State::PodIdentity& id = st.identities[m];
  const State::Node& node = st.nodes[st.pods[m].node];
  CostSample s;
  s.pod_uid = id.uid;
  s.pod_name = id.name;
  s.ns = id.ns;
  s.team = id.team;
  s.project = id.project;
  s.experiment = id.experiment;
  s.node = node.name;
  s.gpu_model = c.gpu_share > 0 ? node.gpu_model : std::string();
  s.tier = node.tier;
  s.second = second;
  s.gpu_share = c.gpu_share;
  s.gpu_cost = c.gpu_cost;
  s.cpu_cost = c.cpu_cost;
  s.memory_cost = c.memory_cost;
  s.usage_cost = c.usage_cost;
  s.gpu_utilization = st.utilization[m];
  s.idle_cost = c.idle_share_cost;
  return s;
}

CostSample Meter::IdleRow(const NodeSecondCost& c, int64_t second) const {
  const State::Node& node = state_->nodes[c.node_index];
  CostSample s;
  s.pod_uid = "idle/" + node.name;
  s.node = node.name;
  s.gpu_model = node.gpu_model;
  s.tier = node.tier;
  s.second = second;
  s.gpu_share = c.idle_gpus;
  s.gpu_cost = c.idle_gpu_cost;
  s.cpu_cost = c.idle_cpu_cost;
  s.memory_cost = c.idle_memory_cost;
  s.idle = true;
  return s;
}

void Meter::AppendSamples(const TickResult& tick, std::vector<CostSample>& out,
                          bool include_idle) const {
  const State& st = *state_;
  // Callers fill one vector over many ticks (a storage batch), so grow it
  // geometrically: reserving exactly what this tick needs would reallocate and
  // move every earlier row on each call, quadratic over the batch.
  const size_t needed = out.size() + tick.pods.size() + (include_idle ? tick.nodes.size() : 0);
  if (needed > out.capacity()) out.reserve(std::max(needed, 2 * out.capacity()));
  for (const PodSecondCost& c : tick.pods) {
    if (c.pod_index >= st.metered_index.size()) continue;
    if (st.metered_index[c.pod_index] < 0) continue;
    out.push_back(PodRow(c, tick.second));
  }
  if (!include_idle) return;
  for (const NodeSecondCost& c : tick.nodes) {
    if (c.node_index >= st.nodes.size()) continue;
    if (c.idle_cost() <= 0 && c.idle_gpus <= 0) continue;
    out.push_back(IdleRow(c, tick.second));
  }
}

namespace {

uint64_t Mix(uint64_t h, std::string_view text) {
  for (unsigned char c : text)
    h = (h ^ c) * 0x100000001B3ull;  // FNV-1a
  return (h ^ 0xFF) * 0x100000001B3ull;
}

}  // namespace

void Meter::ResetRuns() {
  runs_reset_ = true;
}

void Meter::DiffRuns(const TickResult& tick, RunChanges& out, bool include_idle) {
  const State& st = *state_;
  if (!runs_reset_ && !inventory_changed_ && reported_at_.size() == st.pods.size()) {
    // Only utilisations changed: only those pods' rows can differ.
    for (uint32_t m : changed_pods_) {
      if (m >= tick.pods.size()) continue;
      const PodSecondCost& c = tick.pods[m];
      Reported& r = *reported_at_[m];
      const std::array<double, 7> values = {c.gpu_share,      c.gpu_cost,   c.cpu_cost,
                                            c.memory_cost,    c.usage_cost, c.idle_share_cost,
                                            st.utilization[m]};
      if (r.values == values) continue;
      r.values = values;
      out.started.push_back(PodRow(c, tick.second));
    }
    changed_pods_.clear();
    return;
  }
  if (runs_reset_) {
    reported_.clear();
    out.complete = true;
  }
  runs_reset_ = inventory_changed_ = false;
  changed_pods_.clear();
  reported_at_.assign(st.pods.size(), nullptr);
  const uint64_t generation = ++diff_generation_;
  // Records the row's values; true when they differ from the last reported.
  auto changed = [&](const std::string& key, const std::array<double, 7>& values, uint64_t identity,
                     Reported** at) {
    auto [it, inserted] = reported_.try_emplace(key);
    Reported& r = it->second;
    if (at != nullptr) *at = &r;  // stable: map nodes do not move
    r.seen = generation;
    if (!inserted && r.values == values && r.identity == identity) return false;
    r.values = values;
    r.identity = identity;
    return true;
  };
  for (const PodSecondCost& c : tick.pods) {
    if (c.pod_index >= st.metered_index.size()) continue;
    const int32_t m = st.metered_index[c.pod_index];
    if (m < 0) continue;
    const State::PodIdentity& id = st.identities[m];
    const State::Node& node = st.nodes[st.pods[m].node];
    const std::string_view model =
        c.gpu_share > 0 ? std::string_view(node.gpu_model) : std::string_view();
    uint64_t identity = 0xCBF29CE484222325ull;
    for (std::string_view part :
         {std::string_view(id.name), std::string_view(id.ns), std::string_view(id.team),
          std::string_view(id.project), std::string_view(id.experiment),
          std::string_view(node.name), model})
      identity = Mix(identity, part);
    identity = Mix(identity, CapacityTierName(node.tier));
    const std::array<double, 7> values = {c.gpu_share,      c.gpu_cost,   c.cpu_cost,
                                          c.memory_cost,    c.usage_cost, c.idle_share_cost,
                                          st.utilization[m]};
    if (changed(id.uid, values, identity, &reported_at_[static_cast<size_t>(m)])) {
      out.started.push_back(PodRow(c, tick.second));
    }
  }
  if (include_idle) {
    std::string key;
    for (const NodeSecondCost& c : tick.nodes) {
      if (c.node_index >= st.nodes.size()) continue;
      if (c.idle_cost() <= 0 && c.idle_gpus <= 0) continue;
      const State::Node& node = st.nodes[c.node_index];
      key = "idle/" + node.name;
      const uint64_t identity =
          Mix(Mix(0xCBF29CE484222325ull, node.gpu_model), CapacityTierName(node.tier));
      const std::array<double, 7> values = {
          c.idle_gpus, c.idle_gpu_cost, c.idle_cpu_cost, c.idle_memory_cost, 0, 0, -1};
      if (changed(key, values, identity, nullptr)) out.started.push_back(IdleRow(c, tick.second));
    }
  }
  for (auto it = reported_.begin(); it != reported_.end();) {
    if (it->second.seen == generation) {
      ++it;
      continue;
    }
    out.ended.push_back(it->first);
    it = reported_.erase(it);
  }
}

}  // namespace gpu_autoscaler::cost
