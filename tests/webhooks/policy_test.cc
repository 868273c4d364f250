#include "webhooks/policy.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "webhooks/validate.h"

namespace gpu_autoscaler::webhooks {
namespace {

using nlohmann::json;

GpuSharingPolicy Policy(const std::string& name, int priority, json spec_extra = json::object()) {
  json obj = {{"apiVersion", "gpuautoscaler.io/v1alpha1"},
              {"kind", "GPUSharingPolicy"},
              {"metadata", {{"name", name}, {"generation", 3}}},
              {"spec", {{"priority", priority}, {"strategy", {{"type", "exclusive"}}}}}};
  obj["spec"].merge_patch(spec_extra);
  auto p = ParseGpuSharingPolicy(obj.dump());
  EXPECT_TRUE(p.ok()) << p.error().ToString();
  EXPECT_TRUE(p->problems.empty()) << p->problems.front();
  return std::move(p).value();
}

TEST(ParsePolicyTest, AllStrategies) {
  auto mig = Policy("m", 5,
                    {{"gpuModels", {"NVIDIA-A100-SXM4-40GB", "H100-80GB"}},
                     {"strategy",
                      {{"type", "mig"},
                       {"mig",
                        {{"allowedProfiles",
                          {{{"gpuModel", "A100-SXM4-40GB"}, {"profiles", {"1g.5gb", "3g.20gb"}}},
                           {{"gpuModel", "H100-80GB"}, {"profiles", {"1g.10gb"}}}}}}}}}});
  EXPECT_EQ(mig.name, "m");
  EXPECT_EQ(mig.generation, 3);
  EXPECT_EQ(mig.priority, 5);
  EXPECT_EQ(mig.strategy, SharingStrategy::kMig);
  EXPECT_EQ(mig.gpu_models, (std::vector<std::string>{"A100-SXM4-40GB", "H100-80GB"}));
  ASSERT_EQ(mig.mig.size(), 2u);
  EXPECT_EQ(mig.mig[0].profiles, (std::vector<std::string>{"1g.5gb", "3g.20gb"}));

  auto ts = Policy("t", 0,
                   {{"strategy", {{"type", "timeSlicing"}, {"timeSlicing", {{"replicas", 64}}}}}});
  EXPECT_EQ(ts.strategy, SharingStrategy::kTimeSlicing);
  EXPECT_EQ(ts.time_slicing.replicas, 64);

  auto mps = Policy(
      "p", 0,
      {{"strategy",
        {{"type", "mps"},
         {"mps",
          {{"maxClients", 48}, {"activeThreadPercentage", 25}, {"pinnedMemoryLimit", "10Gi"}}}}}});
  EXPECT_EQ(mps.mps.max_clients, 48);
  EXPECT_EQ(mps.mps.active_thread_percentage, 25);
  EXPECT_EQ(mps.mps.pinned_memory_limit_bytes, int64_t{10} << 30);

  auto ex = Policy("e", -3, {{"podSelector", {{"matchLabels", {{"app", "x"}}}}}});
  EXPECT_EQ(ex.strategy, SharingStrategy::kExclusive);
  EXPECT_FALSE(ex.pod_selector.empty());
  EXPECT_TRUE(ex.namespace_selector.empty());
}

struct ProblemCase {
  std::string name;
  json spec;
  std::string problem;  // substring of one reported problem
};

class PolicyProblemTest : public ::testing::TestWithParam<ProblemCase> {};

TEST_P(PolicyProblemTest, NamesFieldAndAllowedValues) {
  json obj = {
      {"kind", "GPUSharingPolicy"}, {"metadata", {{"name", "bad"}}}, {"spec", GetParam().spec}};
  auto p = ParseGpuSharingPolicy(obj.dump());
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  std::vector<std::string> problems = ValidatePolicy(*p, {});
  std::string all;
  for (const auto& s : problems)
    all += s + "\n";
  EXPECT_NE(all.find(GetParam().problem), std::string::npos) << all;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PolicyProblemTest,
    ::testing::Values(
        ProblemCase{
            "ReplicasHigh",
            {{"strategy", {{"type", "timeSlicing"}, {"timeSlicing", {{"replicas", 65}}}}}},
            "spec.strategy.timeSlicing.replicas: Invalid value: 65: must be between 2 and 64"},
        ProblemCase{"ReplicasLow",
                    {{"strategy", {{"type", "timeSlicing"}, {"timeSlicing", {{"replicas", 1}}}}}},
                    "replicas: Invalid value: 1: must be between 2 and 64"},
        ProblemCase{"ReplicasMissing",
                    {{"strategy", {{"type", "timeSlicing"}, {"timeSlicing", json::object()}}}},
                    "spec.strategy.timeSlicing.replicas: Required value"},
        ProblemCase{"MaxClients",
                    {{"strategy", {{"type", "mps"}, {"mps", {{"maxClients", 49}}}}}},
                    "spec.strategy.mps.maxClients: Invalid value: 49: must be between 2 and 48"},
        ProblemCase{
            "ThreadPercentage",
            {{"strategy",
              {{"type", "mps"}, {"mps", {{"maxClients", 4}, {"activeThreadPercentage", 0}}}}}},
            "activeThreadPercentage: Invalid value: 0: must be between 1 and 100"},
        ProblemCase{
            "PinnedMemory",
            {{"strategy",
              {{"type", "mps"}, {"mps", {{"maxClients", 4}, {"pinnedMemoryLimit", "lots"}}}}}},
            "spec.strategy.mps.pinnedMemoryLimit: Invalid value: \"lots\""},
        ProblemCase{"UnknownStrategy",
                    {{"strategy", {{"type", "vgpu"}}}},
                    "spec.strategy.type: Unsupported value: \"vgpu\": supported values: "
                    "\"exclusive\", \"timeSlicing\", \"mps\", \"mig\""},
        ProblemCase{"NoStrategy", json::object(), "spec.strategy: Required value"},
        ProblemCase{"UnknownModel",
                    {{"gpuModels", {"T4"}}, {"strategy", {{"type", "exclusive"}}}},
                    "spec.gpuModels[0]: Unsupported value: \"T4\": supported values: "
                    "\"A100-SXM4-40GB\""},
        ProblemCase{
            "ProfileOfAnotherGpu",
            {{"strategy",
              {{"type", "mig"},
               {"mig",
                {{"allowedProfiles", {{{"gpuModel", "A100-80GB"}, {"profiles", {"1g.5gb"}}}}}}}}}},
            "spec.strategy.mig.allowedProfiles[0].profiles[0]: Unsupported value: "
            "\"1g.5gb\": profiles of A100-80GB are \"1g.10gb\", \"1g.10gb+me\""},
        ProblemCase{
            "ModelWithoutProfiles",
            {{"gpuModels", {"H200-141GB", "A100-80GB"}},
             {"strategy",
              {{"type", "mig"},
               {"mig",
                {{"allowedProfiles", {{{"gpuModel", "A100-80GB"}, {"profiles", {"1g.10gb"}}}}}}}}}},
            "no MIG profiles listed for gpuModel \"H200-141GB\""},
        ProblemCase{"MigWithoutProfiles",
                    {{"strategy", {{"type", "mig"}}}},
                    "spec.strategy.mig.allowedProfiles: Required value"},
        ProblemCase{
            "BadSelector",
            {{"podSelector", {{"matchExpressions", {{{"key", "a"}, {"operator", "Sometimes"}}}}}},
             {"strategy", {{"type", "exclusive"}}}},
            "spec.podSelector: Invalid value"},
        ProblemCase{"PriorityNotInteger",
                    {{"priority", "high"}, {"strategy", {{"type", "exclusive"}}}},
                    "spec.priority: Invalid value: \"high\": must be an integer"}),
    [](const ::testing::TestParamInfo<ProblemCase>& info) { return info.param.name; });

TEST(ParsePolicyTest, StructuralErrors) {
  EXPECT_FALSE(ParseGpuSharingPolicy("{not json").ok());
  EXPECT_FALSE(ParseGpuSharingPolicy("[]").ok());
  EXPECT_FALSE(ParseGpuSharingPolicy(R"({"kind":"Pod"})").ok());
  auto no_name = ParseGpuSharingPolicy(R"({"spec":{"strategy":{"type":"exclusive"}}})");
  ASSERT_TRUE(no_name.ok());
  EXPECT_EQ(no_name->problems, std::vector<std::string>{"metadata.name: Required value"});
}

// Policy matching: selectors, models, priority, then name.
struct MatchCase {
  std::string name;
  std::map<std::string, std::string> ns_labels;
  std::map<std::string, std::string> pod_labels;
  std::string pinned_model;
  std::string want;  // "" = no policy
};

class PolicyMatchTest : public ::testing::TestWithParam<MatchCase> {
 protected:
  static PolicySet Set() {
    std::vector<GpuSharingPolicy> policies;
    policies.push_back(
        Policy("a-team-ml", 10, {{"namespaceSelector", {{"matchLabels", {{"team", "ml"}}}}}}));
    policies.push_back(Policy("b-team-ml-same-priority", 10,
                              {{"namespaceSelector", {{"matchLabels", {{"team", "ml"}}}}}}));
    policies.push_back(
        Policy("inference-h100", 20,
               {{"podSelector",
                 {{"matchExpressions",
                   {{{"key", "role"}, {"operator", "In"}, {"values", {"inference"}}}}}}},
                {"gpuModels", {"H100-80GB"}}}));
    policies.push_back(Policy("catch-all", -1));
    policies.push_back(Policy(
        "not-canary", 5,
        {{"podSelector",
          {{"matchExpressions", {{{"key", "canary"}, {"operator", "DoesNotExist"}}}}}},
         {"namespaceSelector", {{"matchLabels", {{"kubernetes.io/metadata.name", "prod"}}}}}}));
    return PolicySet(std::move(policies));
  }
};

TEST_P(PolicyMatchTest, PicksHighestPriorityThenName) {
  const MatchCase& c = GetParam();
  PolicySet set = Set();
  PodSubject subject{&c.ns_labels, &c.pod_labels, c.pinned_model};
  const GpuSharingPolicy* got = set.Match(subject);
  EXPECT_EQ(got ? got->name : "", c.want);
}

INSTANTIATE_TEST_SUITE_P(
    Table, PolicyMatchTest,
    ::testing::Values(
        MatchCase{"TieBrokenByName", {{"team", "ml"}}, {}, "", "a-team-ml"},
        MatchCase{
            "HigherPriorityWins", {{"team", "ml"}}, {{"role", "inference"}}, "", "inference-h100"},
        MatchCase{
            "PinnedToListedModel", {}, {{"role", "inference"}}, "H100-80GB", "inference-h100"},
        MatchCase{"PinnedToOtherModel",
                  {{"team", "ml"}},
                  {{"role", "inference"}},
                  "A100-80GB",
                  "a-team-ml"},
        MatchCase{
            "DoesNotExistMatches", {{"kubernetes.io/metadata.name", "prod"}}, {}, "", "not-canary"},
        MatchCase{"DoesNotExistExcludes",
                  {{"kubernetes.io/metadata.name", "prod"}},
                  {{"canary", "1"}},
                  "",
                  "catch-all"},
        MatchCase{"FallsBackToCatchAll", {{"team", "web"}}, {}, "", "catch-all"}),
    [](const ::testing::TestParamInfo<MatchCase>& info) { return info.param.name; });

TEST(PolicySetTest, EmptyMatchesNothing) {
  PolicySet set;
  std::map<std::string, std::string> none;
  EXPECT_EQ(set.Match({&none, &none, ""}), nullptr);
}

struct OverlapCase {
  std::string name;
  json a;
  json b;
  bool overlap;
};

class OverlapTest : public ::testing::TestWithParam<OverlapCase> {};

TEST_P(OverlapTest, DetectsProvablyDisjointPolicies) {
  auto a = Policy("a", 1, GetParam().a);
  auto b = Policy("b", 1, GetParam().b);
  EXPECT_EQ(PoliciesMayOverlap(a, b), GetParam().overlap);
  EXPECT_EQ(PoliciesMayOverlap(b, a), GetParam().overlap);
  // Validation reports exactly the overlapping same-priority case.
  EXPECT_EQ(ValidatePolicy(a, {b}).empty(), !GetParam().overlap);
}

json PodSel(json expressions) {
  return {{"podSelector", {{"matchExpressions", expressions}}}};
}
json Expr(const std::string& key, const std::string& op, std::vector<std::string> values = {}) {
  json e = {{"key", key}, {"operator", op}};
  if (!values.empty()) e["values"] = values;
  return e;
}

INSTANTIATE_TEST_SUITE_P(
    Table, OverlapTest,
    ::testing::Values(
        OverlapCase{"BothSelectEverything", json::object(), json::object(), true},
        OverlapCase{"DifferentValues",
                    {{"podSelector", {{"matchLabels", {{"app", "a"}}}}}},
                    {{"podSelector", {{"matchLabels", {{"app", "b"}}}}}},
                    false},
        OverlapCase{"DifferentKeys",
                    {{"podSelector", {{"matchLabels", {{"app", "a"}}}}}},
                    {{"podSelector", {{"matchLabels", {{"tier", "b"}}}}}},
                    true},
        OverlapCase{"InSetsIntersect", PodSel({Expr("app", "In", {"a", "b"})}),
                    PodSel({Expr("app", "In", {"b", "c"})}), true},
        OverlapCase{"InSetsDisjoint", PodSel({Expr("app", "In", {"a"})}),
                    PodSel({Expr("app", "In", {"b", "c"})}), false},
        OverlapCase{"NotInCoversIn", PodSel({Expr("app", "In", {"a"})}),
                    PodSel({Expr("app", "NotIn", {"a"})}), false},
        OverlapCase{"NotInLeavesSome", PodSel({Expr("app", "In", {"a", "b"})}),
                    PodSel({Expr("app", "NotIn", {"a"})}), true},
        OverlapCase{"ExistsVsDoesNotExist", PodSel({Expr("gpu", "Exists")}),
                    PodSel({Expr("gpu", "DoesNotExist")}), false},
        OverlapCase{"NotInVsDoesNotExist", PodSel({Expr("gpu", "NotIn", {"x"})}),
                    PodSel({Expr("gpu", "DoesNotExist")}), true},
        OverlapCase{"DisjointModels",
                    {{"gpuModels", {"A100-80GB"}}},
                    {{"gpuModels", {"H100-80GB"}}},
                    false},
        OverlapCase{"SharedModel",
                    {{"gpuModels", {"A100-80GB", "H100-80GB"}}},
                    {{"gpuModels", {"H100-80GB"}}},
                    true},
        OverlapCase{"AnyModelOverlapsAll", json::object(), {{"gpuModels", {"H100-80GB"}}}, true},
        OverlapCase{
            "DisjointNamespaces",
            {{"namespaceSelector", {{"matchLabels", {{"kubernetes.io/metadata.name", "a"}}}}}},
            {{"namespaceSelector", {{"matchLabels", {{"kubernetes.io/metadata.name", "b"}}}}}},
            false}),
    [](const ::testing::TestParamInfo<OverlapCase>& info) { return info.param.name; });

TEST(ValidatePolicyTest, DifferentPriorityOrSameNameIsFine) {
  auto a = Policy("a", 1);
  auto b = Policy("b", 2);
  EXPECT_TRUE(ValidatePolicy(a, {b}).empty());
  auto a_again = Policy("a", 1);
  EXPECT_TRUE(ValidatePolicy(a, {a_again}).empty());  // an update of itself
  auto c = Policy("c", 1);
  auto problems = ValidatePolicy(a, {b, c});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("spec.priority: Invalid value: 1: GPUSharingPolicy \"c\" has the same "
                             "priority"),
            std::string::npos)
      << problems[0];
}

}  // namespace
}  // namespace gpu_autoscaler::webhooks
