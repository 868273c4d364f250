#include "kube/quantity.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

namespace gpu_autoscaler::kube {
namespace {

struct QuantityCase {
  std::string text;
  int64_t value;                 // ParseQuantity
  std::optional<int64_t> milli;  // ParseQuantityMilli; nullopt: overflows int64
};

class QuantityTableTest : public ::testing::TestWithParam<QuantityCase> {};

TEST_P(QuantityTableTest, ParsesValueAndMilliValue) {
  const QuantityCase& c = GetParam();
  auto value = ParseQuantity(c.text);
  ASSERT_TRUE(value.ok()) << c.text << ": " << value.error().ToString();
  EXPECT_EQ(*value, c.value) << c.text;
  auto milli = ParseQuantityMilli(c.text);
  if (!c.milli) {
    ASSERT_FALSE(milli.ok()) << c.text;
    EXPECT_EQ(milli.error().code(), StatusCode::kOutOfRange);
    return;
  }
  ASSERT_TRUE(milli.ok()) << c.text << ": " << milli.error().ToString();
  EXPECT_EQ(*milli, *c.milli) << c.text;
}

constexpr int64_t kKi = 1024;
constexpr int64_t kMi = kKi * 1024;
constexpr int64_t kGi = kMi * 1024;
constexpr int64_t kTi = kGi * 1024;
constexpr int64_t kPi = kTi * 1024;
constexpr int64_t kEi = kPi * 1024;

INSTANTIATE_TEST_SUITE_P(
    Kubernetes, QuantityTableTest,
    ::testing::Values(
        // Plain numbers.
        QuantityCase{"0", 0, 0}, QuantityCase{"1", 1, 1000}, QuantityCase{"8", 8, 8000},
        QuantityCase{"+3", 3, 3000}, QuantityCase{"-2", -2, -2000}, QuantityCase{"007", 7, 7000},
        // Decimals round up (away from zero).
        QuantityCase{"1.5", 2, 1500}, QuantityCase{"0.1", 1, 100}, QuantityCase{".5", 1, 500},
        QuantityCase{"2.", 2, 2000}, QuantityCase{"0.0001", 1, 1}, QuantityCase{"-0.5", -1, -500},
        // Decimal SI suffixes.
        QuantityCase{"250m", 1, 250}, QuantityCase{"1000m", 1, 1000},
        QuantityCase{"1500m", 2, 1500}, QuantityCase{"100u", 1, 1}, QuantityCase{"1n", 1, 1},
        QuantityCase{"0m", 0, 0}, QuantityCase{"2k", 2000, 2'000'000},
        QuantityCase{"3M", 3'000'000, 3'000'000'000},
        QuantityCase{"1G", 1'000'000'000, 1'000'000'000'000},
        QuantityCase{"1T", 1'000'000'000'000, 1'000'000'000'000'000},
        QuantityCase{"1P", 1'000'000'000'000'000, 1'000'000'000'000'000'000},
        QuantityCase{"1.5G", 1'500'000'000, 1'500'000'000'000},
        // Binary SI suffixes.
        QuantityCase{"1Ki", kKi, kKi * 1000}, QuantityCase{"64Mi", 64 * kMi, 64 * kMi * 1000},
        QuantityCase{"1.5Gi", 3 * kGi / 2, 3 * kGi / 2 * 1000},
        QuantityCase{"80Gi", 80 * kGi, 80 * kGi * 1000},
        QuantityCase{"2Ti", 2 * kTi, 2 * kTi * 1000}, QuantityCase{"1Pi", kPi, kPi * 1000},
        QuantityCase{"1Ei", kEi, std::nullopt}, QuantityCase{"0.5Ki", 512, 512'000},
        QuantityCase{"0.1Ki", 103, 102'400},
        // Decimal exponents.
        QuantityCase{"1e3", 1000, 1'000'000}, QuantityCase{"1E3", 1000, 1'000'000},
        QuantityCase{"1.5e3", 1500, 1'500'000}, QuantityCase{"5e-3", 1, 5},
        QuantityCase{"12e+2", 1200, 1'200'000}, QuantityCase{"1e-9", 1, 1},
        QuantityCase{"1e-100", 1, 1}, QuantityCase{"0e100", 0, 0},
        // Many digits: precision beyond 19 significant digits still rounds up.
        QuantityCase{"1.00000000000000000000001", 2, 1001},
        QuantityCase{"9223372036854775807", std::numeric_limits<int64_t>::max(), std::nullopt},
        QuantityCase{"9223372036854775.807", 9223372036854776,
                     std::numeric_limits<int64_t>::max()}));

TEST(QuantityTest, RejectsMalformedText) {
  for (const char* bad : {"", "-", "+", ".", "abc", "1.2.3", "1Q", "1KiB", "1K", "1 Mi", "Mi", "1e",
                          "1e+", "1ee3", "1.5.Gi", "1mi", "--1", "1,000", " 1"}) {
    auto r = ParseQuantity(bad);
    ASSERT_FALSE(r.ok()) << "accepted \"" << bad << "\"";
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.error().message().find("quantity"), std::string::npos) << r.error().message();
  }
}

TEST(QuantityTest, RejectsValuesBeyondInt64) {
  for (const char* big : {"9223372036854775808", "8Ei", "1e19", "100000000000000000000", "10E"}) {
    auto r = ParseQuantity(big);
    ASSERT_FALSE(r.ok()) << big;
    EXPECT_EQ(r.error().code(), StatusCode::kOutOfRange) << big;
  }
  auto min = ParseQuantity("-9223372036854775808");
  ASSERT_TRUE(min.ok());
  EXPECT_EQ(*min, std::numeric_limits<int64_t>::min());
}

TEST(QuantityTest, ResourceAmountUsesMillicoresForCpuOnly) {
  EXPECT_EQ(*ResourceAmount("cpu", "1.5"), 1500);
  EXPECT_EQ(*ResourceAmount("cpu", "100m"), 100);
  EXPECT_EQ(*ResourceAmount("memory", "1Gi"), kGi);
  EXPECT_EQ(*ResourceAmount("nvidia.com/gpu", "4"), 4);
  EXPECT_EQ(*ResourceAmount("nvidia.com/mig-1g.5gb", "7"), 7);
  EXPECT_EQ(*ResourceAmount("ephemeral-storage", "10G"), 10'000'000'000);
  EXPECT_TRUE(IsMilliResource("cpu"));
  EXPECT_FALSE(IsMilliResource("nvidia.com/gpu"));
}

}  // namespace
}  // namespace gpu_autoscaler::kube
