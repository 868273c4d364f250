// Pricing catalogue: the built-in YAML, user overrides, tier discounts, the
// GPU/CPU/memory split, fallbacks and explicit "unpriced" answers.
#include "cost/pricing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "support/test_paths.h"

namespace gpu_autoscaler::cost {
namespace {

using ::testing::HasSubstr;

// Weights chosen so the split is exact: an A100 weighs 3.0/h, a vCPU 0.05/h
// and a GiB 0.01/h; big.8x = 8*3 + 96*0.05 + 1152*0.01 = 24 + 4.8 + 11.52 = 40.32.
constexpr char kTestCatalog[] = R"(
schema_version: 1
currency: USD
default_spot_discount: 0.5
default_reserved_discount: 0.25
default_discount_source: test
default_discount_date: "2024-01-01"
split_weights: {vcpu_hourly: 0.05, memory_gib_hourly: 0.01, source: test, date: "2024-01-01"}
gpu_models:
  - {model: A100-SXM4-40GB, aliases: [NVIDIA-A100-SXM4-40GB], fallback_hourly: 3.0,
     source: test, date: "2024-01-01"}
  - {model: T4, fallback_hourly: 0.5, source: test, date: "2024-01-01"}
families:
  - family: big
    cloud: aws
    region: us-east-1
    gpu_model: A100-SXM4-40GB
    spot_discount: 0.6
    reserved_discount: 0.4
    discount_source: test
    discount_date: "2024-01-01"
    instances:
      - {type: big.8x, gpus: 8, vcpus: 96, memory_gib: 1152, hourly: 40.32,
         source: "list page", date: "2024-01-01"}
      - {type: small.t4, gpu_model: T4, gpus: 1, vcpus: 4, memory_gib: 16, hourly: 1.4,
         source: "list page", date: "2024-01-01"}
)";

std::unique_ptr<CatalogPricingSource> TestSource() {
  auto src = CatalogPricingSource::FromYaml(kTestCatalog, "test.yaml");
  EXPECT_TRUE(src.ok()) << src.error().ToString();
  return std::move(src).value();
}

struct TierCase {
  CapacityTier tier;
  double hourly, gpu, cpu, memory;
};

TEST(CatalogPricing, SplitsAndDiscountsByTier) {
  auto src = TestSource();
  // Hand-computed: parts are the weights (sum 40.32 = list price), then x (1 - discount).
  const TierCase cases[] = {
      {CapacityTier::kOnDemand, 40.32, 24.0, 4.8, 11.52},
      {CapacityTier::kSpot, 40.32 * 0.4, 9.6, 1.92, 4.608},
      {CapacityTier::kReserved, 40.32 * 0.6, 14.4, 2.88, 6.912},
  };
  for (const TierCase& c : cases) {
    SCOPED_TRACE(std::string(CapacityTierName(c.tier)));
    auto p = src->Price({.instance_type = "big.8x", .tier = c.tier});
    ASSERT_TRUE(p.ok()) << p.error().reason;
    EXPECT_NEAR(p->hourly, c.hourly, 1e-9);
    EXPECT_NEAR(p->gpu_hourly, c.gpu, 1e-9);
    EXPECT_NEAR(p->cpu_hourly, c.cpu, 1e-9);
    EXPECT_NEAR(p->memory_hourly, c.memory, 1e-9);
    EXPECT_NEAR(p->on_demand_hourly, 40.32, 1e-9);
    EXPECT_EQ(p->gpu_model, "A100-SXM4-40GB");
    EXPECT_EQ(p->gpu_count, 8);
    EXPECT_EQ(p->family, "big");
    EXPECT_EQ(p->tier, c.tier);
    EXPECT_EQ(p->currency, "USD");
    EXPECT_EQ(p->source, "list page");
    EXPECT_FALSE(p->from_fallback);
  }
}

TEST(CatalogPricing, InstanceGpuModelOverridesFamily) {
  auto src = TestSource();
  auto p = src->Price({.instance_type = "SMALL.T4"});  // case-insensitive
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->gpu_model, "T4");
  // Weights 0.5 + 0.2 + 0.16 = 0.86; price 1.4.
  EXPECT_NEAR(p->gpu_hourly, 1.4 * 0.5 / 0.86, 1e-12);
  EXPECT_NEAR(p->gpu_hourly + p->cpu_hourly + p->memory_hourly, 1.4, 1e-12);
}

