#include "webhooks/mutate.h"

#include <gtest/gtest.h>

#include <functional>

#include <nlohmann/json.hpp>

#include "apiserver/patch.h"

namespace gpu_autoscaler::webhooks {
namespace {

using nlohmann::json;

constexpr int64_t kGi = int64_t{1} << 30;

GpuSharingPolicy Policy(const std::string& name, json spec) {
  json obj = {{"kind", "GPUSharingPolicy"}, {"metadata", {{"name", name}}}, {"spec", spec}};
  auto p = ParseGpuSharingPolicy(obj.dump());
  EXPECT_TRUE(p.ok()) << p.error().ToString();
  EXPECT_TRUE(p->problems.empty()) << p->problems.front();
  return std::move(p).value();
}

json MigSpec(json allowed, json models = json::array()) {
  json spec = {{"strategy", {{"type", "mig"}, {"mig", {{"allowedProfiles", allowed}}}}}};
  if (!models.empty()) spec["gpuModels"] = models;
  return spec;
}

GpuSharingPolicy AllA100_40() {
  return Policy("a100", MigSpec({{{"gpuModel", "A100-SXM4-40GB"},
                                  {"profiles",
                                   {"1g.5gb", "1g.5gb+me", "1g.10gb", "2g.10gb", "3g.20gb",
                                    "4g.20gb", "7g.40gb"}}}}));
}

GpuSharingPolicy TwoModels() {
  return Policy("serving",
                MigSpec({{{"gpuModel", "A100-80GB"}, {"profiles", {"1g.10gb", "2g.20gb"}}},
                         {{"gpuModel", "H100-80GB"}, {"profiles", {"1g.10gb", "1g.20gb"}}}},
                        {"A100-80GB", "H100-80GB"}));
}

// ---- sizing ---------------------------------------------------------------

struct SizingCase {
  std::string name;
  std::function<GpuSharingPolicy()> policy;
  int64_t memory_bytes;
  int compute_percent;
  std::string pinned;
  std::string want_profile;  // "" = NotFound
  std::vector<std::string> want_models;
};

class MigSizingTest : public ::testing::TestWithParam<SizingCase> {};

TEST_P(MigSizingTest, SmallestProfileThatFits) {
  const SizingCase& c = GetParam();
  GpuSharingPolicy policy = c.policy();
  auto choice = ChooseMigProfile(policy, {c.memory_bytes, c.compute_percent}, c.pinned);
  if (c.want_profile.empty()) {
    ASSERT_FALSE(choice.ok()) << choice->profile;
    EXPECT_EQ(choice.error().code(), StatusCode::kNotFound);
    EXPECT_NE(choice.error().message().find("the largest allowed is"), std::string::npos);
    return;
  }
  ASSERT_TRUE(choice.ok()) << choice.error().ToString();
  EXPECT_EQ(choice->profile, c.want_profile);
  EXPECT_EQ(choice->gpu_models, c.want_models);
}

const std::vector<std::string> kA100_40 = {"A100-SXM4-40GB"};

INSTANTIATE_TEST_SUITE_P(
    Table, MigSizingTest,
    ::testing::Values(
        SizingCase{"Tiny", AllA100_40, 1, 0, "", "1g.5gb", kA100_40},
        SizingCase{"Exactly5Gi", AllA100_40, 5 * kGi, 0, "", "1g.5gb", kA100_40},
        SizingCase{"MoreMemoryOneSlice", AllA100_40, 6 * kGi, 0, "", "1g.10gb", kA100_40},
        SizingCase{"TwoSlicesOfCompute", AllA100_40, 10 * kGi, 20, "", "2g.10gb", kA100_40},
        SizingCase{"Fifteen", AllA100_40, 15 * kGi, 0, "", "3g.20gb", kA100_40},
        SizingCase{"ComputeRoundsUp", AllA100_40, 0, 43, "", "4g.20gb", kA100_40},
        SizingCase{"ComputeThreeSlices", AllA100_40, 0, 42, "", "3g.20gb", kA100_40},
        SizingCase{"HalfGpu", AllA100_40, 20 * kGi, 50, "", "4g.20gb", kA100_40},
        SizingCase{"NeedsWholeGpu", AllA100_40, 21 * kGi, 0, "", "7g.40gb", kA100_40},
        SizingCase{"FullCompute", AllA100_40, 0, 100, "", "7g.40gb", kA100_40},
        SizingCase{"TooBig", AllA100_40, 41 * kGi, 0, "", "", {}},
        SizingCase{"OnlyMediaAllowed",
                   [] {
                     return Policy("me", MigSpec({{{"gpuModel", "A100-SXM4-40GB"},
                                                   {"profiles", {"1g.5gb+me", "2g.10gb"}}}}));
                   },
                   kGi, 0, "", "1g.5gb+me", kA100_40},
        SizingCase{"SameProfileOnTwoModels",
                   TwoModels,
                   10 * kGi,
                   0,
                   "",
                   "1g.10gb",
                   {"A100-80GB", "H100-80GB"}},
        SizingCase{"ModelWithSmallerFitWins", TwoModels, 15 * kGi, 0, "", "1g.20gb", {"H100-80GB"}},
        SizingCase{"PinnedModel", TwoModels, 15 * kGi, 0, "A100-80GB", "2g.20gb", {"A100-80GB"}},
        SizingCase{"PinnedModelTooSmall", TwoModels, 25 * kGi, 0, "A100-80GB", "", {}},
        SizingCase{"H200",
                   [] {
                     return Policy("h200",
                                   MigSpec({{{"gpuModel", "H200-141GB"},
                                             {"profiles", {"1g.18gb", "3g.71gb", "7g.141gb"}}}}));
                   },
                   20 * kGi,
                   0,
                   "",
                   "3g.71gb",
                   {"H200-141GB"}}),
    [](const ::testing::TestParamInfo<SizingCase>& info) { return info.param.name; });

struct MemoryCase {
  std::string text;
  int64_t bytes;  // 0 = error
};

class GpuMemoryAnnotationTest : public ::testing::TestWithParam<MemoryCase> {};

TEST_P(GpuMemoryAnnotationTest, Parses) {
  auto got = ParseGpuMemory(GetParam().text);
  if (GetParam().bytes == 0) {
    ASSERT_FALSE(got.ok()) << *got;
    EXPECT_NE(got.error().message().find("gpuautoscaler.io/gpu-memory"), std::string::npos);
    return;
  }
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(*got, GetParam().bytes);
}

INSTANTIATE_TEST_SUITE_P(
    Table, GpuMemoryAnnotationTest,
    ::testing::Values(MemoryCase{"10Gi", 10 * kGi}, MemoryCase{"10240Mi", 10 * kGi},
                      MemoryCase{"10GB", 10 * kGi}, MemoryCase{"10gb", 10 * kGi},
                      MemoryCase{"10", 10 * kGi}, MemoryCase{"10G", 10'000'000'000},
                      MemoryCase{"1.5Gi", 3 * kGi / 2}, MemoryCase{"", 0}, MemoryCase{"GB", 0},
                      MemoryCase{"ten", 0}, MemoryCase{"-1Gi", 0}, MemoryCase{"0", 0},
                      MemoryCase{"1.5GB", 0}));

TEST(GpuComputeAnnotationTest, Parses) {
  EXPECT_EQ(ParseGpuCompute("50").value_or(0), 50);
  EXPECT_EQ(ParseGpuCompute("100%").value_or(0), 100);
  EXPECT_EQ(ParseGpuCompute("1").value_or(0), 1);
  for (std::string_view bad : {"0", "101", "", "%", "-5", "12.5", "1000", "abc"}) {
    auto got = ParseGpuCompute(bad);
    ASSERT_FALSE(got.ok()) << bad;
    EXPECT_NE(got.error().message().find("from 1 to 100"), std::string::npos);
  }
}

TEST(JsonPointerTest, EscapesTildeAndSlash) {
  EXPECT_EQ(EscapeJsonPointerToken("nvidia.com/gpu"), "nvidia.com~1gpu");
  EXPECT_EQ(EscapeJsonPointerToken("a~b/c~/"), "a~0b~1c~0~1");
  EXPECT_EQ(EscapeJsonPointerToken("plain"), "plain");
}

// ---- patch generation -------------------------------------------------------

json BasePod() {
  return json::parse(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "p", "namespace": "team-a", "labels": {"app": "x"},
                 "annotations": {"gpuautoscaler.io/gpu-memory": "10Gi", "other/a~b": "keep"}},
    "spec": {"containers": [
      {"name": "sidecar", "image": "s"},
      {"name": "main", "image": "m", "resources": {
        "limits": {"cpu": "1", "nvidia.com/gpu": "2"},
        "requests": {"cpu": "1", "nvidia.com/gpu": "2"}}}]}})");
}

PodInfo Decode(const json& pod) {
  auto info = DecodePod(pod.dump());
  EXPECT_TRUE(info.ok()) << info.error().ToString();
  return std::move(info).value();
}

json Apply(const json& pod, const std::string& patch) {
  if (patch.empty()) return pod;
  auto out = apiserver::ApplyJsonPatch(pod, patch);
  EXPECT_TRUE(out.ok()) << patch;
  return out.ok() ? *out : pod;
}

json TermsOf(const json& pod) {
  return pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"];
}

struct PatchCase {
  std::string name;
  std::function<GpuSharingPolicy()> policy;
  std::function<void(json&)> edit_pod;  // starting from BasePod()
  std::function<void(const json& before, const json& after)> check;
  size_t ops;  // exact patch size: the patch is minimal
};

class PatchGenerationTest : public ::testing::TestWithParam<PatchCase> {};

TEST_P(PatchGenerationTest, AppliesAndIsIdempotent) {
  const PatchCase& c = GetParam();
  GpuSharingPolicy policy = c.policy();
  json pod = BasePod();
  c.edit_pod(pod);
  PodMutation m = MutatePodWithPolicy(Decode(pod), policy);
  ASSERT_FALSE(m.denied) << m.message;
  ASSERT_FALSE(m.patch.empty());
  json ops = json::parse(m.patch);
  EXPECT_EQ(ops.size(), c.ops) << ops.dump(1);
  json after = Apply(pod, m.patch);
  c.check(pod, after);
  EXPECT_EQ(after["metadata"]["annotations"]["gpuautoscaler.io/policy"], policy.name);
  EXPECT_EQ(after["metadata"]["annotations"]["gpuautoscaler.io/mode"],
            StrategyName(policy.strategy));
  // What the cost engine needs to bill a share of a GPU.
  if (policy.strategy == SharingStrategy::kTimeSlicing) {
    EXPECT_EQ(after["metadata"]["annotations"]["gpuautoscaler.io/replicas"],
              std::to_string(policy.time_slicing.replicas));
  } else if (policy.strategy == SharingStrategy::kMps) {
    EXPECT_EQ(after["metadata"]["annotations"]["gpuautoscaler.io/replicas"],
              std::to_string(policy.mps.max_clients));
  }
  // The rewrite is a fixpoint: the same policy finds nothing left to change...
  PodMutation fixpoint = MutatePodWithPolicy(Decode(after), policy);
  EXPECT_FALSE(fixpoint.denied) << fixpoint.message;
  EXPECT_EQ(fixpoint.patch, "");
  // ...and so does a second pass through the full admission path.
  PolicySet set({policy});
  PodMutation again = MutatePod(Decode(after), set, {});
  EXPECT_FALSE(again.denied);
  EXPECT_EQ(again.patch, "");
}

json ShareSpec(const std::string& type, json section) {
  json spec = {{"strategy", {{"type", type}}}};
  if (!section.is_null()) spec["strategy"][type] = section;
  return spec;
}

INSTANTIATE_TEST_SUITE_P(
    Table, PatchGenerationTest,
    ::testing::Values(
        PatchCase{
            "MigRewritesResourceAndPins", TwoModels, [](json&) {},
            [](const json&, const json& after) {
              const json& res = after["spec"]["containers"][1]["resources"];
              EXPECT_EQ(res["limits"], json({{"cpu", "1"}, {"nvidia.com/mig-1g.10gb", "2"}}));
              EXPECT_EQ(res["requests"], json({{"cpu", "1"}, {"nvidia.com/mig-1g.10gb", "2"}}));
              EXPECT_FALSE(after["spec"]["containers"][0].contains("resources"));
              json exprs = TermsOf(after)[0]["matchExpressions"];
              ASSERT_EQ(exprs.size(), 2u);
              EXPECT_EQ(exprs[0]["key"], "nvidia.com/gpu.product");
              EXPECT_EQ(exprs[0]["operator"], "In");
              EXPECT_EQ(exprs[0]["values"], json({"NVIDIA-A100-80GB-PCIe", "NVIDIA-A100-PCIE-80GB",
                                                  "NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3",
                                                  "NVIDIA-H100-PCIe", "NVIDIA-H100-SXM5-80GB"}));
              EXPECT_EQ(exprs[1], json::parse(R"({"key":"nvidia.com/mig.strategy",
                                                       "operator":"In","values":["mixed"]})"));
              const json& ann = after["metadata"]["annotations"];
              EXPECT_EQ(ann["gpuautoscaler.io/mig-profile"], "1g.10gb");
              EXPECT_EQ(json::parse(ann["gpuautoscaler.io/original-request"].get<std::string>()),
                        json::parse(R"({"main":{"nvidia.com/gpu":"2"}})"));
              EXPECT_EQ(ann["other/a~b"], "keep");
              EXPECT_EQ(ann["gpuautoscaler.io/gpu-memory"], "10Gi");
            },
            // 2x(remove+add) resources, 1 affinity, 4 annotations
            9},
        PatchCase{
            "TimeSlicingWithoutAnnotations",
            [] {
              return Policy("ts", ShareSpec("timeSlicing", {{"replicas", 4}}));
            },
            [](json& pod) { pod["metadata"].erase("annotations"); },
            [](const json&, const json& after) {
              EXPECT_EQ(
                  after["spec"]["containers"][1]["resources"]["limits"]["nvidia.com/gpu.shared"],
                  "2");
              EXPECT_FALSE(
                  after["spec"]["containers"][1]["resources"]["limits"].contains("nvidia.com/gpu"));
              json exprs = TermsOf(after)[0]["matchExpressions"];
              ASSERT_EQ(exprs.size(), 1u);  // no gpuModels: no product pin
              EXPECT_EQ(exprs[0]["key"], "nvidia.com/gpu.sharing-strategy");
              EXPECT_EQ(exprs[0]["values"], json({"time-slicing"}));
              EXPECT_EQ(after["metadata"]["annotations"].size(), 4u);
            },
            // 2x(remove+add), affinity, whole annotations map
            6},
        // Found by the fuzzer: JSON Patch cannot add /metadata/annotations
        // below a missing /metadata, so the whole metadata object is added.
        PatchCase{"TimeSlicingWithoutMetadata",
                  [] {
                    return Policy("ts", ShareSpec("timeSlicing", {{"replicas", 4}}));
                  },
                  [](json& pod) { pod.erase("metadata"); },
                  [](const json&, const json& after) {
                    EXPECT_EQ(after["metadata"].size(), 1u) << after["metadata"].dump();
                    EXPECT_EQ(after["metadata"]["annotations"].size(), 4u);
                  },
                  // 2x(remove+add), affinity, whole metadata object
                  6},
        PatchCase{"MpsAddsEnv",
                  [] {
                    return Policy("mps", ShareSpec("mps", {{"maxClients", 4},
                                                           {"activeThreadPercentage", 50},
                                                           {"pinnedMemoryLimit", "20Gi"}}));
                  },
                  [](json& pod) {
                    pod["metadata"]["annotations"]["gpuautoscaler.io/gpu-compute"] = "25";
                    pod["spec"]["containers"][1]["resources"]["limits"]["nvidia.com/gpu"] = "1";
                    pod["spec"]["containers"][1]["resources"]["requests"]["nvidia.com/gpu"] = "1";
                  },
                  [](const json&, const json& after) {
                    const json& main = after["spec"]["containers"][1];
                    EXPECT_EQ(main["resources"]["limits"]["nvidia.com/gpu.shared"], "1");
                    EXPECT_EQ(main["env"], json::parse(R"([
                      {"name":"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE","value":"25"},
                      {"name":"CUDA_MPS_PINNED_DEVICE_MEM_LIMIT","value":"0=10240M"}])"));
                    EXPECT_EQ(TermsOf(after)[0]["matchExpressions"][0]["values"], json({"mps"}));
                  },
                  11},
        PatchCase{"MpsKeepsUserEnv",
                  [] {
                    return Policy("mps", ShareSpec("mps", {{"maxClients", 4},
                                                           {"activeThreadPercentage", 50}}));
                  },
                  [](json& pod) {
                    pod["metadata"]["annotations"].erase("gpuautoscaler.io/gpu-memory");
                    pod["spec"]["containers"][1]["env"] = json::parse(
                        R"([{"name":"CUDA_MPS_PINNED_DEVICE_MEM_LIMIT","value":"0=1G"},
                            {"name":"X","value":"y"}])");
                  },
                  [](const json&, const json& after) {
                    const json& env = after["spec"]["containers"][1]["env"];
                    ASSERT_EQ(env.size(), 3u);
                    EXPECT_EQ(env[0]["value"], "0=1G");
                    EXPECT_EQ(env[2],
                              json::parse(
                                  R"({"name":"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE","value":"50"})"));
                  },
                  11},
        PatchCase{"ExclusiveOnlyPins",
                  [] {
                    json spec = ShareSpec("exclusive", nullptr);
                    spec["gpuModels"] = {"H100-94GB"};
                    return Policy("whole", spec);
                  },
                  [](json&) {},
                  [](const json& before, const json& after) {
                    EXPECT_EQ(after["spec"]["containers"], before["spec"]["containers"]);
                    json exprs = TermsOf(after)[0]["matchExpressions"];
                    ASSERT_EQ(exprs.size(), 1u);
                    EXPECT_EQ(exprs[0]["values"], json({"NVIDIA-H100-NVL"}));
                    EXPECT_FALSE(
                        after["metadata"]["annotations"].contains("gpuautoscaler.io/mig-profile"));
                  },
                  4},
        PatchCase{"ExistingTermsEachGetExpressions",
                  [] {
                    return Policy("ts", ShareSpec("timeSlicing", {{"replicas", 2}}));
                  },
                  [](json& pod) {
                    pod["spec"]["affinity"] = json::parse(R"({"nodeAffinity":{
                      "requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[
                        {"matchExpressions":[{"key":"zone","operator":"In","values":["a"]}]},
                        {"matchFields":[{"key":"metadata.name","operator":"In","values":["n1"]}]}]}}})");
                  },
                  [](const json&, const json& after) {
                    json terms = TermsOf(after);
                    ASSERT_EQ(terms.size(), 2u);
                    ASSERT_EQ(terms[0]["matchExpressions"].size(), 2u);
                    EXPECT_EQ(terms[0]["matchExpressions"][0]["key"], "zone");
                    EXPECT_EQ(terms[0]["matchExpressions"][1]["key"],
                              "nvidia.com/gpu.sharing-strategy");
                    ASSERT_EQ(terms[1]["matchExpressions"].size(), 1u);
                    EXPECT_EQ(terms[1]["matchFields"][0]["values"], json({"n1"}));
                  },
                  // 2x(remove+add), 2 term edits, 3 annotations
                  10},
        PatchCase{"PreferredOnlyAffinityGetsRequired",
                  [] {
                    return Policy("ts", ShareSpec("timeSlicing", {{"replicas", 2}}));
                  },
                  [](json& pod) {
                    pod["spec"]["affinity"] = json::parse(R"({"nodeAffinity":{
                      "preferredDuringSchedulingIgnoredDuringExecution":[{"weight":1,
                        "preference":{"matchExpressions":[{"key":"z","operator":"Exists"}]}}]},
                      "podAntiAffinity":{}})");
                  },
                  [](const json&, const json& after) {
                    EXPECT_EQ(TermsOf(after).size(), 1u);
                    EXPECT_TRUE(after["spec"]["affinity"]["nodeAffinity"].contains(
                        "preferredDuringSchedulingIgnoredDuringExecution"));
                    EXPECT_TRUE(after["spec"]["affinity"].contains("podAntiAffinity"));
                  },
                  9},
        PatchCase{"AnnotationOnlyPodGetsOneSlice", TwoModels,
                  [](json& pod) {
                    pod["spec"]["containers"][1]["resources"] =
                        json::parse(R"({"limits":{"cpu":"1"}})");
                  },
                  [](const json&, const json& after) {
                    const json& res = after["spec"]["containers"][0]["resources"];
                    EXPECT_EQ(res["limits"]["nvidia.com/mig-1g.10gb"], "1");
                    EXPECT_EQ(res["requests"]["nvidia.com/mig-1g.10gb"], "1");
                    EXPECT_EQ(after["metadata"]["annotations"]["gpuautoscaler.io/original-request"],
                              "{}");
                  },
                  6},
        PatchCase{
            "InitContainerGpu",
            [] {
              return Policy("ts", ShareSpec("timeSlicing", {{"replicas", 2}}));
            },
            [](json& pod) {
              pod["spec"]["initContainers"] =
                  json::parse(R"([{"name":"warm","resources":{"limits":{"nvidia.com/gpu":"1"}}}])");
            },
            [](const json&, const json& after) {
              EXPECT_EQ(after["spec"]["initContainers"][0]["resources"]["limits"],
                        json({{"nvidia.com/gpu.shared", "1"}}));
              EXPECT_EQ(
                  json::parse(after["metadata"]["annotations"]["gpuautoscaler.io/original-request"]
                                  .get<std::string>()),
                  json::parse(R"({"warm":{"nvidia.com/gpu":"1"},
                                             "main":{"nvidia.com/gpu":"2"}})"));
            },
            // 3x(remove+add), affinity, 3 annotations
            11}),
    [](const ::testing::TestParamInfo<PatchCase>& info) { return info.param.name; });

