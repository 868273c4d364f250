// File: tests/support/fake_gcp.h
//
// Loopback fakes of the Google endpoints the gcp-mig provider talks to:
//  - FakeGcp (HTTPS): the OAuth token endpoint (verifies the JWT-bearer
//    assertion's RS256 signature with the test key's public half) and
//    Compute v1 instanceGroupManagers get / resize / deleteInstances /
//    listManagedInstances, zone operations and instance templates. It keeps
//    MIG state, answers operations PENDING then DONE, and injects
//    throttling (403 rateLimitExceeded), stockouts, failed operations and a
//    hung server.
//  - FakeGcpMetadata (plain HTTP): the metadata server's token and
//    instance/preempted (with a hanging GET on wait_for_change).
//
//   auto gcp = FakeGcp::Start();
//   gcp->AddMig("p", "us-central1-a", "gpu", 2, /*spot=*/true);
//   // key file: gcp->key_file(); CA: gcp->ca_pem(); API: gcp->compute_endpoint()
//
// Thread-safety: all methods are safe to call while the server runs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "net/http_server.h"
#include "support/fake_cloud_server.h"

namespace gpu_autoscaler::testing {

class FakeGcp {
 public:
  static std::unique_ptr<FakeGcp> Start();  // fails the test on error
  ~FakeGcp();

  std::string endpoint() const;          // https://127.0.0.1:<port>
  std::string compute_endpoint() const;  // endpoint() + "/compute/v1"
  const std::string& ca_pem() const { return tls_.ca_pem; }
  const std::string& key_file() const { return key_file_; }  // service-account key JSON
  const std::string& private_key_pem() const { return private_key_pem_; }
  static constexpr const char* kClientEmail = "autoscaler@ml-prod.iam.gserviceaccount.com";

  void AddMig(const std::string& project, const std::string& zone, const std::string& name,
              int target_size, bool spot);
  int target_size(const std::string& name) const;
  std::vector<std::string> instance_names(const std::string& name) const;

  // Faults.
  void ThrottleNext(int calls);  // 403 rateLimitExceeded on the next compute calls
  // Instances created beyond this many per MIG stay CREATING with
  // lastAttempt.errors naming `code` (a stockout; "QUOTA_EXCEEDED" for a quota).
  void SetCapacity(int running_per_mig, std::string code = "ZONE_RESOURCE_POOL_EXHAUSTED");
  // The same for one MIG only (a spot pool stocked out while on-demand is not).
  void SetMigCapacity(const std::string& name, int running,
                      std::string code = "ZONE_RESOURCE_POOL_EXHAUSTED");
  void FailNextOperation(std::string code);  // the next mutation's operation ends with it
  void SetPendingPolls(int polls);           // operations stay RUNNING for this many GETs
  void SetHung(bool hung);                   // compute calls never answer
  void SetTokenLifetime(int seconds);

  // Observations.
  int token_grants() const;
  std::vector<std::string> issued_tokens() const;
  std::vector<std::string> requests() const;  // "POST /compute/v1/...?query"
  int operation_polls() const;

 private:
  struct ManagedInstance {
    std::string name;
    bool stocked_out = false;
    std::string error_code{};  // why, when stocked out
  };
  struct Mig {
    std::string project, zone;
    int target_size = 0;
    bool spot = false;
    std::vector<ManagedInstance> instances;
    int capacity = -1;  // -1: the fake-wide capacity
    std::string stockout_code{};
  };
  struct Operation {
    std::string zone;
    int pending = 0;
    std::string error_code;
  };

  FakeGcp() = default;
  void Handle(const net::ServerRequest& req, net::ResponseWriter& w);
  void HandleToken(const net::ServerRequest& req, net::ResponseWriter& w);
  void HandleCompute(const net::ServerRequest& req, net::ResponseWriter& w);
  std::string NewOperation(const std::string& zone, const std::string& type);  // JSON, mu_ held
  void ResizeLocked(Mig& mig, int size);
  std::string VerifyAssertion(const std::string& assertion) const;  // "" when valid

  LoopbackTls tls_;
  std::string key_file_, private_key_pem_, public_key_pem_;
  std::unique_ptr<net::HttpServer> server_;
  std::atomic<bool> hung_{false};

  mutable std::mutex mu_;
  std::map<std::string, Mig> migs_;
  std::map<std::string, Operation> operations_;
  std::set<std::string> tokens_;
  std::vector<std::string> requests_;
  int throttle_ = 0;
  int capacity_ = 1 << 20;
  std::string stockout_code_ = "ZONE_RESOURCE_POOL_EXHAUSTED";
  std::string fail_next_;
  int pending_polls_ = 1;
  int token_lifetime_ = 3599;
  int token_grants_ = 0;
  int operation_polls_ = 0;
  int next_id_ = 1;
};

class FakeGcpMetadata {
 public:
  static std::unique_ptr<FakeGcpMetadata> Start();
  ~FakeGcpMetadata();
  std::string endpoint() const;  // http://127.0.0.1:<port>
  void SetPreempted(bool preempted);
  int token_requests() const;
  std::string last_token() const;

 private:
  FakeGcpMetadata() = default;
  void Handle(const net::ServerRequest& req, net::ResponseWriter& w);

  std::unique_ptr<net::HttpServer> server_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  bool preempted_ = false;
  int etag_ = 1;
  int token_requests_ = 0;
  std::string last_token_;
  bool stopping_ = false;
};

}  // namespace gpu_autoscaler::testing