TEST(CatalogPricing, FallbackByGpuModelAlias) {
  auto src = TestSource();
  auto p = src->Price({.instance_type = "custom-gpu-box",
                       .tier = CapacityTier::kOnDemand,
                       .gpu_model = "NVIDIA-A100-SXM4-40GB",
                       .gpu_count = 2,
                       .vcpus = 10,
                       .memory_gib = 100});
  ASSERT_TRUE(p.ok()) << p.error().reason;
  EXPECT_TRUE(p->from_fallback);
  EXPECT_NEAR(p->gpu_hourly, 6.0, 1e-12);     // 2 x 3.0
  EXPECT_NEAR(p->cpu_hourly, 0.5, 1e-12);     // 10 x 0.05
  EXPECT_NEAR(p->memory_hourly, 1.0, 1e-12);  // 100 x 0.01
  EXPECT_NEAR(p->hourly, 7.5, 1e-12);
  EXPECT_EQ(p->gpu_model, "A100-SXM4-40GB");

  auto spot = src->Price({.instance_type = "custom-gpu-box",
                          .tier = CapacityTier::kSpot,
                          .gpu_model = "a100-sxm4-40gb",
                          .gpu_count = 2,
                          .vcpus = 10,
                          .memory_gib = 100});
  ASSERT_TRUE(spot.ok());
  EXPECT_NEAR(spot->hourly, 3.75, 1e-12);  // default spot discount 0.5
}

TEST(CatalogPricing, CpuOnlyUnknownNodeUsesSplitWeights) {
  auto src = TestSource();
  auto p = src->Price({.instance_type = "m5.xlarge", .vcpus = 4, .memory_gib = 16});
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->from_fallback);
  EXPECT_NEAR(p->hourly, 0.2 + 0.16, 1e-12);
  EXPECT_EQ(p->gpu_hourly, 0);
}

TEST(CatalogPricing, UnknownGpuModelIsUnpricedNotZero) {
  auto src = TestSource();
  auto p =
      src->Price({.instance_type = "mystery.gpu", .gpu_model = "NVIDIA-B9000", .gpu_count = 4});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().instance_type, "mystery.gpu");
  EXPECT_THAT(p.error().reason, HasSubstr("NVIDIA-B9000"));

  auto nothing = src->Price({.instance_type = "mystery.gpu", .gpu_count = 1});
  ASSERT_FALSE(nothing.ok());
  EXPECT_THAT(nothing.error().reason, HasSubstr("GPU model is unknown"));

  auto no_resources = src->Price({.instance_type = "mystery"});
  ASSERT_FALSE(no_resources.ok());
}

TEST(CatalogPricing, OverrideReplacesMergesAndInherits) {
  auto src = TestSource();
  Status s = src->ApplyOverride(R"(
families:
  - family: big
    spot_discount: 0.7
    discount_source: "our spot history"
    discount_date: "2024-06-01"
    instances:
      - {type: big.8x, hourly: 20.16, source: "our contract", date: "2024-06-01"}
      - {type: big.4x, gpus: 4, vcpus: 48, memory_gib: 576, hourly: 20.16,
         source: "our contract", date: "2024-06-01"}
gpu_models:
  - {model: T4, fallback_hourly: 0.25, source: "our contract", date: "2024-06-01"}
)",
                                "user.yaml");
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto p = src->Price({.instance_type = "big.8x", .tier = CapacityTier::kSpot});
  ASSERT_TRUE(p.ok());
  EXPECT_NEAR(p->on_demand_hourly, 20.16, 1e-12);
  EXPECT_NEAR(p->hourly, 20.16 * 0.3, 1e-12);
  EXPECT_EQ(p->gpu_count, 8);  // inherited
  EXPECT_EQ(p->source, "our contract");
  auto reserved = src->Price({.instance_type = "big.8x", .tier = CapacityTier::kReserved});
  EXPECT_NEAR(reserved->hourly, 20.16 * 0.6, 1e-12);  // reserved discount kept
  auto added = src->Price({.instance_type = "big.4x"});
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(added->gpu_model, "A100-SXM4-40GB");  // from the family
  EXPECT_DOUBLE_EQ(src->GpuModelRate("T4"), 0.25);
  EXPECT_DOUBLE_EQ(src->GpuModelRate("A100-SXM4-40GB"), 3.0);
  EXPECT_EQ(src->instance_count(), 3u);
}

