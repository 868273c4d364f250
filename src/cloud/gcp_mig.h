// File: src/cloud/gcp_mig.h
//
// The "gcp-mig" provider: zonal managed instance groups through the Compute
// Engine v1 API (instanceGroupManagers get / resize / deleteInstances /
// listManagedInstances, zone operations). A group is named
// "projects/P/zones/Z/instanceGroupManagers/N", or just "N" with the project
// and zone in the options.
//
//   GcpMigOptions o;  o.project = "ml-prod";  o.zone = "us-central1-a";
//   GcpMigProvider mig(o, transport, tokens, RealClock::Instance());
//   GPU_RETURN_IF_ERROR(mig.SetDesiredSize("gpu-a100-spot", 4));
//
// A resize's Operation being DONE means the resize was scheduled; instance
// creation errors (ZONE_RESOURCE_POOL_EXHAUSTED, QUOTA_EXCEEDED) show up in
// listManagedInstances as instances left CREATING with lastAttempt.errors.
// SetDesiredSize checks them once after a scale-up; LaunchFailure reports
// them later (the controller then shrinks the group and falls back);
// Describe leaves such instances out (no VM stands behind them, so desired >
// instances), and shrinking deletes them by name before resizing.
// deleteInstances always lowers targetSize; without decrement_desired the
// provider resizes back to the previous target afterwards.
//
// Thread-safety: safe to call from many threads (no shared mutable state but
// a template-lifecycle cache under a mutex).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "cloud/cloud_http.h"
#include "cloud/node_group.h"

namespace gpu_autoscaler::cloud {

struct GcpMigOptions {
  std::string compute_endpoint = "https://compute.googleapis.com/compute/v1";
  std::string project{};  // for short group names
  std::string zone{};
  int min_size = 0;  // a MIG has no bounds of its own
  int max_size = 1000;
  RetryPolicy retry{};
  std::chrono::milliseconds request_timeout{30'000};
  Clock::Duration poll_interval = std::chrono::seconds(2);
  Clock::Duration operation_limit = std::chrono::minutes(10);
  int page_size = 500;  // listManagedInstances maxResults
};

struct GcpMigRef {
  std::string project, zone, name;
  std::string Path() const;  // "projects/P/zones/Z/instanceGroupManagers/N"
};
Result<GcpMigRef> ParseGcpMigName(std::string_view group, const GcpMigOptions& options);

// "gce://<project>/<zone>/<instance>".
std::string GcpProviderId(std::string_view project, std::string_view zone,
                          std::string_view instance);

// --- Parsers of the API's JSON (pure; fuzzed). ---

struct GcpOperation {
  std::string name;
  std::string status;  // PENDING, RUNNING, DONE
  std::vector<CloudError> errors;
  int http_error_status = 0;
};
Result<GcpOperation> ParseGcpOperation(std::string_view json);
// kNone when DONE without errors; else the kind of the first classified error.
CloudError GcpOperationError(const GcpOperation& op);

struct GcpMigInfo {
  std::string name;
  std::string instance_template;  // URL
  int target_size = 0;
};
Result<GcpMigInfo> ParseGcpMig(std::string_view json);

struct GcpManagedInstance {
  std::string name;  // last segment of the instance URL
  std::string zone;
  std::string instance_status;  // RUNNING, STAGING, ... ("" while creating)
  std::string current_action;   // NONE, CREATING, DELETING, ...
  std::vector<CloudError> last_attempt_errors;
};
struct GcpManagedInstancePage {
  std::vector<GcpManagedInstance> instances;
  std::string next_page_token;
};
Result<GcpManagedInstancePage> ParseGcpManagedInstances(std::string_view json);

// Spot when the template's scheduling says provisioningModel SPOT or
// preemptible true; on-demand when it says STANDARD / false; else unknown.
Lifecycle GcpTemplateLifecycle(std::string_view json);

// The kind a Compute error code or reason means (ZONE_RESOURCE_POOL_EXHAUSTED,
// QUOTA_EXCEEDED, rateLimitExceeded, ...); kNone when unknown.
ProviderErrorKind GcpErrorCodeKind(std::string_view code);
// Reads {"error": {"code", "message", "errors": [{"reason", ...}]}}.
CloudError ClassifyGcpHttpError(const kube::HttpResponse& resp);

class GcpMigProvider final : public NodeGroupProvider {
 public:
  GcpMigProvider(GcpMigOptions options, std::shared_ptr<kube::HttpTransport> transport,
                 std::shared_ptr<AccessTokenSource> tokens, Clock& clock, Sleeper sleeper = {});

  std::string_view Name() const override { return "gcp-mig"; }
  Result<NodeGroup> Describe(const std::string& group) override;
  Status SetDesiredSize(const std::string& group, int desired) override;
  // The MIG's targetSize from one GET (Describe also lists its instances).
  Result<int> CurrentSize(const std::string& group) override;
  Status TerminateInstances(const std::string& group, const std::vector<std::string>& instance_ids,
                            bool decrement_desired) override;
  Result<std::string> InstanceIdFromProviderId(std::string_view provider_id) const override;
  Status LaunchFailure(const std::string& group) override;

 private:
  Result<kube::HttpResponse> Call(std::string method, std::string url, std::string body,
                                  std::string_view what);
  Result<GcpMigInfo> GetMig(const GcpMigRef& ref);
  Result<std::vector<GcpManagedInstance>> ListInstances(const GcpMigRef& ref);
  Status Resize(const GcpMigRef& ref, int size);
  Status WaitForOperation(const GcpMigRef& ref, std::string_view operation_json,
                          std::string_view what);
  Lifecycle TemplateLifecycle(const std::string& template_url);
  std::string MigUrl(const GcpMigRef& ref) const;

  GcpMigOptions options_;
  std::shared_ptr<AccessTokenSource> tokens_;
  CloudHttp http_;
  std::mutex mu_;
  std::map<std::string, Lifecycle> template_lifecycle_;  // templates are immutable
};

}  // namespace gpu_autoscaler::cloud
