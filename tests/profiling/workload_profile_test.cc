#include "profiling/workload_profile.h"

#include <gtest/gtest.h>

#include <cmath>

#include "profiling/service_profile.h"

namespace gpu_autoscaler::profiling {
namespace {

using nlohmann::json;

const gpu::GpuSpec& A100() {
  return gpu::GetGpu(gpu::GpuModel::kA100_80GB);
}

TEST(WorkloadProfile, AggregatesPodsPerContainerAndDeduplicates) {
  WorkloadProfile p(OurConfig());
  std::vector<UsageSample> samples = {
      {"web-1", "server", Resource::kCpu, 100, 0.2, 1.0},
      {"web-2", "server", Resource::kCpu, 100, 0.3, 1.0},  // another pod, same time: counts
      {"web-1", "server", Resource::kCpu, 100, 0.9, 1.0},  // the same evaluation again: dropped
      {"web-1", "server", Resource::kCpu, 90, 0.9, 1.0},   // older: dropped
      {"web-1", "sidecar", Resource::kMemory, 100, 5e7, 1.0},
      {"web-1", "server", Resource::kCpu, 160, -1, 1.0},  // negative: dropped
  };
  EXPECT_EQ(p.Ingest(samples), 3);
  EXPECT_EQ(p.Ingest(samples), 0);
  EXPECT_EQ(p.containers().at("server").samples(Resource::kCpu), 2u);
  EXPECT_EQ(p.containers().at("sidecar").samples(Resource::kMemory), 1u);
  EXPECT_EQ(p.total_samples(), 3u);
  // web-1's dedup entries go with the pod; its history stays.
  p.ForgetPodsExcept({"web-2"});
  EXPECT_EQ(p.Ingest(samples), 2);  // web-1 at 100 for cpu and memory again
  EXPECT_EQ(p.total_samples(), 5u);
}

TEST(WorkloadProfile, CheckpointRoundTripKeepsRecommendations) {
  RecommenderConfig config = OurConfig();
  WorkloadProfile p(config);
  std::vector<UsageSample> samples;
  for (int i = 0; i < 300; ++i) {
    const int64_t t = 1'800'000'000 + 60 * i;
    samples.push_back({"web-1", "server", Resource::kCpu, t, 0.1 + 0.001 * (i % 50), 0.5});
    samples.push_back({"web-1", "server", Resource::kMemory, t, 3e8 + 1e6 * (i % 7), 1});
    samples.push_back({"web-1", "server", Resource::kGpuMemory, t, 12e9, 1});
    samples.push_back({"web-1", "server", Resource::kGpuUtilization, t, 0.25, 1});
  }
  ASSERT_EQ(p.Ingest(samples), 1200);
  const json saved = p.Checkpoint();
  // Through text, as the ConfigMap holds it.
  auto back = WorkloadProfile::FromCheckpoint(json::parse(saved.dump()), config);
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(back->Checkpoint(), saved);
  const auto a = p.Recommend(A100()).at("server");
  const auto b = back->Recommend(A100()).at("server");
  EXPECT_DOUBLE_EQ(a.cpu->target, b.cpu->target);
  EXPECT_DOUBLE_EQ(a.cpu->lower, b.cpu->lower);
  EXPECT_DOUBLE_EQ(a.memory->target, b.memory->target);
  EXPECT_EQ(a.gpu.kind, b.gpu.kind);
  EXPECT_EQ(a.gpu.mig_profile, b.gpu.mig_profile);
  // The dedup state came back too: the same samples add nothing.
  EXPECT_EQ(back->Ingest(samples), 0);
}

TEST(WorkloadProfile, CheckpointFromAnotherLayoutIsRefused) {
  RecommenderConfig config = OurConfig();
  WorkloadProfile p(config);
  p.Ingest(std::vector<UsageSample>{{"a", "c", Resource::kCpu, 1, 0.5, 1}});
  json saved = p.Checkpoint();

  RecommenderConfig other_half_life = config;
  other_half_life.half_life_seconds = 3600;
  auto r = WorkloadProfile::FromCheckpoint(saved, other_half_life);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kFailedPrecondition);

  json old = saved;
  old["version"] = 0;
  EXPECT_EQ(WorkloadProfile::FromCheckpoint(old, config).error().code(),
            StatusCode::kFailedPrecondition);
  // Found by service_profile_fuzz: floats out of the integers' range are
  // refused, not converted (undefined behaviour under UBSan).
  for (const char* key : {"version", "halfLifeSeconds"}) {
    json huge = saved;
    huge[key] = 8.64078e+25;
    EXPECT_EQ(WorkloadProfile::FromCheckpoint(huge, config).error().code(),
              StatusCode::kFailedPrecondition)
        << key;
  }

