// File: src/reconcile/request_auth.h
//
// Authentication and authorisation of requests to the manager's /metrics,
// delegated to the API server as controller-runtime's
// filters.WithAuthenticationAndAuthorization (and kube-rbac-proxy) do:
//  1. the bearer token goes to a TokenReview (authentication.k8s.io/v1);
//  2. the user it names goes to a SubjectAccessReview (authorization.k8s.io/v1)
//     for the non-resource URL and the verb (GET → get), so a ClusterRole with
//     `nonResourceURLs: ["/metrics"], verbs: ["get"]` grants a scrape.
// Answers are cached by the token's SHA-256, never the token itself, with
// Kubernetes' delegated-auth TTLs: authentication 2 min, allowed 5 min,
// denied 30 s.
//
//   RequestAuthorizer auth(client, {});
//   AuthDecision d = auth.Check(req.Header("Authorization"), "GET", "/metrics");
//   if (d.http_status != 200) return w.Respond(d.http_status, "text/plain", d.reason);
//
// The two steps are also public, for servers that authenticate otherwise
// (the custom-metrics API's front-proxy client certificates,
// reconcile/aggregated_api_auth.h) or authorise resource requests:
//   Authentication a = auth.AuthenticateBearer(header);           // TokenReview
//   AuthDecision d = auth.Authorize(a.user, AccessAttributes{...});  // SubjectAccessReview
// Decisions are cached by the SubjectAccessReview spec's SHA-256.
//
// Failure modes: no or malformed header, or a token the API server does not
// authenticate → 401; authenticated but not allowed → 403; the API server
// unreachable for the review → 401 (authentication) or 500 (authorisation),
// and nothing is cached.
//
// Thread-safety: Check may be called from many threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"

namespace gpu_autoscaler::kube {
class RestClient;
}

namespace gpu_autoscaler::reconcile {

struct AuthDecision {
  int http_status = 401;  // 200 allowed, 401 unauthenticated, 403 forbidden, 500 review failed
  std::string user;       // the authenticated user name, when known
  std::string reason;     // for the response body and the log; never holds the token
};

// Who made a request, as TokenReview's status.user or front-proxy headers say.
struct RequestUser {
  std::string name{}, uid{};
  std::vector<std::string> groups{};
  std::map<std::string, std::vector<std::string>> extra{};
};

struct Authentication {
  int http_status = 401;  // 200 authenticated, 401 not
  RequestUser user{};
  std::string reason{};  // when not authenticated
};

// What a SubjectAccessReview asks: a resource request (`resource` set) or a
// non-resource one (`path`).
struct AccessAttributes {
  std::string verb{};  // get, list, ...
  // Resource requests.
  std::string group{}, version{}, resource{}, subresource{}, name{}, ns{};
  // Non-resource requests.
  std::string path{};
};

struct RequestAuthorizerOptions {
  Clock* clock = &RealClock::Instance();
  Clock::Duration authentication_ttl = std::chrono::minutes(2);
  Clock::Duration allow_ttl = std::chrono::minutes(5);
  Clock::Duration deny_ttl = std::chrono::seconds(30);
  size_t max_cache_entries = 1024;  // per cache; the oldest half is dropped when full
};

// "GET" → "get", "POST" → "create", "PUT" → "update", "PATCH" → "patch",
// "DELETE" → "delete", as the API server's request-info resolver maps them.
std::string_view VerbForMethod(std::string_view method);

class RequestAuthorizer {
 public:
  // `client` must outlive the authorizer.
  RequestAuthorizer(kube::RestClient& client, RequestAuthorizerOptions options);

  // Bearer token, then the non-resource URL `path` with the method's verb.
  AuthDecision Check(std::string_view authorization_header, std::string_view method,
                     std::string_view path);

  // The bearer token in an Authorization header, by TokenReview (cached).
  Authentication AuthenticateBearer(std::string_view authorization_header);
  // A SubjectAccessReview for `user` and `attributes` (cached: allowed 5 min,
  // denied 30 s). 200, 403 or 500 (the review failed; not cached).
  AuthDecision Authorize(const RequestUser& user, const AccessAttributes& attributes);

 private:
  struct CachedUser {
    bool authenticated = false;
    RequestUser user;
    Clock::TimePoint expires;
  };
  struct CachedDecision {
    bool allowed = false;
    std::string reason;
    Clock::TimePoint expires;
  };

  kube::RestClient& client_;
  RequestAuthorizerOptions options_;
  std::mutex mu_;
  std::map<std::string, CachedUser> users_;          // by token digest
  std::map<std::string, CachedDecision> decisions_;  // by the review spec's digest
};

}  // namespace gpu_autoscaler::reconcile
