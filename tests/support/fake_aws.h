// File: tests/support/fake_aws.h
//
// Loopback fakes of the AWS endpoints the aws-asg provider and the AWS
// credential chain talk to, on real sockets:
//   - the Auto Scaling Query API and STS over HTTPS (one net::HttpServer with
//     a generated self-signed CA; STS is told apart by its Action), and
//   - IMDSv2 over plain HTTP (token PUT, credentials, spot notices).
// The Auto Scaling side verifies every SigV4 signature against the secret of
// the access key named in the Authorization header (SignatureDoesNotMatch on a
// mismatch, InvalidClientTokenId for an unknown key, ExpiredToken for an
// expired one), checks method, path, Version and parameters, and keeps the
// groups' state: SetDesiredCapacity launches and terminates fake instances.
//
//   FakeAwsOptions o;  o.access_key_id = "AKIDFAKE";  o.secret_access_key = "s3cr3t";
//   auto aws = FakeAws::Start(o);
//   (*aws)->AddGroup({.name = "gpu-a", .min = 0, .max = 4, .desired = 1});
//   (*aws)->InjectFault("SetDesiredCapacity", FakeAwsFault::kThrottling, 2);
//   // point the provider at (*aws)->endpoint(), trusting (*aws)->ca_pem()
//
// Thread-safety: all methods are safe to call from any thread.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cloud/aws_sigv4.h"
#include "common/status.h"
#include "net/http_server.h"
#include "support/fake_cloud_server.h"

namespace gpu_autoscaler::testing {

struct FakeAwsInstance {
  std::string id{};
  std::string zone = "us-east-1a";
  std::string lifecycle_state = "InService";
};

struct FakeAwsGroup {
  std::string name{};
  int min = 0;
  int max = 0;
  int desired = 0;
  std::vector<FakeAwsInstance> instances{};
  std::string zone = "us-east-1a";
  std::string instance_type = "p4d.24xlarge";
  // Renders a MixedInstancesPolicy whose distribution is all spot.
  bool all_spot = false;
  std::vector<std::pair<std::string, std::string>> tags{};
  // Launches beyond this many instances fail with an InsufficientInstanceCapacity
  // scaling activity; -1: unlimited.
  int capacity = -1;
};

enum class FakeAwsFault {
  kThrottling,            // 400 Throttling "Rate exceeded"
  kResourceContention,    // 500 ResourceContention
  kInsufficientCapacity,  // 400 InsufficientInstanceCapacity
  kLimitExceeded,         // 400 LimitExceeded
  kInternalError,         // 503 without an XML body
  kHang,                  // never answers (until ReleaseHung or Stop)
};

struct FakeAwsOptions {
  std::string region = "us-east-1";
  // Long-term keys the Auto Scaling API accepts (more via AcceptCredentials).
  std::string access_key_id = "AKIDFAKEEXAMPLE";
  std::string secret_access_key = "fake/secret+key";
  // STS AssumeRoleWithWebIdentity accepts this token for this role and issues
  // `sts_credentials` (which the Auto Scaling API then accepts too).
  std::string role_arn = "arn:aws:iam::123456789012:role/gpu-autoscaler";
  std::string web_identity_token = "eyJhbGciOiJSUzI1NiJ9.fake-web-identity-token";
  cloud::AwsCredentials sts_credentials{};
  // IMDS: the instance profile role and the credentials it hands out.
  std::string imds_role = "gpu-node-role";
  cloud::AwsCredentials imds_credentials{};
};

class FakeAws {
 public:
  static Result<std::unique_ptr<FakeAws>> Start(FakeAwsOptions options);
  ~FakeAws();

  std::string endpoint() const;       // https://127.0.0.1:<port> (Auto Scaling and STS)
  std::string imds_endpoint() const;  // http://127.0.0.1:<port>
  const std::string& ca_pem() const { return tls_.ca_pem; }

  void AddGroup(FakeAwsGroup group);
  std::optional<FakeAwsGroup> Group(const std::string& name) const;
  void AcceptCredentials(const cloud::AwsCredentials& creds);
  // Later requests signed with this key get ExpiredToken.
  void ExpireCredentials(const std::string& access_key_id);

  // The next `times` requests for `action` ("*": any Auto Scaling action) fail so.
  void InjectFault(const std::string& action, FakeAwsFault fault, int times = 1);
  // Wakes every hung request (they then answer 503).
  void ReleaseHung();

  // IMDS documents; nullopt answers 404.
  void SetSpotInstanceAction(std::optional<std::string> json);
  void SetRebalanceRecommendation(std::optional<std::string> json);
  // Every IMDS session token issued so far stops being valid (401).
  void RevokeImdsTokens();
  int imds_tokens_issued() const;

  // Auto Scaling and STS actions received, in order (rejected ones included).
  std::vector<std::string> actions() const;
  // Error codes answered, in order ("SignatureDoesNotMatch", "Throttling"...).
  std::vector<std::string> errors() const;
  // The raw form parameters of the last request for `action`.
  std::vector<std::pair<std::string, std::string>> LastParams(const std::string& action) const;

 private:
  struct Reply {
    int status = 200;
    std::string body{};
    std::vector<std::pair<std::string, std::string>> headers{};
  };
  FakeAws() = default;
  void HandleQuery(const net::ServerRequest& req, net::ResponseWriter& w);
  void HandleImds(const net::ServerRequest& req, net::ResponseWriter& w);
  Reply Error(int status, const std::string& code, const std::string& message);
  std::optional<Reply> VerifySignature(const net::ServerRequest& req);
  Reply AutoScaling(const std::string& action,
                    const std::vector<std::pair<std::string, std::string>>& params);
  Reply Sts(const std::vector<std::pair<std::string, std::string>>& params);
  void Hang(net::ResponseWriter& w);
  std::string NewInstanceId();
  void Launch(FakeAwsGroup& g, int count);

  FakeAwsOptions options_{};
  LoopbackTls tls_;  // the HTTPS certificate and its CA, removed with the fake
  std::unique_ptr<net::HttpServer> https_{};
  std::unique_ptr<net::HttpServer> imds_{};

  mutable std::mutex mu_;
  std::condition_variable hung_cv_;
  bool release_hung_ = false;
  std::map<std::string, FakeAwsGroup> groups_{};
  std::map<std::string, cloud::AwsCredentials> keys_{};  // by access key ID
  std::map<std::string, bool> expired_{};
  std::vector<std::pair<std::string, std::pair<FakeAwsFault, int>>> faults_{};
  std::vector<std::string> actions_{};
  std::vector<std::string> errors_{};
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> last_params_{};
  struct Activity {
    std::string id, status_code, status_message, description;
  };
  std::map<std::string, std::vector<Activity>> activities_{};  // newest last
  int next_instance_ = 1;
  int next_activity_ = 1;
  std::optional<std::string> spot_action_{};
  std::optional<std::string> rebalance_{};
  std::map<std::string, bool> imds_tokens_{};  // token -> valid
  int imds_tokens_issued_ = 0;
};

}  // namespace gpu_autoscaler::testing
