#include "node-agent/qos_pools.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

namespace gpu_autoscaler::node_agent {

namespace {
constexpr int kMaxCpuId = 8192;
}  // namespace

Result<std::vector<int>> ParseCpuList(std::string_view list) {
  std::set<int> cpus;
  while (!list.empty() && (list.back() == '\n' || list.back() == ' '))
    list.remove_suffix(1);
  if (list.empty()) return std::vector<int>{};
  auto bad = [&] {
    return InvalidArgumentError("malformed cpulist \"" + std::string(list) + "\"");
  };
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    std::string_view item =
        list.substr(pos, comma == std::string_view::npos ? list.npos : comma - pos);
    size_t dash = item.find('-');
    int lo = 0;
    int hi = 0;
    auto parse = [](std::string_view s, int* v) {
      auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
      return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size() && *v >= 0;
    };
    if (dash == std::string_view::npos) {
      if (!parse(item, &lo)) return bad();
      hi = lo;
    } else if (!parse(item.substr(0, dash), &lo) || !parse(item.substr(dash + 1), &hi) || hi < lo) {
      return bad();
    }
    // Linux allows at most 8192 CPUs (NR_CPUS); anything beyond is not a cpulist.
    if (hi >= kMaxCpuId) return bad();
    for (int c = lo; c <= hi; ++c)
      cpus.insert(c);
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return std::vector<int>(cpus.begin(), cpus.end());
}

std::string FormatCpuList(const std::vector<int>& cpus) {
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1)
      ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(cpus[i]);
    if (j > i) out += '-' + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

const PodAssignment* PoolPlan::Find(std::string_view uid) const {
  for (const auto& a : pods)
    if (a.uid == uid) return &a;
  return nullptr;
}

const Pool* PoolPlan::FindPool(std::string_view name) const {
  for (const auto& p : pools)
    if (p.name == name) return &p;
  return nullptr;
}

namespace {

int64_t CeilCpus(int64_t millis) {
  return (millis + 999) / 1000;
}

class Planner {
 public:
  explicit Planner(const PlannerInput& in) : in_(in) {}

  PoolPlan Run() {
    for (const NumaNode& n : in_.numa) {
      auto cpus = ParseCpuList(n.cpus);
      if (!cpus.ok()) {
        plan_.error = "NUMA node " + std::to_string(n.id) + ": " + cpus.error().message();
        return std::move(plan_);
      }
      for (int c : *cpus) {
        numa_of_[c] = n.id;
        free_.insert(c);
      }
      total_memory_ += static_cast<int64_t>(n.memory_bytes);
    }
    if (free_.empty()) {
      plan_.error = "no CPUs known: the NUMA topology is empty";
      return std::move(plan_);
    }
    const int64_t total_cpus = static_cast<int64_t>(free_.size());
    for (int c : in_.reserved_cpus) {
      if (free_.erase(c) != 0) reserved_.push_back(c);
    }
    for (const LocalPod& p : in_.pods) {
      if (!p.Active()) continue;
      PodAssignment a{.uid = p.uid, .ns = p.ns, .name = p.name, .qos_class = p.qos_class};
      a.level = p.qos_level;
      if (p.qos_level == QosLevel::kUnknown) {
        Problem(p, "UnknownQosLevel",
                "katalyst.kubewharf.io/qos_level \"" + p.qos_level_raw +
                    "\" is not dedicated_cores, shared_cores, reclaimed_cores or system_cores; "
                    "treated as shared_cores");
        a.level = QosLevel::kShared;
      }
      if (!p.enhancements.error.empty()) Problem(p, "BadQosEnhancement", p.enhancements.error);
      if (a.level == QosLevel::kSystem && reserved_.empty()) a.level = QosLevel::kShared;
      assignments_.push_back(std::move(a));
      pods_.push_back(&p);
    }
    PlaceDedicated();
    BuildSharedPools();
    FinishAssignments();
    // Reclaimable, from requests.
    int64_t shared_requests = 0;
    int64_t memory_requests = 0;
    for (size_t i = 0; i < pods_.size(); ++i) {
      const PodAssignment& a = assignments_[i];
      if (a.level == QosLevel::kShared) shared_requests += pods_[i]->requests.cpu_millis;
      if (a.level != QosLevel::kReclaimed) memory_requests += pods_[i]->requests.memory_bytes;
    }
    const int64_t allocatable_millis =
        (total_cpus - static_cast<int64_t>(reserved_.size()) - dedicated_cpu_count_) * 1000;
    plan_.reclaimable_millicpu =
        std::max<int64_t>(0, allocatable_millis - shared_requests - in_.reclaim_reserve_millicpu);
    plan_.reclaimable_memory_bytes =
        std::max<int64_t>(0, total_memory_ - in_.reserved_memory_bytes - memory_requests -
                                 in_.reclaim_reserve_memory_bytes);
    plan_.pods = std::move(assignments_);
    return std::move(plan_);
  }

