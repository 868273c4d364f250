#include "placement_bound.h"

#include <glpk.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
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

// A sharing pod: one GPU, less than all of it. Only these share a GPU.
bool Sharing(const Shape& s) {
  return s.num_gpu == 1 && s.gpu_milli < kMilliPerGpu;
}

// More GPU patterns than this (many small sharing requests) would make an LP
// too large to solve column by column; the bound refuses such traces.
constexpr size_t kMaxGpuPatterns = 100'000;

// Every maximal multiset of `sizes` (sharing requests, milli) that fits one
// GPU: maximal means no size fits in what is left. Each pattern is a count per
// size. Any set of sharing pods on one GPU is covered by one of them. Stops
// after kMaxGpuPatterns + 1.
std::vector<std::vector<int>> GpuPatterns(const std::vector<int>& sizes) {
  std::vector<std::vector<int>> patterns;
  std::vector<int> counts(sizes.size(), 0);
  const int smallest =
      sizes.empty() ? kMilliPerGpu + 1 : *std::min_element(sizes.begin(), sizes.end());
  // Sizes in the order given; depth-first over the count of each.
  auto visit = [&](auto&& self, size_t i, int left) -> void {
    if (i == sizes.size()) {
      if (left < smallest) patterns.push_back(counts);
      return;
    }
    for (int k = left / sizes[i]; k >= 0 && patterns.size() <= kMaxGpuPatterns; --k) {
      counts[i] = k;
      self(self, i + 1, left - k * sizes[i]);
    }
    counts[i] = 0;
  };
  if (!sizes.empty()) visit(visit, 0, kMilliPerGpu);
  return patterns;
}

bool FitsType(const Shape& s, const NodeType& t) {
  if (s.cpu_milli > t.cpu_milli || s.memory_mib > t.memory_mib) return false;
  if (s.num_gpu == 0) return true;
  if (s.num_gpu > t.gpu_count || t.model < 0) return false;
  return ((s.models >> t.model) & 1) != 0;
}

// True when a pod of shape `d` placed on some node proves a pod of shape `a`
// would have fit there at any earlier moment.
bool Dominates(const Shape& d, const Shape& a) {
  return d.num_gpu >= 1 && d.gpu_milli >= a.gpu_milli && d.cpu_milli >= a.cpu_milli &&
         d.memory_mib >= a.memory_mib && (d.models & ~a.models) == 0;
}

// GPUs → % of capacity, rounded up to the simulator's two decimals so it
// stays a bound.
double BoundPct(double gpus, const PreparedTrace& trace) {
  const double pct =
      100.0 * gpus * kMilliPerGpu / static_cast<double>(trace.empty_cluster.total_gpu_milli());
  return std::ceil(pct * 100.0 - 1e-9) / 100.0;
}

// The LP over one arrival sequence, every shape row at 0 until the caller
// sets how many of its pods may (and must) be placed.
struct AllocationLp {
  std::unique_ptr<glp_prob, ProblemDeleter> lp;
  std::vector<Shape> shapes;
  std::vector<int> shape_of;  // per arrival event: its shape, -1 for pods never placed
  int shape_row_base = 0;     // row of shape s: shape_row_base + s + 1
  int node_types = 0;
  int gpu_patterns = 0;
  glp_smcp params;

  // At most `hi` pods of shape s placed, and at least `lo`.
  void SetShapeBounds(int s, double lo, double hi) {
    const int row = shape_row_base + s + 1;
    if (lo <= 0) {
      glp_set_row_bnds(lp.get(), row, GLP_UP, 0, hi);
    } else if (lo >= hi) {
      glp_set_row_bnds(lp.get(), row, GLP_FX, hi, hi);
    } else {
      glp_set_row_bnds(lp.get(), row, GLP_DB, lo, hi);
    }
  }

