// Fuzzes the Compute v1 JSON the gcp-mig provider reads (Operation,
// InstanceGroupManager, listManagedInstances pages, instance templates, error
// bodies): any bytes give a value or an error, never a crash or an exception.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cloud/gcp_mig.h"

using namespace gpu_autoscaler::cloud;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto op = ParseGcpOperation(text);
  if (op.ok()) {
    CloudError err = GcpOperationError(*op);
    if (op->status == "DONE" && !op->errors.empty() && err.kind == ProviderErrorKind::kNone) {
      std::abort();  // a failed operation always has a kind
    }
  }
  auto mig = ParseGcpMig(text);
  if (mig.ok() && mig->target_size < 0) std::abort();
  auto page = ParseGcpManagedInstances(text);
  if (page.ok()) {
    for (const auto& inst : page->instances) {
      if (inst.name.empty()) std::abort();
    }
  }
  (void)GcpTemplateLifecycle(text);
  gpu_autoscaler::kube::HttpResponse resp;
  resp.status = size > 0 ? 400 + data[0] % 200 : 500;
  resp.body = std::string(text);
  if (ClassifyGcpHttpError(resp).kind == ProviderErrorKind::kNone) std::abort();
  return 0;
}
