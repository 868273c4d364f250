// gpu-autoscaler recommend: the profiling evaluation on usage traces in the
// Alibaba GenTD26 layout. For each pod, learn from the first part of its
// timeline, recommend GPU memory, memory and a GPU share, then score the rest
// against the recommendation; our recommender, VPA's algorithm and one whole
// GPU per pod side by side (src/profiling/evaluation.h).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "gpu/mig.h"
#include "profiling/evaluation.h"
#include "profiling/genai_usage.h"
#include "tools/cost_cli.h"

namespace gpu_autoscaler::cli {
namespace {

namespace prof = gpu_autoscaler::profiling;

constexpr std::string_view kCommand = "recommend";

constexpr char kRecommendUsage[] =
    "Usage: gpu-autoscaler recommend --gpu-util FILE --gpu-memory FILE [--memory FILE]\n"
    "                                [--train-fraction F] [--gpu-model MODEL]\n"
    "                                [--memory-unit fraction|bytes] [--margin M]\n"
    "                                [-o table|json]\n"
    "\n"
    "Right-sizes pods from usage traces in the Alibaba GenTD26 layout\n"
    "(value,timestamp_anon,container_ip; one sample per pod per minute; plain or\n"
    "gzipped CSV). For each pod it learns from the first F of the pod's timeline,\n"
    "recommends GPU memory, memory and a GPU share (whole GPU, a MIG profile of\n"
    "MODEL, MPS with a thread percentage, or time-slicing), then scores the rest:\n"
    "the share of minutes whose usage exceeds the recommendation, and the GPUs\n"
    "saved against one whole GPU per pod. VPA's algorithm with its published\n"
    "constants (and a share sized by GPU memory alone) is scored on the same split.\n"
    "\n"
    "Options:\n"
    "  --gpu-util FILE        GPU utilisation in percent (pod_gpu_duty_cycle_anon.csv)\n"
    "  --gpu-memory FILE      GPU memory used in bytes (pod_gpu_memory_used_bytes_anon.csv)\n"
    "  --memory FILE          memory use (pod_memory_util_anon.csv), optional\n"
    "  --memory-unit UNIT     fraction of the limit (default) or bytes\n"
    "  --train-fraction F     share of each pod's timeline to learn from, in (0, 1) "
    "(default 0.5)\n"
    "  --gpu-model MODEL      GPU the pods ran on: A100-SXM4-40GB, A100-80GB (default),\n"
    "                         H100-80GB, H100-94GB, H200-141GB\n"
    "  --margin M             fixed GPU-memory and memory margin (default: tuned on the\n"
    "                         training part, by a nested split)\n"
    "  -o, --output FORMAT    table (default) or json\n"
    "  -h, --help             show this help\n";

bool ParseFraction(const std::string& s, double lo, double hi, double* out) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v) || !(v > lo && v < hi)) return false;
  *out = v;
  return true;
}

std::string ShareText(const prof::GpuShare& s) {
  switch (s.kind) {
    case prof::GpuShareKind::kMig:
      return "mig " + s.mig_profile;
    case prof::GpuShareKind::kMps:
      return "mps " + std::to_string(s.mps_thread_percent) + "%";
    case prof::GpuShareKind::kTimeSlicing:
      return "time-slicing";
    case prof::GpuShareKind::kWholeGpu:
      return "whole";
  }
  return "";
}

nlohmann::json EstimateJson(const std::optional<prof::Estimate>& e) {
  if (!e) return nullptr;
  auto finite = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
  return {{"lower", finite(e->lower)}, {"target", finite(e->target)}, {"upper", finite(e->upper)}};
}

nlohmann::json ShareJson(const prof::GpuShare& s) {
  nlohmann::json j = {{"kind", std::string(prof::GpuShareKindName(s.kind))},
                      {"compute_share", s.compute_share},
                      {"gpu_memory_limit_bytes", s.memory_limit_bytes},
                      {"gpu_fraction", s.gpu_fraction},
                      {"reason", s.reason}};
  if (s.kind == prof::GpuShareKind::kMig) j["mig_profile"] = s.mig_profile;
  if (s.kind == prof::GpuShareKind::kMps) j["mps_thread_percent"] = s.mps_thread_percent;
  return j;
}