  // The most GPUs (milli / 1000) the placed pods can hold; nullopt when the
  // shape bounds cannot all be met.
  Result<std::optional<double>> SolveGpus() {
    const int rc = glp_simplex(lp.get(), &params);
    if (rc == 0 &&
        (glp_get_status(lp.get()) == GLP_NOFEAS || glp_get_prim_stat(lp.get()) == GLP_NOFEAS)) {
      return std::optional<double>();
    }
    if (rc != 0 || glp_get_status(lp.get()) != GLP_OPT) {
      return InternalError("GLPK did not solve the allocation bound (glp_simplex " +
                           std::to_string(rc) + ")");
    }
    return std::optional<double>(glp_get_obj_val(lp.get()));
  }
};

Result<AllocationLp> BuildAllocationLp(const PreparedTrace& trace, const Workload& workload) {
  const ClusterState& cluster = trace.empty_cluster;

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

  // The distinct sharing requests and the GPU patterns over them.
  std::vector<int> sizes;
  for (const Shape& shape : shapes)
    if (Sharing(shape) && std::find(sizes.begin(), sizes.end(), shape.gpu_milli) == sizes.end())
      sizes.push_back(shape.gpu_milli);
  std::sort(sizes.rbegin(), sizes.rend());
  const std::vector<std::vector<int>> patterns = GpuPatterns(sizes);
  if (patterns.size() > kMaxGpuPatterns) {
    return InvalidArgumentError("the bound's GPU patterns exceed " +
                                std::to_string(kMaxGpuPatterns) + " (" +
                                std::to_string(sizes.size()) +
                                " distinct sharing requests); too many small requests to bound");
  }
  auto size_index = [&](int milli) {
    return static_cast<int>(std::find(sizes.begin(), sizes.end(), milli) - sizes.begin());
  };

  glp_term_out(GLP_OFF);
  std::unique_ptr<glp_prob, ProblemDeleter> lp(glp_create_prob());
  glp_set_obj_dir(lp.get(), GLP_MAX);
  // Rows per node type: CPU, memory, GPU milli; then one row per shape.
  constexpr int rows_per_type = 3;
  const int type_rows = rows_per_type * static_cast<int>(types.size());
  // Then per node type, the GPU patterns: one row per sharing request (its
  // pods ≤ the slots the type's patterns offer) and one for the GPUs (patterns
  // in use plus GPUs of whole-GPU pods ≤ the type's GPUs).
  const int pattern_base = type_rows + static_cast<int>(shapes.size());
  const int pattern_rows_per_type = static_cast<int>(sizes.size()) + 1;
  auto pattern_row = [&](size_t t, int size) {
    return pattern_base + pattern_rows_per_type * static_cast<int>(t) + size + 1;
  };
  auto gpu_row = [&](size_t t) { return pattern_row(t, static_cast<int>(sizes.size())); };
  glp_add_rows(lp.get(), pattern_base + pattern_rows_per_type * static_cast<int>(types.size()));
  for (size_t t = 0; t < types.size(); ++t) {
    const NodeType& type = types[t];
    const int row = rows_per_type * static_cast<int>(t) + 1;
    glp_set_row_bnds(lp.get(), row, GLP_UP, 0, 1e-3 * type.count * type.cpu_milli);
    glp_set_row_bnds(lp.get(), row + 1, GLP_UP, 0, 1e-3 * type.count * type.memory_mib);
    glp_set_row_bnds(lp.get(), row + 2, GLP_UP, 0, double{1} * type.count * type.gpu_count);
  }
  for (size_t s = 0; s < shapes.size(); ++s)
    glp_set_row_bnds(lp.get(), type_rows + static_cast<int>(s) + 1, GLP_UP, 0, 0);
  for (size_t t = 0; t < types.size(); ++t) {
    for (size_t g = 0; g < sizes.size(); ++g)
      glp_set_row_bnds(lp.get(), pattern_row(t, static_cast<int>(g)), GLP_UP, 0, 0);
    glp_set_row_bnds(lp.get(), gpu_row(t), GLP_UP, 0,
                     double{1} * types[t].count * types[t].gpu_count);
  }

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
      const double entries[rows_per_type] = {1e-3 * shape.cpu_milli, 1e-3 * shape.memory_mib, gpus};
      for (int r = 0; r < rows_per_type; ++r) {
        if (entries[r] == 0) continue;
        ia.push_back(row + r);
        ja.push_back(col);
        ar.push_back(entries[r]);
      }
      ia.push_back(type_rows + static_cast<int>(s) + 1);
      ja.push_back(col);
      ar.push_back(1);
      if (Sharing(shape)) {
        ia.push_back(pattern_row(t, size_index(shape.gpu_milli)));
        ja.push_back(col);
        ar.push_back(1);
      } else if (shape.gpu_milli == kMilliPerGpu) {
        ia.push_back(gpu_row(t));
        ja.push_back(col);
        ar.push_back(shape.num_gpu);
      }
    }
  }
  // y[p][t]: GPUs of type t packed with pattern p (no objective).
  for (size_t t = 0; t < types.size(); ++t) {
    for (const std::vector<int>& pattern : patterns) {
      const int col = ++columns;
      glp_add_cols(lp.get(), 1);
      glp_set_col_bnds(lp.get(), col, GLP_LO, 0, 0);
      for (size_t g = 0; g < sizes.size(); ++g) {
        if (pattern[g] == 0) continue;
        ia.push_back(pattern_row(t, static_cast<int>(g)));
        ja.push_back(col);
        ar.push_back(-pattern[g]);
      }
      ia.push_back(gpu_row(t));
      ja.push_back(col);
      ar.push_back(1);
    }
  }
  glp_load_matrix(lp.get(), static_cast<int>(ia.size()) - 1, ia.data(), ja.data(), ar.data());
  glp_scale_prob(lp.get(), GLP_SF_AUTO);

  AllocationLp result;
  result.lp = std::move(lp);
  result.shapes = std::move(shapes);
  result.shape_of = std::move(shape_of);
  result.shape_row_base = type_rows;
  result.node_types = static_cast<int>(types.size());
  result.gpu_patterns = static_cast<int>(patterns.size());
  glp_init_smcp(&result.params);
  result.params.msg_lev = GLP_MSG_OFF;
  result.params.presolve = GLP_OFF;  // keep the basis between solves (warm start)
  return result;
}

