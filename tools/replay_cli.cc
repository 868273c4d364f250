// `gpu-autoscaler replay`: a simulated GPU fleet, KWOK-style, and part of an
// openb trace replayed onto it in compressed time against a real API server.
//
// The plan (which pod arrives and departs when, node and pod shapes) is pure
// and tested in src/autoscale/live_replay.h; this file applies it: Nodes with
// Ready conditions and heartbeat Leases, Pods created and deleted on time,
// bound Pods marked Running (there is no kubelet), and the progress view.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/annotations.h"
#include "api/nvidia.h"
#include "autoscale/live_replay.h"
#include "autoscale/trace.h"
#include "common/clock.h"
#include "cost/duration.h"
#include "fleet/fleet_plan.h"
#include "kube/config.h"
#include "kube/error.h"
#include "kube/meta_time.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "tools/cost_cli.h"

namespace gpu_autoscaler::cli {
namespace {

namespace as = autoscale;
using nlohmann::json;

constexpr char kCommand[] = "replay";
constexpr char kReplayLabel[] = "gpuautoscaler.io/replay";
constexpr const char* kLeaseNamespace = fleet::kLeaseNamespace;

constexpr char kUsage[] =
    "Usage: gpu-autoscaler replay --nodes FILE --pods FILE [--kubeconfig FILE]\n"
    "                             [--node-limit N] [--start T] [--window 4h] [--limit N]\n"
    "                             [--speed X] [--teams a,b,c] [-o text|json] [--keep]\n"
    "\n"
    "Plays a simulated GPU fleet, as KWOK does, and replays part of an openb trace\n"
    "(Alibaba cluster-trace-gpu-v2023) onto it in compressed time. Each openb node\n"
    "becomes a Node (GPU product and instance type of the pricing catalogue where\n"
    "the model has one; every other node time-sliced, advertising\n"
    "nvidia.com/gpu.shared) with a Ready condition and a heartbeat Lease in\n"
    "kube-node-lease. Each pod is created at its creation_time with schedulerName\n"
    "gpu-autoscaler in namespace <prefix><team>, marked Running once the scheduler\n"
    "binds it, and deleted at its deletion_time. Pods alive at --start arrive at once.\n"
    "A live progress line goes to stderr (plain lines when it is not a terminal),\n"
    "then a summary to stdout. Ctrl-C stops the replay and deletes only what it made.\n"
    "\n"
    "Options:\n"
    "  --kubeconfig FILE       kubeconfig (default: as kubectl finds it)\n"
    "  --context NAME          kubeconfig context\n"
    "  --nodes FILE            openb node list CSV (sn,cpu_milli,memory_mib,gpu,model)\n"
    "  --node-limit N          at most N nodes, spread evenly over the list (default: all)\n"
    "  --pods FILE             openb pod list CSV with creation_time and deletion_time\n"
    "  --start T               trace second to start at (default: the first creation)\n"
    "  --window DURATION       trace time to play, e.g. 4h (default: until the last pod leaves)\n"
    "  --limit N               at most N pods, earliest first (default: all)\n"
    "  --speed X               trace seconds per wall second (default 60)\n"
    "  --teams LIST            teams pods are billed to, by a hash of the pod name\n"
    "                          (default research,inference,training)\n"
    "  --namespace-prefix P    namespace of a team's pods is P<team> (default replay-)\n"
    "  --shared-fraction F     fraction of nodes that time-slice their GPUs (default 0.5)\n"
    "  --replicas N            time-slicing replicas per shared GPU (default 10)\n"
    "  --lease-interval D      heartbeat Lease renewal period (default 10s, as the kubelet)\n"
    "  --poll-interval D       how often bound pods are looked for (default 500ms)\n"
    "  -o, --output FORMAT     text (default) or json summary\n"
    "  --keep                  leave the fake Nodes and their Leases at the end\n"
    "  -h, --help              show this help\n";

volatile std::sig_atomic_t g_interrupts = 0;

Result<double> ParsePositive(const std::string& flag, const std::string& text, double max) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(v > 0 && v <= max))
    return InvalidArgumentError(flag + ": want a number in (0, " + FormatNumber(max, 0) +
                                "], got \"" + text + "\"");
  return v;
}

