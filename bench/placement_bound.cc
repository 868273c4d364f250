#include "placement_bound.h"

#include <glpk.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

namespace gpu_autoscaler::autoscale::bench {
namespace {

struct NodeType {
  int64_t cpu_milli;
  int64_t memory_mib;
  int gpu_count;
  int model;
  int count = 0;
};

struct Shape {
  int64_t cpu_milli;
  int64_t memory_mib;
  int num_gpu;
  int gpu_milli;
  ModelMask models;
};

using TypeKey = std::tuple<int64_t, int64_t, int, int>;
using ShapeKey = std::tuple<int64_t, int64_t, int, int, ModelMask>;

struct ProblemDeleter {
  void operator()(glp_prob* p) const { glp_delete_prob(p); }
};

// Milli-GPU of one pod of `s` that the "at most one per GPU" cut charges, in GPUs.
double HalfGpuWeight(const Shape& s) {
  if (s.gpu_milli > kMilliPerGpu / 2) return s.num_gpu;
  if (s.gpu_milli * 2 == kMilliPerGpu) return 0.5 * s.num_gpu;
  return 0;
}

// Fekete–Schepers dual-feasible function on one GPU's 1000 milli: a share
// above 1000−ε leaves no room for anything but shares below ε, so it counts as
// the whole GPU; shares below ε count 0; the rest at face value. For any set
// of shares packed on one GPU the counted sum stays ≤ 1000 (ε ≤ 500).
double DualFeasibleMilli(int milli, int epsilon) {
  if (milli > kMilliPerGpu - epsilon) return kMilliPerGpu;
  if (milli < epsilon) return 0;
  return milli;
}

bool FitsType(const Shape& s, const NodeType& t) {
  if (s.cpu_milli > t.cpu_milli || s.memory_mib > t.memory_mib) return false;
  if (s.num_gpu == 0) return true;
  if (s.num_gpu > t.gpu_count || t.model < 0) return false;
  return ((s.models >> t.model) & 1) != 0;
}

}  // namespace

Result<BoundCurve> AllocationBound(const PreparedTrace& trace, uint64_t seed,
                                   const SimulationOptions& options) {
  const ClusterState& cluster = trace.empty_cluster;
  const Workload workload = GenerateWorkload(trace, seed, options);

  std::map<TypeKey, int> type_ids;
  std::vector<NodeType> types;
  for (int i = 0; i < cluster.node_count(); ++i) {
    const NodeSpec& spec = cluster.spec(i);
    const NodeState& node = cluster.node(i);
    const TypeKey key{spec.cpu_milli, spec.memory_mib, node.gpu_count, node.model};
    auto [it, inserted] = type_ids.emplace(key, static_cast<int>(types.size()));
    if (inserted) types.push_back({spec.cpu_milli, spec.memory_mib, node.gpu_count, node.model});
    ++types[it->second].count;
  }
  // Shapes of the GPU pods that some node type can take; CPU-only pods add no
  // GPU allocation, so the bound never places them.
  std::map<ShapeKey, int> shape_ids;
  std::vector<Shape> shapes;
  std::vector<int> shape_of(workload.arrivals.size(), -1);
  for (size_t e = 0; e < workload.arrivals.size(); ++e) {
    const PodRequest& pod = trace.requests[workload.arrivals[e]];
    if (pod.mig_slices > 0) return InvalidArgumentError("the bound does not model MIG pods");
    if (!pod.uses_gpu()) continue;
    const Shape shape{pod.cpu_milli, pod.memory_mib, pod.num_gpu, pod.gpu_milli, pod.models};
    bool placeable = false;
    for (const NodeType& t : types)
      placeable = placeable || FitsType(shape, t);
    if (!placeable) continue;
    const ShapeKey key{pod.cpu_milli, pod.memory_mib, pod.num_gpu, pod.gpu_milli, pod.models};
    auto [it, inserted] = shape_ids.emplace(key, static_cast<int>(shapes.size()));
    if (inserted) shapes.push_back(shape);
    shape_of[e] = it->second;
  }

  // ε breakpoints: just enough to round each large share up to a whole GPU,
  // and each small share's own size.
  std::vector<int> epsilons;
  for (const Shape& shape : shapes) {
    if (shape.num_gpu != 1 || shape.gpu_milli >= kMilliPerGpu) continue;
    const int e =
        shape.gpu_milli > kMilliPerGpu / 2 ? kMilliPerGpu - shape.gpu_milli + 1 : shape.gpu_milli;
    if (std::find(epsilons.begin(), epsilons.end(), e) == epsilons.end()) epsilons.push_back(e);
  }
  std::sort(epsilons.begin(), epsilons.end());

  glp_term_out(GLP_OFF);
  std::unique_ptr<glp_prob, ProblemDeleter> lp(glp_create_prob());
  glp_set_obj_dir(lp.get(), GLP_MAX);
  // Rows per node type: CPU, memory, GPU milli, >half-GPU pods, then one per
  // ε (the dual-feasible GPU milli); then one row per shape.
  const int rows_per_type = 4 + static_cast<int>(epsilons.size());
  const int type_rows = rows_per_type * static_cast<int>(types.size());
  glp_add_rows(lp.get(), type_rows + static_cast<int>(shapes.size()));
  for (size_t t = 0; t < types.size(); ++t) {
    const NodeType& type = types[t];
    const int row = rows_per_type * static_cast<int>(t) + 1;
    glp_set_row_bnds(lp.get(), row, GLP_UP, 0, 1e-3 * type.count * type.cpu_milli);
    glp_set_row_bnds(lp.get(), row + 1, GLP_UP, 0, 1e-3 * type.count * type.memory_mib);
    for (int r = 2; r < rows_per_type; ++r)
      glp_set_row_bnds(lp.get(), row + r, GLP_UP, 0, double{1} * type.count * type.gpu_count);
  }
  for (size_t s = 0; s < shapes.size(); ++s)
    glp_set_row_bnds(lp.get(), type_rows + static_cast<int>(s) + 1, GLP_UP, 0, 0);

  std::vector<int> ia{0}, ja{0};
  std::vector<double> ar{0};
  int columns = 0;
  for (size_t s = 0; s < shapes.size(); ++s) {
    const Shape& shape = shapes[s];
    const double gpus = shape.num_gpu * shape.gpu_milli / double{kMilliPerGpu};
    for (size_t t = 0; t < types.size(); ++t) {
      if (!FitsType(shape, types[t])) continue;
      const int col = ++columns;
      glp_add_cols(lp.get(), 1);
      glp_set_col_bnds(lp.get(), col, GLP_LO, 0, 0);
      glp_set_obj_coef(lp.get(), col, gpus);
      const int row = rows_per_type * static_cast<int>(t) + 1;
      std::vector<double> entries = {1e-3 * shape.cpu_milli, 1e-3 * shape.memory_mib, gpus,
                                     HalfGpuWeight(shape)};
      for (int e : epsilons)
        entries.push_back(shape.num_gpu * DualFeasibleMilli(shape.gpu_milli, e) / kMilliPerGpu);
      for (int r = 0; r < rows_per_type; ++r) {
        if (entries[r] == 0) continue;
        ia.push_back(row + r);
        ja.push_back(col);
        ar.push_back(entries[r]);
      }
      ia.push_back(type_rows + static_cast<int>(s) + 1);
      ja.push_back(col);
      ar.push_back(1);
    }
  }
  glp_load_matrix(lp.get(), static_cast<int>(ia.size()) - 1, ia.data(), ja.data(), ar.data());
  glp_scale_prob(lp.get(), GLP_SF_AUTO);

  glp_smcp params;
  glp_init_smcp(&params);
  params.msg_lev = GLP_MSG_OFF;
  params.presolve = GLP_OFF;  // keep the basis between solves (warm start)

  BoundCurve curve;
  curve.node_types = static_cast<int>(types.size());
  curve.pod_shapes = static_cast<int>(shapes.size());
  curve.alloc_pct.fill(std::numeric_limits<double>::quiet_NaN());
  const double capacity = static_cast<double>(cluster.total_gpu_milli());
  std::vector<int> arrived_count(shapes.size(), 0);
  int64_t arrived = 0;
  const size_t events = workload.arrivals.size();
  for (size_t e = 0; e < events; ++e) {
    const PodRequest& pod = trace.requests[workload.arrivals[e]];
    arrived += pod.total_gpu_milli();
    if (shape_of[e] >= 0) {
      const int s = shape_of[e];
      ++arrived_count[s];
      glp_set_row_bnds(lp.get(), type_rows + s + 1, GLP_UP, 0, arrived_count[s]);
    }
    const double pct = std::nearbyint(100.0 * static_cast<double>(arrived) / capacity);
    double next_pct = -1;
    if (e + 1 < events) {
      const int64_t next = arrived + trace.requests[workload.arrivals[e + 1]].total_gpu_milli();
      next_pct = std::nearbyint(100.0 * static_cast<double>(next) / capacity);
    }
    if (pct == next_pct || pct < 0 || pct >= kArrivedColumns) continue;
    const int rc = glp_simplex(lp.get(), &params);
    if (rc != 0 || glp_get_status(lp.get()) != GLP_OPT) {
      return InternalError("GLPK did not solve the allocation bound at arrived " +
                           std::to_string(static_cast<int>(pct)) + "%");
    }
    // GPUs → % of capacity; Round2 like the simulator, rounding up so it stays a bound.
    const double pct_alloc = 100.0 * glp_get_obj_val(lp.get()) * kMilliPerGpu / capacity;
    curve.alloc_pct[static_cast<int>(pct)] = std::ceil(pct_alloc * 100.0 - 1e-9) / 100.0;
  }
  // Columns no event rounds to: the simulator averages k-1..k+1; the largest of those bounds it.
  std::array<double, kArrivedColumns> filled = curve.alloc_pct;
  for (int k = 0; k < kArrivedColumns; ++k) {
    if (!std::isnan(curve.alloc_pct[k])) continue;
    for (int j = std::min(kArrivedColumns - 1, k + 1); j >= std::max(0, k - 1); --j) {
      if (!std::isnan(curve.alloc_pct[j])) {
        filled[k] = curve.alloc_pct[j];
        break;
      }
    }
  }
  curve.alloc_pct = filled;
  return curve;
}

}  // namespace gpu_autoscaler::autoscale::bench
