#include "node-agent/qos_controller.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "api/resources.h"
#include "kube/event_recorder.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "reconcile/logging.h"

namespace gpu_autoscaler::node_agent {

using nlohmann::json;
using reconcile::Log;
using reconcile::LogLevel;

// ---- metrics ----

struct QosMetrics::Impl {
  prometheus::Family<prometheus::Gauge>& pool_cpus;
  prometheus::Family<prometheus::Gauge>& pool_pods;
  prometheus::Gauge& reclaim_cpu;
  prometheus::Gauge& reclaim_memory;
  prometheus::Gauge& problems;
  prometheus::Family<prometheus::Counter>& writes;
  prometheus::Family<prometheus::Counter>& syncs;
  std::map<std::string, std::pair<prometheus::Gauge*, prometheus::Gauge*>> pools;
};

QosMetrics::QosMetrics(prometheus::Registry& r) {
  auto& pool_cpus = prometheus::BuildGauge()
                        .Name("gpu_autoscaler_node_qos_pool_cpus")
                        .Help(
                            "CPUs in each QoS pool (dedicated, share, share-<name>, reclaim, "
                            "system)")
                        .Register(r);
  auto& pool_pods = prometheus::BuildGauge()
                        .Name("gpu_autoscaler_node_qos_pool_pods")
                        .Help("Pods in each QoS pool")
                        .Register(r);
  auto& reclaim_cpu = prometheus::BuildGauge()
                          .Name("gpu_autoscaler_node_reclaimable_millicpu")
                          .Help("Reclaimable CPU advertised for reclaimed_cores pods, millicores")
                          .Register(r)
                          .Add({});
  auto& reclaim_memory = prometheus::BuildGauge()
                             .Name("gpu_autoscaler_node_reclaimable_memory_bytes")
                             .Help("Reclaimable memory advertised for reclaimed_cores pods")
                             .Register(r)
                             .Add({});
  auto& problems = prometheus::BuildGauge()
                       .Name("gpu_autoscaler_node_qos_pod_problems")
                       .Help("Pods the QoS planner could not serve as they asked")
                       .Register(r)
                       .Add({});
  auto& writes = prometheus::BuildCounter()
                     .Name("gpu_autoscaler_node_cgroup_writes_total")
                     .Help("Cgroup file writes by result (written, error, vanished)")
                     .Register(r);
  auto& syncs = prometheus::BuildCounter()
                    .Name("gpu_autoscaler_node_qos_syncs_total")
                    .Help("QoS pool passes by result")
                    .Register(r);
  impl_.reset(
      new Impl{pool_cpus, pool_pods, reclaim_cpu, reclaim_memory, problems, writes, syncs, {}});
  for (const char* result : {"written", "error", "vanished"})
    writes.Add({{"result", result}});
  for (const char* result : {"ok", "error"})
    syncs.Add({{"result", result}});
}

QosMetrics::~QosMetrics() = default;

void QosMetrics::ObservePlan(const PoolPlan& plan) {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> seen;
  for (const Pool& p : plan.pools) {
    auto [it, inserted] = impl_->pools.emplace(p.name, std::make_pair(nullptr, nullptr));
    if (inserted) {
      it->second = {&impl_->pool_cpus.Add({{"pool", p.name}}),
                    &impl_->pool_pods.Add({{"pool", p.name}})};
    }
    it->second.first->Set(static_cast<double>(p.cpus.size()));
    it->second.second->Set(p.pods);
    seen.insert(p.name);
  }
  for (auto it = impl_->pools.begin(); it != impl_->pools.end();) {
    if (seen.count(it->first) != 0) {
      ++it;
      continue;
    }
    impl_->pool_cpus.Remove(it->second.first);
    impl_->pool_pods.Remove(it->second.second);
    it = impl_->pools.erase(it);
  }
  impl_->reclaim_cpu.Set(static_cast<double>(plan.reclaimable_millicpu));
  impl_->reclaim_memory.Set(static_cast<double>(plan.reclaimable_memory_bytes));
  std::set<std::string> pods;
  for (const auto& p : plan.problems)
    pods.insert(p.uid);
  impl_->problems.Set(static_cast<double>(pods.size()));
}

void QosMetrics::CountWrites(uint64_t written, uint64_t errors, uint64_t vanished) {
  std::lock_guard<std::mutex> lock(mu_);
  impl_->writes.Add({{"result", "written"}}).Increment(static_cast<double>(written));
  impl_->writes.Add({{"result", "error"}}).Increment(static_cast<double>(errors));
  impl_->writes.Add({{"result", "vanished"}}).Increment(static_cast<double>(vanished));
}

void QosMetrics::CountSync(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  impl_->syncs.Add({{"result", ok ? "ok" : "error"}}).Increment();
}

// ---- documents ----

std::string QosStatusApply(const std::string& node_name, const PoolPlan& plan,
                           const QosReportContext& context) {
  json pools = json::array();
  for (const Pool& p : plan.pools) {
    pools.push_back({{"name", p.name},
                     {"qosLevel", QosLevelName(p.level)},
                     {"cpus", FormatCpuList(p.cpus)},
                     {"cpuCount", p.cpus.size()},
                     {"pods", p.pods},
                     {"requestedMilliCpu", p.requested_millicpu},
                     {"requestedMemoryBytes", p.requested_memory_bytes}});
  }
  json problems = json::array();
  for (const PodProblem& p : plan.problems) {
    problems.push_back(
        {{"pod", p.ns + "/" + p.name}, {"reason", p.reason}, {"message", p.message}});
  }
  json qos = {
      {"cgroup", {{"version", context.cgroup_version}, {"driver", context.cgroup_driver}}},
      {"reservedCpus", context.reserved_cpus},
      {"pods", plan.pods.size()},
      {"pools", std::move(pools)},
      {"reclaimable",
       {{"milliCpu", plan.reclaimable_millicpu}, {"memoryBytes", plan.reclaimable_memory_bytes}}},
      {"problems", std::move(problems)}};
  if (!plan.error.empty()) qos["error"] = plan.error;
  json obj = {{"apiVersion", "gpuautoscaler.io/v1alpha1"},
              {"kind", "NodeResourceReport"},
              {"metadata", {{"name", node_name}}},
              {"status", {{"qos", std::move(qos)}}}};
  return obj.dump();
}

std::string NodeReclaimedApply(const std::string& node_name, int64_t millicpu,
                               int64_t memory_bytes) {
  json resources = {{std::string(kReclaimedMilliCpu), std::to_string(millicpu)},
                    {std::string(kReclaimedMemory), std::to_string(memory_bytes)}};
  json obj = {{"apiVersion", "v1"},
              {"kind", "Node"},
              {"metadata", {{"name", node_name}}},
              {"status", {{"capacity", resources}, {"allocatable", resources}}}};
  return obj.dump();
}

Result<std::vector<NumaNode>> ReadSingleNodeTopology(const std::string& sysfs_root,
                                                     const std::string& meminfo_path) {
  const std::string online = sysfs_root + "/devices/system/cpu/online";
  std::ifstream in(online);
  std::string cpus;
  if (!in || !std::getline(in, cpus)) return NotFoundError("cannot read " + online);
  const int count = CountCpuList(cpus);
  if (count <= 0) return InvalidArgumentError(online + ": malformed cpulist \"" + cpus + "\"");
  NumaNode node{.id = 0, .cpus = cpus, .cpu_count = count};
  std::ifstream mem(meminfo_path);
  std::string line;
  while (std::getline(mem, line)) {
    std::istringstream ss(line);
    std::string key;
    uint64_t kb = 0;
    if (ss >> key >> kb && key == "MemTotal:") node.memory_bytes = kb * 1024;
  }
  return std::vector<NumaNode>{node};
}

// ---- controller ----

QosController::QosController(kube::RestClient& client, LocalPodCache& pods,
                             kube::EventRecorder* recorder, QosMetrics* metrics,
                             QosControllerOptions options)
    : client_(client),
      pods_(pods),
      recorder_(recorder),
      metrics_(metrics),
      options_(std::move(options)) {
  if (options_.cgroup) writer_ = std::make_unique<CgroupWriter>(*options_.cgroup);
  pods_.AddChangeHandler([this](uint64_t generation) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      want_generation_ = generation;
    }
    wake_.notify_all();
  });
}