// "500ms", "2s", "1m": seconds as a double.
Result<double> ParseSeconds(const std::string& flag, const std::string& text) {
  if (text.ends_with("ms")) {
    Result<double> ms = ParsePositive(flag, text.substr(0, text.size() - 2), 3.6e6);
    if (!ms.ok()) return ms;
    return *ms / 1000;
  }
  Result<int64_t> s = cost::ParseDurationSeconds(text);
  if (!s.ok()) return InvalidArgumentError(flag + ": want a duration such as 10s or 500ms");
  return static_cast<double>(*s);
}

std::string MilliCpu(int64_t milli) {
  return std::to_string(milli) + "m";
}
std::string MiB(int64_t mib) {
  return std::to_string(mib) + "Mi";
}

json NodeObject(const as::FakeNodeShape& s, const std::string& run) {
  json labels = {{"kubernetes.io/hostname", s.name},
                 {"kubernetes.io/os", "linux"},
                 {"type", "kwok"},
                 {kReplayLabel, run},
                 {std::string(api::kGpuProductLabel), s.gpu_product},
                 {std::string(api::kGpuCountLabel), std::to_string(s.gpus)},
                 {"karpenter.sh/capacity-type", "on-demand"}};
  if (!s.instance_type.empty()) labels["node.kubernetes.io/instance-type"] = s.instance_type;
  json resources = {{"cpu", MilliCpu(s.cpu_milli)}, {"memory", MiB(s.memory_mib)}, {"pods", "110"}};
  if (s.shared) {
    labels[std::string(api::kSharingStrategyLabel)] = "time-slicing";
    labels[std::string(api::kGpuReplicasLabel)] = std::to_string(s.replicas);
    resources[std::string(api::kSharedGpuResource)] = std::to_string(s.gpus * s.replicas);
  } else if (s.gpus > 0) {
    resources[std::string(api::kGpuResource)] = std::to_string(s.gpus);
  }
  return {
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata",
       {{"name", s.name}, {"labels", labels}, {"annotations", {{"kwok.x-k8s.io/node", "fake"}}}}},
      {"status", {{"capacity", resources}, {"allocatable", resources}}}};
}

json ReadyStatusPatch(const std::string& now) {
  return {{"status",
           {{"conditions",
             {{{"type", "Ready"},
               {"status", "True"},
               {"reason", "KubeletReady"},
               {"message", "simulated by gpu-autoscaler replay"},
               {"lastHeartbeatTime", now},
               {"lastTransitionTime", now}}}}}}};
}

json PodObject(const as::LiveReplayPod& p, const std::string& name, const std::string& ns,
               const std::string& team, const std::string& run) {
  const as::FakePodRequest gpu = as::FakePodRequestOf(p.pod.spec);
  json requests = {{"cpu", MilliCpu(std::max<int64_t>(p.pod.spec.cpu_milli, 1))},
                   {"memory", MiB(std::max<int64_t>(p.pod.spec.memory_mib, 1))}};
  json limits = json::object();
  json annotations = json::object();
  if (gpu.kind == as::FakePodRequest::Kind::kWhole) {
    requests[std::string(api::kGpuResource)] = std::to_string(gpu.whole_gpus);
    limits[std::string(api::kGpuResource)] = std::to_string(gpu.whole_gpus);
  } else if (gpu.kind == as::FakePodRequest::Kind::kShared) {
    requests[std::string(api::kSharedGpuResource)] = "1";
    limits[std::string(api::kSharedGpuResource)] = "1";
    annotations[std::string(api::kGpuComputeAnnotation)] = std::to_string(gpu.compute_percent);
  }
  json container = {{"name", "main"},
                    {"image", "registry.example/openb:1"},
                    {"resources", {{"requests", requests}}}};
  if (!limits.empty()) container["resources"]["limits"] = limits;
  json spec = {{"schedulerName", "gpu-autoscaler"},
               {"terminationGracePeriodSeconds", 0},
               {"containers", json::array({container})}};
  if (gpu.kind != as::FakePodRequest::Kind::kNone && !p.pod.spec.gpu_models.empty()) {
    // openb's gpu_spec: the pod runs only on these models, as a user would
    // say with node affinity on GPU feature discovery's product label.
    json products = json::array();
    for (const std::string& model : p.pod.spec.gpu_models)
      products.push_back(as::FakeGpuProduct(model));
    spec["affinity"] = {
        {"nodeAffinity",
         {{"requiredDuringSchedulingIgnoredDuringExecution",
           {{"nodeSelectorTerms",
             json::array(
                 {{{"matchExpressions", json::array({{{"key", std::string(api::kGpuProductLabel)},
                                                      {"operator", "In"},
                                                      {"values", products}}})}}})}}}}}};
  }
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", name},
            {"namespace", ns},
            {"labels", {{"team", team}, {"project", "openb-replay"}, {kReplayLabel, run}}},
            {"annotations", annotations}}},
          {"spec", spec}};
}

