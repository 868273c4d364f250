// gpu-autoscaler: the command-line tool.
//
//   gpu-autoscaler simulate --nodes FILE --pods FILE --policy FGD,BestFit --seeds 42-51
//
//   gpu-autoscaler cost --by namespace --since 7d --db cost.db
//
//   gpu-autoscaler status -o wide
//
//   gpu-autoscaler replay --nodes nodes.csv --pods pods.csv --window 4h --speed 300
//
//   gpu-autoscaler fleet --kubeconfig kc --metrics-bind-address 127.0.0.1:10247
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "autoscale/experiment.h"
#include "autoscale/policy.h"
#include "autoscale/report.h"
#include "autoscale/simulator.h"
#include "autoscale/trace.h"
#include "tools/cost_cli.h"

namespace {

using gpu_autoscaler::Result;
using gpu_autoscaler::Status;
namespace as = gpu_autoscaler::autoscale;

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

constexpr char kUsage[] =
    "Usage: gpu-autoscaler <command> [options]\n"
    "\n"
    "Commands:\n"
    "  status     GPUs by model and tier, sharing, idle GPUs and their cost, Budgets at risk\n"
    "  cost       report cost by namespace, team, project, node, model or tier\n"
    "  budget     budget status: spend, forecast and thresholds per Budget\n"
    "  roi        savings from GPU sharing and spot, and idle capacity cost\n"
    "  waste      pods whose GPUs sat idle, with the idle GPU-hours and their cost\n"
    "  recommend  right-size pods (GPU memory, memory, GPU share) from usage traces\n"
    "  report     one report: sharing, cost by team, Budgets, scaling, placement (text, HTML)\n"
    "  simulate   replay a GPU trace against placement policies\n"
    "  replay     a simulated GPU fleet (KWOK-style) replaying an openb trace on a cluster\n"
    "  fleet      play the kubelet for fake nodes (KWOK-style): Leases, Running pods, cAdvisor "
    "metrics\n"
    "\n"
    "Run 'gpu-autoscaler <command> --help' for a command's options.\n";

std::string SimulateUsage() {
  std::string policies;
  for (const std::string& p : as::PolicyNames())
    policies += (policies.empty() ? "" : ", ") + p;
  return "Usage: gpu-autoscaler simulate --nodes FILE --pods FILE --policy NAME[,NAME...]\n"
         "                               [--seeds 42-51] [--arrived-curve out.csv]\n"
         "                               [-o table|json] [--threads N] [--tune 1.3]\n"
         "\n"
         "Replays an openb-format trace (Alibaba cluster-trace-gpu-v2023) with the ATC'23\n"
         "FGD evaluation protocol: the pods are shuffled and resampled to --tune times the\n"
         "cluster's GPU capacity, submitted one at a time with no departures, and GPU\n"
         "allocation is recorded against arrived demand. Prints mean ± sd over the seeds.\n"
         "\n"
         "Options:\n"
         "  --nodes FILE          node list CSV (sn,cpu_milli,memory_mib,gpu,model)\n"
         "  --pods FILE           pod list CSV "
         "(name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec])\n"
         "  --policy LIST         comma-separated policies: " +
         policies +
         "\n"
         "  --seeds LIST          seeds as ranges and values, e.g. 42-51 or 42,45 (default 42-51)\n"
         "  --arrived-curve FILE  write mean allocation and fragmentation per arrived % (CSV)\n"
         "  -o, --output FORMAT   table (default) or json\n"
         "  --threads N           worker threads (default: all cores)\n"
         "  --tune RATIO          arrived GPU demand as a multiple of capacity (default 1.3)\n"
         "  -h, --help            show this help\n";
}

std::vector<std::string> SplitComma(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    std::string_view part = s.substr(start, comma == s.npos ? s.npos : comma - start);
    if (!part.empty()) out.emplace_back(part);
    if (comma == s.npos) break;
    start = comma + 1;
  }
  return out;
}

bool ParseUint(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 18) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