PoolPlan QosController::last_plan() const {
  std::lock_guard<std::mutex> lock(mu_);
  return plan_;
}

bool QosController::synced_once() const {
  std::lock_guard<std::mutex> lock(mu_);
  return synced_once_;
}

void QosController::WriteCgroups(const PoolPlan& plan) {
  if (!writer_) return;
  std::set<std::string> present;
  for (const PodAssignment& a : plan.pods) {
    present.insert(a.uid);
    CgroupApplyResult r = writer_->Apply(a);
    for (const std::string& e : r.errors) {
      Log(LogLevel::kWarn, "writing a pod cgroup",
          {{"pod", a.ns + "/" + a.name}, {"uid", a.uid}, {"error", e}});
    }
    if (r.vanished) {
      if (vanished_logged_.insert(a.uid).second) {
        Log(LogLevel::kInfo, "pod cgroup not there (not created yet or removed); will retry",
            {{"pod", a.ns + "/" + a.name},
             {"uid", a.uid},
             {"cgroup", writer_->PodDir(a, "cpuset")}});
      }
    } else {
      vanished_logged_.erase(a.uid);
    }
    if (r.writes > 0) {
      Log(LogLevel::kDebug, "wrote pod cgroup",
          {{"pod", a.ns + "/" + a.name},
           {"pool", a.pool},
           {"cpus", a.cgroup.cpuset_cpus},
           {"writes", std::to_string(r.writes)}});
    }
  }
  for (const PodAssignment& old : plan_.pods) {
    if (present.count(old.uid) == 0) {
      writer_->Forget(old.uid);
      vanished_logged_.erase(old.uid);
    }
  }
  if (metrics_ != nullptr) {
    metrics_->CountWrites(writer_->writes() - counted_writes_, writer_->errors() - counted_errors_,
                          writer_->vanished() - counted_vanished_);
  }
  counted_writes_ = writer_->writes();
  counted_errors_ = writer_->errors();
  counted_vanished_ = writer_->vanished();
}