std::string Lowercase(std::string s) {
  for (char& c : s) {
    c = std::isalnum(static_cast<unsigned char>(c))
            ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
            : '-';
  }
  return s;
}

std::string TraceClockText(double t) {  // trace seconds as "d3 04:05:06"
  const int64_t s = static_cast<int64_t>(std::floor(t));
  char buf[48];
  std::snprintf(buf, sizeof buf, "d%lld %02lld:%02lld:%02lld", static_cast<long long>(s / 86400),
                static_cast<long long>(s / 3600 % 24), static_cast<long long>(s / 60 % 60),
                static_cast<long long>(s % 60));
  return buf;
}

struct Sample {
  double trace_time;
  double gpus;
};

class Replayer {
 public:
  Replayer(Clock& clock, kube::RestClient& client, const as::LiveReplayPlan& plan,
           std::vector<as::FakeNodeShape> nodes, std::vector<std::string> teams, std::string prefix,
           std::string run)
      : clock_(clock),
        client_(client),
        plan_(plan),
        nodes_(std::move(nodes)),
        teams_(std::move(teams)),
        prefix_(std::move(prefix)),
        run_(std::move(run)),
        tally_(static_cast<int>(plan.pods.size())) {
    for (const as::FakeNodeShape& n : nodes_)
      total_gpus_ += n.gpus;
    for (size_t i = 0; i < plan_.pods.size(); ++i) {
      const std::string& name = plan_.pods[i].pod.spec.name;
      const std::string team = as::TeamOf(name, teams_);
      refs_.push_back({kube::resources::kPods, prefix_ + team, Lowercase(name), ""});
      index_[refs_.back().ns + "/" + refs_.back().name] = static_cast<int>(i);
    }
  }

  Status SetUp() {
    for (std::string ns : {std::string(kLeaseNamespace)})
      GPU_RETURN_IF_ERROR(EnsureNamespace(ns, ""));
    for (const std::string& team : teams_)
      GPU_RETURN_IF_ERROR(EnsureNamespace(prefix_ + team, team));
    const std::string now = kube::FormatTime(clock_.WallNow());
    for (const as::FakeNodeShape& n : nodes_) {
      if (g_interrupts) return Status::Ok();
      kube::ObjectRef ref{kube::resources::kNodes, "", n.name, ""};
      auto created = client_.Create(ref, NodeObject(n, run_));
      if (!created.ok()) {
        if (kube::IsAlreadyExists(created.error()))
          return FailedPreconditionError("node " + n.name +
                                         " already exists (another replay still running?)");
        return UnavailableError("creating node " + n.name + ": " + created.error().ToString());
      }
      made_nodes_.push_back(n.name);
      ref.subresource = "status";
      auto ready = client_.Patch(ref, kube::PatchType::kMerge, ReadyStatusPatch(now).dump());
      if (!ready.ok())
        return UnavailableError("node " + n.name + " status: " + ready.error().ToString());
      GPU_RETURN_IF_ERROR(CreateLease(n.name));
    }
    return Status::Ok();
  }