 private:
  void Problem(const LocalPod& p, std::string reason, std::string message) {
    plan_.problems.push_back({p.uid, p.ns, p.name, std::move(reason), std::move(message)});
  }

  std::vector<int> FreeOn(int numa) const {
    std::vector<int> out;
    for (int c : free_)
      if (numa_of_.at(c) == numa) out.push_back(c);
    return out;
  }

  void Take(PodAssignment* a, const std::vector<int>& cpus) {
    for (int c : cpus)
      free_.erase(c);
    a->cpus = cpus;
    std::sort(a->cpus.begin(), a->cpus.end());
    a->pool = "dedicated";
    dedicated_cpu_count_ += static_cast<int64_t>(cpus.size());
  }

  void PlaceDedicated() {
    std::vector<size_t> order;
    for (size_t i = 0; i < assignments_.size(); ++i) {
      if (assignments_[i].level != QosLevel::kDedicated) continue;
      const LocalPod& p = *pods_[i];
      int64_t millis = p.requests.cpu_millis > 0 ? p.requests.cpu_millis : p.limits.cpu_millis;
      if (millis <= 0) {
        Problem(p, "DedicatedCpusUnavailable",
                "dedicated_cores needs a cpu request; running in the shared pool");
        assignments_[i].level = QosLevel::kShared;
        continue;
      }
      need_[i] = CeilCpus(millis);
      order.push_back(i);
    }
    // Keep what the previous plan gave, while it still fits.
    std::vector<size_t> fresh;
    for (size_t i : order) {
      const PodAssignment* prev = in_.previous ? in_.previous->Find(assignments_[i].uid) : nullptr;
      const bool bound = pods_[i]->enhancements.numa_binding;
      bool keep = prev != nullptr && prev->level == QosLevel::kDedicated &&
                  static_cast<int64_t>(prev->cpus.size()) == need_[i] &&
                  (prev->numa_node >= 0) == bound;
      for (int c : keep ? prev->cpus : std::vector<int>{})
        keep = keep && free_.count(c) != 0;
      if (!keep) {
        fresh.push_back(i);
        continue;
      }
      Take(&assignments_[i], prev->cpus);
      assignments_[i].numa_node = prev->numa_node;
      MarkNuma(i);
    }
    for (size_t i : fresh) {
      if (pods_[i]->enhancements.numa_binding) {
        PlaceBound(i);
      } else {
        PlaceUnbound(i);
      }
    }
  }

  void MarkNuma(size_t i) {
    std::set<int> nodes;
    for (int c : assignments_[i].cpus)
      nodes.insert(numa_of_.at(c));
    for (int n : nodes)
      ++dedicated_on_numa_[n];
    if (pods_[i]->enhancements.numa_exclusive) {
      for (int n : nodes)
        exclusive_numa_.insert(n);
    }
    if (assignments_[i].numa_node >= 0)
      bound_memory_[assignments_[i].numa_node] += pods_[i]->requests.memory_bytes;
  }

  // A NUMA node is open to pod i unless another pod holds it exclusively, or
  // pod i wants it exclusively and another dedicated pod is there.
  bool NumaOpen(size_t i, int numa) const {
    if (exclusive_numa_.count(numa) != 0) return false;
    if (pods_[i]->enhancements.numa_exclusive) {
      auto it = dedicated_on_numa_.find(numa);
      if (it != dedicated_on_numa_.end() && it->second > 0) return false;
    }
    return true;
  }

  void Fail(size_t i, std::string message) {
    Problem(*pods_[i], "DedicatedCpusUnavailable", message + "; running in the shared pool");
    assignments_[i].level = QosLevel::kShared;
    assignments_[i].error = message;
  }

