#include "gpu/mig.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace gpu_autoscaler::gpu {
namespace {

// One row per profile of NVIDIA's "Supported MIG Profiles" tables.
struct ProfileRow {
  std::string_view gpu;
  std::string_view profile;
  int compute_slices;
  int memory_slices;
  int memory_gb;
  bool media_extensions;
  int max_instances;
  std::vector<int> starts;
  int span;
};

const std::vector<int> kAny1 = {0, 1, 2, 3, 4, 5, 6};
const std::vector<int> kEven = {0, 2, 4, 6};
const std::vector<int> k2g = {0, 2, 4};
const std::vector<int> k3g = {0, 4};
const std::vector<int> kZero = {0};

const std::vector<ProfileRow>& Rows() {
  static const std::vector<ProfileRow> rows = {
      {"A100-SXM4-40GB", "1g.5gb", 1, 1, 5, false, 7, kAny1, 1},
      {"A100-SXM4-40GB", "1g.5gb+me", 1, 1, 5, true, 1, kAny1, 1},
      {"A100-SXM4-40GB", "1g.10gb", 1, 2, 10, false, 4, kEven, 2},
      {"A100-SXM4-40GB", "2g.10gb", 2, 2, 10, false, 3, k2g, 2},
      {"A100-SXM4-40GB", "3g.20gb", 3, 4, 20, false, 2, k3g, 4},
      {"A100-SXM4-40GB", "4g.20gb", 4, 4, 20, false, 1, kZero, 4},
      {"A100-SXM4-40GB", "7g.40gb", 7, 8, 40, false, 1, kZero, 8},
      {"A100-80GB", "1g.10gb", 1, 1, 10, false, 7, kAny1, 1},
      {"A100-80GB", "1g.10gb+me", 1, 1, 10, true, 1, kAny1, 1},
      {"A100-80GB", "1g.20gb", 1, 2, 20, false, 4, kEven, 2},
      {"A100-80GB", "2g.20gb", 2, 2, 20, false, 3, k2g, 2},
      {"A100-80GB", "3g.40gb", 3, 4, 40, false, 2, k3g, 4},
      {"A100-80GB", "4g.40gb", 4, 4, 40, false, 1, kZero, 4},
      {"A100-80GB", "7g.80gb", 7, 8, 80, false, 1, kZero, 8},
      {"H100-80GB", "1g.10gb", 1, 1, 10, false, 7, kAny1, 1},
      {"H100-80GB", "1g.10gb+me", 1, 1, 10, true, 1, kAny1, 1},
      {"H100-80GB", "1g.20gb", 1, 2, 20, false, 4, kEven, 2},
      {"H100-80GB", "2g.20gb", 2, 2, 20, false, 3, k2g, 2},
      {"H100-80GB", "3g.40gb", 3, 4, 40, false, 2, k3g, 4},
      {"H100-80GB", "4g.40gb", 4, 4, 40, false, 1, kZero, 4},
      {"H100-80GB", "7g.80gb", 7, 8, 80, false, 1, kZero, 8},
      {"H100-94GB", "1g.12gb", 1, 1, 12, false, 7, kAny1, 1},
      {"H100-94GB", "1g.12gb+me", 1, 1, 12, true, 1, kAny1, 1},
      {"H100-94GB", "1g.24gb", 1, 2, 24, false, 4, kEven, 2},
      {"H100-94GB", "2g.24gb", 2, 2, 24, false, 3, k2g, 2},
      {"H100-94GB", "3g.47gb", 3, 4, 47, false, 2, k3g, 4},
      {"H100-94GB", "4g.47gb", 4, 4, 47, false, 1, kZero, 4},
      {"H100-94GB", "7g.94gb", 7, 8, 94, false, 1, kZero, 8},
      {"H200-141GB", "1g.18gb", 1, 1, 18, false, 7, kAny1, 1},
      {"H200-141GB", "1g.18gb+me", 1, 1, 18, true, 1, kAny1, 1},
      {"H200-141GB", "1g.35gb", 1, 2, 35, false, 4, kEven, 2},
      {"H200-141GB", "2g.35gb", 2, 2, 35, false, 3, k2g, 2},
      {"H200-141GB", "3g.71gb", 3, 4, 71, false, 2, k3g, 4},
      {"H200-141GB", "4g.71gb", 4, 4, 71, false, 1, kZero, 4},
      {"H200-141GB", "7g.141gb", 7, 8, 141, false, 1, kZero, 8},
  };
  return rows;
}

class MigProfileRowTest : public ::testing::TestWithParam<ProfileRow> {};

TEST_P(MigProfileRowTest, MatchesPublishedTable) {
  const ProfileRow& row = GetParam();
  const GpuSpec* gpu = FindGpu(row.gpu);
  ASSERT_NE(gpu, nullptr) << row.gpu;
  const MigProfile* p = FindProfile(*gpu, row.profile);
  ASSERT_NE(p, nullptr) << row.profile;
  EXPECT_EQ(p->compute_slices, row.compute_slices);
  EXPECT_EQ(p->memory_slices, row.memory_slices);
  EXPECT_EQ(p->memory_gb, row.memory_gb);
  EXPECT_EQ(p->media_extensions, row.media_extensions);
  EXPECT_EQ(p->max_instances, row.max_instances);
  EXPECT_EQ(p->placement_span, row.span);
  EXPECT_EQ(std::vector<int>(p->starts.begin(), p->starts.end()), row.starts);
  EXPECT_DOUBLE_EQ(ComputeFraction(*p), row.compute_slices / 7.0);
  EXPECT_DOUBLE_EQ(MemoryFraction(*p), row.memory_slices / 8.0);
  EXPECT_EQ(MigResourceName(p->name), "nvidia.com/mig-" + std::string(row.profile));
  EXPECT_EQ(ProfileFromResourceName(MigResourceName(p->name)), row.profile);

  // max_instances is exactly what fits on an empty GPU, one after another.
  MigLayout layout;
  for (int i = 0; i < row.max_instances; ++i) {
    auto start = FindPlacement(*gpu, layout, *p);
    ASSERT_TRUE(start.has_value()) << "instance " << i;
    layout.push_back({std::string(p->name), *start});
  }
  EXPECT_FALSE(CanAdd(*gpu, layout, *p));
  EXPECT_TRUE(ValidateLayout(*gpu, layout).ok());
  std::vector<std::string> names(row.max_instances, std::string(row.profile));
  EXPECT_TRUE(FitProfiles(*gpu, names).ok());
  names.push_back(std::string(row.profile));
  EXPECT_FALSE(FitProfiles(*gpu, names).ok());
}

INSTANTIATE_TEST_SUITE_P(AllRows, MigProfileRowTest, ::testing::ValuesIn(Rows()),
                         [](const ::testing::TestParamInfo<ProfileRow>& info) {
                           std::string name =
                               std::string(info.param.gpu) + "_" + std::string(info.param.profile);
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

TEST(MigCatalogueTest, EveryProfileHasARow) {
  size_t profiles = 0;
  for (const GpuSpec& gpu : AllGpus())
    profiles += gpu.profiles.size();
  EXPECT_EQ(profiles, Rows().size());
  EXPECT_EQ(AllGpus().size(), 5u);
}

struct ProductCase {
  std::string_view label;
  std::string_view canonical;
};

class NormalizeProductTest : public ::testing::TestWithParam<ProductCase> {};

TEST_P(NormalizeProductTest, MapsToCanonicalModel) {
  auto got = NormalizeGpuProduct(GetParam().label);
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(*got, GetParam().canonical);
}

INSTANTIATE_TEST_SUITE_P(Labels, NormalizeProductTest,
                         ::testing::Values(ProductCase{"NVIDIA-A100-SXM4-40GB", "A100-SXM4-40GB"},
                                           ProductCase{"NVIDIA-A100-PCIE-40GB", "A100-SXM4-40GB"},
                                           ProductCase{"NVIDIA-A100-SXM4-80GB", "A100-80GB"},
                                           ProductCase{"NVIDIA-A100-80GB-PCIe", "A100-80GB"},
                                           ProductCase{"NVIDIA-H100-80GB-HBM3", "H100-80GB"},
                                           ProductCase{"NVIDIA-H100-PCIe", "H100-80GB"},
                                           ProductCase{"NVIDIA-H100-NVL", "H100-94GB"},
                                           ProductCase{"NVIDIA-H100-NVL-SHARED", "H100-94GB"},
                                           ProductCase{"NVIDIA-H100-NVL-MIG-1g.12gb", "H100-94GB"},
                                           ProductCase{"NVIDIA-H200", "H200-141GB"},
                                           ProductCase{"NVIDIA H200 NVL", "H200-141GB"},
                                           ProductCase{"nvidia-a100-sxm4-40gb", "A100-SXM4-40GB"},
                                           ProductCase{"h100-80gb", "H100-80GB"},
                                           ProductCase{"A100-80GB", "A100-80GB"}));

TEST(NormalizeProductTest, RejectsUnknownGpus) {
  for (std::string_view label : {"Tesla-T4", "NVIDIA-L4", "", "NVIDIA-A30", "-MIG-"}) {
    auto got = NormalizeGpuProduct(label);
    ASSERT_FALSE(got.ok()) << label;
    EXPECT_NE(got.error().message().find("supported: A100-SXM4-40GB"), std::string::npos);
  }
}

TEST(MigResourceNameTest, ParsesOnlyMigResources) {
  EXPECT_EQ(ProfileFromResourceName("nvidia.com/mig-1g.10gb+me"), "1g.10gb+me");
  EXPECT_EQ(ProfileFromResourceName("nvidia.com/gpu"), std::nullopt);
  EXPECT_EQ(ProfileFromResourceName("nvidia.com/mig-"), std::nullopt);
  EXPECT_EQ(ProfileFromResourceName("example.com/mig-1g.5gb"), std::nullopt);
}

// Placement geometry: which additions fit a given layout.
struct PlacementCase {
  std::string name;
  MigLayout layout;
  std::string_view add;
  std::optional<int> start;  // expected lowest start, or nullopt
};

class PlacementTest : public ::testing::TestWithParam<PlacementCase> {};

TEST_P(PlacementTest, FindsLowestValidStart) {
  const GpuSpec& gpu = GetGpu(GpuModel::kA100Sxm4_40GB);
  const PlacementCase& c = GetParam();
  ASSERT_TRUE(ValidateLayout(gpu, c.layout).ok());
  const MigProfile* p = FindProfile(gpu, c.add);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(FindPlacement(gpu, c.layout, *p), c.start);
}

INSTANTIATE_TEST_SUITE_P(
    A100_40GB, PlacementTest,
    ::testing::Values(
        PlacementCase{"EmptyGpuTakesSeven", {}, "7g.40gb", 0},
        PlacementCase{"SevenNeedsEmptyGpu", {{"1g.5gb", 6}}, "7g.40gb", std::nullopt},
        PlacementCase{"FourGOnlyAtZero", {{"1g.5gb", 0}}, "4g.20gb", std::nullopt},
        PlacementCase{"ThreeGAfterFourG", {{"4g.20gb", 0}}, "3g.20gb", 4},
        PlacementCase{"TwoGSkipsUsedSlice", {{"1g.5gb", 0}}, "2g.10gb", 2},
        PlacementCase{"TwoGNeverAtSix", {{"3g.20gb", 0}, {"2g.10gb", 4}}, "2g.10gb", std::nullopt},
        PlacementCase{"OneGInLastFreeSlice", {{"3g.20gb", 0}, {"2g.10gb", 4}}, "1g.5gb", 6},
        PlacementCase{"OneG10gbAtSix", {{"4g.20gb", 0}, {"2g.10gb", 4}}, "1g.10gb", 6},
        PlacementCase{"ComputeExhausted", {{"4g.20gb", 0}, {"3g.20gb", 4}}, "1g.5gb", std::nullopt},
        PlacementCase{"SlotSevenIsNotA1gStart",
                      {{"3g.20gb", 0}, {"2g.10gb", 4}, {"1g.5gb", 6}},
                      "1g.5gb",
                      std::nullopt},
        PlacementCase{"OneMediaInstance", {{"1g.5gb+me", 0}}, "1g.5gb+me", std::nullopt},
        PlacementCase{"MediaBesidePlain", {{"1g.5gb+me", 0}}, "1g.5gb", 1}),
    [](const ::testing::TestParamInfo<PlacementCase>& info) { return info.param.name; });

TEST(ValidateLayoutTest, RejectsBadLayouts) {
  const GpuSpec& gpu = GetGpu(GpuModel::kH100_80GB);
  EXPECT_FALSE(ValidateLayout(gpu, {{"1g.5gb", 0}}).ok());                   // A100-40GB name
  EXPECT_FALSE(ValidateLayout(gpu, {{"2g.20gb", 1}}).ok());                  // odd start
  EXPECT_FALSE(ValidateLayout(gpu, {{"3g.40gb", 2}}).ok());                  // not a 3g start
  EXPECT_FALSE(ValidateLayout(gpu, {{"3g.40gb", 0}, {"1g.10gb", 3}}).ok());  // overlap
  EXPECT_TRUE(ValidateLayout(gpu, {{"3g.40gb", 0}, {"3g.40gb", 4}}).ok());
}

struct FitCase {
  std::string name;
  GpuModel model;
  std::vector<std::string> profiles;
  bool fits;
};

class FitProfilesTest : public ::testing::TestWithParam<FitCase> {};

TEST_P(FitProfilesTest, SearchesPlacements) {
  const FitCase& c = GetParam();
  const GpuSpec& gpu = GetGpu(c.model);
  auto layout = FitProfiles(gpu, c.profiles);
  ASSERT_EQ(layout.ok(), c.fits) << (layout.ok() ? "fits" : layout.error().ToString());
  if (!c.fits) {
    EXPECT_EQ(layout.error().code(), StatusCode::kNotFound);
    return;
  }
  EXPECT_TRUE(ValidateLayout(gpu, *layout).ok());
  std::multiset<std::string> want(c.profiles.begin(), c.profiles.end());
  std::multiset<std::string> got;
  for (const MigInstance& i : *layout)
    got.insert(i.profile);
  EXPECT_EQ(got, want);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, FitProfilesTest,
    ::testing::Values(
        FitCase{"ThreeTwoOneOneA100",
                GpuModel::kA100Sxm4_40GB,
                {"1g.5gb", "3g.20gb", "1g.5gb", "2g.10gb"},
                true},
        FitCase{"FourThreeA100", GpuModel::kA100Sxm4_40GB, {"3g.20gb", "4g.20gb"}, true},
        FitCase{"FourThreeOneTooMuch",
                GpuModel::kA100Sxm4_40GB,
                {"3g.20gb", "4g.20gb", "1g.5gb"},
                false},
        FitCase{"TwoFourG", GpuModel::kA100_80GB, {"4g.40gb", "4g.40gb"}, false},
        FitCase{"SevenOnes", GpuModel::kH100_80GB, std::vector<std::string>(7, "1g.10gb"), true},
        // Three 2g take slices 0-5; 1g.20gb needs 6-7.
        FitCase{"Three2gAndWide1g",
                GpuModel::kH100_94GB,
                {"2g.24gb", "2g.24gb", "2g.24gb", "1g.24gb"},
                true},
        FitCase{"Four1gWideAndOne1g",
                GpuModel::kH200_141GB,
                {"1g.35gb", "1g.35gb", "1g.35gb", "1g.35gb", "1g.18gb"},
                false},
        // Order-sensitive: a greedy 1g at slice 0 would block the 4g.
        FitCase{"SmallFirstStillFits",
                GpuModel::kH200_141GB,
                {"1g.18gb", "1g.18gb", "1g.18gb", "4g.71gb"},
                true},
        FitCase{"TwoMedia", GpuModel::kA100_80GB, {"1g.10gb+me", "1g.10gb+me"}, false},
        FitCase{"Empty", GpuModel::kA100_80GB, {}, true}),
    [](const ::testing::TestParamInfo<FitCase>& info) { return info.param.name; });

TEST(FitProfilesTest, KeepsExistingLayout) {
  const GpuSpec& gpu = GetGpu(GpuModel::kA100Sxm4_40GB);
  MigLayout existing = {{"1g.5gb", 0}};
  auto layout = FitProfiles(gpu, existing, {"3g.20gb", "2g.10gb"});
  ASSERT_TRUE(layout.ok()) << layout.error().ToString();
  EXPECT_EQ((*layout)[0], (MigInstance{"1g.5gb", 0}));
  EXPECT_TRUE(ValidateLayout(gpu, *layout).ok());
  // The existing 1g at slice 0 blocks the only 4g start.
  EXPECT_FALSE(FitProfiles(gpu, existing, {"4g.20gb"}).ok());
  auto unknown = FitProfiles(gpu, {"9g.99gb"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gpu_autoscaler::gpu