  // Plays the plan; returns early (OK) on Ctrl-C.
  Status Run(double speed, double lease_interval, double poll_interval, bool tty) {
    const as::ReplayClock clock(plan_.start, speed);
    as::ReplayCursor cursor(plan_);
    const Clock::TimePoint t0 = clock_.Now();
    auto elapsed = [&] { return std::chrono::duration<double>(clock_.Now() - t0).count(); };
    std::mutex nap_mu;
    std::condition_variable nap_cv;  // nothing notifies it: a nap ends at its deadline
    double next_lease = lease_interval;
    double next_poll = 0;
    double next_line = 0;
    while (!g_interrupts) {
      const double now = elapsed();
      const double t = std::min(clock.TraceTime(now), static_cast<double>(plan_.end));
      for (const as::ReplayEvent& e : cursor.Due(t)) {
        if (g_interrupts) break;
        GPU_RETURN_IF_ERROR(e.kind == as::ReplayEvent::Kind::kArrive ? Arrive(e.pod)
                                                                     : Depart(e.pod));
      }
      if (now >= next_poll) {
        GPU_RETURN_IF_ERROR(Poll());
        samples_.push_back({t, tally_.counts().gpus_allocated});
        next_poll = now + poll_interval;
      }
      if (now >= next_lease) {
        RenewLeases();
        next_lease = now + lease_interval;
      }
      if (tty) {
        std::fprintf(stderr, "\r\033[K%s", ProgressLine(t).c_str());
      } else if (now >= next_line) {
        std::fprintf(stderr, "%s\n", ProgressLine(t).c_str());
        next_line = now + 5;
      }
      std::fflush(stderr);
      if (cursor.done()) break;
      double wake = std::min(next_poll, next_lease);
      wake = std::min(wake, clock.WallOffset(cursor.next_time()));
      const double nap = std::clamp(wake - elapsed(), 0.0, 0.2);
      std::unique_lock<std::mutex> lock(nap_mu);
      clock_.WaitUntil(lock, nap_cv,
                       clock_.Now() + std::chrono::duration_cast<Clock::Duration>(
                                          std::chrono::duration<double>(nap)));
    }
    if (tty) std::fprintf(stderr, "\r\033[K");
    std::fprintf(
        stderr, "%s%s\n",
        ProgressLine(std::min(clock.TraceTime(elapsed()), static_cast<double>(plan_.end))).c_str(),
        g_interrupts ? "  (interrupted)" : "");
    wall_seconds_ = elapsed();
    return Status::Ok();
  }

  // Deletes what this run made: its pods still there, and unless `keep` its
  // Leases and Nodes.
  void CleanUp(bool keep) {
    kube::DeleteOptions now;
    now.grace_period_seconds = 0;
    if (!keep || g_interrupts) {
      for (size_t i = 0; i < refs_.size(); ++i) {
        if (created_.count(static_cast<int>(i)) && !deleted_.count(static_cast<int>(i)))
          (void)client_.Delete(refs_[i], now);
      }
    }
    if (keep) return;
    for (const std::string& n : made_nodes_) {
      (void)client_.Delete({kube::resources::kLeases, kLeaseNamespace, n, ""}, now);
      (void)client_.Delete({kube::resources::kNodes, "", n, ""}, now);
    }
  }