TEST(CatalogPricing, FailedOverrideChangesNothing) {
  auto src = TestSource();
  Status s = src->ApplyOverride(R"(
gpu_models:
  - {model: T4, fallback_hourly: 0.1, source: x, date: "2024-06-01"}
families:
  - family: big
    instances:
      - {type: big.8x, hourly: abc, source: x, date: "2024-06-01"}
)",
                                "user.yaml");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "user.yaml: families[0].instances[0].hourly: expected a number, got \"abc\"");
  EXPECT_DOUBLE_EQ(src->GpuModelRate("T4"), 0.5);
  EXPECT_NEAR(src->Price({.instance_type = "big.8x"})->hourly, 40.32, 1e-12);
}

struct BadYamlCase {
  const char* name;
  const char* yaml;
  const char* message;  // substring
};

TEST(CatalogPricing, ErrorsNameFilePathAndField) {
  const BadYamlCase cases[] = {
      {"price without source",
       "families:\n  - family: big\n    instances:\n      - {type: big.8x, hourly: 1.0}\n",
       "user.yaml: families[0].instances[0].source: missing"},
      {"negative price",
       "families:\n  - family: big\n    instances:\n      - {type: big.8x, hourly: -1, source: x, "
       "date: y}\n",
       "user.yaml: families[0].instances[0].hourly: must be greater than 0"},
      {"discount out of range", "default_spot_discount: 1.5\n",
       "user.yaml: default_spot_discount: must be a fraction in [0, 1)"},
      {"unknown model",
       "families:\n  - family: new\n    cloud: aws\n    region: r\n    gpu_model: Z9\n",
       "user.yaml: families[0].gpu_model: \"Z9\" is not listed under gpu_models"},
      {"new instance incomplete",
       "families:\n  - family: big\n    instances:\n      - {type: new.x, hourly: 1, source: x, "
       "date: y}\n",
       "user.yaml: families[0].instances[0].gpus: missing"},
      {"unknown top-level field", "prices: []\n", "user.yaml: prices: unknown field"},
      {"misspelled instance field",
       "families:\n  - family: big\n    instances:\n      - {type: big.8x, hourlly: 1.0}\n",
       "user.yaml: families[0].instances[0].hourlly: unknown field"},
      {"misspelled model field", "gpu_models:\n  - {model: A100, fallback_hourl: 1}\n",
       "user.yaml: gpu_models[0].fallback_hourl: unknown field"},
      {"misspelled family field", "families:\n  - {family: big, regoin: x}\n",
       "user.yaml: families[0].regoin: unknown field"},
      {"misspelled split weight", "split_weights: {vcpu_hourlly: 1}\n",
       "user.yaml: split_weights.vcpu_hourlly: unknown field"},
      {"not a list", "gpu_models: {a: 1}\n", "user.yaml: gpu_models: expected a list"},
      {"syntax error", "families: [\n", "user.yaml:"},
      {"fractional gpus",
       "families:\n  - family: big\n    instances:\n      - {type: big.8x, gpus: 1.5}\n",
       "user.yaml: families[0].instances[0].gpus: must be a whole number of GPUs"},
  };
  for (const BadYamlCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto src = TestSource();
    Status s = src->ApplyOverride(c.yaml, "user.yaml");
    ASSERT_FALSE(s.ok());
    EXPECT_THAT(s.message(), HasSubstr(c.message));
  }
}

TEST(CatalogPricing, BaseCatalogRequiresEverySection) {
  auto src = CatalogPricingSource::FromYaml("currency: USD\n", "base.yaml");
  ASSERT_FALSE(src.ok());
  EXPECT_THAT(src.error().message(), HasSubstr("base.yaml: "));
  auto empty = CatalogPricingSource::FromYaml("", "base.yaml");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().message(), "base.yaml: document is empty");
}

TEST(CatalogPricing, OverrideFileErrorsNameTheFile) {
  auto src = TestSource();
  Status missing = src->ApplyOverrideFile("/nonexistent/prices.yaml");
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("/nonexistent/prices.yaml"));

  std::string path = ::testing::TempDir() + "/pricing_override_test.yaml";
  {
    std::ofstream out(path);
    out << "gpu_models:\n  - {model: T4, fallback_hourly: 0.3, source: s, date: d}\n";
  }
  ASSERT_TRUE(src->ApplyOverrideFile(path).ok());
  EXPECT_DOUBLE_EQ(src->GpuModelRate("t4"), 0.3);
  std::remove(path.c_str());
}