Result<std::vector<uint64_t>> ParseSeeds(std::string_view s) {
  std::vector<uint64_t> seeds;
  for (const std::string& part : SplitComma(s)) {
    const size_t dash = part.find('-');
    uint64_t lo = 0;
    uint64_t hi = 0;
    const bool ok = dash == std::string::npos
                        ? ParseUint(part, &lo) && ParseUint(part, &hi)
                        : ParseUint(std::string_view(part).substr(0, dash), &lo) &&
                              ParseUint(std::string_view(part).substr(dash + 1), &hi);
    if (!ok || hi < lo || hi - lo >= 10000) {
      return gpu_autoscaler::InvalidArgumentError("bad --seeds \"" + std::string(s) +
                                                  "\": want e.g. 42-51 or 42,43");
    }
    for (uint64_t seed = lo; seed <= hi; ++seed)
      seeds.push_back(seed);
  }
  if (seeds.empty()) return gpu_autoscaler::InvalidArgumentError("--seeds is empty");
  return seeds;
}

class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled) {}
  void Update(int done, int total) {
    if (!enabled_) return;
    constexpr int kWidth = 40;
    const int filled = total > 0 ? done * kWidth / total : kWidth;
    std::fprintf(stderr, "\r[%s%s] %d/%d runs", std::string(filled, '#').c_str(),
                 std::string(kWidth - filled, '.').c_str(), done, total);
    if (done == total) std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
  }

 private:
  bool enabled_;
};

int Fail(const Status& status) {
  std::fprintf(stderr, "gpu-autoscaler simulate: %s\n", status.message().c_str());
  return kExitError;
}

// Warnings go to stderr and do not change the exit code.
void Warn(const std::string& message) {
  std::fprintf(stderr, "gpu-autoscaler simulate: warning: %s\n", message.c_str());
}

std::string UnknownModelWarning(const as::UnknownGpuModel& u, const std::string& pods_path,
                                const std::string& nodes_path) {
  std::string message = std::to_string(u.pods) + (u.pods == 1 ? " pod" : " pods") + " in " +
                        pods_path + " ask" + (u.pods == 1 ? "s" : "") + " for GPU model \"" +
                        u.model + "\" (gpu_spec), which no GPU node in " + nodes_path + " has";
  if (u.unplaceable_pods > 0) {
    message += "; pods that can never be placed (no model they name is on a node): " +
               std::to_string(u.unplaceable_pods);
  }
  return message;
}

int UsageError(const std::string& message) {
  std::fprintf(stderr, "gpu-autoscaler simulate: %s\nTry 'gpu-autoscaler simulate --help'.\n",
               message.c_str());
  return kExitUsage;
}

