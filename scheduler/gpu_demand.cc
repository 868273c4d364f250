#include "scheduler/gpu_demand.h"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <optional>

#include "api/annotations.h"
#include "kube/selector_values.h"

namespace gpu_autoscaler::scheduler {
namespace {

constexpr int64_t kMiB = 1024 * 1024;

bool ParseInt(std::string_view text, int* out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

// "50" or "50%" -> 50; 0 when absent or malformed (validation is the webhook's job).
int ComputePercent(const kube::PodView& pod) {
  std::optional<std::string_view> text = pod.annotation(api::kGpuComputeAnnotation);
  if (!text) return 0;
  std::string_view t = *text;
  if (!t.empty() && t.back() == '%') t.remove_suffix(1);
  int percent = 0;
  return ParseInt(t, &percent) && percent >= 1 && percent <= 100 ? percent : 0;
}

// A requirement's values, sorted and without repeats.
std::vector<std::string> SortedValues(std::string_view joined) {
  std::vector<std::string> out;
  for (std::string_view v : kube::SplitSelectorValues(joined))
    out.emplace_back(v);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::string> Intersect(const std::vector<std::string>& a,
                                   const std::vector<std::string>& b) {
  std::vector<std::string> out;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

// The GPU products required node affinity holds the pod to, sorted; nullopt
// when some term lets any product through (terms are ORed; within a term
// the `In` requirements on the product label are ANDed).
std::optional<std::vector<std::string>> AffinityProducts(const kube::PodView& pod) {
  const int terms = pod.required_node_affinity_terms();
  if (terms == 0) return std::nullopt;
  std::vector<std::optional<std::vector<std::string>>> per_term(static_cast<size_t>(terms));
  for (const kube::NodeSelectorRequirement& r : pod.required_node_affinity()) {
    if (r.field || r.key.view() != kGpuProductLabel || r.op.view() != "In" || r.term >= terms) {
      continue;
    }
    std::optional<std::vector<std::string>>& term = per_term[r.term];
    std::vector<std::string> values = SortedValues(r.values.view());
    term = term ? Intersect(*term, values) : std::move(values);
  }
  std::vector<std::string> all;
  for (const auto& term : per_term) {
    if (!term) return std::nullopt;
    all.insert(all.end(), term->begin(), term->end());
  }
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  return all;
}

}  // namespace

std::vector<std::string> GpuProductsOf(const kube::PodView& pod) {
  std::optional<std::vector<std::string>> products = AffinityProducts(pod);
  if (std::optional<std::string_view> selected =
          kube::FindLabel(pod.node_selector(), kGpuProductLabel)) {
    std::vector<std::string> one = {std::string(*selected)};
    // Both apply; a pod they leave no product for matches no node, which the
    // node predicates report. Keep the selector's then.
    if (products) {
      std::vector<std::string> both = Intersect(*products, one);
      return both.empty() ? one : both;
    }
    return one;
  }
  return products ? std::move(*products) : std::vector<std::string>{};
}

std::string_view GpuKindName(GpuKind kind) {
  switch (kind) {
    case GpuKind::kNone:
      return "none";
    case GpuKind::kWhole:
      return "whole";
    case GpuKind::kShared:
      return "shared";
    case GpuKind::kMig:
      return "mig";
  }
  return "unknown";
}

int MigComputeSlices(std::string_view profile) {
  const size_t g = profile.find('g');
  int slices = 0;
  if (g == std::string_view::npos || !ParseInt(profile.substr(0, g), &slices)) return 0;
  return slices >= 1 && slices <= autoscale::kMigSlicesPerGpu ? slices : 0;
}

GpuDemand GpuDemandOf(const kube::PodView& pod, int milli_per_replica) {
  GpuDemand d;
  d.spec.name = std::string(pod.ns()) + "/" + std::string(pod.name());
  d.spec.cpu_milli = pod.Request("cpu");
  d.spec.memory_mib = (pod.Request("memory") + kMiB - 1) / kMiB;
  d.spec.gpu_models = GpuProductsOf(pod);
  const int64_t whole = pod.Request(kWholeGpuResource);
  const int64_t shared = pod.Request(kSharedGpuResource);
  int kinds = (whole > 0) + (shared > 0);
  // Every nvidia.com/mig-* resource any container names.
  std::vector<std::string> mig;
  for (const std::span<const kube::ContainerResources> list :
       {pod.containers(), pod.init_containers()}) {
    for (const kube::ContainerResources& c : list) {
      for (const auto* quantities : {&c.requests, &c.limits}) {
        for (const kube::ResourceQuantity& q : *quantities) {
          if (q.name.view().starts_with(kMigResourcePrefix) && q.amount > 0 &&
              std::find(mig.begin(), mig.end(), q.name.view()) == mig.end()) {
            mig.emplace_back(q.name.view());
          }
        }
      }
    }
  }
  kinds += !mig.empty();
  if (kinds == 0) return d;
  if (kinds > 1 || mig.size() > 1) {
    d.kind = GpuKind::kWhole;
    d.error =
        "the pod mixes GPU resources (whole, shared or several MIG profiles); one kind per pod";
    return d;
  }
  if (whole > 0) {
    d.kind = GpuKind::kWhole;
    d.spec.num_gpu = static_cast<int>(std::min<int64_t>(whole, autoscale::kMaxGpusPerNode + 1));
    d.spec.gpu_milli = autoscale::kMilliPerGpu;
  } else if (shared > 0) {
    d.kind = GpuKind::kShared;
    // The share: the pod's compute percent, else one replica of what admission
    // decided (gpuautoscaler.io/replicas), else one replica of the cluster's.
    const int percent = ComputePercent(pod);
    int replicas = 0;
    if (std::optional<std::string_view> r = pod.annotation(api::kReplicasAnnotation)) {
      if (!ParseInt(*r, &replicas) || replicas < 1) replicas = 0;
    }
    const int per_replica = percent > 0    ? percent * 10
                            : replicas > 0 ? autoscale::kMilliPerGpu / replicas
                                           : std::max(milli_per_replica, 1);
    d.spec.num_gpu = 1;
    d.spec.gpu_milli =
        static_cast<int>(std::min<int64_t>(shared * per_replica, autoscale::kMilliPerGpu));
  } else {
    d.kind = GpuKind::kMig;
    d.mig_resource = mig.front();
    const std::string_view profile =
        std::string_view(d.mig_resource).substr(kMigResourcePrefix.size());
    d.mig_slices = MigComputeSlices(profile);
    if (d.mig_slices == 0) {
      d.error = "unknown MIG profile \"" + std::string(profile) + "\" in " + d.mig_resource;
    } else if (pod.Request(d.mig_resource) > 1) {
      d.error = "the pod asks for " + std::to_string(pod.Request(d.mig_resource)) + " " +
                d.mig_resource + "; one MIG instance per pod is supported";
    }
  }
  if (std::optional<std::string_view> pin = pod.annotation(api::kGpuIndicesAnnotation);
      pin && pod.node_name().empty()) {
    Result<std::vector<int>> gpus = ParseGpuIndices(*pin);
    if (!gpus.ok()) {
      d.error = std::string(api::kGpuIndicesAnnotation) + ": " + gpus.error().message();
    } else {
      d.pinned_gpus = std::move(gpus).value();
      const size_t want = d.kind == GpuKind::kWhole ? static_cast<size_t>(d.spec.num_gpu) : 1;
      if (d.pinned_gpus.size() != want) {
        d.error = std::string(api::kGpuIndicesAnnotation) + " names " +
                  std::to_string(d.pinned_gpus.size()) + " GPUs; the pod needs " +
                  std::to_string(want);
      }
    }
  }
  return d;
}

Result<std::vector<int>> ParseGpuIndices(std::string_view text) {
  std::vector<int> gpus;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    int index = 0;
    if (!ParseInt(text.substr(start, comma - start), &index) || index < 0 ||
        index >= autoscale::kMaxGpusPerNode) {
      return InvalidArgumentError("\"" + std::string(text) +
                                  "\" is not a list of GPU indices such as \"0,1\"");
    }
    if (std::find(gpus.begin(), gpus.end(), index) != gpus.end()) {
      return InvalidArgumentError("GPU " + std::to_string(index) + " is named twice");
    }
    gpus.push_back(index);
    start = comma + 1;
  }
  std::sort(gpus.begin(), gpus.end());
  return gpus;
}

std::string FormatGpuIndices(const std::vector<int>& gpus) {
  std::string out;
  for (int g : gpus) {
    if (!out.empty()) out += ',';
    out += std::to_string(g);
  }
  return out;
}

Result<std::vector<int>> ParseNvlinkIslands(std::string_view label, int gpu_count) {
  std::vector<int> group(gpu_count, -1);
  int island = 0;
  auto bad = [&](const std::string& why) {
    return InvalidArgumentError(std::string(api::kNvlinkIslandsLabel) + "=\"" + std::string(label) +
                                "\": " + why);
  };
  size_t start = 0;
  while (start <= label.size()) {
    size_t end = label.find('_', start);
    if (end == std::string_view::npos) end = label.size();
    std::string_view members = label.substr(start, end - start);
    size_t m = 0;
    while (m <= members.size()) {
      size_t dot = members.find('.', m);
      if (dot == std::string_view::npos) dot = members.size();
      std::string_view item = members.substr(m, dot - m);
      const size_t dash = item.find('-');
      int lo = 0;
      int hi = 0;
      if (!ParseInt(item.substr(0, dash), &lo) ||
          !ParseInt(dash == std::string_view::npos ? item : item.substr(dash + 1), &hi) ||
          lo > hi) {
        return bad("\"" + std::string(item) + "\" is not a GPU index or range");
      }
      for (int g = lo; g <= hi; ++g) {
        if (g < 0 || g >= gpu_count) {
          return bad("GPU " + std::to_string(g) + " is out of range (the node has " +
                     std::to_string(gpu_count) + ")");
        }
        if (group[g] >= 0) return bad("GPU " + std::to_string(g) + " is in two islands");
        group[g] = island;
      }
      m = dot + 1;
    }
    ++island;
    start = end + 1;
  }
  for (int& g : group) {
    if (g < 0) g = island++;  // GPUs the label leaves out are islands of one
  }
  return group;
}

NodeOffer NodeOfferOf(const kube::NodeView& node) {
  NodeOffer o;
  autoscale::NodeSpec& s = o.spec;
  s.name = std::string(node.name());
  s.cpu_milli = node.Allocatable("cpu");
  s.memory_mib = node.Allocatable("memory") / kMiB;
  const int64_t pods = node.Allocatable("pods");
  s.max_pods = pods > 0 ? static_cast<int>(std::min<int64_t>(pods, 100000)) : 110;

  int replicas = 0;
  if (std::optional<std::string_view> r = node.label(kGpuReplicasLabel)) ParseInt(*r, &replicas);
  int64_t whole = node.Allocatable(kWholeGpuResource);
  const int64_t shared_units = node.Allocatable(kSharedGpuResource);
  if (shared_units > 0) {
    int count = 0;
    if (replicas <= 0) {
      // Without the replicas label, the GPU count label tells; else one GPU.
      std::optional<std::string_view> c = node.label(kGpuCountLabel);
      replicas = c && ParseInt(*c, &count) && count > 0 ? static_cast<int>(shared_units / count)
                                                        : static_cast<int>(shared_units);
    }
    o.shared_replicas = std::max(replicas, 1);
    o.shared_gpus = static_cast<int>(shared_units / o.shared_replicas);
  } else if (replicas > 1 && whole > 0) {
    // Time-slicing without renameByDefault: replicas advertised as nvidia.com/gpu.
    o.shared_replicas = replicas;
    o.shared_gpus = static_cast<int>(whole / replicas);
    whole = 0;
  }
  o.whole_gpus = static_cast<int>(whole);
  int mig_slices = 0;
  for (const kube::ResourceQuantity& q : node.allocatable()) {
    if (!q.name.view().starts_with(kMigResourcePrefix) || q.amount <= 0) continue;
    o.mig_instances.emplace_back(std::string(q.name.view()), q.amount);
    mig_slices += static_cast<int>(q.amount) *
                  MigComputeSlices(q.name.view().substr(kMigResourcePrefix.size()));
  }
  std::sort(o.mig_instances.begin(), o.mig_instances.end());
  const int mig_gpus = (mig_slices + autoscale::kMigSlicesPerGpu - 1) / autoscale::kMigSlicesPerGpu;
  s.gpu_count = std::min(o.whole_gpus + o.shared_gpus + mig_gpus, autoscale::kMaxGpusPerNode);
  if (s.gpu_count > 0) {
    s.gpu_model = node.gpu_product().empty() ? "unlabelled" : std::string(node.gpu_product());
    if (mig_gpus > 0) {
      s.mig_enabled.assign(s.gpu_count, false);
      for (int i = o.whole_gpus + o.shared_gpus; i < s.gpu_count; ++i)
        s.mig_enabled[i] = true;
    }
    if (std::optional<std::string_view> islands = node.label(api::kNvlinkIslandsLabel)) {
      Result<std::vector<int>> groups = ParseNvlinkIslands(*islands, s.gpu_count);
      if (groups.ok()) {
        s.nvlink_group = std::move(groups).value();
      } else {
        o.topology_error = groups.error().message();
      }
    }
  }
  return o;
}

}  // namespace gpu_autoscaler::scheduler