void QosController::ReportProblems(const PoolPlan& plan) {
  std::set<std::string> now;
  for (const PodProblem& p : plan.problems) {
    const std::string key = p.uid + "|" + p.reason + "|" + p.message;
    now.insert(key);
    if (reported_.count(key) != 0) continue;
    Log(LogLevel::kWarn, "QoS: pod not served as asked",
        {{"pod", p.ns + "/" + p.name}, {"reason", p.reason}, {"message", p.message}});
    if (recorder_ != nullptr) {
      recorder_->Record(
          {.api_version = "v1", .kind = "Pod", .ns = p.ns, .name = p.name, .uid = p.uid},
          kube::EventType::kWarning, p.reason, p.message);
    }
  }
  reported_ = std::move(now);
}

Status QosController::ApplyStatus(const PoolPlan& plan) {
  const Clock::TimePoint now = options_.clock->Now();
  if (now - last_reapply_ >= options_.reapply) {
    last_reapply_ = now;
    last_node_.clear();
    last_status_.clear();
  }
  // The Node first: it does not need the report to exist.
  Status node_result = Status::Ok();
  if (plan.error.empty()) {
    const std::string node = NodeReclaimedApply(options_.node_name, plan.reclaimable_millicpu,
                                                plan.reclaimable_memory_bytes);
    if (node != last_node_) {
      auto reply = client_.Patch({kube::resources::kNodes, "", options_.node_name, "status"},
                                 kube::PatchType::kApply, node,
                                 {.field_manager = kQosFieldManager, .force = true});
      if (reply.ok()) {
        Log(LogLevel::kInfo, "advertised reclaimable resources",
            {{"node", options_.node_name},
             {"reclaimed_millicpu", std::to_string(plan.reclaimable_millicpu)},
             {"reclaimed_memory", std::to_string(plan.reclaimable_memory_bytes)}});
        last_node_ = node;
      } else {
        node_result = UnavailableError("applying the Node's reclaimed resources: " +
                                       reply.error().ToString());
      }
    }
  }
  QosReportContext context{
      .cgroup_version =
          options_.cgroup ? std::string(CgroupVersionName(options_.cgroup->version)) : "none",
      .cgroup_driver = options_.driver == CgroupDriver::kSystemd ? "systemd" : "cgroupfs",
      .reserved_cpus = FormatCpuList(options_.reserved_cpus)};
  const std::string status = QosStatusApply(options_.node_name, plan, context);
  if (status != last_status_) {
    auto reply = client_.Patch({api::kNodeResourceReports, "", options_.node_name, "status"},
                               kube::PatchType::kApply, status,
                               {.field_manager = kQosFieldManager, .force = true});
    if (!reply.ok()) {
      if (kube::IsNotFound(reply.error())) {
        return UnavailableError("the NodeResourceReport is not written yet");
      }
      return UnavailableError("applying the NodeResourceReport's status.qos: " +
                              reply.error().ToString());
    }
    last_status_ = status;
  }
  return node_result;
}