  void PlaceBound(size_t i) {
    const int64_t need = need_[i];
    int best = -1;
    size_t best_free = 0;
    size_t most_free = 0;
    for (const NumaNode& n : in_.numa) {
      if (!NumaOpen(i, n.id)) continue;
      const size_t avail = FreeOn(n.id).size();
      most_free = std::max(most_free, avail);
      const int64_t mem_left = static_cast<int64_t>(n.memory_bytes) - bound_memory_[n.id];
      // The shared pool keeps at least one CPU.
      if (static_cast<int64_t>(avail) < need || static_cast<int64_t>(free_.size()) - need < 1 ||
          pods_[i]->requests.memory_bytes > mem_left)
        continue;
      if (best < 0 || avail < best_free) {
        best = n.id;
        best_free = avail;
      }
    }
    if (best < 0) {
      Fail(i, "numa_binding needs " + std::to_string(need) +
                  " CPUs (and the memory request) on one NUMA node; the most free CPUs on an "
                  "open NUMA node is " +
                  std::to_string(most_free));
      return;
    }
    std::vector<int> on = FreeOn(best);
    on.resize(need);
    Take(&assignments_[i], on);
    assignments_[i].numa_node = best;
    MarkNuma(i);
  }

  void PlaceUnbound(size_t i) {
    const int64_t need = need_[i];
    std::vector<std::pair<size_t, int>> nodes;  // (free, id), most free first
    size_t open_free = 0;
    for (const NumaNode& n : in_.numa) {
      if (!NumaOpen(i, n.id)) continue;
      const size_t avail = FreeOn(n.id).size();
      open_free += avail;
      nodes.push_back({avail, n.id});
    }
    if (static_cast<int64_t>(open_free) < need || static_cast<int64_t>(free_.size()) - need < 1) {
      Fail(i, "needs " + std::to_string(need) + " exclusive CPUs; " + std::to_string(open_free) +
                  " are free (one always stays with the shared pool)");
      return;
    }
    std::stable_sort(nodes.begin(), nodes.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    std::vector<int> got;
    for (const auto& [avail, id] : nodes) {
      for (int c : FreeOn(id)) {
        if (static_cast<int64_t>(got.size()) == need) break;
        got.push_back(c);
      }
    }
    Take(&assignments_[i], got);
    MarkNuma(i);
  }

  void BuildSharedPools() {
    // Named cpuset_pools, sized to their requests, from the top of what is left.
    std::map<std::string, int64_t> named;
    for (size_t i = 0; i < assignments_.size(); ++i) {
      if (assignments_[i].level == QosLevel::kShared && !pods_[i]->enhancements.cpuset_pool.empty())
        named[pods_[i]->enhancements.cpuset_pool] += pods_[i]->requests.cpu_millis;
    }
    for (const auto& [name, millis] : named) {
      const int64_t size = std::max<int64_t>(1, CeilCpus(millis));
      if (static_cast<int64_t>(free_.size()) - size < 1) {
        for (size_t i = 0; i < assignments_.size(); ++i) {
          if (assignments_[i].level == QosLevel::kShared &&
              pods_[i]->enhancements.cpuset_pool == name) {
            Problem(*pods_[i], "SharedPoolUnavailable",
                    "cpuset_pool \"" + name + "\" needs " + std::to_string(size) +
                        " CPUs; running in the default shared pool");
          }
        }
        continue;
      }
      std::vector<int> cpus;
      while (static_cast<int64_t>(cpus.size()) < size) {
        cpus.push_back(*free_.rbegin());
        free_.erase(std::prev(free_.end()));
      }
      std::sort(cpus.begin(), cpus.end());
      named_pools_[name] = cpus;
    }
    share_.assign(free_.begin(), free_.end());
    int64_t share_requests = 0;
    for (size_t i = 0; i < assignments_.size(); ++i) {
      if (assignments_[i].level == QosLevel::kShared && PoolFor(i) == "share")
        share_requests += pods_[i]->requests.cpu_millis;
    }
    const int64_t unrequested =
        static_cast<int64_t>(share_.size()) * 1000 - share_requests - in_.reclaim_reserve_millicpu;
    const int64_t n = std::clamp<int64_t>(unrequested / 1000, 1, share_.size());
    reclaim_.assign(share_.end() - n, share_.end());
  }

  std::string PoolFor(size_t i) const {
    const std::string& name = pods_[i]->enhancements.cpuset_pool;
    if (!name.empty() && named_pools_.count(name) != 0) return "share-" + name;
    return "share";
  }

  std::string MemsOf(const std::vector<int>& cpus) const {
    std::set<int> nodes;
    for (int c : cpus)
      nodes.insert(numa_of_.at(c));
    return FormatCpuList(std::vector<int>(nodes.begin(), nodes.end()));
  }

  void FinishAssignments() {
    std::map<std::string, Pool> pools;
    auto pool = [&](const std::string& name, QosLevel level, const std::vector<int>& cpus) {
      Pool& p = pools[name];
      p.name = name;
      p.level = level;
      p.cpus = cpus;
      return &p;
    };
    if (!share_.empty()) pool("share", QosLevel::kShared, share_);
    for (const auto& [name, cpus] : named_pools_)
      pool("share-" + name, QosLevel::kShared, cpus);
    if (!reclaim_.empty()) pool("reclaim", QosLevel::kReclaimed, reclaim_);
    if (!reserved_.empty()) pool("system", QosLevel::kSystem, reserved_);
    std::vector<int> dedicated;
    for (size_t i = 0; i < assignments_.size(); ++i) {
      PodAssignment& a = assignments_[i];
      const LocalPod& p = *pods_[i];
      Pool* counted = nullptr;
      switch (a.level) {
        case QosLevel::kDedicated:
          dedicated.insert(dedicated.end(), a.cpus.begin(), a.cpus.end());
          if (p.requests.memory_bytes > 0) a.cgroup.memory_min_bytes = p.requests.memory_bytes;
          counted = &pools["dedicated"];
          break;
        case QosLevel::kSystem:
          a.pool = "system";
          a.cpus = reserved_;
          counted = &pools["system"];
          break;
        case QosLevel::kReclaimed: {
          a.pool = "reclaim";
          a.cpus = reclaim_;
          a.cgroup.cpu_weight = kReclaimedCpuWeight;
          const int64_t cpu_limit = p.limits.reclaimed_millicpu;
          if (cpu_limit > 0) a.cgroup.cpu_quota_micros = cpu_limit * kCpuPeriodMicros / 1000;
          const int64_t mem = p.limits.reclaimed_memory_bytes > 0
                                  ? p.limits.reclaimed_memory_bytes
                                  : p.requests.reclaimed_memory_bytes;
          if (mem > 0) a.cgroup.memory_high_bytes = mem;
          counted = &pools["reclaim"];
          counted->requested_millicpu += p.requests.reclaimed_millicpu;
          counted->requested_memory_bytes += p.requests.reclaimed_memory_bytes;
          break;
        }
        case QosLevel::kShared:
        case QosLevel::kUnknown:
          a.pool = PoolFor(i);
          a.cpus = a.pool == "share" ? share_ : named_pools_.at(p.enhancements.cpuset_pool);
          counted = &pools[a.pool];
          break;
      }
      a.cgroup.cpuset_cpus = FormatCpuList(a.cpus);
      a.cgroup.cpuset_mems = a.numa_node >= 0 ? std::to_string(a.numa_node) : MemsOf(a.cpus);
      ++counted->pods;
      if (a.level != QosLevel::kReclaimed) {
        counted->requested_millicpu += p.requests.cpu_millis;
        counted->requested_memory_bytes += p.requests.memory_bytes;
      }
    }
    if (pools.count("dedicated") != 0) {
      std::sort(dedicated.begin(), dedicated.end());
      Pool& d = pools["dedicated"];
      d.name = "dedicated";
      d.level = QosLevel::kDedicated;
      d.cpus = dedicated;
    }
    for (const char* name : {"dedicated", "share"}) {
      auto it = pools.find(name);
      if (it != pools.end()) plan_.pools.push_back(std::move(it->second));
    }
    for (auto& [name, p] : pools) {
      if (name.rfind("share-", 0) == 0) plan_.pools.push_back(std::move(p));
    }
    for (const char* name : {"reclaim", "system"}) {
      auto it = pools.find(name);
      if (it != pools.end()) plan_.pools.push_back(std::move(it->second));
    }
  }

  const PlannerInput& in_;
  PoolPlan plan_;
  std::map<int, int> numa_of_;
  std::set<int> free_;
  std::vector<int> reserved_;
  int64_t total_memory_ = 0;
  std::vector<PodAssignment> assignments_;
  std::vector<const LocalPod*> pods_;  // parallel to assignments_
  std::map<size_t, int64_t> need_;
  int64_t dedicated_cpu_count_ = 0;
  std::map<int, int> dedicated_on_numa_;
  std::set<int> exclusive_numa_;
  std::map<int, int64_t> bound_memory_;
  std::map<std::string, std::vector<int>> named_pools_;
  std::vector<int> share_;
  std::vector<int> reclaim_;
};

}  // namespace

PoolPlan PlanPools(const PlannerInput& input) {
  return Planner(input).Run();
}

}  // namespace gpu_autoscaler::node_agent
