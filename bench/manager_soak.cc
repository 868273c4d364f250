// manager_soak: the manager under churn for a simulated hour (docs/reliability.md,
// "Soak"). Starts the embedded API server and gpu-autoscaler-manager with every
// controller as real processes on 127.0.0.1, loads GPU nodes and bound pods
// (bench/soak_cluster.h), then runs --steps steps of one simulated minute each,
// compressed into --duration of wall-clock time: each step replaces
// --churn-percent of the pods (delete, then create under a new name) and
// patches the status of --node-updates nodes (a GPU lost or back, Ready or not).
// After each step it samples both processes' RSS from /proc and the manager's
// /metrics (reconcile latency per controller from histogram bucket deltas,
// workqueue depth). At the end it checks that the manager's view converged on
// the API server's (metered pods, policy pods, GPU inventory) and judges RSS
// slope and latency drift.
//
//   manager_soak                                   # 5,000 nodes, 150,000 pods, 60 steps in 10m
//   manager_soak --nodes 100 --pods 2000 --steps 6 --duration 12s -o json
//
// Exit status: 0 the verdict passed, 1 it failed (or the view did not
// converge), 2 bad flags, 3 the setup failed.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/flag_duration.h"
#include "kube/rest_client.h"
#include "kube/transport.h"
#include "soak_cluster.h"
#include "soak_metrics.h"
#include "support/child_process.h"
#include "support/loopback_port.h"

using nlohmann::json;
using namespace gpu_autoscaler;
using bench::Buckets;
using Steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr char kUsage[] = R"(Usage: manager_soak [flags]

Soaks gpu-autoscaler-manager (every controller) against the embedded API server:
loads GPU nodes and bound pods, churns them for --steps simulated minutes
compressed into --duration, samples RSS and reconcile latency each step, checks
the manager's view converged, and judges RSS slope and latency drift.

Flags:
  --nodes N               GPU nodes (default 5000)
  --pods N                pods bound to them (default 150000)
  --namespaces N          namespaces the pods spread over (default 200)
  --steps N               simulated minutes (default 60: one hour)
  --duration DUR          wall-clock time for all steps, e.g. 10m, 30s (default 10m)
  --churn-percent P       pods replaced per simulated minute, in % (default 1)
  --node-updates N        node status patches per simulated minute (default 50)
  --threads N             client connections for loading and churn (default 4)
  --max-rss-slope MIB     fail when the manager's RSS grows faster than this, in MiB
                          per simulated hour, over the second half (default 64)
  --max-rss-growth MIB    fail when its RSS at the end exceeds that at the half-way
                          step by more than this (default 0: not checked)
  --max-p99-ratio R       fail when reconcile p99 in the last quarter exceeds R times
                          the first quarter's (default 2; 0: not checked)
  --converge-timeout DUR  how long the manager may take to agree after the churn
                          (default 5m)
  --seed N                churn's random seed (default 1)
  --bin-dir DIR           where the programs are (default: the parent of this
                          program's directory)
  --source-dir DIR        the source tree, for crds/ (default: the one built from)
  --work-dir DIR          logs, kubeconfig, cost database (default: a fresh temporary
                          directory, removed at the end)
  -o table|json           output format (default table)
  --json-out FILE         also write the JSON report to FILE
  --help                  show this help
)";

struct Options {
  int64_t nodes = 5000, pods = 150000;
  int namespaces = 200, steps = 60, threads = 4, node_updates = 50;
  std::chrono::milliseconds duration = 10min, converge_timeout = 5min;
  double churn_percent = 1, max_rss_slope = 64, max_rss_growth = 0, max_p99_ratio = 2;
  uint64_t seed = 1;
  std::string bin_dir, source_dir = GPA_SOURCE_DIR, work_dir, output = "table", json_out;
};

int Usage(const std::string& why) {
  std::fprintf(stderr, "manager_soak: %s\n%s", why.c_str(), kUsage);
  return 2;
}

double Seconds(Steady::time_point since) {
  return std::chrono::duration<double>(Steady::now() - since).count();
}

// VmRSS and VmHWM of `pid` in MiB (-1 when unreadable).
std::pair<double, double> RssMiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  double rss = -1, hwm = -1;
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::atof(line.c_str() + 6) / 1024;
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::atof(line.c_str() + 6) / 1024;
  }
  return {rss, hwm};
}

