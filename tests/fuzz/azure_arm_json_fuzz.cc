// Fuzzes the ARM JSON the azure-vmss provider reads (scale set, VM list pages,
// Azure-AsyncOperation status, error bodies): any bytes give a value or an
// error, never a crash or an exception.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cloud/azure_vmss.h"

using namespace gpu_autoscaler::cloud;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto vmss = ParseAzureVmss(text);
  if (vmss.ok() && vmss->capacity < 0) std::abort();
  auto vms = ParseAzureVmssVms(text);
  if (vms.ok()) {
    for (const auto& vm : vms->vms) {
      if (vm.instance_id.empty()) std::abort();
    }
  }
  auto status = ParseAzureAsyncOperation(text);
  if (status.ok() && (status->status == "Failed" || status->status == "Canceled") &&
      status->error.kind == ProviderErrorKind::kNone) {
    std::abort();  // a failed operation always has a kind
  }
  gpu_autoscaler::kube::HttpResponse resp;
  resp.status = size > 0 ? 400 + data[0] % 200 : 500;
  resp.body = std::string(text);
  if (ClassifyAzureHttpError(resp).kind == ProviderErrorKind::kNone) std::abort();
  return 0;
}
