// File: src/cloud/cloud_http.h
//
// HTTP plumbing shared by the GCP and Azure providers: one JSON request with
// retries on throttling and 5xx (honouring Retry-After), a polling loop for
// long-running operations, cached OAuth access tokens, and the small
// encoders both clouds need (form bodies, HTTP dates).
//
//   CloudHttp http(transport, clock, ClockSleeper(clock), {}, &ClassifyGcpHttpError);
//   GPU_ASSIGN_OR_RETURN(kube::HttpResponse r,
//                        http.Do({.method = "GET", .url = url}, "get MIG gpu-a100"));
//
// Waiting goes through a Sleeper so tests step a FakeClock instead of
// sleeping. Errors are ProviderError statuses (node_group.h); their messages
// name the call and the cloud's error code, never a token or a secret.
//
// Thread-safety: CloudHttp and CachedAccessToken are safe to share between
// threads; the free functions are pure.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cloud/node_group.h"
#include "common/clock.h"
#include "kube/transport.h"

namespace gpu_autoscaler::cloud {

// Blocks for a duration. Production: ClockSleeper(RealClock); tests record
// the delays and step a FakeClock.
using Sleeper = std::function<void(Clock::Duration)>;
Sleeper ClockSleeper(Clock& clock);

// What went wrong, read from a cloud's error response.
struct CloudError {
  ProviderErrorKind kind = ProviderErrorKind::kNone;
  std::string code;     // the cloud's own code ("rateLimitExceeded", "AllocationFailed")
  std::string message;  // the cloud's message, for the Status
};
using HttpErrorClassifier = std::function<CloudError(const kube::HttpResponse&)>;

// The kind an HTTP status alone implies (401/403 auth, 404 not found,
// 400/422 invalid, 429 throttled, anything else unavailable).
ProviderErrorKind KindForHttpStatus(int status);

struct RetryPolicy {
  int max_attempts = 4;  // throttled or 5xx responses; transport errors are not retried
  Clock::Duration initial_backoff = std::chrono::seconds(1);
  Clock::Duration max_backoff = std::chrono::seconds(30);  // a longer Retry-After is surfaced
};

// Retry-After as delta-seconds ("120") or an HTTP date; nullopt when absent,
// malformed or negative. A date in the past is a zero delay.
std::optional<Clock::Duration> ParseRetryAfter(std::string_view value, Clock::WallTime now);
// RFC 1123 ("Mon, 19 Sep 2016 18:29:47 GMT").
std::optional<Clock::WallTime> ParseHttpDate(std::string_view text);

class CloudHttp {
 public:
  CloudHttp(std::shared_ptr<kube::HttpTransport> transport, Clock& clock, Sleeper sleeper,
            RetryPolicy policy, HttpErrorClassifier classify,
            std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // Sends `req` (its timeout set from the constructor when zero). A 2xx or
  // 3xx response is returned; a throttled, 429 or 5xx one is retried per the
  // policy, then surfaced; a transport failure or timeout is kUnavailable at
  // once (a write may already have been applied). `what` prefixes errors.
  Result<kube::HttpResponse> Do(kube::HttpRequest req, std::string_view what);

  // Calls `poll` until it reports done, sleeping `interval` (or the delay it
  // asks for) between calls, for at most `limit` of clock time; then
  // kUnavailable. `poll` returns the next delay, or nullopt when done.
  Status PollUntilDone(const std::function<Result<std::optional<Clock::Duration>>()>& poll,
                       Clock::Duration interval, Clock::Duration limit, std::string_view what);

  Clock& clock() { return clock_; }

 private:
  std::shared_ptr<kube::HttpTransport> transport_;
  Clock& clock_;
  Sleeper sleeper_;
  RetryPolicy policy_;
  HttpErrorClassifier classify_;
  std::chrono::milliseconds timeout_;
};

// A libcurl transport for a cloud endpoint. `ca_pem` replaces the system
// trust store (tests trust a loopback fake's certificate with it).
Result<std::shared_ptr<kube::HttpTransport>> NewCloudTransport(const std::string& endpoint,
                                                               const std::string& ca_pem = "");

// An OAuth 2.0 access token as the token endpoints return it.
struct TokenGrant {
  std::string access_token;
  Clock::Duration expires_in{0};
};
// {"access_token": "...", "expires_in": 3599 | "3599", ...}.
Result<TokenGrant> ParseTokenResponse(std::string_view body);
// Sends a token request; 400/401/403 are kAuth (the endpoint's "error" code
// in the message, never its echo of the request).
Result<TokenGrant> FetchToken(kube::HttpTransport& transport, kube::HttpRequest req,
                              std::string_view what);

// Yields a bearer token for the cloud's API.
class AccessTokenSource {
 public:
  virtual ~AccessTokenSource() = default;
  virtual Result<std::string> Token() = 0;
};

// Caches a token until shortly before it expires (5 minutes, or half its
// lifetime when that is shorter).
class CachedAccessToken {
 public:
  explicit CachedAccessToken(Clock& clock) : clock_(clock) {}
  Result<std::string> Get(const std::function<Result<TokenGrant>()>& fetch);

 private:
  Clock& clock_;
  std::mutex mu_;
  std::string token_;
  Clock::TimePoint refresh_at_{};
};

// application/x-www-form-urlencoded.
std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace gpu_autoscaler::cloud
