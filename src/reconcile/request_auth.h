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

  AuthDecision Check(std::string_view authorization_header, std::string_view method,
                     std::string_view path);

 private:
  struct User {
    std::string name, uid;
    std::vector<std::string> groups;
    std::string extra_json;  // status.user.extra, passed through to the SubjectAccessReview
  };
  struct CachedUser {
    bool authenticated = false;
    User user;
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
  std::map<std::string, CachedDecision> decisions_;  // by token digest + verb + path
};

}  // namespace gpu_autoscaler::reconcile
