// File: src/kube/rest_client.h
//
// The Kubernetes REST client: every verb the controllers need, over an
// HttpTransport, with a client-side QPS/burst limiter, retries (429 honouring
// Retry-After; 5xx for idempotent verbs only), and Prometheus request metrics.
// Errors are values (kube::Error); no exception leaves this API.
//
//   GPU_ASSIGN_OR_RETURN(auto client, RestClient::Create(cfg));
//   auto pod = client->Get({resources::kPods, "default", "web-1"});
//   auto list = client->List({resources::kPods, "default"}, {.label_selector = "app=web"});
//   client->Patch(ref, PatchType::kMerge, R"({"metadata":{"labels":{"a":"b"}}})");
//
// Thread-safety: RestClient is safe to use from many threads at once.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "common/clock.h"
#include "kube/config.h"
#include "kube/error.h"
#include "kube/resource.h"
#include "kube/transport.h"

namespace prometheus {
class Registry;
}

namespace gpu_autoscaler::kube {

struct ListOptions {
  std::string label_selector{};
  std::string field_selector{};
  int64_t limit = 0;  // 0: no limit
  std::string continue_token{};
  std::string resource_version{};
  std::string resource_version_match{};  // "", "Exact", "NotOlderThan"
  bool allow_watch_bookmarks = false;
  int64_t timeout_seconds = 0;  // server-side, for list and watch
  // Appends the query string (with leading '?', or nothing) to `out`.
  void AppendQuery(std::string* out, bool watch) const;
};

struct WriteOptions {
  bool dry_run = false;         // dryRun=All
  std::string field_manager{};  // required for server-side apply
  std::optional<bool> force{};  // server-side apply only
};

struct DeleteOptions {
  std::optional<int64_t> grace_period_seconds{};
  std::string propagation_policy{};  // "", "Orphan", "Background", "Foreground"
  std::string precondition_uid{};
  std::string precondition_resource_version{};
  bool dry_run = false;
  std::string ToJson() const;  // a meta.k8s.io/v1 DeleteOptions body, or "" when empty
};

enum class PatchType {
  kJson,            // application/json-patch+json (RFC 6902)
  kMerge,           // application/merge-patch+json (RFC 7386)
  kStrategicMerge,  // application/strategic-merge-patch+json (core types only)
  kApply,           // application/apply-patch+yaml (server-side apply)
};
std::string_view PatchContentType(PatchType t);

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };
std::string_view WatchEventTypeName(WatchEventType t);

// A decoded watch event. For kError, `object` is a metav1.Status.
struct WatchEvent {
  WatchEventType type{};
  std::string object_json{};  // the raw "object" value
};

struct RestClientOptions {
  Clock* clock = &RealClock::Instance();
  prometheus::Registry* metrics = nullptr;  // optional; registers rest_client_* families
  int max_retries = 5;                      // for 429 and retriable 5xx
  std::chrono::milliseconds retry_base{100};
  std::chrono::milliseconds retry_cap{10'000};
};

class RestClient {
 public:
  // Builds a libcurl transport for `cfg`.
  static Result<std::unique_ptr<RestClient>> Create(const ClientConfig& cfg,
                                                    RestClientOptions opts = {});
  // For tests: an injected transport.
  static std::unique_ptr<RestClient> WithTransport(const ClientConfig& cfg,
                                                   std::unique_ptr<HttpTransport> transport,
                                                   RestClientOptions opts = {});
  virtual ~RestClient() = default;

  virtual const ClientConfig& config() const = 0;

  // Raw access: `path_and_query` starts with '/'. Applies auth, limiter,
  // retries and metrics. Non-2xx statuses come back as errors.
  virtual Result<HttpResponse> Request(std::string_view method, std::string_view path_and_query,
                                       std::string body = "",
                                       std::string_view content_type = "application/json") = 0;

  virtual Result<nlohmann::json> Get(const ObjectRef& ref) = 0;
  // One page, raw bytes (for fast decoders). ref.name must be empty.
  virtual Result<std::string> ListPage(const ObjectRef& ref, const ListOptions& opts) = 0;
  // All pages, following `continue`; the result is a List whose metadata
  // carries the first page's resourceVersion. A 410 on a continue token
  // restarts the list once from scratch.
  virtual Result<nlohmann::json> List(const ObjectRef& ref, const ListOptions& opts = {}) = 0;
  virtual Result<nlohmann::json> Create(const ObjectRef& ref, const nlohmann::json& obj,
                                        const WriteOptions& w = {}) = 0;
  // PUT. A stale metadata.resourceVersion gets 409 Conflict.
  virtual Result<nlohmann::json> Replace(const ObjectRef& ref, const nlohmann::json& obj,
                                         const WriteOptions& w = {}) = 0;
  virtual Result<nlohmann::json> Patch(const ObjectRef& ref, PatchType type, std::string_view patch,
                                       const WriteOptions& w = {}) = 0;
  // Returns the deleted object, or the object with deletionTimestamp when
  // finalizers hold it, or a Success Status.
  virtual Result<nlohmann::json> Delete(const ObjectRef& ref, const DeleteOptions& d = {}) = 0;
  virtual Result<nlohmann::json> DeleteCollection(const ObjectRef& ref, const ListOptions& opts,
                                                  const DeleteOptions& d = {}) = 0;
  // POSTs an Eviction to pods/eviction. A PodDisruptionBudget that blocks
  // gives 429 (IsTooManyRequests) with a DisruptionBudget cause; it is not
  // retried.
  //
  // The Eviction's apiVersion comes from discovery, as kubectl drain picks it:
  // the first Evict reads /api/v1 (EvictionGroupVersion in kube/discovery.h)
  // and sends policy/v1 when the server's pods/eviction names policy/v1
  // (Kubernetes 1.22+), policy/v1beta1 otherwise (1.21 and older answer a
  // policy/v1 Eviction with 400). The answer is kept for the client's
  // lifetime; concurrent first Evicts share one discovery request.
  //  - Discovery fails (after the usual GET retries): Evict returns that
  //    error and evicts nothing, as kubectl drain does; nothing is cached, so
  //    the next Evict discovers again. Guessing a version instead could send
  //    one the server rejects.
  //  - The server answers 400 "no kind "Eviction" is registered for version"
  //    (it changed version under the client): the error is returned and the
  //    kept version forgotten, so the next Evict discovers again.
  virtual Result<nlohmann::json> Evict(std::string_view ns, std::string_view pod,
                                       const DeleteOptions& d = {}) = 0;
  virtual Result<nlohmann::json> GetScale(const ObjectRef& ref) = 0;
  virtual Result<nlohmann::json> UpdateScale(const ObjectRef& ref, int32_t replicas) = 0;

  // Streams a watch. `on_event` runs on the calling thread for each event;
  // returning false ends the watch. Returns OK when the server closes the
  // stream (timeoutSeconds), an error otherwise (410 Gone at start, transport).
  // An ERROR event is delivered to `on_event`, not turned into an error.
  virtual Result<std::monostate> Watch(const ObjectRef& ref, const ListOptions& opts,
                                       const std::function<bool(WatchEvent&&)>& on_event,
                                       std::stop_token stop = {}) = 0;
  // Same, but hands raw body chunks to `on_chunk` (informers decode them
  // with their own typed decoder).
  virtual Result<std::monostate> WatchRaw(const ObjectRef& ref, const ListOptions& opts,
                                          const std::function<bool(std::string_view)>& on_chunk,
                                          std::stop_token stop = {}) = 0;
};

}  // namespace gpu_autoscaler::kube
