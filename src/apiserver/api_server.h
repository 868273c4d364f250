// File: src/apiserver/api_server.h
//
// An embeddable, kube-apiserver-compatible server (v1.20 semantics, except the
// policy group, which follows ApiServerOptions::emulated_minor): discovery,
// CRUD/list/watch for built-in and custom resources, status/scale/eviction/
// binding subresources, patches (JSON, merge, strategic, server-side apply),
// finalizers, bearer-token auth, optional TLS, and opt-in fault injection.
// Integration tests run it as the `gpu-autoscaler-apiserver` program; the demo
// embeds it directly.
//
//   ApiServerOptions o;  o.port = 0;  o.crd_dir = "crds";
//   auto server = ApiServer::Start(o);
//   if (!server.ok()) ...;
//   std::cout << (*server)->url();          // "http://127.0.0.1:41234"
//   (*server)->Stop();
//
// Fault injection (only with `enable_fault_injection`; JSON bodies, POST except
// GET /__faults/status, which answers {"restarts": N}):
//   /__faults/latency       {"ms": 250}            every request waits first
//   /__faults/error         {"verb": "list", "resource": "pods", "code": 429,
//                            "count": 2, "retryAfterSeconds": 1}
//                           verb/resource "" match anything; count -1: forever
//   /__faults/drop-watches  {}                     ends every open watch stream
//   /__faults/compact       {}                     forgets the watch history (410s)
//   /__faults/restart       {"downtimeMs": 200}    drops every connection, refuses
//                           connections for the downtime, then serves the same
//                           objects with an empty watch history
//   /__faults/clear         {}                     removes latency and errors
//
// Events expire `event_ttl` after their last write (default 1h, as
// kube-apiserver); a background thread checks at least once a second.
//
// Thread-safety: Start/Stop/port/url are thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/status.h"

namespace gpu_autoscaler::apiserver {

struct ApiServerOptions {
  std::string bind_address = "127.0.0.1";
  int port = 0;         // 0: pick a free port
  std::string crd_dir;  // every *.yaml / *.yml here (multi-document) is created at start
  std::string token;    // when set, requests need "Authorization: Bearer <token>"
  // kube-apiserver's static token file (token,user,uid,"groups"): these tokens
  // are accepted too, and TokenReviews authenticate them (access_review.h).
  std::string token_auth_file;
  std::string tls_cert_file, tls_key_file;
  size_t watch_history = 10'000;  // events kept for watch resumption
  // BOOKMARKs for watches with allowWatchBookmarks=true. 0 (the default):
  // kube-apiserver v1.20's timing, the first 2 s before the watch's deadline
  // (timeoutSeconds, else the minimum request timeout of 1800 s stretched by
  // a random factor in [1, 2)), then one a second until it ends. Positive:
  // also one every interval, as kube-apiserver 1.27+ does every minute and
  // tests that want them sooner.
  std::chrono::milliseconds bookmark_interval{0};
  // kube-apiserver's --event-ttl: an Event (core/v1) is deleted this long
  // after its last write, with a DELETED watch event. 0 keeps Events forever.
  std::chrono::milliseconds event_ttl = std::chrono::hours(1);
  bool enable_fault_injection = false;
  Clock* clock = nullptr;  // null: RealClock
  // The Kubernetes minor version whose policy API the server serves
  // (kMinEmulatedMinor..kMaxEmulatedMinor); the rest stays v1.20's:
  //   20  PodDisruptionBudget in policy/v1beta1 only, Eviction policy/v1beta1;
  //   21  PodDisruptionBudget also in policy/v1 (preferred);
  //   22  Eviction also in policy/v1, which pods/eviction's discovery names.
  int emulated_minor = 20;
};

inline constexpr int kMinEmulatedMinor = 20;
inline constexpr int kMaxEmulatedMinor = 22;

class ApiServer {
 public:
  static Result<std::unique_ptr<ApiServer>> Start(const ApiServerOptions& opts);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  int port() const;
  std::string url() const;  // "http(s)://127.0.0.1:PORT"
  void Stop();

  struct Impl;

 private:
  explicit ApiServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gpu_autoscaler::apiserver