  json layout = saved;
  layout["buckets"]["cpu"][1] = 1.1;
  EXPECT_NE(
      WorkloadProfile::FromCheckpoint(layout, config).error().message().find("cpu buckets differ"),
      std::string::npos);
}

TEST(WorkloadProfile, MalformedCheckpointIsAnError) {
  WorkloadProfile p(OurConfig());
  p.Ingest(std::vector<UsageSample>{{"a", "c", Resource::kCpu, 1, 0.5, 1}});
  const json good = p.Checkpoint();
  for (auto edit : std::vector<std::function<void(json&)>>{
           [](json& j) { j = json::array(); },
           [](json& j) { j["containers"]["c"]["cpu"]["buckets"] = "x"; },
           [](json& j) { j["containers"]["c"]["cpu"]["buckets"] = json::parse("[[1]]"); },
           [](json& j) { j["containers"]["c"]["cpu"]["samples"] = "many"; },
           [](json& j) { j["containers"]["c"] = 3; },
           [](json& j) { j["lastSeen"]["a/c/cpu"] = "yesterday"; },
           [](json& j) { j["containers"]["c"]["cpu"]["samples"] = -1; },
           // Found by service_profile_fuzz (third round): a float where an
           // int64 time belongs was converted (undefined behaviour).
           [](json& j) { j["containers"]["c"]["cpu"]["first"] = 7.77778e+63; },
           [](json& j) { j["containers"]["c"]["cpu"]["last"] = 1.5; },
           [](json& j) { j["containers"]["c"]["cpu"]["windowEnd"] = 18446744073709551615u; },
           [](json& j) {
             j["containers"]["c"]["cpu"]["buckets"] = json::parse("[[4294967296, 1]]");
           },
       }) {
    json bad = good;
    edit(bad);
    auto r = WorkloadProfile::FromCheckpoint(bad, OurConfig());
    EXPECT_FALSE(r.ok()) << bad.dump();
    if (!r.ok()) {
      EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument) << bad.dump();
    }
  }
}

// Histograms round-trip bucket by bucket.
TEST(DecayingHistogram, RestoreKeepsWeightsAndReference) {
  DecayingHistogram h(ExponentialBuckets::CpuCores(), 3600);
  h.AddSample(0.5, 1, 1000);
  h.AddSample(0.7, 2, 500000);  // past 100 half-lives: the reference moves
  DecayingHistogram copy(ExponentialBuckets::CpuCores(), 3600);
  copy.Restore(h.reference_timestamp(), h.histogram().NonEmptyBuckets());
  EXPECT_EQ(copy.reference_timestamp(), h.reference_timestamp());
  EXPECT_EQ(copy.histogram().NonEmptyBuckets(), h.histogram().NonEmptyBuckets());
  EXPECT_DOUBLE_EQ(copy.Percentile(0.5), h.Percentile(0.5));
  EXPECT_DOUBLE_EQ(copy.histogram().total_weight(), h.histogram().total_weight());
}

// ---------------------------------------------------------------------------
// The ServiceProfile spec and status

TEST(ParseServiceProfileSpec, DefaultsAndFields) {
  auto spec = ParseServiceProfileSpec(json::parse(R"({"targetRef":{"kind":"StatefulSet",
      "name":"db"},"metrics":["memory","gpuMemory"],"updateMode":"Auto","gpuModel":"NVIDIA-H100-80GB-HBM3",
      "halfLife":"12h","allowedShares":["whole","mig"]})"));
  ASSERT_TRUE(spec.ok()) << spec.error().ToString();
  EXPECT_EQ(spec->target.api_version, "apps/v1");
  EXPECT_EQ(spec->target.kind, "StatefulSet");
  EXPECT_EQ(spec->metrics, (std::set<Resource>{Resource::kMemory, Resource::kGpuMemory}));
  EXPECT_EQ(spec->mode, UpdateMode::kAuto);
  EXPECT_EQ(spec->gpu_model, "H100-80GB");
  EXPECT_EQ(spec->half_life_seconds, 12 * 3600);
  EXPECT_EQ(spec->allowed_shares,
            (std::set<GpuShareKind>{GpuShareKind::kWholeGpu, GpuShareKind::kMig}));
  auto minimal = ParseServiceProfileSpec(json::parse(R"({"targetRef":{"kind":"Job","name":"j",
      "apiVersion":"batch/v1"}})"));
  ASSERT_TRUE(minimal.ok());
  EXPECT_EQ(minimal->mode, UpdateMode::kOff);
  EXPECT_EQ(minimal->metrics.size(), 4u);
  EXPECT_EQ(minimal->allowed_shares.size(), 4u);
  EXPECT_EQ(minimal->half_life_seconds, 24 * 3600);
}