// Runs op(0..count-1) on `threads` threads; returns how many failed.
int64_t RunParallel(int threads, int64_t count, const std::function<bool(int64_t)>& op) {
  std::atomic<int64_t> next{0}, failed{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int64_t i; (i = next.fetch_add(1)) < count;) {
        if (!op(i)) failed.fetch_add(1);
      }
    });
  }
  for (auto& t : pool)
    t.join();
  return failed.load();
}

struct Sample {
  int step = 0;
  double wall_s = 0;  // since the churn began
  int64_t ops = 0, failed_ops = 0;
  double manager_rss = 0, manager_hwm = 0, apiserver_rss = 0, apiserver_hwm = 0;
  double reconciles = 0, p50_ms = NAN, p99_ms = NAN, max_depth = 0;
  double metering_backlog_s = 0;           // seconds the cost meter is behind
  std::map<std::string, Buckets> buckets;  // cumulative, by controller
};

// The manager's /metrics as samples; empty when unreachable.
std::vector<bench::MetricSample> Scrape(kube::HttpTransport& transport, const std::string& url) {
  auto reply = transport.Do({"GET", url, {}, "", 10s});
  if (!reply.ok() || reply->status != 200) return {};
  return bench::ParseExposition(reply->body);
}

Buckets AllControllers(const std::map<std::string, Buckets>& by_controller) {
  Buckets sum;
  for (const auto& [name, b] : by_controller)
    sum = bench::Add(sum, b);
  return sum;
}

double Ms(double seconds) {
  return seconds * 1000;
}