  json Summary(double speed) const {
    const as::ReplayCounts& c = tally_.counts();
    double area = 0;  // time-weighted mean of the allocation samples
    for (size_t i = 1; i < samples_.size(); ++i)
      area += samples_[i - 1].gpus * (samples_[i].trace_time - samples_[i - 1].trace_time);
    const double span =
        samples_.size() > 1 ? samples_.back().trace_time - samples_.front().trace_time : 0;
    json curve = json::array();
    const size_t step = std::max<size_t>(1, samples_.size() / 60);
    for (size_t i = 0; i < samples_.size(); i += step)
      curve.push_back({{"t", static_cast<int64_t>(samples_[i].trace_time)},
                       {"gpus", std::round(samples_[i].gpus * 100) / 100}});
    return {{"nodes", made_nodes_.size()},
            {"gpus", total_gpus_},
            {"trace_start", plan_.start},
            {"trace_end", plan_.end},
            {"speed", speed},
            {"wall_seconds", std::round(wall_seconds_ * 10) / 10},
            {"pods", plan_.pods.size()},
            {"arrived", c.arrived},
            {"placed", c.placed},
            {"never_placed", tally_.never_placed()},
            {"departed", c.departed},
            {"rejected", rejected_},
            {"running_marked", running_marked_},
            {"peak_gpus_allocated", std::round(c.peak_gpus_allocated * 100) / 100},
            {"mean_gpus_allocated", span > 0 ? std::round(area / span * 100) / 100 : 0.0},
            {"lease_renewals", lease_renewals_},
            {"interrupted", g_interrupts != 0},
            {"allocation", curve}};
  }