// Events [0, end) of `workload`: those whose arrived demand rounds to at most `column`.
size_t EndOfColumn(const PreparedTrace& trace, const Workload& workload, int column) {
  const double capacity = static_cast<double>(trace.empty_cluster.total_gpu_milli());
  int64_t arrived = 0;
  size_t end = 0;
  for (size_t e = 0; e < workload.arrivals.size(); ++e) {
    arrived += trace.requests[workload.arrivals[e]].total_gpu_milli();
    if (std::nearbyint(100.0 * static_cast<double>(arrived) / capacity) <= column) end = e + 1;
  }
  return end;
}

}  // namespace

Result<BoundCurve> AllocationBound(const PreparedTrace& trace, uint64_t seed,
                                   const SimulationOptions& options) {
  const Workload workload = GenerateWorkload(trace, seed, options);
  GPU_ASSIGN_OR_RETURN(AllocationLp lp, BuildAllocationLp(trace, workload));
  BoundCurve curve;
  curve.node_types = lp.node_types;
  curve.pod_shapes = static_cast<int>(lp.shapes.size());
  curve.gpu_patterns = lp.gpu_patterns;
  curve.lp_rows = glp_get_num_rows(lp.lp.get());
  curve.lp_columns = glp_get_num_cols(lp.lp.get());
  curve.alloc_pct.fill(std::numeric_limits<double>::quiet_NaN());
  const double capacity = static_cast<double>(trace.empty_cluster.total_gpu_milli());
  std::vector<int> arrived_count(lp.shapes.size(), 0);
  int64_t arrived = 0;
  const size_t events = workload.arrivals.size();
  for (size_t e = 0; e < events; ++e) {
    const PodRequest& pod = trace.requests[workload.arrivals[e]];
    arrived += pod.total_gpu_milli();
    if (lp.shape_of[e] >= 0) {
      const int s = lp.shape_of[e];
      ++arrived_count[s];
      lp.SetShapeBounds(s, 0, arrived_count[s]);
    }
    const double pct = std::nearbyint(100.0 * static_cast<double>(arrived) / capacity);
    double next_pct = -1;
    if (e + 1 < events) {
      const int64_t next = arrived + trace.requests[workload.arrivals[e + 1]].total_gpu_milli();
      next_pct = std::nearbyint(100.0 * static_cast<double>(next) / capacity);
    }
    if (pct == next_pct || pct < 0 || pct >= kArrivedColumns) continue;
    Result<std::optional<double>> gpus = lp.SolveGpus();
    if (!gpus.ok()) {
      return gpus.error().WithContext("arrived " + std::to_string(static_cast<int>(pct)) + "%");
    }
    if (!gpus->has_value())
      return InternalError("the allocation LP without lower bounds is infeasible");
    curve.alloc_pct[static_cast<int>(pct)] = BoundPct(**gpus, trace);
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

Result<MustPlaceBound> MustPlaceAllocationBound(const PreparedTrace& trace, uint64_t seed,
                                                int column, int blocks, int anchors,
                                                const SimulationOptions& options) {
  if (blocks < 1 || anchors < 1) return InvalidArgumentError("blocks and anchors must be >= 1");
  const Workload workload = GenerateWorkload(trace, seed, options);
  GPU_ASSIGN_OR_RETURN(AllocationLp lp, BuildAllocationLp(trace, workload));
  const size_t end = EndOfColumn(trace, workload, column);
  const int shapes = static_cast<int>(lp.shapes.size());
  // before[b][s]: pods of shape s arriving in blocks 0..b-1 of events [0, end);
  // before[blocks][s] is all of them.
  std::vector<std::vector<int>> before(blocks + 1, std::vector<int>(shapes, 0));
  for (size_t e = 0; e < end; ++e) {
    const int s = lp.shape_of[e];
    if (s < 0) continue;
    const size_t block = std::min<size_t>(blocks - 1, e * blocks / end);
    for (size_t b = block + 1; b <= static_cast<size_t>(blocks); ++b)
      ++before[b][s];
  }
  const std::vector<int>& total = before[blocks];
  auto to_pct = [&](double gpus) { return BoundPct(gpus, trace); };

  for (int s = 0; s < shapes; ++s)
    lp.SetShapeBounds(s, 0, total[s]);
  GPU_ASSIGN_OR_RETURN(std::optional<double> plain, lp.SolveGpus());
  if (!plain) return InternalError("the allocation LP without lower bounds is infeasible");
  MustPlaceBound result;
  result.plain_pct = to_pct(*plain);
  result.alloc_pct = result.plain_pct;

  // Anchors: shapes above half a GPU on one GPU, most arrived first.
  std::vector<int> order;
  for (int s = 0; s < shapes; ++s)
    if (lp.shapes[s].num_gpu == 1 && lp.shapes[s].gpu_milli * 2 > kMilliPerGpu && total[s] > 0)
      order.push_back(s);
  std::sort(order.begin(), order.end(), [&](int x, int y) { return total[x] > total[y]; });
  if (static_cast<int>(order.size()) > anchors) order.resize(anchors);

  for (int a : order) {
    const Shape& anchor = lp.shapes[a];
    double worst = -1;  // the largest LP value over the blocks a's first refusal may fall in
    for (int b = 0; b <= blocks; ++b) {
      // b == blocks: no pod of the anchor is ever refused.
      for (int s = 0; s < shapes; ++s) {
        // Arrived before block b, and through block b.
        const int until = before[b][s];
        const int through = b < blocks ? before[b + 1][s] : total[s];
        if (s == a) {  // a dominates itself: placed up to its first refusal, none after
          lp.SetShapeBounds(s, until, through);
        } else if (b < blocks && Dominates(lp.shapes[s], anchor)) {
          lp.SetShapeBounds(s, 0, through);
        } else {
          lp.SetShapeBounds(s, 0, total[s]);
        }
      }
      GPU_ASSIGN_OR_RETURN(std::optional<double> gpus, lp.SolveGpus());
      if (gpus) worst = std::max(worst, *gpus);
    }
    if (worst < 0) continue;  // cannot happen: some block holds a real run's first refusal
    if (to_pct(worst) < result.alloc_pct) {
      result.alloc_pct = to_pct(worst);
      result.anchor_pods = total[a];
      result.anchor_milli = anchor.gpu_milli;
    }
  }
  return result;
}

}  // namespace gpu_autoscaler::autoscale::bench