TEST(ParseServiceProfileSpec, ErrorsNameTheField) {
  struct Case {
    const char* spec;
    const char* error;
  };
  for (const Case& c : {
           Case{R"({})", "spec.targetRef: Required value"},
           Case{R"({"targetRef":{"name":"x"}})", "spec.targetRef.kind: Required value"},
           Case{R"({"targetRef":{"kind":"Deployment"}})", "spec.targetRef.name: Required value"},
           Case{R"({"targetRef":{"kind":"D","name":"x"},"metrics":["gpu"]})",
                "spec.metrics[0]: Unsupported value: \"gpu\""},
           Case{R"({"targetRef":{"kind":"D","name":"x"},"updateMode":"Recreate"})",
                "spec.updateMode: Unsupported value: \"Recreate\""},
           Case{R"({"targetRef":{"kind":"D","name":"x"},"gpuModel":"T4"})",
                "spec.gpuModel: Unsupported value: \"T4\""},
           Case{R"({"targetRef":{"kind":"D","name":"x"},"halfLife":"soon"})",
                "spec.halfLife: Invalid value: \"soon\""},
           Case{R"({"targetRef":{"kind":"D","name":"x"},"allowedShares":["vgpu"]})",
                "spec.allowedShares[0]: Unsupported value: \"vgpu\""},
       }) {
    auto r = ParseServiceProfileSpec(json::parse(c.spec));
    ASSERT_FALSE(r.ok()) << c.spec;
    EXPECT_NE(r.error().message().find(c.error), std::string::npos) << r.error().message();
  }
}

TEST(RecommendationStatus, FormatsQuantitiesAndShare) {
  Recommendation r;
  r.cpu = Estimate{0.1204, 0.2407, 0.48141};
  r.gpu_memory = Estimate{1e10, 1.2e10, std::numeric_limits<double>::infinity()};
  r.gpu.kind = GpuShareKind::kMig;
  r.gpu.mig_profile = "2g.20gb";
  r.gpu.memory_limit_bytes = 20e9;
  r.gpu.gpu_fraction = 0.28571428;
  r.gpu.reason = "fits a MIG slice with headroom";
  auto spec = ParseServiceProfileSpec(json::parse(R"({"targetRef":{"kind":"D","name":"x"}})"));
  EXPECT_EQ(RecommendationStatus("server", r, *spec, 80e9), json::parse(R"({
      "containerName":"server",
      "cpu":{"lowerBound":"121m","target":"241m","upperBound":"482m"},
      "gpuMemory":{"lowerBound":"10000000000","target":"12000000000"},
      "gpu":{"share":"mig","migProfile":"2g.20gb","gpuMemoryLimit":"20000000000",
             "gpuFraction":0.2857,"reason":"fits a MIG slice with headroom"}})"));
}

TEST(RestrictShare, FallsBackWhenAShareIsNotAllowed) {
  GpuShare mig;
  mig.kind = GpuShareKind::kMig;
  mig.mig_profile = "3g.40gb";
  mig.compute_share = 3.0 / 7;
  mig.memory_limit_bytes = 40e9;
  mig.gpu_fraction = 0.5;
  // No MIG: MPS with the slice's compute (43 %) and memory (half the GPU).
  GpuShare mps = RestrictShare(mig, {GpuShareKind::kWholeGpu, GpuShareKind::kMps}, 80e9);
  EXPECT_EQ(mps.kind, GpuShareKind::kMps);
  EXPECT_EQ(mps.mps_thread_percent, 43);
  EXPECT_DOUBLE_EQ(mps.gpu_fraction, 0.5);
  // Neither MIG nor MPS: time-slicing.
  GpuShare ts = RestrictShare(mig, {GpuShareKind::kTimeSlicing}, 80e9);
  EXPECT_EQ(ts.kind, GpuShareKind::kTimeSlicing);
  // Only whole GPUs.
  GpuShare whole = RestrictShare(mig, {GpuShareKind::kWholeGpu}, 80e9);
  EXPECT_EQ(whole.kind, GpuShareKind::kWholeGpu);
  EXPECT_DOUBLE_EQ(whole.gpu_fraction, 1);
  EXPECT_DOUBLE_EQ(whole.memory_limit_bytes, 80e9);
  // Allowed: unchanged.
  EXPECT_EQ(RestrictShare(mig, {GpuShareKind::kMig}, 80e9).mig_profile, "3g.40gb");
}

}  // namespace
}  // namespace gpu_autoscaler::profiling
