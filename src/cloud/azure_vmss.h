// File: src/cloud/azure_vmss.h
//
// The "azure-vmss" provider: VM scale sets through Azure Resource Manager
// (Microsoft.Compute/virtualMachineScaleSets, api-version 2024-07-01 by
// default). A group is named
// "subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachineScaleSets/N"
// (a leading '/' is fine), or just "N" with the subscription and resource
// group in the options.
//
//   AzureVmssOptions o;  o.subscription_id = "...";  o.resource_group = "gpu-rg";
//   AzureVmssProvider vmss(o, transport, tokens, RealClock::Instance());
//   GPU_RETURN_IF_ERROR(vmss.SetDesiredSize("gpu-nc-a100", 4));
//
// Scaling PATCHes sku.capacity; deleting POSTs .../delete with instanceIds.
// ResizeFrom reads the scale set and PATCHes with If-Match: its ETag, so a
// capacity someone else set since is never overwritten (412: kConflict).
// Both are long-running: the provider follows Azure-AsyncOperation (or else
// Location) until Succeeded or Failed, waiting Retry-After between polls, and
// only to URLs under the ARM endpoint (the bearer token goes nowhere else).
// Deleting instances always lowers sku.capacity; without decrement_desired the
// provider then raises the capacity it reads by as many, with that read's
// ETag in If-Match, so that the scale set replaces them and a resize by
// someone else is kept (412: kConflict, the instances deleted all the same).
//
// Thread-safety: safe to call from many threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cloud/cloud_http.h"
#include "cloud/node_group.h"

namespace gpu_autoscaler::cloud {

struct AzureVmssOptions {
  std::string arm_endpoint = "https://management.azure.com";
  std::string api_version = "2024-07-01";
  std::string subscription_id{};  // for short group names
  std::string resource_group{};
  int min_size = 0;  // a scale set has no bounds of its own
  int max_size = 1000;
  RetryPolicy retry{};
  std::chrono::milliseconds request_timeout{30'000};
  Clock::Duration poll_interval = std::chrono::seconds(5);  // when Retry-After is absent
  Clock::Duration operation_limit = std::chrono::minutes(15);
};

struct AzureVmssRef {
  std::string subscription_id, resource_group, name;
  // "/subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachineScaleSets/N"
  std::string Path() const;
};
Result<AzureVmssRef> ParseAzureVmssName(std::string_view group, const AzureVmssOptions& options);

// "azure://" + ref.Path() + "/virtualMachines/<instance_id>".
std::string AzureProviderId(const AzureVmssRef& ref, std::string_view instance_id);

// --- Parsers of ARM JSON (pure; fuzzed). ---

struct AzureVmssInfo {
  std::string name, location, provisioning_state;
  int capacity = 0;
  Lifecycle lifecycle = Lifecycle::kUnknown;  // virtualMachineProfile.priority
  std::string etag{};                         // for If-Match; "" when the API version returns none
};
Result<AzureVmssInfo> ParseAzureVmss(std::string_view json);

struct AzureVmssVm {
  std::string instance_id;
  std::string name;
  std::string zone;  // "<location>-<zone>" as the topology label has it, or the location
  std::string provisioning_state;
};
struct AzureVmssVmPage {
  std::vector<AzureVmssVm> vms;
  std::string next_link;
};
Result<AzureVmssVmPage> ParseAzureVmssVms(std::string_view json);

struct AzureAsyncStatus {
  std::string status;  // InProgress, Succeeded, Failed, Canceled
  CloudError error;    // kind set when Failed/Canceled
};
Result<AzureAsyncStatus> ParseAzureAsyncOperation(std::string_view json);

// The kind an ARM/Compute error code means (AllocationFailed,
// SkuNotAvailable, QuotaExceeded, OperationNotAllowed with a quota message,
// AuthorizationFailed, ...); kNone when unknown.
ProviderErrorKind AzureErrorCodeKind(std::string_view code, std::string_view message);
// Reads {"error": {"code", "message", "details": [...]}}; 429 is kThrottled.
CloudError ClassifyAzureHttpError(const kube::HttpResponse& resp);

class AzureVmssProvider final : public NodeGroupProvider {
 public:
  AzureVmssProvider(AzureVmssOptions options, std::shared_ptr<kube::HttpTransport> transport,
                    std::shared_ptr<AccessTokenSource> tokens, Clock& clock, Sleeper sleeper = {});

  std::string_view Name() const override { return "azure-vmss"; }
  Result<NodeGroup> Describe(const std::string& group) override;
  Status SetDesiredSize(const std::string& group, int desired) override;
  Status ResizeFrom(const std::string& group, int expected, int desired) override;
  Status TerminateInstances(const std::string& group, const std::vector<std::string>& instance_ids,
                            bool decrement_desired) override;
  Result<std::string> InstanceIdFromProviderId(std::string_view provider_id) const override;

 private:
  Result<kube::HttpResponse> Call(std::string method, std::string url, std::string body,
                                  std::string_view what, std::string if_match = "");
  Result<AzureVmssInfo> GetVmss(const AzureVmssRef& ref);
  // With `if_match`, only while the scale set still has that ETag.
  Status SetCapacity(const AzureVmssRef& ref, int capacity, const std::string& if_match = "");
  // The scale set, when `desired` is within the options' size limits.
  Result<AzureVmssRef> ResizableGroup(const std::string& group, int desired) const;
  Status WaitForCompletion(const kube::HttpResponse& initial, std::string_view what);
  std::string Url(const AzureVmssRef& ref, std::string_view suffix = "") const;

  AzureVmssOptions options_;
  std::shared_ptr<AccessTokenSource> tokens_;
  CloudHttp http_;
};

}  // namespace gpu_autoscaler::cloud