nlohmann::json SummaryJson(const prof::MethodSummary& m) {
  nlohmann::json shares = nlohmann::json::object();
  for (int k = 0; k < 4; ++k) {
    shares[std::string(prof::GpuShareKindName(static_cast<prof::GpuShareKind>(k)))] =
        m.share_counts[k];
  }
  return {{"gpu_memory_exceed_minutes_pct", m.gpu_memory.pct()},
          {"memory_exceed_minutes_pct", m.memory.pct()},
          {"gpu_utilization_exceed_minutes_pct", m.gpu_utilization.pct()},
          {"gpus_saved_pct", m.gpus_saved_pct},
          {"gpu_fraction_sum", m.gpu_fraction_sum},
          {"gpu_memory_test_minutes", m.gpu_memory.test_minutes},
          {"gpu_memory_exceeded_minutes", m.gpu_memory.exceeded_minutes},
          {"memory_test_minutes", m.memory.test_minutes},
          {"memory_exceeded_minutes", m.memory.exceeded_minutes},
          {"shares", shares}};
}

void PrintJson(const prof::EvaluationReport& r) {
  nlohmann::json pods = nlohmann::json::array();
  for (const prof::PodResult& p : r.pod_results) {
    const prof::PodMethodResult& ours = p.methods[static_cast<int>(prof::Method::kOurs)];
    const prof::PodMethodResult& vpa = p.methods[static_cast<int>(prof::Method::kVpa)];
    pods.push_back({{"pod", p.name},
                    {"uses_gpu", p.uses_gpu},
                    {"train_seconds", p.train_seconds},
                    {"test_seconds", p.test_seconds},
                    {"train_gpu_memory_peak_bytes", p.train_gpu_memory_peak},
                    {"gpu_memory", EstimateJson(ours.recommendation.gpu_memory)},
                    {"memory", EstimateJson(ours.recommendation.memory)},
                    {"gpu_utilization", EstimateJson(ours.recommendation.gpu_utilization)},
                    {"gpu", ShareJson(ours.recommendation.gpu)},
                    {"gpu_memory_exceed_minutes_pct", ours.gpu_memory.pct()},
                    {"memory_exceed_minutes_pct", ours.memory.pct()},
                    {"vpa",
                     {{"gpu_memory", EstimateJson(vpa.recommendation.gpu_memory)},
                      {"memory", EstimateJson(vpa.recommendation.memory)},
                      {"gpu", ShareJson(vpa.recommendation.gpu)},
                      {"gpu_memory_exceed_minutes_pct", vpa.gpu_memory.pct()},
                      {"memory_exceed_minutes_pct", vpa.memory.pct()}}}});
  }
  nlohmann::json summary = SummaryJson(r.methods[static_cast<int>(prof::Method::kOurs)]);
  summary["gpu_model"] = r.gpu_model;
  summary["train_fraction"] = r.train_fraction;
  summary["pods"] = r.pods;
  summary["gpu_pods"] = r.gpu_pods;
  summary["gpu_memory_margin"] = r.gpu_memory_margin;
  summary["memory_margin"] = r.memory_margin;
  summary["margins_tuned"] = r.margins_tuned;
  nlohmann::json doc = {
      {"summary", summary},
      {"baselines",
       {{"vpa", SummaryJson(r.methods[static_cast<int>(prof::Method::kVpa)])},
        {"whole_gpu", SummaryJson(r.methods[static_cast<int>(prof::Method::kWholeGpu)])}}},
      {"pods", pods}};
  std::printf("%s\n", doc.dump(2).c_str());
}

std::string Gb(double bytes) {
  return FormatNumber(bytes / 1e9, 1);
}