 private:
  Status EnsureNamespace(const std::string& ns, const std::string& team) {
    json obj = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}};
    if (!team.empty()) obj["metadata"]["labels"] = {{"team", team}};
    auto r = client_.Create({kube::resources::kNamespaces, "", ns, ""}, obj);
    if (!r.ok() && !kube::IsAlreadyExists(r.error()))
      return UnavailableError("creating namespace " + ns + ": " + r.error().ToString());
    return Status::Ok();
  }

  Status CreateLease(const std::string& node) {
    // The fleet's Lease, labelled as the replay's so that a running
    // `gpu-autoscaler fleet` never deletes it.
    const json lease = fleet::LeaseObject(node, "", clock_.WallNow(), 40, "gpu-autoscaler-replay");
    auto r = client_.Create({kube::resources::kLeases, kLeaseNamespace, node, ""}, lease);
    if (r.ok()) return Status::Ok();
    if (!kube::IsAlreadyExists(r.error()))
      return UnavailableError("creating Lease " + node + ": " + r.error().ToString());
    RenewLease(node);
    return Status::Ok();
  }

  void RenewLease(const std::string& node) {
    const json patch = fleet::LeaseRenewPatch(clock_.WallNow());
    if (client_
            .Patch({kube::resources::kLeases, kLeaseNamespace, node, ""}, kube::PatchType::kMerge,
                   patch.dump())
            .ok())
      ++lease_renewals_;
  }

  void RenewLeases() {
    for (const std::string& n : made_nodes_)
      RenewLease(n);
  }

  Status Arrive(int i) {
    const kube::ObjectRef& ref = refs_[i];
    auto r = client_.Create(
        ref, PodObject(plan_.pods[i], ref.name, ref.ns, ref.ns.substr(prefix_.size()), run_));
    if (!r.ok()) {
      if (kube::IsAlreadyExists(r.error()))
        return FailedPreconditionError("pod " + ref.ns + "/" + ref.name +
                                       " already exists (another replay still running?)");
      if (r.error().kind() == kube::Error::Kind::kTransport)
        return UnavailableError("creating pod " + ref.name + ": " + r.error().ToString());
      // Denied at admission (a Budget, a quota): counted, not fatal.
      if (rejected_++ == 0)
        std::fprintf(stderr, "\ngpu-autoscaler replay: pod %s/%s rejected: %s\n", ref.ns.c_str(),
                     ref.name.c_str(), r.error().ToString().c_str());
      return Status::Ok();
    }
    created_.insert(i);
    tally_.Arrived(i, as::FakePodRequestOf(plan_.pods[i].pod.spec).gpus());
    return Status::Ok();
  }

  Status Depart(int i) {
    if (!created_.count(i)) return Status::Ok();
    // A pod bound since the last poll still counts as placed.
    if (!bound_.count(i)) {
      auto got = client_.Get(refs_[i]);
      if (got.ok() && !got->value("spec", json::object()).value("nodeName", "").empty())
        MarkBound(i);
    }
    kube::DeleteOptions now;
    now.grace_period_seconds = 0;
    auto r = client_.Delete(refs_[i], now);
    if (!r.ok() && !kube::IsNotFound(r.error()))
      return UnavailableError("deleting pod " + refs_[i].name + ": " + r.error().ToString());
    deleted_.insert(i);
    tally_.Departed(i);
    return Status::Ok();
  }

  void MarkBound(int i) {
    bound_.insert(i);
    tally_.Bound(i);
  }

  // Lists this run's pods: bound ones are counted and marked Running.
  Status Poll() {
    kube::ListOptions opts;
    opts.label_selector = std::string(kReplayLabel) + "=" + run_;
    auto list = client_.List({kube::resources::kPods, "", "", ""}, opts);
    if (!list.ok()) return UnavailableError("listing pods: " + list.error().ToString());
    const std::string now = kube::FormatTime(clock_.WallNow());
    for (const json& pod : list->value("items", json::array())) {
      const json& meta = pod["metadata"];
      auto it = index_.find(meta.value("namespace", "") + "/" + meta.value("name", ""));
      if (it == index_.end() || deleted_.count(it->second)) continue;
      if (pod.value("spec", json::object()).value("nodeName", "").empty()) continue;
      MarkBound(it->second);
      if (pod.value("status", json::object()).value("phase", "") == "Running") continue;
      const json patch = {{"status",
                           {{"phase", "Running"},
                            {"startTime", now},
                            {"conditions",
                             {{{"type", "Ready"}, {"status", "True"}, {"lastTransitionTime", now}},
                              {{"type", "PodScheduled"}, {"status", "True"}}}}}}};
      kube::ObjectRef ref = refs_[it->second];
      ref.subresource = "status";
      if (client_.Patch(ref, kube::PatchType::kMerge, patch.dump()).ok()) ++running_marked_;
    }
    return Status::Ok();
  }

  std::string ProgressLine(double t) const {
    const as::ReplayCounts& c = tally_.counts();
    constexpr int kWidth = 24;
    const double frac = total_gpus_ > 0 ? std::min(1.0, c.gpus_allocated / total_gpus_) : 0;
    const int filled = static_cast<int>(std::lround(frac * kWidth));
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  "trace %s  arrived %d  bound %d  pending %d  departed %d  GPUs %.1f/%d "
                  "[%s%s] %3.0f%%",
                  TraceClockText(t).c_str(), c.arrived, c.bound, c.pending, c.departed,
                  c.gpus_allocated, total_gpus_, std::string(filled, '#').c_str(),
                  std::string(kWidth - filled, '.').c_str(), frac * 100);
    return buf;
  }

  Clock& clock_;
  kube::RestClient& client_;
  const as::LiveReplayPlan& plan_;
  std::vector<as::FakeNodeShape> nodes_;
  std::vector<std::string> teams_;
  std::string prefix_;
  std::string run_;
  as::ReplayTally tally_;
  std::vector<kube::ObjectRef> refs_;
  std::map<std::string, int> index_;
  std::set<int> created_, deleted_, bound_;
  std::vector<std::string> made_nodes_;
  std::vector<Sample> samples_;
  int total_gpus_ = 0;
  int rejected_ = 0;
  int running_marked_ = 0;
  int lease_renewals_ = 0;
  double wall_seconds_ = 0;
};

