// File: src/gpu/mig.h
//
// NVIDIA Multi-Instance GPU (MIG) catalogue: the GPU instance profiles that
// NVIDIA publishes for each MIG-capable GPU this project supports, with their
// compute and memory slices, instance limits and placement geometry, plus the
// names Kubernetes sees (node label `nvidia.com/gpu.product`, device plugin
// mixed-strategy resources `nvidia.com/mig-<profile>`).
//
//   const GpuSpec* gpu = FindGpu(NormalizeGpuProduct("NVIDIA-A100-SXM4-40GB").value());
//   const MigProfile* p = FindProfile(*gpu, "3g.20gb");
//   MigLayout layout;                                    // empty GPU
//   auto start = FindPlacement(*gpu, layout, *p);        // -> 0
//   auto fit = FitProfiles(*gpu, {"3g.20gb", "2g.10gb", "1g.5gb"});
//
// Placement model (NVIDIA MIG user guide, "A100 MIG Profiles" placement
// figure / `nvidia-smi mig -lgipp`): a GPU has 8 memory slices; an instance of
// a profile occupies `placement_span` consecutive memory slices starting at
// one of the profile's valid start slices. Instances may not share memory
// slices, the sum of compute slices may not exceed 7, and at most one `+me`
// (media extensions) instance may exist.
//
// Thread-safety: the catalogue is immutable static data; all functions are pure.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gpu_autoscaler::gpu {

inline constexpr int kComputeSlices = 7;  // GPCs on every supported GPU
inline constexpr int kMemorySlices = 8;

enum class GpuModel {
  kA100Sxm4_40GB,  // "A100-SXM4-40GB" (also A100-PCIE-40GB: same table)
  kA100_80GB,      // "A100-80GB": A100-SXM4-80GB and A100 80GB PCIe
  kH100_80GB,      // "H100-80GB": H100 SXM5 (80GB HBM3) and H100 PCIe
  kH100_94GB,      // "H100-94GB": H100 NVL
  kH200_141GB,     // "H200-141GB": H200 SXM and H200 NVL
};

struct MigProfile {
  std::string_view name;        // "1g.5gb", "1g.5gb+me"
  int compute_slices;           // GPCs, of kComputeSlices
  int memory_slices;            // of kMemorySlices
  int memory_gb;                // the size in the profile name (NVIDIA's nominal GB)
  bool media_extensions;        // "+me": owns the GPU's media engines (one per GPU)
  int max_instances;            // how many fit on one empty GPU
  int placement_span;           // memory slices one placement occupies
  std::span<const int> starts;  // valid start memory slices
};

struct GpuSpec {
  GpuModel model;
  std::string_view name;  // canonical model name, "A100-SXM4-40GB"
  int memory_gb;          // nominal total memory
  std::span<const MigProfile> profiles;
  // `nvidia.com/gpu.product` values (GPU feature discovery) of this model.
  std::span<const std::string_view> product_labels;
};

// Every supported GPU, in GpuModel order.
std::span<const GpuSpec> AllGpus();
const GpuSpec& GetGpu(GpuModel model);
// By canonical name ("H100-80GB"), case-insensitive; nullptr when unknown.
const GpuSpec* FindGpu(std::string_view canonical_name);
const MigProfile* FindProfile(const GpuSpec& gpu, std::string_view profile_name);

// Maps a `nvidia.com/gpu.product` label value or a canonical name to the
// canonical model name: "NVIDIA-A100-SXM4-40GB" -> "A100-SXM4-40GB",
// "NVIDIA-H100-80GB-HBM3" -> "H100-80GB", "NVIDIA-H100-NVL" -> "H100-94GB".
// GFD suffixes ("-SHARED", "-MIG-1g.5gb") are ignored. InvalidArgument when
// the product is not a supported MIG GPU.
Result<std::string> NormalizeGpuProduct(std::string_view product);
Result<GpuModel> ParseGpuModel(std::string_view product_or_name);

// Share of the whole GPU that one instance of the profile gets.
double ComputeFraction(const MigProfile& profile);  // compute_slices / 7
double MemoryFraction(const MigProfile& profile);   // memory_slices / 8

// "nvidia.com/mig-1g.5gb" (device plugin, mixed strategy).
std::string MigResourceName(std::string_view profile_name);
// "nvidia.com/mig-1g.10gb+me" -> "1g.10gb+me"; nullopt for other resources.
std::optional<std::string_view> ProfileFromResourceName(std::string_view resource);

// One GPU instance of a layout.
struct MigInstance {
  std::string profile;
  int start = 0;  // first memory slice
  friend bool operator==(const MigInstance&, const MigInstance&) = default;
};
using MigLayout = std::vector<MigInstance>;

// Checks that every instance names a profile of `gpu`, sits at a valid start,
// and that instances neither overlap nor exceed compute / +me limits.
Status ValidateLayout(const GpuSpec& gpu, const MigLayout& layout);

// The lowest valid start slice at which `profile` can be added to `layout`
// (which must be valid), or nullopt when it does not fit.
std::optional<int> FindPlacement(const GpuSpec& gpu, const MigLayout& layout,
                                 const MigProfile& profile);
inline bool CanAdd(const GpuSpec& gpu, const MigLayout& layout, const MigProfile& profile) {
  return FindPlacement(gpu, layout, profile).has_value();
}

// A layout holding one instance per entry of `profiles` (a multiset; order
// does not matter) on an empty GPU, found by exhaustive search over
// placements. InvalidArgument for unknown profile names, NotFound when no
// placement of the set exists. Deterministic: larger profiles are placed
// first, each at its lowest feasible start.
Result<MigLayout> FitProfiles(const GpuSpec& gpu, const std::vector<std::string>& profiles);
// Same, but keeps `existing` as it is and places only `added`.
Result<MigLayout> FitProfiles(const GpuSpec& gpu, const MigLayout& existing,
                              const std::vector<std::string>& added);

}  // namespace gpu_autoscaler::gpu