Status QosController::Sync() {
  auto snap = pods_.Snapshot();
  auto numa = ReadNumaTopology(options_.sysfs_root);
  if (numa.ok() && numa->empty()) {
    numa = ReadSingleNodeTopology(options_.sysfs_root, options_.meminfo_path);
  }
  PlannerInput in{.reserved_cpus = options_.reserved_cpus,
                  .reserved_memory_bytes = options_.reserved_memory_bytes,
                  .reclaim_reserve_millicpu = options_.reclaim_reserve_millicpu,
                  .reclaim_reserve_memory_bytes = options_.reclaim_reserve_memory_bytes,
                  .pods = snap->pods};
  if (numa.ok()) in.numa = std::move(numa).value();
  PoolPlan previous = last_plan();
  in.previous = &previous;
  PoolPlan plan = PlanPools(in);
  if (!numa.ok()) plan.error = "reading the CPU topology: " + numa.error().message();
  if (!plan.error.empty() && plan.error != last_error_) {
    Log(LogLevel::kError, "QoS pools not planned", {{"error", plan.error}});
  }
  last_error_ = plan.error;
  if (plan.error.empty()) WriteCgroups(plan);
  ReportProblems(plan);
  if (metrics_ != nullptr) metrics_->ObservePlan(plan);
  Status applied = ApplyStatus(plan);
  {
    std::lock_guard<std::mutex> lock(mu_);
    seen_generation_ = snap->generation;
    plan_ = std::move(plan);
    if (applied.ok()) synced_once_ = true;
  }
  if (metrics_ != nullptr) metrics_->CountSync(applied.ok());
  return applied;
}

void QosController::Run(std::stop_token stop) {
  std::string logged;
  while (!stop.stop_requested()) {
    Status s = Sync();
    if (s.message() != logged) {
      if (!s.ok()) Log(LogLevel::kWarn, "QoS pass", {{"error", s.message()}});
      logged = s.message();
    }
    // Retry soon while the report is not there; otherwise wait for a pod
    // change or the resync.
    const auto wait =
        s.ok() ? options_.resync
               : std::min<std::chrono::milliseconds>(options_.resync, std::chrono::seconds(1));
    std::unique_lock<std::mutex> lock(mu_);
    wake_.wait_for(lock, stop, wait, [&] { return want_generation_ != seen_generation_; });
  }
}

}  // namespace gpu_autoscaler::node_agent