std::string Fixed(double v, int decimals) {
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

json Number(double v) {
  return std::isnan(v) ? json(nullptr) : json(v);
}

class Soak {
 public:
  explicit Soak(Options o) : o_(std::move(o)), rng_(o_.seed) {}
  int Run();

 private:
  Status StartApiServer();
  Status LoadCluster();
  Status StartManager();
  Sample TakeSample(int step, const Sample* previous);
  int64_t ChurnStep();
  // What the API server holds after the churn, as the manager should see it.
  struct Truth {
    double pods = 0, unexpected_pods = 0, policy_pods = 0, nodes = 0;
    double allocatable = 0, ready_allocatable = 0;
  };
  Result<Truth> ReadTruth();
  // The manager's figures against `truth`; "" when they agree.
  std::string Disagreement(const Truth& truth);
  // Reads the truth once, then polls the manager until it agrees or
  // --converge-timeout passes; "" when it agreed and the API server holds
  // exactly the churn's pods.
  std::string AwaitAgreement();
  int Report(const std::vector<Sample>& samples, const std::string& disagreement,
             double converge_s);

  Options o_;
  std::mt19937_64 rng_;
  std::unique_ptr<bench::SoakCluster> cluster_;
  testing::ChildProcess apiserver_, manager_;
  std::unique_ptr<kube::RestClient> client_;
  std::unique_ptr<kube::HttpTransport> scraper_;
  std::string metrics_url_, readyz_url_;
  bool tty_ = isatty(STDERR_FILENO) != 0;
  double load_s_ = 0, sync_s_ = 0, settle_s_ = 0;
};

Status Soak::StartApiServer() {
  // kube-apiserver's default --event-ttl (1h) at the soak's pace: one
  // simulated hour of wall-clock time.
  const auto event_ttl = std::chrono::duration_cast<std::chrono::milliseconds>(
      o_.duration / std::max(1, o_.steps) * 60);
  if (!apiserver_.Spawn(
          {o_.bin_dir + "/gpu-autoscaler-apiserver", "--bind-address", "127.0.0.1", "--port", "0",
           "--crd-dir", o_.source_dir + "/crds", "--watch-history", "10000",
           "--event-ttl=" + std::to_string(std::max<int64_t>(1, event_ttl.count())) + "ms"},
          o_.work_dir + "/apiserver.log")) {
    return InternalError("cannot start " + o_.bin_dir + "/gpu-autoscaler-apiserver");
  }
  std::string url;
  testing::WaitFor(
      [&] {
        const std::string log = apiserver_.Log();
        const size_t at = log.find("listening on http://");
        if (at == std::string::npos) return false;
        const size_t end = log.find_first_of(" \n", at + 13);
        url = log.substr(at + 13, end - at - 13);
        return true;
      },
      30s);
  if (url.empty()) return InternalError("the API server did not start:\n" + apiserver_.Log());
  kube::ClientConfig cfg;
  cfg.server = url;
  cfg.qps = 1e6;
  cfg.burst = 1'000'000;
  auto client = kube::RestClient::Create(cfg);
  if (!client.ok()) return client.error().ToStatus();
  client_ = std::move(*client);
  testing::WriteKubeconfig(cfg, o_.work_dir);
  return Status::Ok();
}

Status Soak::LoadCluster() {
  GPU_ASSIGN_OR_RETURN(auto shapes, bench::CatalogueGpuShapes());
  cluster_ =
      std::make_unique<bench::SoakCluster>(std::move(shapes), o_.nodes, o_.pods, o_.namespaces);
  const auto start = Steady::now();
  for (int n = 0; n < o_.namespaces; ++n) {
    auto r = client_->Create({kube::resources::kNamespaces},
                             {{"apiVersion", "v1"},
                              {"kind", "Namespace"},
                              {"metadata", {{"name", "soak-" + std::to_string(n)}}}});
    if (!r.ok()) return InternalError("namespace: " + r.error().ToString());
  }
  // Objects for the policy and budget controllers to work on.
  const kube::GroupVersionResource policies{"gpuautoscaler.io", "v1alpha1", "gpusharingpolicies",
                                            false};
  const kube::GroupVersionResource budgets{"gpuautoscaler.io", "v1alpha1", "budgets", true};
  auto policy = client_->Create(
      {policies}, {{"apiVersion", "gpuautoscaler.io/v1alpha1"},
                   {"kind", "GPUSharingPolicy"},
                   {"metadata", {{"name", bench::kSharingPolicyName}}},
                   {"spec",
                    {{"priority", 50},
                     {"podSelector", {{"matchLabels", {{"workload", "notebook"}}}}},
                     {"strategy",
                      {{"type", "timeSlicing"},
                       {"timeSlicing", {{"replicas", bench::kTimeSlicingReplicas}}}}}}}});
  if (!policy.ok()) return InternalError("GPUSharingPolicy: " + policy.error().ToString());
  for (int n = 0; n < std::min(4, o_.namespaces); ++n) {
    const std::string ns = "soak-" + std::to_string(n);
    auto budget =
        client_->Create({budgets, ns}, {{"apiVersion", "gpuautoscaler.io/v1alpha1"},
                                        {"kind", "Budget"},
                                        {"metadata", {{"name", "gpus"}, {"namespace", ns}}},
                                        {"spec",
                                         {{"scope", {{"namespaces", {ns}}}},
                                          {"amount", 1000},
                                          {"currency", "USD"},
                                          {"period", "monthly"},
                                          {"thresholds", {50, 80, 100}},
                                          {"enforcement", "alert"}}}});
    if (!budget.ok()) return InternalError("Budget: " + budget.error().ToString());
  }
  int64_t failed = RunParallel(o_.threads, o_.nodes, [&](int64_t n) {
    return client_->Create({kube::resources::kNodes}, cluster_->NodeObject(n)).ok();
  });
  failed += RunParallel(o_.threads, o_.pods, [&](int64_t slot) {
    auto r = client_->Create({kube::resources::kPods, cluster_->PodNamespace(slot)},
                             cluster_->PodObject(slot));
    if (tty_ && slot % 5000 == 0)
      std::fprintf(stderr, "\rloading: %lld/%lld pods", static_cast<long long>(slot),
                   static_cast<long long>(o_.pods));
    return r.ok();
  });
  load_s_ = Seconds(start);
  if (tty_) std::fprintf(stderr, "\r");
  std::fprintf(stderr, "manager_soak: loaded %lld nodes and %lld pods in %.1f s\n",
               static_cast<long long>(o_.nodes), static_cast<long long>(o_.pods), load_s_);
  if (failed > 0) return InternalError(std::to_string(failed) + " creates failed");
  return Status::Ok();
}

Status Soak::StartManager() {
  std::ofstream(o_.work_dir + "/config.yaml") << "apiVersion: gpuautoscaler.io/v1alpha1\n"
                                                 "kind: ManagerConfig\n"
                                                 "budgets:\n"
                                                 "  evaluationPeriod: 2s\n"
                                                 "  clusterName: soak\n"
                                                 "sharingPolicies:\n"
                                                 "  resync: 5s\n";
  GPU_ASSIGN_OR_RETURN(int metrics_port, testing::FreeLoopbackPort());
  GPU_ASSIGN_OR_RETURN(int probe_port, testing::FreeLoopbackPort());
  const std::string base = "http://127.0.0.1:";
  metrics_url_ = base + std::to_string(metrics_port) + "/metrics";
  readyz_url_ = base + std::to_string(probe_port) + "/readyz";
  kube::ClientConfig cfg;
  cfg.server = base + std::to_string(metrics_port);
  auto scraper = kube::NewCurlTransport(cfg);
  if (!scraper.ok()) return scraper.error().ToStatus();
  scraper_ = std::move(*scraper);
  const auto start = Steady::now();
  if (!manager_.Spawn(
          {o_.bin_dir + "/gpu-autoscaler-manager", "--kubeconfig=" + o_.work_dir + "/kubeconfig",
           "--controllers=*", "--config=" + o_.work_dir + "/config.yaml",
           "--cost-db=" + o_.work_dir + "/cost.db",
           "--metrics-bind-address=127.0.0.1:" + std::to_string(metrics_port),
           "--metrics-secure=false",
           "--health-probe-bind-address=127.0.0.1:" + std::to_string(probe_port),
           "--log-level=warn"},
          o_.work_dir + "/manager.log")) {
    return InternalError("cannot start " + o_.bin_dir + "/gpu-autoscaler-manager");
  }
  const bool ready = testing::WaitFor(
      [&] {
        if (manager_.TryWait()) return true;
        auto r = scraper_->Do({"GET", readyz_url_, {}, "", 2s});
        return r.ok() && r->status == 200;
      },
      std::chrono::duration_cast<std::chrono::milliseconds>(o_.converge_timeout));
  if (!ready || !manager_.running())
    return InternalError("the manager did not become ready:\n" + manager_.Log());
  sync_s_ = Seconds(start);
  return Status::Ok();
}

Sample Soak::TakeSample(int step, const Sample* previous) {
  Sample s;
  s.step = step;
  std::tie(s.manager_rss, s.manager_hwm) = RssMiB(manager_.pid());
  std::tie(s.apiserver_rss, s.apiserver_hwm) = RssMiB(apiserver_.pid());
  const auto metrics = Scrape(*scraper_, metrics_url_);
  s.buckets =
      bench::HistogramBuckets(metrics, "controller_runtime_reconcile_time_seconds", "controller");
  for (const auto& m : metrics) {
    if (m.name == "workqueue_depth") s.max_depth = std::max(s.max_depth, m.value);
  }
  s.metering_backlog_s = bench::SumSamples(metrics, "gpu_autoscaler_cost_backlog_seconds");
  Buckets interval = AllControllers(s.buckets);
  if (previous != nullptr) interval = bench::Delta(interval, AllControllers(previous->buckets));
  s.reconciles = bench::Count(interval);
  s.p50_ms = Ms(bench::Quantile(interval, 0.5));
  s.p99_ms = Ms(bench::Quantile(interval, 0.99));
  return s;
}

int64_t Soak::ChurnStep() {
  const int64_t replace = std::llround(static_cast<double>(o_.pods) * o_.churn_percent / 100.0);
  std::set<int64_t> picked;
  std::uniform_int_distribution<int64_t> any_slot(0, o_.pods - 1);
  while (static_cast<int64_t>(picked.size()) < std::min(replace, o_.pods))
    picked.insert(any_slot(rng_));
  const std::vector<int64_t> slots(picked.begin(), picked.end());
  std::uniform_int_distribution<int64_t> any_node(0, o_.nodes - 1);
  std::set<int64_t> nodes;
  while (static_cast<int64_t>(nodes.size()) < std::min<int64_t>(o_.node_updates, o_.nodes))
    nodes.insert(any_node(rng_));
  std::vector<std::pair<int64_t, std::pair<bool, bool>>> patches;
  for (int64_t n : nodes) {
    const bool degraded = rng_() % 2 == 0, ready = rng_() % 4 != 0;
    patches.push_back({n, {degraded, ready}});
  }
  const int64_t total = static_cast<int64_t>(slots.size() + patches.size());
  return RunParallel(o_.threads, total, [&](int64_t i) {
    if (i < static_cast<int64_t>(slots.size())) {
      const int64_t slot = slots[static_cast<size_t>(i)];
      const std::string ns = cluster_->PodNamespace(slot);
      kube::DeleteOptions now;
      now.grace_period_seconds = 0;
      auto gone = client_->Delete({kube::resources::kPods, ns, cluster_->PodName(slot)}, now);
      cluster_->Replace(slot);
      auto created = client_->Create({kube::resources::kPods, ns}, cluster_->PodObject(slot));
      return gone.ok() && created.ok();
    }
    const auto& [node, state] = patches[static_cast<size_t>(i) - slots.size()];
    return client_
        ->Patch({kube::resources::kNodes, "", cluster_->NodeName(node), "status"},
                kube::PatchType::kStrategicMerge,
                cluster_->NodeStatusPatch(node, state.first, state.second).dump())
        .ok();
  });
}

Result<Soak::Truth> Soak::ReadTruth() {
  Truth t;
  // Pods: every page of the list; the model's names too, so that a lost churn
  // call shows up as a mismatch rather than as the manager's fault.
  std::unordered_set<std::string> expected;
  for (int64_t slot = 0; slot < o_.pods; ++slot)
    expected.insert(cluster_->PodNamespace(slot) + "/" + cluster_->PodName(slot));
  for (const bool pods : {true, false}) {
    const kube::GroupVersionResource& gvr = pods ? kube::resources::kPods : kube::resources::kNodes;
    std::string token;
    do {
      kube::ListOptions page;
      page.limit = 5000;
      page.continue_token = token;
      auto body = client_->ListPage({gvr}, page);
      if (!body.ok()) return body.error().ToStatus();
      const json list = json::parse(*body, nullptr, false);
      if (list.is_discarded()) return InternalError("a list page is not JSON");
      for (const json& item : list["items"]) {
        const json& meta = item["metadata"];
        if (pods) {
          ++t.pods;
          if (expected.count(meta.value("namespace", "") + "/" + meta.value("name", "")) == 0)
            ++t.unexpected_pods;
          const json& annotations = meta.value("annotations", json::object());
          if (annotations.value("gpuautoscaler.io/policy", "") == bench::kSharingPolicyName)
            ++t.policy_pods;
          continue;
        }
        const json& status = item["status"];
        ++t.nodes;
        const int64_t gpus = std::atoll(status["allocatable"].value("nvidia.com/gpu", "0").c_str());
        t.allocatable += gpus;
        for (const json& c : status.value("conditions", json::array())) {
          if (c.value("type", "") == "Ready" && c.value("status", "") == "True")
            t.ready_allocatable += gpus;
        }
      }
      token = list["metadata"].value("continue", "");
    } while (!token.empty());
  }
  return t;
}

std::string Soak::Disagreement(const Truth& t) {
  const auto m = Scrape(*scraper_, metrics_url_);
  if (m.empty()) return "cannot scrape the manager";
  const std::vector<std::pair<std::string, std::pair<double, double>>> checks = {
      {"metered pods", {bench::SumSamples(m, "gpu_autoscaler_cost_metered_pods"), t.pods}},
      {"pods under the sharing policy",
       {bench::SumSamples(m, "gpu_autoscaler_sharing_policy_pods",
                          {{"policy", bench::kSharingPolicyName}}),
        t.policy_pods}},
      {"GPU nodes", {bench::SumSamples(m, "gpu_autoscaler_gpu_nodes"), t.nodes}},
      {"allocatable GPUs",
       {bench::SumSamples(m, "gpu_autoscaler_node_gpus", {{"state", "allocatable"}}),
        t.allocatable}},
      {"Ready allocatable GPUs",
       {bench::SumSamples(m, "gpu_autoscaler_node_gpus", {{"state", "ready_allocatable"}}),
        t.ready_allocatable}}};
  std::string out;
  for (const auto& [what, values] : checks) {
    if (values.first == values.second) continue;
    out += (out.empty() ? "" : "; ") + what + ": the manager says " + Fixed(values.first, 0) +
           ", the API server " + Fixed(values.second, 0);
  }
  return out;
}

std::string Soak::AwaitAgreement() {
  auto truth = ReadTruth();
  if (!truth.ok()) return "cannot read the API server: " + truth.error().ToString();
  std::string mismatch;
  if (truth->pods != o_.pods || truth->unexpected_pods != 0) {
    // Reported, not waited for: the manager is still judged against what is there.
    mismatch = "the API server holds " + std::to_string(truth->pods) + " pods (" +
               std::to_string(truth->unexpected_pods) + " not in the churn's model), expected " +
               std::to_string(o_.pods);
  }
  const auto deadline = Steady::now() + o_.converge_timeout;
  std::string last;
  while (true) {
    last = Disagreement(*truth);
    if (last.empty() || Steady::now() >= deadline) break;
    std::this_thread::sleep_for(500ms);
  }
  if (last.empty()) return mismatch;
  return mismatch.empty() ? last : mismatch + "; " + last;
}

int Soak::Run() {
  for (auto setup : {&Soak::StartApiServer, &Soak::LoadCluster, &Soak::StartManager}) {
    if (Status s = (this->*setup)(); !s.ok()) {
      std::fprintf(stderr, "manager_soak: %s\n", s.ToString().c_str());
      return 3;
    }
  }
  auto settle = Steady::now();
  if (std::string d = AwaitAgreement(); !d.empty()) {
    std::fprintf(stderr, "manager_soak: the manager never agreed after loading: %s\n", d.c_str());
    return 3;
  }
  settle_s_ = Seconds(settle);
  std::fprintf(stderr, "manager_soak: manager ready in %.1f s, agreed after %.1f s more\n", sync_s_,
               settle_s_);

  std::vector<Sample> samples;
  samples.push_back(TakeSample(0, nullptr));
  const auto step_time = o_.duration / std::max(1, o_.steps);
  const auto churn_start = Steady::now();
  for (int step = 1; step <= o_.steps; ++step) {
    const int64_t failed = ChurnStep();
    std::this_thread::sleep_until(churn_start + step_time * step);
    if (!manager_.running() || manager_.TryWait()) {
      std::fprintf(stderr, "manager_soak: the manager exited:\n%s\n", manager_.Log().c_str());
      return 1;
    }
    Sample s = TakeSample(step, &samples.back());
    s.wall_s = Seconds(churn_start);
    s.failed_ops = failed;
    s.ops = std::llround(static_cast<double>(o_.pods) * o_.churn_percent / 100.0) +
            std::min<int64_t>(o_.node_updates, o_.nodes);
    if (tty_) {
      std::fprintf(stderr,
                   "\rstep %d/%d  %.0f s  manager %.0f MiB  apiserver %.0f MiB  p99 %s ms  "
                   "depth %.0f   ",
                   step, o_.steps, s.wall_s, s.manager_rss, s.apiserver_rss,
                   Fixed(s.p99_ms, 1).c_str(), s.max_depth);
    }
    samples.push_back(std::move(s));
  }
  if (tty_) std::fprintf(stderr, "\n");
  const auto converge_start = Steady::now();
  const std::string disagreement = AwaitAgreement();
  return Report(samples, disagreement, Seconds(converge_start));
}

int Soak::Report(const std::vector<Sample>& samples, const std::string& disagreement,
                 double converge_s) {
  // RSS slope over the second half, in MiB per simulated hour (one step is a minute).
  const int steps = static_cast<int>(samples.size()) - 1;
  const int half = std::max(1, steps / 2);
  std::vector<double> minutes, rss;
  for (int i = half; i <= steps; ++i) {
    minutes.push_back(i);
    rss.push_back(samples[static_cast<size_t>(i)].manager_rss);
  }
  const double slope = bench::Slope(minutes, rss) * 60;
  const double growth = samples.back().manager_rss - samples[static_cast<size_t>(half)].manager_rss;
  // Reconcile p99 over the first and last quarter of the steps, all controllers.
  const int quarter = std::max(1, steps / 4);
  auto window = [&](int from, int to) {
    return bench::Delta(AllControllers(samples[static_cast<size_t>(to)].buckets),
                        AllControllers(samples[static_cast<size_t>(from)].buckets));
  };
  const double p99_first = Ms(bench::Quantile(window(0, std::min(quarter, steps)), 0.99));
  const double p99_last = Ms(bench::Quantile(window(std::max(0, steps - quarter), steps), 0.99));
  const double ratio = p99_first > 0 ? p99_last / p99_first : NAN;
  int64_t failed_ops = 0;
  for (const Sample& s : samples)
    failed_ops += s.failed_ops;
  std::vector<std::string> failures;
  if (!disagreement.empty()) failures.push_back("did not converge: " + disagreement);
  if (failed_ops > 0) failures.push_back(std::to_string(failed_ops) + " churn calls failed");
  if (slope > o_.max_rss_slope)
    failures.push_back("RSS slope " + Fixed(slope, 1) + " MiB/h over " +
                       Fixed(o_.max_rss_slope, 1));
  if (o_.max_rss_growth > 0 && growth > o_.max_rss_growth)
    failures.push_back("RSS grew " + Fixed(growth, 1) + " MiB in the second half, over " +
                       Fixed(o_.max_rss_growth, 1));
  if (o_.max_p99_ratio > 0 && ratio > o_.max_p99_ratio)
    failures.push_back("p99 ratio " + Fixed(ratio, 2) + " over " + Fixed(o_.max_p99_ratio, 2));

  // Per-controller p99 over the whole churn.
  std::map<std::string, std::pair<double, double>> per_controller;  // reconciles, p99 ms
  for (const auto& [name, b] : samples.back().buckets) {
    auto before = samples.front().buckets.find(name);
    Buckets d = before == samples.front().buckets.end() ? b : bench::Delta(b, before->second);
    per_controller[name] = {bench::Count(d), Ms(bench::Quantile(d, 0.99))};
  }
  {
    json out = {{"nodes", o_.nodes},
                {"pods", o_.pods},
                {"steps", o_.steps},
                {"duration_s", std::chrono::duration<double>(o_.duration).count()},
                {"churn_percent", o_.churn_percent},
                {"node_updates", o_.node_updates},
                {"load_s", load_s_},
                {"manager_ready_s", sync_s_},
                {"manager_agreed_s", settle_s_},
                {"converge_s", converge_s},
                {"converged", disagreement.empty()},
                {"disagreement", disagreement},
                {"failed_ops", failed_ops},
                {"rss_slope_mib_per_hour", slope},
                {"rss_growth_second_half_mib", growth},
                {"p99_first_quarter_ms", Number(p99_first)},
                {"p99_last_quarter_ms", Number(p99_last)},
                {"p99_ratio", Number(ratio)},
                {"pass", failures.empty()},
                {"failures", failures}};
    for (const Sample& s : samples) {
      out["samples"].push_back({{"step", s.step},
                                {"wall_s", s.wall_s},
                                {"ops", s.ops},
                                {"failed_ops", s.failed_ops},
                                {"manager_rss_mib", s.manager_rss},
                                {"manager_hwm_mib", s.manager_hwm},
                                {"apiserver_rss_mib", s.apiserver_rss},
                                {"apiserver_hwm_mib", s.apiserver_hwm},
                                {"reconciles", s.reconciles},
                                {"p50_ms", Number(s.p50_ms)},
                                {"p99_ms", Number(s.p99_ms)},
                                {"max_workqueue_depth", s.max_depth},
                                {"metering_backlog_s", s.metering_backlog_s}});
    }
    for (const auto& [name, v] : per_controller)
      out["controllers"][name] = {{"reconciles", v.first}, {"p99_ms", Number(v.second)}};
    if (o_.output == "json") std::printf("%s\n", out.dump(2).c_str());
    if (!o_.json_out.empty()) std::ofstream(o_.json_out) << out.dump(2) << "\n";
  }
  if (o_.output == "table") {
    std::printf(
        "manager soak: %lld nodes, %lld pods, %d simulated minutes in %.0f s, %.2f%% "
        "pods replaced and %d node statuses patched per minute\n",
        static_cast<long long>(o_.nodes), static_cast<long long>(o_.pods), o_.steps,
        std::chrono::duration<double>(o_.duration).count(), o_.churn_percent, o_.node_updates);
    std::printf("load %.1f s, manager ready %.1f s, agreed %.1f s later\n\n", load_s_, sync_s_,
                settle_s_);
    std::printf("%6s %7s %6s %11s %11s %13s %10s %8s %9s %5s %9s\n", "minute", "wall_s", "ops",
                "manager_MiB", "manager_HWM", "apiserver_MiB", "reconciles", "p50_ms", "p99_ms",
                "depth", "backlog_s");
    for (const Sample& s : samples) {
      std::printf("%6d %7.1f %6lld %11.1f %11.1f %13.1f %10.0f %8s %9s %5.0f %9.0f\n", s.step,
                  s.wall_s, static_cast<long long>(s.ops), s.manager_rss, s.manager_hwm,
                  s.apiserver_rss, s.reconciles, Fixed(s.p50_ms, 2).c_str(),
                  Fixed(s.p99_ms, 2).c_str(), s.max_depth, s.metering_backlog_s);
    }
    std::printf("\n%-28s %11s %9s\n", "controller", "reconciles", "p99_ms");
    for (const auto& [name, v] : per_controller)
      std::printf("%-28s %11.0f %9s\n", name.c_str(), v.first, Fixed(v.second, 2).c_str());
    std::printf("\nconverged:          %s (%.1f s after the churn)\n",
                disagreement.empty() ? "yes" : disagreement.c_str(), converge_s);
    std::printf("RSS slope:          %.1f MiB per simulated hour over minutes %d-%d (max %.0f)\n",
                slope, half, steps, o_.max_rss_slope);
    std::printf("RSS second half:    %+.1f MiB\n", growth);
    std::printf("reconcile p99:      %s ms first quarter, %s ms last quarter, ratio %s (max %s)\n",
                Fixed(p99_first, 2).c_str(), Fixed(p99_last, 2).c_str(), Fixed(ratio, 2).c_str(),
                o_.max_p99_ratio > 0 ? Fixed(o_.max_p99_ratio, 2).c_str() : "not checked");
    std::printf("verdict:            %s\n", failures.empty() ? "PASS" : "FAIL");
    for (const std::string& f : failures)
      std::printf("  %s\n", f.c_str());
  }
  return failures.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  o.bin_dir = self.parent_path().parent_path().string();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], value;
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (const size_t eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return Usage(a + " needs a value");
    }
    char* end = nullptr;
    const double number = std::strtod(value.c_str(), &end);
    const bool numeric = end != value.c_str() && *end == '\0' && number >= 0;
    auto whole = [&](auto* out) {
      if (!numeric || number != std::floor(number)) return false;
      *out = static_cast<std::remove_pointer_t<decltype(out)>>(number);
      return true;
    };
    bool ok = true;
    if (a == "--nodes")
      ok = whole(&o.nodes) && o.nodes > 0;
    else if (a == "--pods")
      ok = whole(&o.pods) && o.pods > 0;
    else if (a == "--namespaces")
      ok = whole(&o.namespaces) && o.namespaces > 0;
    else if (a == "--steps")
      ok = whole(&o.steps) && o.steps > 0;
    else if (a == "--threads")
      ok = whole(&o.threads) && o.threads > 0;
    else if (a == "--node-updates")
      ok = whole(&o.node_updates);
    else if (a == "--seed")
      ok = whole(&o.seed);
    else if (a == "--churn-percent")
      ok = numeric && (o.churn_percent = number) <= 100;
    else if (a == "--max-rss-slope")
      ok = numeric && ((o.max_rss_slope = number), true);
    else if (a == "--max-rss-growth")
      ok = numeric && ((o.max_rss_growth = number), true);
    else if (a == "--max-p99-ratio")
      ok = numeric && ((o.max_p99_ratio = number), true);
    else if (a == "--duration")
      ok = ParseFlagDuration(value, &o.duration);
    else if (a == "--converge-timeout")
      ok = ParseFlagDuration(value, &o.converge_timeout);
    else if (a == "--bin-dir")
      o.bin_dir = value;
    else if (a == "--source-dir")
      o.source_dir = value;
    else if (a == "--work-dir")
      o.work_dir = value;
    else if (a == "--json-out")
      o.json_out = value;
    else if (a == "-o" || a == "--output")
      ok = value == "table" || value == "json", o.output = value;
    else
      return Usage("unknown flag " + a);
    if (!ok) return Usage("bad value for " + a + ": " + value);
  }
  const bool temporary = o.work_dir.empty();
  if (temporary) o.work_dir = testing::MakeTempDir("manager-soak");
  std::filesystem::create_directories(o.work_dir, ec);
  int rc;
  {
    Soak soak(o);
    rc = soak.Run();
  }  // the processes are killed here
  if (temporary) std::filesystem::remove_all(o.work_dir, ec);
  return rc;
}
