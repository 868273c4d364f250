#include "gpu/mig.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

namespace gpu_autoscaler::gpu {
namespace {

// Placement geometry shared by every GPU in the catalogue (`nvidia-smi mig
// -lgipp` on A100, H100, H100 NVL and H200 lists the same starts).
constexpr std::array<int, 7> kStartsAny1{0, 1, 2, 3, 4, 5, 6};  // 1g.*  (profile IDs 19, 20)
constexpr std::array<int, 4> kStartsEven{0, 2, 4, 6};           // 1g.2x (ID 15)
constexpr std::array<int, 3> kStarts2g{0, 2, 4};                // 2g.*  (ID 14)
constexpr std::array<int, 2> kStarts3g{0, 4};                   // 3g.*  (ID 9)
constexpr std::array<int, 1> kStartsZero{0};                    // 4g.*, 7g.* (IDs 5, 0)

// One table per GPU, from NVIDIA's "Supported MIG Profiles" (MIG user guide).
// Columns: name, compute slices, memory slices, nominal GB, +me, max count,
// placement span, starts.
#define GPA_MIG_TABLE(g1, g1x2, g2, g3, g7)                                 \
  {                                                                         \
    MigProfile{"1g." #g1 "gb", 1, 1, g1, false, 7, 1, kStartsAny1},         \
        MigProfile{"1g." #g1 "gb+me", 1, 1, g1, true, 1, 1, kStartsAny1},   \
        MigProfile{"1g." #g1x2 "gb", 1, 2, g1x2, false, 4, 2, kStartsEven}, \
        MigProfile{"2g." #g2 "gb", 2, 2, g2, false, 3, 2, kStarts2g},       \
        MigProfile{"3g." #g3 "gb", 3, 4, g3, false, 2, 4, kStarts3g},       \
        MigProfile{"4g." #g3 "gb", 4, 4, g3, false, 1, 4, kStartsZero},     \
        MigProfile{"7g." #g7 "gb", 7, 8, g7, false, 1, 8, kStartsZero},     \
  }

constexpr std::array<MigProfile, 7> kA100_40 = GPA_MIG_TABLE(5, 10, 10, 20, 40);
constexpr std::array<MigProfile, 7> kA100_80 = GPA_MIG_TABLE(10, 20, 20, 40, 80);
constexpr std::array<MigProfile, 7> kH100_80 = GPA_MIG_TABLE(10, 20, 20, 40, 80);
constexpr std::array<MigProfile, 7> kH100_94 = GPA_MIG_TABLE(12, 24, 24, 47, 94);
constexpr std::array<MigProfile, 7> kH200_141 = GPA_MIG_TABLE(18, 35, 35, 71, 141);
#undef GPA_MIG_TABLE

constexpr std::array<std::string_view, 2> kA100_40Products{"NVIDIA-A100-SXM4-40GB",
                                                           "NVIDIA-A100-PCIE-40GB"};
constexpr std::array<std::string_view, 3> kA100_80Products{
    "NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-80GB-PCIe", "NVIDIA-A100-PCIE-80GB"};
constexpr std::array<std::string_view, 3> kH100_80Products{
    "NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe", "NVIDIA-H100-SXM5-80GB"};
constexpr std::array<std::string_view, 1> kH100_94Products{"NVIDIA-H100-NVL"};
constexpr std::array<std::string_view, 2> kH200Products{"NVIDIA-H200", "NVIDIA-H200-NVL"};

constexpr std::array<GpuSpec, 5> kGpus{
    GpuSpec{GpuModel::kA100Sxm4_40GB, "A100-SXM4-40GB", 40, kA100_40, kA100_40Products},
    GpuSpec{GpuModel::kA100_80GB, "A100-80GB", 80, kA100_80, kA100_80Products},
    GpuSpec{GpuModel::kH100_80GB, "H100-80GB", 80, kH100_80, kH100_80Products},
    GpuSpec{GpuModel::kH100_94GB, "H100-94GB", 94, kH100_94, kH100_94Products},
    GpuSpec{GpuModel::kH200_141GB, "H200-141GB", 141, kH200_141, kH200Products},
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Bitmask of the memory slices one placement covers.
unsigned SliceMask(int start, int span) {
  return ((1u << span) - 1u) << start;
}

struct LayoutUsage {
  unsigned slices = 0;
  int compute = 0;
  bool media = false;
};

bool FitsAt(const LayoutUsage& used, const MigProfile& p, int start) {
  if (used.compute + p.compute_slices > kComputeSlices) return false;
  if (p.media_extensions && used.media) return false;
  return (used.slices & SliceMask(start, p.placement_span)) == 0;
}

void Occupy(LayoutUsage& used, const MigProfile& p, int start) {
  used.slices |= SliceMask(start, p.placement_span);
  used.compute += p.compute_slices;
  used.media = used.media || p.media_extensions;
}

bool Search(const std::vector<const MigProfile*>& todo, size_t next, LayoutUsage used,
            MigLayout& out) {
  if (next == todo.size()) return true;
  const MigProfile& p = *todo[next];
  // Identical profiles are placed at increasing starts so that permutations
  // of the same placements are not searched twice.
  int min_start = 0;
  if (next > 0 && todo[next - 1] == todo[next]) min_start = out.back().start + 1;
  for (int start : p.starts) {
    if (start < min_start || !FitsAt(used, p, start)) continue;
    LayoutUsage after = used;
    Occupy(after, p, start);
    out.push_back({std::string(p.name), start});
    if (Search(todo, next + 1, after, out)) return true;
    out.pop_back();
  }
  return false;
}

}  // namespace

std::span<const GpuSpec> AllGpus() {
  return kGpus;
}

const GpuSpec& GetGpu(GpuModel model) {
  return kGpus[static_cast<size_t>(model)];
}

const GpuSpec* FindGpu(std::string_view canonical_name) {
  for (const GpuSpec& gpu : kGpus) {
    if (EqualsIgnoreCase(gpu.name, canonical_name)) return &gpu;
  }
  return nullptr;
}

const MigProfile* FindProfile(const GpuSpec& gpu, std::string_view profile_name) {
  for (const MigProfile& p : gpu.profiles) {
    if (p.name == profile_name) return &p;
  }
  return nullptr;
}

Result<GpuModel> ParseGpuModel(std::string_view product) {
  if (const GpuSpec* gpu = FindGpu(product)) return gpu->model;
  std::string up = Upper(product);
  // GPU feature discovery appends "-SHARED" (time-slicing/MPS without
  // renameByDefault) and "-MIG-<profile>" (single strategy) to the product.
  if (size_t mig = up.find("-MIG-"); mig != std::string::npos) up.resize(mig);
  constexpr std::string_view kShared = "-SHARED";
  if (up.size() > kShared.size() && up.ends_with(kShared)) up.resize(up.size() - kShared.size());
  for (const GpuSpec& gpu : kGpus) {
    for (std::string_view label : gpu.product_labels) {
      if (EqualsIgnoreCase(label, up)) return gpu.model;
    }
  }
  // Also accept the NVML name itself ("NVIDIA A100-SXM4-40GB", "NVIDIA H100 NVL").
  std::replace(up.begin(), up.end(), ' ', '-');
  if (up != Upper(product)) return ParseGpuModel(up);
  return InvalidArgumentError("unknown MIG-capable GPU \"" + std::string(product) +
                              "\"; supported: A100-SXM4-40GB, A100-80GB, H100-80GB, "
                              "H100-94GB, H200-141GB");
}

Result<std::string> NormalizeGpuProduct(std::string_view product) {
  GPU_ASSIGN_OR_RETURN(GpuModel model, ParseGpuModel(product));
  return std::string(GetGpu(model).name);
}

double ComputeFraction(const MigProfile& profile) {
  return static_cast<double>(profile.compute_slices) / kComputeSlices;
}

double MemoryFraction(const MigProfile& profile) {
  return static_cast<double>(profile.memory_slices) / kMemorySlices;
}

std::string MigResourceName(std::string_view profile_name) {
  return "nvidia.com/mig-" + std::string(profile_name);
}

std::optional<std::string_view> ProfileFromResourceName(std::string_view resource) {
  constexpr std::string_view kPrefix = "nvidia.com/mig-";
  if (!resource.starts_with(kPrefix) || resource.size() == kPrefix.size()) return std::nullopt;
  return resource.substr(kPrefix.size());
}

Status ValidateLayout(const GpuSpec& gpu, const MigLayout& layout) {
  LayoutUsage used;
  for (const MigInstance& inst : layout) {
    const MigProfile* p = FindProfile(gpu, inst.profile);
    if (p == nullptr) {
      return InvalidArgumentError("profile \"" + inst.profile + "\" does not exist on " +
                                  std::string(gpu.name));
    }
    if (std::find(p->starts.begin(), p->starts.end(), inst.start) == p->starts.end()) {
      return InvalidArgumentError("profile " + inst.profile + " cannot start at memory slice " +
                                  std::to_string(inst.start));
    }
    if (!FitsAt(used, *p, inst.start)) {
      return InvalidArgumentError("profile " + inst.profile + " at memory slice " +
                                  std::to_string(inst.start) +
                                  " overlaps another instance or exceeds the GPU");
    }
    Occupy(used, *p, inst.start);
  }
  return Status::Ok();
}

std::optional<int> FindPlacement(const GpuSpec& gpu, const MigLayout& layout,
                                 const MigProfile& profile) {
  LayoutUsage used;
  for (const MigInstance& inst : layout) {
    const MigProfile* p = FindProfile(gpu, inst.profile);
    if (p == nullptr) return std::nullopt;
    Occupy(used, *p, inst.start);
  }
  for (int start : profile.starts) {
    if (FitsAt(used, profile, start)) return start;
  }
  return std::nullopt;
}

Result<MigLayout> FitProfiles(const GpuSpec& gpu, const std::vector<std::string>& profiles) {
  return FitProfiles(gpu, MigLayout{}, profiles);
}

Result<MigLayout> FitProfiles(const GpuSpec& gpu, const MigLayout& existing,
                              const std::vector<std::string>& added) {
  GPU_RETURN_IF_ERROR(ValidateLayout(gpu, existing));
  std::vector<const MigProfile*> todo;
  todo.reserve(added.size());
  for (const std::string& name : added) {
    const MigProfile* p = FindProfile(gpu, name);
    if (p == nullptr) {
      return InvalidArgumentError("profile \"" + name + "\" does not exist on " +
                                  std::string(gpu.name));
    }
    todo.push_back(p);
  }
  // Big, constrained profiles first: they have the fewest starts, so the
  // search prunes early. Pointer order keeps identical profiles adjacent.
  std::sort(todo.begin(), todo.end(), [](const MigProfile* a, const MigProfile* b) {
    if (a->placement_span != b->placement_span) return a->placement_span > b->placement_span;
    if (a->compute_slices != b->compute_slices) return a->compute_slices > b->compute_slices;
    return a < b;
  });
  LayoutUsage used;
  for (const MigInstance& inst : existing)
    Occupy(used, *FindProfile(gpu, inst.profile), inst.start);
  MigLayout placed;
  if (!Search(todo, 0, used, placed)) {
    return NotFoundError("no placement of the requested profiles fits one " +
                         std::string(gpu.name));
  }
  MigLayout out = existing;
  out.insert(out.end(), placed.begin(), placed.end());
  return out;
}

}  // namespace gpu_autoscaler::gpu