TEST(MutatePodTest, LeavesPodsAloneWhenTheyShould) {
  PolicySet set({TwoModels()});
  std::map<std::string, std::string> ns_labels = {{"kubernetes.io/metadata.name", "team-a"}};
  MutationOptions opts{{"kube-system", "gpu-autoscaler-system"}, &ns_labels};

  json pod = BasePod();
  EXPECT_FALSE(MutatePod(Decode(pod), set, opts).patch.empty());

  json opted_out = BasePod();
  opted_out["metadata"]["annotations"]["gpuautoscaler.io/sharing"] = "disabled";
  EXPECT_EQ(MutatePod(Decode(opted_out), set, opts).patch, "");

  json system = BasePod();
  system["metadata"]["namespace"] = "kube-system";
  EXPECT_EQ(MutatePod(Decode(system), set, opts).patch, "");

  json no_gpu = json::parse(R"({"metadata":{"name":"x","namespace":"team-a"},
                               "spec":{"containers":[{"name":"c"}]}})");
  EXPECT_EQ(MutatePod(Decode(no_gpu), set, opts).patch, "");

  PolicySet empty;
  EXPECT_EQ(MutatePod(Decode(pod), empty, opts).patch, "");
}

TEST(MutatePodTest, MigWithoutSizingAnnotationsWarns) {
  json pod = BasePod();
  pod["metadata"]["annotations"].erase("gpuautoscaler.io/gpu-memory");
  PodMutation m = MutatePodWithPolicy(Decode(pod), TwoModels());
  EXPECT_FALSE(m.denied);
  EXPECT_EQ(m.patch, "");
  ASSERT_EQ(m.warnings.size(), 1u);
  EXPECT_NE(m.warnings[0].find("gpuautoscaler.io/gpu-memory"), std::string::npos);
}

