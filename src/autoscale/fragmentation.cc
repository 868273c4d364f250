#include "autoscale/fragmentation.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "common/str_join.h"

namespace gpu_autoscaler::autoscale {

TargetWorkload TargetWorkload::FromTrace(const std::vector<PodSpec>& pods,
                                         const ClusterState& cluster, double coverage) {
  using Key = std::tuple<int64_t, int, int, std::string>;
  struct Group {
    int64_t count = 0;
    int64_t memory = 0;  // Σ memory of the group's pods
  };
  std::map<Key, Group> groups;
  for (const PodSpec& pod : pods) {
    const int milli = std::clamp(pod.gpu_milli, 0, kMilliPerGpu);
    Group& group = groups[Key{pod.cpu_milli, milli, pod.num_gpu, StrJoin(pod.gpu_models, "|")}];
    ++group.count;
    group.memory += pod.memory_mib;
  }
  std::vector<std::pair<Key, Group>> sorted(groups.begin(), groups.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    if (a.second.count != b.second.count) return a.second.count > b.second.count;
    return a.first > b.first;
  });
  TargetWorkload w;
  w.distinct_shapes_ = static_cast<int>(sorted.size());
  const double needed = coverage * static_cast<double>(pods.size());
  int64_t kept = 0;
  for (const auto& [key, group] : sorted) {
    if (static_cast<double>(kept) >= needed && !w.shapes_.empty()) break;
    TypicalPod shape;
    std::tie(shape.cpu_milli, shape.gpu_milli, shape.num_gpu, shape.gpu_spec) = key;
    PodSpec spec;
    spec.cpu_milli = shape.cpu_milli;
    spec.num_gpu = shape.num_gpu;
    spec.gpu_milli = shape.gpu_milli;
    if (!shape.gpu_spec.empty()) {
      size_t start = 0;
      while (true) {
        const size_t bar = shape.gpu_spec.find('|', start);
        spec.gpu_models.push_back(shape.gpu_spec.substr(start, bar - start));
        if (bar == std::string::npos) break;
        start = bar + 1;
      }
    }
    const PodRequest resolved = cluster.Resolve(spec);
    if (!resolved.uses_gpu()) {
      shape.num_gpu = 0;
      shape.gpu_milli = 0;
    }
    shape.models = resolved.models;
    shape.count = group.count;
    shape.memory_mib = group.memory / group.count;
    kept += group.count;
    w.shapes_.push_back(std::move(shape));
  }
  for (TypicalPod& shape : w.shapes_) {
    shape.probability = static_cast<double>(shape.count) / static_cast<double>(kept);
  }
  return w;
}

TargetWorkload TargetWorkload::FromShapes(std::vector<TypicalPod> shapes) {
  TargetWorkload w;
  double total = 0;
  for (const TypicalPod& s : shapes)
    total += s.probability;
  for (TypicalPod& s : shapes)
    s.probability = total > 0 ? s.probability / total : 0;
  w.distinct_shapes_ = static_cast<int>(shapes.size());
  w.shapes_ = std::move(shapes);
  return w;
}

TargetWorkload TargetWorkload::MergeByPodCount(const TargetWorkload& a, const TargetWorkload& b) {
  std::vector<TypicalPod> shapes = a.shapes();
  shapes.insert(shapes.end(), b.shapes().begin(), b.shapes().end());
  for (TypicalPod& shape : shapes)
    shape.probability = static_cast<double>(shape.count);
  return FromShapes(std::move(shapes));
}

int64_t ShapeFragmentation(const int16_t* free_milli, int gpu_count, int64_t free_cpu, int model,
                           const TypicalPod& shape) {
  int64_t idle = 0;
  for (int i = 0; i < gpu_count; ++i)
    idle += free_milli[i];
  if (shape.num_gpu == 0) return idle;
  if (model < 0 || !((shape.models >> model) & 1) || free_cpu < shape.cpu_milli) return idle;
  int fitting = 0;
  int64_t unusable = 0;
  for (int i = 0; i < gpu_count; ++i) {
    if (free_milli[i] >= shape.gpu_milli) {
      ++fitting;
    } else {
      unusable += free_milli[i];
    }
  }
  return fitting < shape.num_gpu ? idle : unusable;
}

double Fragmentation(const int16_t* free_milli, int gpu_count, int64_t free_cpu, int model,
                     const TargetWorkload& workload) {
  double total = 0;
  for (const TypicalPod& shape : workload.shapes()) {
    total += shape.probability *
             static_cast<double>(ShapeFragmentation(free_milli, gpu_count, free_cpu, model, shape));
  }
  return total;
}

}  // namespace gpu_autoscaler::autoscale
