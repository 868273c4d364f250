// File: tests/support/fake_azure.h
//
// Loopback fakes of the Azure endpoints the azure-vmss provider talks to:
//  - FakeAzure (HTTPS): the AAD v2.0 token endpoint (client secret or
//    federated client assertion) and ARM virtualMachineScaleSets get / PATCH
//    sku.capacity / POST delete / list virtualMachines (paged by nextLink),
//    with long-running operations answered through Azure-AsyncOperation
//    (PATCH) and Location (delete): in progress first, then done. Faults:
//    429 + Retry-After throttling, an allocation failure above a capacity
//    limit, a core quota, a hung server, a polling URL outside ARM. Scale
//    sets carry an ETag that every capacity change moves; a PATCH with a
//    stale If-Match gets 412 PreconditionFailed.
//  - FakeAzureImds (plain HTTP): managed-identity tokens and Scheduled Events.
//
//   auto azure = FakeAzure::Start();
//   azure->AddVmss("gpu-nc", 2, /*spot=*/true);
//   // ARM and login endpoint: azure->endpoint(); CA: azure->ca_pem()
//
// Thread-safety: all methods are safe to call while the server runs.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "net/http_server.h"
#include "support/fake_cloud_server.h"

namespace gpu_autoscaler::testing {

class FakeAzure {
 public:
  static constexpr const char* kSubscription = "0b1f6471-1bf0-4dda-aec3-111122223333";
  static constexpr const char* kResourceGroup = "gpu-rg";
  static constexpr const char* kTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
  static constexpr const char* kClientId = "a6c2a2e5-0000-4b7b-9a3e-5f0c0b2a7d11";
  static constexpr const char* kClientSecret = "s3cr3t~Q8Q~client-secret-value";
  static constexpr const char* kFederatedToken = "eyJhbGciOiJSUzI1NiJ9.projected-sa-token.sig";
  static constexpr const char* kApiVersion = "2024-07-01";

  static std::unique_ptr<FakeAzure> Start();
  ~FakeAzure();

  std::string endpoint() const;  // https://127.0.0.1:<port>, ARM and login both
  const std::string& ca_pem() const { return tls_.ca_pem; }

  void AddVmss(const std::string& name, int capacity, bool spot);
  int capacity(const std::string& name) const;
  std::vector<std::string> instance_ids(const std::string& name) const;

  // Faults.
  void ThrottleNext(int calls, std::string retry_after = "2");  // 429 + Retry-After
  void SetAllocationLimit(int capacity);  // larger capacities fail with ZonalAllocationFailed
  void SetQuotaLimit(int capacity);       // larger capacities: 409 OperationNotAllowed (quota)
  void SetPendingPolls(int polls);        // operations stay in progress for this many polls
  void SetHung(bool hung);
  void SetForeignAsyncUrl(bool foreign);  // Azure-AsyncOperation points outside ARM
  // Someone else sets `capacity` just before the next PATCH of `name` arrives.
  void ResizeBeforeNextPatch(const std::string& name, int capacity);

  // Observations.
  int token_grants() const;
  std::vector<std::string> issued_tokens() const;
  std::vector<std::string> requests() const;  // "PATCH /subscriptions/...?api-version=..."
  int async_polls() const;
  int location_polls() const;

 private:
  struct Vmss {
    int capacity = 0;
    bool spot = false;
    std::vector<int> instances;
    int version = 0;               // the ETag, moved by every capacity change
    int resize_before_patch = -1;  // ResizeBeforeNextPatch
  };
  struct Operation {
    int pending = 0;
    std::string error_code, error_message;
  };

  FakeAzure() = default;
  void Handle(const net::ServerRequest& req, net::ResponseWriter& w);
  void HandleToken(const net::ServerRequest& req, net::ResponseWriter& w);
  void HandleArm(const net::ServerRequest& req, net::ResponseWriter& w);
  std::string VmssJson(const std::string& name, const Vmss& v) const;
  void SetCapacityLocked(Vmss& v, int capacity);

  LoopbackTls tls_;
  std::unique_ptr<net::HttpServer> server_;
  std::atomic<bool> hung_{false};

  mutable std::mutex mu_;
  std::map<std::string, Vmss> vmss_;
  std::map<std::string, Operation> operations_;
  std::set<std::string> tokens_;
  std::vector<std::string> requests_;
  int throttle_ = 0;
  std::string retry_after_ = "2";
  int allocation_limit_ = 1 << 20;
  int quota_limit_ = 1 << 20;
  int pending_polls_ = 1;
  bool foreign_async_ = false;
  int token_grants_ = 0;
  int async_polls_ = 0;
  int location_polls_ = 0;
  int next_id_ = 1;
  int next_instance_ = 0;
};

class FakeAzureImds {
 public:
  static std::unique_ptr<FakeAzureImds> Start();
  ~FakeAzureImds();
  std::string endpoint() const;  // http://127.0.0.1:<port>

  // Adds an event to the Scheduled Events document (bumps DocumentIncarnation).
  void AddEvent(const std::string& id, const std::string& type,
                const std::vector<std::string>& resources, const std::string& not_before);
  std::vector<std::string> acknowledged() const;  // EventIds from StartRequests
  int token_requests() const;
  std::string last_token() const;
  std::string last_token_query() const;

 private:
  FakeAzureImds() = default;
  void Handle(const net::ServerRequest& req, net::ResponseWriter& w);

  std::unique_ptr<net::HttpServer> server_;
  mutable std::mutex mu_;
  int incarnation_ = 1;
  std::vector<std::string> events_;  // JSON objects
  std::vector<std::string> acknowledged_;
  int token_requests_ = 0;
  std::string last_token_, last_token_query_;
};

}  // namespace gpu_autoscaler::testing