TEST(MutatePodTest, DeniesWhatCannotFit) {
  json pod = BasePod();
  pod["metadata"]["annotations"]["gpuautoscaler.io/gpu-memory"] = "30Gi";
  PodMutation m = MutatePodWithPolicy(Decode(pod), TwoModels());
  EXPECT_TRUE(m.denied);
  EXPECT_NE(m.message.find("no MIG profile allowed by GPUSharingPolicy \"serving\""),
            std::string::npos)
      << m.message;
  EXPECT_NE(m.message.find("memory 30Gi"), std::string::npos) << m.message;

  pod["metadata"]["annotations"]["gpuautoscaler.io/gpu-memory"] = "lots";
  m = MutatePodWithPolicy(Decode(pod), TwoModels());
  EXPECT_TRUE(m.denied);
  EXPECT_NE(m.message.find("gpuautoscaler.io/gpu-memory: invalid value \"lots\""),
            std::string::npos)
      << m.message;

  GpuSharingPolicy mps = Policy("mps", ShareSpec("mps", {{"maxClients", 4},
                                                         {"activeThreadPercentage", 20},
                                                         {"pinnedMemoryLimit", "8Gi"}}));
  pod["metadata"]["annotations"]["gpuautoscaler.io/gpu-memory"] = "4Gi";
  pod["metadata"]["annotations"]["gpuautoscaler.io/gpu-compute"] = "30";
  m = MutatePodWithPolicy(Decode(pod), mps);
  EXPECT_TRUE(m.denied);
  EXPECT_NE(m.message.find("exceeds the 20% activeThreadPercentage"), std::string::npos)
      << m.message;
  pod["metadata"]["annotations"]["gpuautoscaler.io/gpu-compute"] = "10";
  pod["metadata"]["annotations"]["gpuautoscaler.io/gpu-memory"] = "9Gi";
  m = MutatePodWithPolicy(Decode(pod), mps);
  EXPECT_TRUE(m.denied);
  EXPECT_NE(m.message.find("exceeds the pinnedMemoryLimit 8Gi"), std::string::npos) << m.message;
}