int Simulate(int argc, char** argv) {
  std::string nodes_path;
  std::string pods_path;
  std::string policy_list;
  std::string seeds_arg = "42-51";
  std::string curve_path;
  std::string output = "table";
  as::ExperimentOptions options;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(SimulateUsage().c_str(), stdout);
      return kExitOk;
    }
    std::string_view flag = arg;
    std::string value;
    bool has_value = false;
    if (const size_t eq = arg.find('='); arg.starts_with("--") && eq != arg.npos) {
      flag = arg.substr(0, eq);
      value = std::string(arg.substr(eq + 1));
      has_value = true;
    }
    auto take = [&](std::string* out) {
      if (has_value) {
        *out = value;
        return true;
      }
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string* target = nullptr;
    std::string scratch;
    if (flag == "--nodes") {
      target = &nodes_path;
    } else if (flag == "--pods") {
      target = &pods_path;
    } else if (flag == "--policy" || flag == "--policies") {
      target = &policy_list;
    } else if (flag == "--seeds") {
      target = &seeds_arg;
    } else if (flag == "--arrived-curve") {
      target = &curve_path;
    } else if (flag == "-o" || flag == "--output") {
      target = &output;
    } else if (flag == "--threads" || flag == "--tune") {
      target = &scratch;
    } else {
      return UsageError("unknown option \"" + std::string(arg) + "\"");
    }
    if (!take(target)) return UsageError(std::string(flag) + " needs a value");
    if (flag == "--threads") {
      uint64_t threads = 0;
      if (!ParseUint(scratch, &threads) || threads == 0 || threads > 1024) {
        return UsageError("bad --threads \"" + scratch + "\"");
      }
      options.threads = static_cast<int>(threads);
    } else if (flag == "--tune") {
      char* end = nullptr;
      const double tune = std::strtod(scratch.c_str(), &end);
      if (scratch.empty() || *end != '\0' || !(tune > 0 && tune <= 10)) {
        return UsageError("bad --tune \"" + scratch + "\": want a ratio in (0, 10]");
      }
      options.simulation.tune_ratio = tune;
    }
  }
  if (nodes_path.empty()) return UsageError("--nodes is required");
  if (pods_path.empty()) return UsageError("--pods is required");
  if (policy_list.empty()) return UsageError("--policy is required");
  if (output != "table" && output != "json") {
    return UsageError("bad -o \"" + output + "\": want table or json");
  }
  Result<std::vector<uint64_t>> seeds = ParseSeeds(seeds_arg);
  if (!seeds.ok()) return UsageError(seeds.error().message());
  options.seeds = *seeds;
  options.policies = SplitComma(policy_list);
  for (const std::string& name : options.policies) {
    if (Result<std::unique_ptr<as::Policy>> p = as::MakePolicy(name, nullptr);
        !p.ok() && p.error().message().find("unknown policy") != std::string::npos) {
      return UsageError(p.error().message());
    }
  }

  Result<std::vector<as::NodeSpec>> nodes = as::LoadNodeCsv(nodes_path);
  if (!nodes.ok()) return Fail(nodes.error());
  Result<std::vector<as::PodSpec>> pods = as::LoadPodCsv(pods_path);
  if (!pods.ok()) return Fail(pods.error());
  for (const as::UnknownGpuModel& u : as::UnknownGpuModels(*nodes, *pods))
    Warn(UnknownModelWarning(u, pods_path, nodes_path));
  Result<as::PreparedTrace> trace = as::PrepareTrace(std::move(*nodes), std::move(*pods));
  if (!trace.ok()) return Fail(trace.error());

  ProgressBar bar(isatty(STDERR_FILENO) == 1);
  const auto start = std::chrono::steady_clock::now();
  Result<std::vector<as::PolicySummary>> summaries =
      as::RunExperiment(*trace, options, [&bar](int done, int total) { bar.Update(done, total); });
  if (!summaries.ok()) return Fail(summaries.error());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  if (!curve_path.empty()) {
    std::ofstream curve(curve_path, std::ios::binary | std::ios::trunc);
    curve << as::FormatArrivedCurve(*summaries);
    if (!curve) return Fail(gpu_autoscaler::InternalError("cannot write " + curve_path));
  }
  if (output == "json") {
    std::fputs(as::FormatJson(*summaries).c_str(), stdout);
    return kExitOk;
  }
  const as::ClusterState& cluster = trace->empty_cluster;
  std::printf("cluster: %d GPU nodes, %d GPUs; trace: %zu pods, target workload %zu of %d shapes\n",
              cluster.node_count(), cluster.total_gpus(), trace->pods.size(),
              trace->workload.shapes().size(), trace->workload.distinct_shapes());
  std::printf("protocol: tune %.2f, seeds %s, %zu runs in %.2f s\n\n",
              options.simulation.tune_ratio, seeds_arg.c_str(),
              options.policies.size() * options.seeds.size(), seconds);
  std::fputs(as::FormatTable(*summaries).c_str(), stdout);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return kExitUsage;
  }
  const std::string_view command = argv[1];
  if (command == "-h" || command == "--help" || command == "help") {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (command == "simulate") return Simulate(argc - 2, argv + 2);
  if (command == "cost") return gpu_autoscaler::cli::RunCost(argc - 2, argv + 2);
  if (command == "budget") return gpu_autoscaler::cli::RunBudget(argc - 2, argv + 2);
  if (command == "roi") return gpu_autoscaler::cli::RunRoi(argc - 2, argv + 2);
  if (command == "status") return gpu_autoscaler::cli::RunStatus(argc - 2, argv + 2);
  if (command == "recommend") return gpu_autoscaler::cli::RunRecommend(argc - 2, argv + 2);
  if (command == "report") return gpu_autoscaler::cli::RunReport(argc - 2, argv + 2);
  if (command == "replay") return gpu_autoscaler::cli::RunReplay(argc - 2, argv + 2);
  if (command == "fleet") return gpu_autoscaler::cli::RunFleet(argc - 2, argv + 2);
  if (command == "waste") return gpu_autoscaler::cli::RunWaste(argc - 2, argv + 2);
  std::fprintf(stderr, "gpu-autoscaler: unknown command \"%s\"\n\n%s", argv[1], kUsage);
  return kExitUsage;
}