void PrintTable(const prof::EvaluationReport& r) {
  Table pods({"POD", "TRAIN-PEAK-GB", "GPU-MEM-GB", "SHARE", "FRACTION", "MEMORY", "GPU-MEM-OVER%",
              "MEM-OVER%", "VPA-GPU-MEM-GB", "VPA-OVER%"},
             {false, true, true, false, true, true, true, true, true, true});
  for (const prof::PodResult& p : r.pod_results) {
    if (!p.uses_gpu) continue;
    const prof::PodMethodResult& ours = p.methods[static_cast<int>(prof::Method::kOurs)];
    const prof::PodMethodResult& vpa = p.methods[static_cast<int>(prof::Method::kVpa)];
    const prof::Recommendation& rec = ours.recommendation;
    pods.AddRow({p.name, Gb(p.train_gpu_memory_peak), Gb(rec.gpu.memory_limit_bytes),
                 ShareText(rec.gpu), FormatNumber(rec.gpu.gpu_fraction, 3),
                 rec.memory ? FormatNumber(rec.memory->target, 3) : "-",
                 FormatNumber(ours.gpu_memory.pct(), 2), FormatNumber(ours.memory.pct(), 2),
                 Gb(vpa.recommendation.gpu.memory_limit_bytes),
                 FormatNumber(vpa.gpu_memory.pct(), 2)});
  }
  std::printf(
      "Recommendations per pod (GPU %s, learning from the first %.0f%% of each pod's "
      "timeline)\n\n",
      r.gpu_model.c_str(), r.train_fraction * 100);
  std::fputs(pods.Render().c_str(), stdout);

  Table summary({"METHOD", "GPU-MEM-OVER%", "MEM-OVER%", "UTIL-OVER-SHARE%", "GPUS-SAVED%", "WHOLE",
                 "MIG", "MPS", "TIME-SLICED"},
                {false, true, true, true, true, true, true, true, true});
  for (const prof::MethodSummary& m : r.methods) {
    summary.AddRow({std::string(prof::MethodName(m.method)), FormatNumber(m.gpu_memory.pct(), 2),
                    FormatNumber(m.memory.pct(), 2), FormatNumber(m.gpu_utilization.pct(), 2),
                    FormatNumber(m.gpus_saved_pct, 1), std::to_string(m.share_counts[0]),
                    std::to_string(m.share_counts[1]), std::to_string(m.share_counts[2]),
                    std::to_string(m.share_counts[3])});
  }
  std::printf("\nSummary: %d pods, %d with GPU usage; margins %s: GPU memory %.2f, memory %.2f\n\n",
              r.pods, r.gpu_pods, r.margins_tuned ? "tuned on the training part" : "fixed",
              r.gpu_memory_margin, r.memory_margin);
  std::fputs(summary.Render().c_str(), stdout);
}

}  // namespace

int RunRecommend(int argc, char** argv) {
  FlagParser flags({"--gpu-util", "--gpu-memory", "--memory", "--train-fraction", "--gpu-model",
                    "--memory-unit", "--margin", "--output"});
  flags.Alias("-o", "--output");
  if (!flags.Parse(argc, argv)) return UsageError(kCommand, flags.error());
  if (flags.help()) {
    std::fputs(kRecommendUsage, stdout);
    return kExitOk;
  }
  const std::string output = flags.Get("--output", "table");
  if (output != "table" && output != "json") {
    return UsageError(kCommand, "bad -o \"" + output + "\": want table or json");
  }
  if (flags.Get("--gpu-util").empty()) return UsageError(kCommand, "--gpu-util is required");
  if (flags.Get("--gpu-memory").empty()) return UsageError(kCommand, "--gpu-memory is required");
  prof::EvaluationOptions options;
  const std::string fraction = flags.Get("--train-fraction", "0.5");
  if (!ParseFraction(fraction, 0, 1, &options.train_fraction)) {
    return UsageError(kCommand,
                      "bad --train-fraction \"" + fraction + "\": want a number in (0, 1)");
  }
  Result<gpu::GpuModel> model = gpu::ParseGpuModel(flags.Get("--gpu-model", "A100-80GB"));
  if (!model.ok()) return UsageError(kCommand, "bad --gpu-model: " + model.error().message());
  options.gpu_model = *model;
  const std::string unit = flags.Get("--memory-unit", "fraction");
  if (unit != "fraction" && unit != "bytes") {
    return UsageError(kCommand, "bad --memory-unit \"" + unit + "\": want fraction or bytes");
  }
  options.memory_is_fraction = unit == "fraction";
  if (flags.Has("--margin")) {
    double margin = 0;
    if (!ParseFraction(flags.Get("--margin"), -1e-12, 10, &margin)) {
      return UsageError(kCommand,
                        "bad --margin \"" + flags.Get("--margin") + "\": want a number in [0, 10)");
    }
    options.margin = margin;
  }

  Result<std::vector<prof::PodUsage>> pods =
      prof::LoadGenAiUsage({.gpu_utilization = flags.Get("--gpu-util"),
                            .gpu_memory = flags.Get("--gpu-memory"),
                            .memory = flags.Get("--memory")});
  if (!pods.ok()) return Fail(kCommand, pods.error().message());
  Result<prof::EvaluationReport> report = prof::Evaluate(*pods, options);
  if (!report.ok()) return Fail(kCommand, report.error().message());
  if (output == "json") {
    PrintJson(*report);
  } else {
    PrintTable(*report);
  }
  return kExitOk;
}

}  // namespace gpu_autoscaler::cli