TEST(BuiltinCatalog, CoversTheRequiredFamiliesWithSourcedPrices) {
  auto src = CatalogPricingSource::Builtin();
  ASSERT_TRUE(src.ok()) << src.error().ToString();
  EXPECT_EQ((*src)->currency(), "USD");
  struct Expect {
    const char* type;
    const char* model;
    int gpus;
    double hourly;
  };
  // One instance per required family: AWS p3 p4d p4de p5 g4dn g5 g6, GCP a2
  // a3 g2, Azure NC and ND.
  const Expect expected[] = {
      {"p3.2xlarge", "V100-16GB", 1, 3.06},
      {"p4d.24xlarge", "A100-SXM4-40GB", 8, 32.7726},
      {"p4de.24xlarge", "A100-SXM4-80GB", 8, 40.9657},
      {"p5.48xlarge", "H100-SXM5-80GB", 8, 98.32},
      {"g4dn.xlarge", "T4", 1, 0.526},
      {"g5.xlarge", "A10G", 1, 1.006},
      {"g6.xlarge", "L4", 1, 0.8048},
      {"a2-highgpu-1g", "A100-SXM4-40GB", 1, 3.673385},
      {"a3-highgpu-8g", "H100-SXM5-80GB", 8, 88.253855},
      {"g2-standard-4", "L4", 1, 0.70683228},
      {"Standard_NC6s_v3", "V100-16GB", 1, 3.06},
      {"Standard_ND96asr_v4", "A100-SXM4-40GB", 8, 27.197},
  };
  for (const Expect& e : expected) {
    SCOPED_TRACE(e.type);
    for (CapacityTier tier :
         {CapacityTier::kOnDemand, CapacityTier::kSpot, CapacityTier::kReserved}) {
      auto p = (*src)->Price({.instance_type = e.type, .tier = tier});
      ASSERT_TRUE(p.ok()) << p.error().reason;
      EXPECT_EQ(p->gpu_model, e.model);
      EXPECT_EQ(p->gpu_count, e.gpus);
      EXPECT_DOUBLE_EQ(p->on_demand_hourly, e.hourly);
      EXPECT_FALSE(p->source.empty());
      EXPECT_FALSE(p->date.empty());
      EXPECT_NEAR(p->gpu_hourly + p->cpu_hourly + p->memory_hourly, p->hourly, 1e-9);
      EXPECT_GT(p->gpu_hourly, p->cpu_hourly);
      if (tier == CapacityTier::kOnDemand) {
        EXPECT_DOUBLE_EQ(p->hourly, e.hourly);
      } else {
        EXPECT_LT(p->hourly, e.hourly);
        EXPECT_GT(p->hourly, 0);
      }
    }
  }
  EXPECT_GE((*src)->instance_count(), 50u);
  // The per-model fallback exists for GFD product labels too.
  EXPECT_GT((*src)->GpuModelRate("NVIDIA-H100-80GB-HBM3"), 0);
  EXPECT_GT((*src)->GpuModelRate("Tesla-T4"), 0);
}

// Builtin() parses once and hands out copies: an override on one copy (a
// user's pricing file) must not reach the next caller's, nor a Clone's.
TEST(BuiltinCatalog, EachCallAndEachCloneIsIndependent) {
  auto first = CatalogPricingSource::Builtin();
  ASSERT_TRUE(first.ok());
  auto clone = (*first)->Clone();
  const double before = (*first)->GpuModelRate("T4");
  ASSERT_GT(before, 0);
  ASSERT_TRUE((*first)
                  ->ApplyOverride("gpu_models:\n  - {model: T4, fallback_hourly: 9.5, source: x, "
                                  "date: \"2026-01-01\"}\n",
                                  "user.yaml")
                  .ok());
  EXPECT_DOUBLE_EQ((*first)->GpuModelRate("T4"), 9.5);
  EXPECT_DOUBLE_EQ(clone->GpuModelRate("T4"), before);
  auto second = CatalogPricingSource::Builtin();
  ASSERT_TRUE(second.ok());
  EXPECT_DOUBLE_EQ((*second)->GpuModelRate("T4"), before);
  EXPECT_EQ((*second)->instance_count(), (*first)->instance_count());
}

TEST(BuiltinCatalog, EmbeddedTextMatchesTheRepositoryFile) {
  std::ifstream in(std::string(GPA_SOURCE_DIR) + "/src/cost/catalog/pricing.yaml");
  ASSERT_TRUE(in);
  std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(BuiltinCatalogYaml(), file);
}

TEST(CapacityTierNames, RoundTrip) {
  for (CapacityTier t : {CapacityTier::kOnDemand, CapacityTier::kSpot, CapacityTier::kReserved}) {
    auto parsed = ParseCapacityTier(CapacityTierName(t));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, t);
  }
  EXPECT_FALSE(ParseCapacityTier("preemptible-ish").ok());
}

}  // namespace
}  // namespace gpu_autoscaler::cost