std::string SummaryText(const json& s) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line,
                "replayed trace seconds %lld-%lld at %gx in %.1f s on %d nodes (%d GPUs)\n",
                static_cast<long long>(s["trace_start"].get<int64_t>()),
                static_cast<long long>(s["trace_end"].get<int64_t>()), s["speed"].get<double>(),
                s["wall_seconds"].get<double>(), s["nodes"].get<int>(), s["gpus"].get<int>());
  out += line;
  std::snprintf(line, sizeof line,
                "pods: %d arrived, %d placed, %d never placed, %d departed, %d rejected\n",
                s["arrived"].get<int>(), s["placed"].get<int>(), s["never_placed"].get<int>(),
                s["departed"].get<int>(), s["rejected"].get<int>());
  out += line;
  std::snprintf(line, sizeof line,
                "GPUs allocated: peak %.2f, mean %.2f of %d; heartbeat Lease renewals: %d\n",
                s["peak_gpus_allocated"].get<double>(), s["mean_gpus_allocated"].get<double>(),
                s["gpus"].get<int>(), s["lease_renewals"].get<int>());
  out += line;
  // The allocation curve, a few points wide.
  const json& curve = s["allocation"];
  if (curve.size() > 1) {
    out += "GPU allocation over trace time:\n";
    const size_t step = std::max<size_t>(1, curve.size() / 8);
    const int gpus = std::max(1, s["gpus"].get<int>());
    for (size_t i = 0; i < curve.size(); i += step) {
      const double g = curve[i]["gpus"].get<double>();
      const int bar = static_cast<int>(std::lround(std::min(1.0, g / gpus) * 40));
      std::snprintf(line, sizeof line, "  %s  %7.2f  %s\n",
                    TraceClockText(curve[i]["t"].get<double>()).c_str(), g,
                    std::string(bar, '#').c_str());
      out += line;
    }
  }
  return out;
}

}  // namespace

