// File: src/cloud/aws_imds.h
//
// An EC2 instance metadata (IMDSv2) client: a session token from
// `PUT /latest/api/token` (header X-aws-ec2-metadata-token-ttl-seconds),
// cached and refreshed before its TTL runs out, then GETs with
// X-aws-ec2-metadata-token. A 401 drops the token and retries once with a
// fresh one. Shared by the IMDS credential source and the spot interruption
// notice source.
//
//   ImdsClient imds(transport, {.endpoint = "http://169.254.169.254"});
//   GPU_ASSIGN_OR_RETURN(std::optional<std::string> action,
//                        imds.Get("/latest/meta-data/spot/instance-action"));
//   if (!action) { /* 404: no notice */ }
//
// Errors are ProviderError kUnavailable (unreachable, timeout, 5xx) or kAuth
// (403: IMDS disabled or the hop limit too low for containers).
//
// Thread-safety: safe to call from many threads at once.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "cloud/node_group.h"
#include "common/clock.h"
#include "kube/transport.h"

namespace gpu_autoscaler::cloud {

struct ImdsOptions {
  std::string endpoint = "http://169.254.169.254";
  std::chrono::seconds token_ttl{21600};  // 1..21600
  // Fetch a new token this long before the old one expires (the AWS node
  // termination handler uses 15 s).
  std::chrono::seconds refresh_before{15};
  std::chrono::milliseconds timeout{2000};
  Clock* clock = &RealClock::Instance();
};

class ImdsClient {
 public:
  ImdsClient(std::shared_ptr<kube::HttpTransport> transport, ImdsOptions options);

  // The body of GET `path`; nullopt for 404.
  Result<std::optional<std::string>> Get(const std::string& path);

  // Number of tokens fetched so far (tests check refresh behaviour).
  int tokens_fetched() const;

 private:
  Result<std::string> Token(bool force_new);
  Result<kube::HttpResponse> Send(kube::HttpRequest req);

  std::shared_ptr<kube::HttpTransport> transport_{};
  ImdsOptions options_{};
  mutable std::mutex mu_;
  std::string token_{};
  Clock::TimePoint token_refresh_at_{};
  int tokens_fetched_ = 0;
};

}  // namespace gpu_autoscaler::cloud