TEST(MutatePodTest, PinnedProductNarrowsModels) {
  json pod = BasePod();
  pod["spec"]["nodeSelector"] = {{"nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB"}};
  pod["metadata"]["annotations"]["gpuautoscaler.io/gpu-memory"] = "15Gi";
  PodMutation m = MutatePodWithPolicy(Decode(pod), TwoModels());
  ASSERT_FALSE(m.denied) << m.message;
  json after = Apply(pod, m.patch);
  EXPECT_EQ(after["spec"]["containers"][1]["resources"]["limits"]["nvidia.com/mig-2g.20gb"], "2");
  EXPECT_EQ(TermsOf(after)[0]["matchExpressions"][0]["values"],
            json({"NVIDIA-A100-80GB-PCIe", "NVIDIA-A100-PCIE-80GB", "NVIDIA-A100-SXM4-80GB"}));
}

TEST(MutatePodTest, EscapesPointerTokensInPaths) {
  json pod = BasePod();
  PodMutation m = MutatePodWithPolicy(Decode(pod), TwoModels());
  json ops = json::parse(m.patch);
  std::set<std::string> paths;
  for (const json& op : ops)
    paths.insert(op["path"].get<std::string>());
  EXPECT_TRUE(paths.count("/spec/containers/1/resources/limits/nvidia.com~1gpu"));
  EXPECT_TRUE(paths.count("/spec/containers/1/resources/limits/nvidia.com~1mig-1g.10gb"));
  EXPECT_TRUE(paths.count("/metadata/annotations/gpuautoscaler.io~1policy"));
}

}  // namespace
}  // namespace gpu_autoscaler::webhooks