int RunReplay(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (std::string& a : args)
    if (a == "--keep") a = "--keep=true";
  std::vector<char*> fixed;
  for (std::string& a : args)
    fixed.push_back(a.data());
  FlagParser flags({"--kubeconfig", "--context", "--nodes", "--node-limit", "--pods", "--start",
                    "--window", "--limit", "--speed", "--teams", "--namespace-prefix",
                    "--shared-fraction", "--replicas", "--lease-interval", "--poll-interval",
                    "--output", "--keep"});
  flags.Alias("-o", "--output");
  if (!flags.Parse(static_cast<int>(fixed.size()), fixed.data()))
    return UsageError(kCommand, flags.error());
  if (flags.help()) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (flags.Get("--nodes").empty()) return UsageError(kCommand, "--nodes is required");
  if (flags.Get("--pods").empty()) return UsageError(kCommand, "--pods is required");
  const std::string output = flags.Get("--output", "text");
  if (output != "text" && output != "json")
    return UsageError(kCommand, "-o: want text or json, got \"" + output + "\"");
  auto count = [&](const std::string& flag, int* out) -> bool {
    if (!flags.Has(flag)) return true;
    Result<double> v = ParsePositive(flag, flags.Get(flag), 1e9);
    if (!v.ok() || *v != std::floor(*v)) return false;
    *out = static_cast<int>(*v);
    return true;
  };
  int node_limit = 0;
  int replicas = 10;
  as::ReplaySelection selection;
  if (!count("--node-limit", &node_limit)) return UsageError(kCommand, "bad --node-limit");
  if (!count("--limit", &selection.limit)) return UsageError(kCommand, "bad --limit");
  if (!count("--replicas", &replicas) || replicas > 100)
    return UsageError(kCommand, "bad --replicas");
  if (flags.Has("--start")) {
    int start = 0;
    if (flags.Get("--start") != "0" && !count("--start", &start))
      return UsageError(kCommand, "bad --start: want trace seconds");
    selection.start = start;
  }
  if (flags.Has("--window")) {
    Result<int64_t> w = cost::ParseDurationSeconds(flags.Get("--window"));
    if (!w.ok()) return UsageError(kCommand, "--window: want a duration such as 4h");
    selection.window = *w;
  }
  Result<double> speed = ParsePositive("--speed", flags.Get("--speed", "60"), 1e7);
  if (!speed.ok()) return UsageError(kCommand, speed.error().message());
  double shared_fraction = 0.5;
  if (flags.Has("--shared-fraction")) {
    char* end = nullptr;
    const std::string f = flags.Get("--shared-fraction");
    shared_fraction = std::strtod(f.c_str(), &end);
    if (f.empty() || *end != '\0' || !(shared_fraction >= 0 && shared_fraction <= 1))
      return UsageError(kCommand, "--shared-fraction: want a number in [0, 1]");
  }
  Result<double> lease_interval =
      ParseSeconds("--lease-interval", flags.Get("--lease-interval", "10s"));
  if (!lease_interval.ok()) return UsageError(kCommand, lease_interval.error().message());
  Result<double> poll_interval =
      ParseSeconds("--poll-interval", flags.Get("--poll-interval", "500ms"));
  if (!poll_interval.ok()) return UsageError(kCommand, poll_interval.error().message());
  std::vector<std::string> teams;
  {
    const std::string list = flags.Get("--teams", "research,inference,training");
    size_t start = 0;
    while (start <= list.size()) {
      const size_t comma = std::min(list.find(',', start), list.size());
      if (comma > start) teams.push_back(Lowercase(list.substr(start, comma - start)));
      start = comma + 1;
    }
    if (teams.empty()) return UsageError(kCommand, "--teams is empty");
  }

  Result<std::vector<as::NodeSpec>> nodes = as::LoadNodeCsv(flags.Get("--nodes"));
  if (!nodes.ok()) return Fail(kCommand, nodes.error().message());
  Result<std::vector<as::TimedPod>> pods = as::LoadTimedPodCsv(flags.Get("--pods"));
  if (!pods.ok()) return Fail(kCommand, pods.error().message());
  Result<as::LiveReplayPlan> plan = as::PlanLiveReplay(*pods, selection);
  if (!plan.ok()) return Fail(kCommand, plan.error().message());
  std::vector<as::FakeNodeShape> shapes;
  {
    const std::vector<as::NodeSpec> fleet = as::SampleNodes(*nodes, node_limit);
    for (size_t i = 0; i < fleet.size(); ++i)
      shapes.push_back(
          as::FakeNodeShapeOf(fleet[i], static_cast<int>(i), shared_fraction, replicas));
  }

  auto config =
      flags.Get("--kubeconfig").empty()
          ? kube::LoadDefaultConfig(flags.Get("--context"))
          : kube::LoadKubeconfigFiles({flags.Get("--kubeconfig")}, flags.Get("--context"));
  if (!config.ok()) return Fail(kCommand, "no cluster to replay on: " + config.error().ToString());
  config->user_agent = "gpu-autoscaler-replay";
  kube::RestClientOptions client_options;
  client_options.max_retries = 2;
  auto client = kube::RestClient::Create(*config, client_options);
  if (!client.ok()) return Fail(kCommand, client.error().ToString());
  if (auto probe = (*client)->Request("GET", "/version"); !probe.ok())
    return Fail(kCommand, "cannot reach the API server at " + config->server + ": " +
                              probe.error().ToString());

  // A short run id keeps this replay's objects apart from another's.
  const std::string run = std::to_string(getpid());
  Replayer replayer(RealClock::Instance(), **client, *plan, std::move(shapes), teams,
                    flags.Get("--namespace-prefix", "replay-"), run);
  struct sigaction sa {};
  sa.sa_handler = [](int) {
    g_interrupts = g_interrupts + 1;
    if (g_interrupts > 1) _exit(130);  // a second Ctrl-C: stop now
  };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  Status status = replayer.SetUp();
  if (status.ok())
    status = replayer.Run(*speed, *lease_interval, *poll_interval, isatty(STDERR_FILENO) == 1);
  replayer.CleanUp(flags.Get("--keep") == "true" && status.ok());
  if (!status.ok()) return Fail(kCommand, status.message());
  const json summary = replayer.Summary(*speed);
  std::fputs(output == "json" ? (summary.dump(2) + "\n").c_str() : SummaryText(summary).c_str(),
             stdout);
  return g_interrupts ? 130 : kExitOk;
}

}  // namespace gpu_autoscaler::cli
