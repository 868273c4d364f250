#include "kube/rest_client.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "kube/discovery.h"
#include "kube/rate_limiter.h"
#include "kube/watch_decoder.h"

namespace gpu_autoscaler::kube {

void ListOptions::AppendQuery(std::string* out, bool watch) const {
  char sep = '?';
  auto add = [&](std::string_view key, std::string_view value) {
    out->push_back(sep);
    sep = '&';
    out->append(key);
    out->push_back('=');
    out->append(UrlEncode(value));
  };
  if (watch) add("watch", "1");
  if (!label_selector.empty()) add("labelSelector", label_selector);
  if (!field_selector.empty()) add("fieldSelector", field_selector);
  if (!watch) {
    if (limit > 0) add("limit", std::to_string(limit));
    if (!continue_token.empty()) add("continue", continue_token);
  }
  if (!resource_version.empty()) add("resourceVersion", resource_version);
  if (!watch && !resource_version_match.empty()) {
    add("resourceVersionMatch", resource_version_match);
  }
  if (watch && allow_watch_bookmarks) add("allowWatchBookmarks", "true");
  if (timeout_seconds > 0) add("timeoutSeconds", std::to_string(timeout_seconds));
}

std::string DeleteOptions::ToJson() const {
  nlohmann::json body = nlohmann::json::object();
  if (grace_period_seconds) body["gracePeriodSeconds"] = *grace_period_seconds;
  if (!propagation_policy.empty()) body["propagationPolicy"] = propagation_policy;
  if (!precondition_uid.empty()) body["preconditions"]["uid"] = precondition_uid;
  if (!precondition_resource_version.empty()) {
    body["preconditions"]["resourceVersion"] = precondition_resource_version;
  }
  if (dry_run) body["dryRun"] = nlohmann::json::array({"All"});
  if (body.empty()) return "";
  body["kind"] = "DeleteOptions";
  body["apiVersion"] = "meta.k8s.io/v1";
  return body.dump();
}

std::string_view PatchContentType(PatchType t) {
  switch (t) {
    case PatchType::kJson:
      return "application/json-patch+json";
    case PatchType::kMerge:
      return "application/merge-patch+json";
    case PatchType::kStrategicMerge:
      return "application/strategic-merge-patch+json";
    case PatchType::kApply:
      return "application/apply-patch+yaml";
  }
  return "application/merge-patch+json";
}

std::string_view WatchEventTypeName(WatchEventType t) {
  switch (t) {
    case WatchEventType::kAdded:
      return "ADDED";
    case WatchEventType::kModified:
      return "MODIFIED";
    case WatchEventType::kDeleted:
      return "DELETED";
    case WatchEventType::kBookmark:
      return "BOOKMARK";
    case WatchEventType::kError:
      return "ERROR";
  }
  return "ERROR";
}

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() &&
        std::equal(key.begin(), key.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return value;
    }
  }
  return "";
}

namespace {

using nlohmann::json;

// Dumps without throwing on invalid UTF-8 (nlohmann's default would).
std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool Is2xx(int status) {
  return status >= 200 && status < 300;
}

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63],
            kAlphabet[v & 63]};
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

ObjectRef Collection(const ObjectRef& ref) {
  ObjectRef c = ref;
  c.name.clear();
  c.subresource.clear();
  return c;
}

std::string MetricResource(const ObjectRef& ref) {
  if (ref.subresource.empty() || ref.name.empty()) return ref.gvr.resource;
  return ref.gvr.resource + "/" + ref.subresource;
}

// The resource segment of an API path, for metrics on raw requests:
// /api/v1/namespaces/ns/pods/x -> "pods".
std::string ResourceFromPath(std::string_view path) {
  path = path.substr(0, path.find('?'));
  std::vector<std::string_view> parts;
  size_t start = 1;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  size_t i = 0;
  if (!parts.empty() && parts[0] == "api") {
    i = 2;
  } else if (!parts.empty() && parts[0] == "apis") {
    i = 3;
  } else {
    return parts.empty() ? "" : std::string(parts[0]);
  }
  if (i + 1 < parts.size() && parts[i] == "namespaces" && i + 2 < parts.size()) i += 2;
  return i < parts.size() ? std::string(parts[i]) : "";
}

void AppendParam(std::string* path, std::string_view key, std::string_view value) {
  path->push_back(path->find('?') == std::string::npos ? '?' : '&');
  path->append(key);
  path->push_back('=');
  path->append(UrlEncode(value));
}

void AppendWriteQuery(std::string* path, const WriteOptions& w, bool apply) {
  if (w.dry_run) AppendParam(path, "dryRun", "All");
  if (!w.field_manager.empty()) AppendParam(path, "fieldManager", w.field_manager);
  if (apply && w.force.has_value()) AppendParam(path, "force", *w.force ? "true" : "false");
}

void AppendDeleteQuery(std::string* path, const DeleteOptions& d) {
  if (d.grace_period_seconds) {
    AppendParam(path, "gracePeriodSeconds", std::to_string(*d.grace_period_seconds));
  }
  if (d.dry_run) AppendParam(path, "dryRun", "All");
}

bool HasCause(const Error& e, std::string_view reason) {
  for (const StatusCause& c : e.details().causes) {
    if (c.reason == reason) return true;
  }
  return false;
}

// Prometheus families; absent when no registry was given.
class Metrics {
 public:
  explicit Metrics(prometheus::Registry& registry)
      : duration_(prometheus::BuildHistogram()
                      .Name("rest_client_request_duration_seconds")
                      .Help("Kubernetes API request latency by verb, resource and status code.")
                      .Register(registry)),
        requests_(prometheus::BuildCounter()
                      .Name("rest_client_requests_total")
                      .Help("Kubernetes API requests by verb, resource and status code.")
                      .Register(registry)),
        retries_(prometheus::BuildCounter()
                     .Name("rest_client_retries_total")
                     .Help("Kubernetes API requests retried, by verb, resource and status code.")
                     .Register(registry)) {}

  void Observe(std::string_view verb, const std::string& resource, const std::string& code,
               double seconds) {
    prometheus::Labels labels{{"verb", std::string(verb)}, {"resource", resource}, {"code", code}};
    duration_.Add(labels, Buckets()).Observe(seconds);
    requests_.Add(labels).Increment();
  }
  void Retry(std::string_view verb, const std::string& resource, const std::string& code) {
    retries_.Add({{"verb", std::string(verb)}, {"resource", resource}, {"code", code}}).Increment();
  }

 private:
  static const prometheus::Histogram::BucketBoundaries& Buckets() {
    // client-go's latency buckets.
    static const prometheus::Histogram::BucketBoundaries kBuckets{0.005, 0.025, 0.1, 0.25, 0.5, 1,
                                                                  2,     4,     8,   15,   30,  60};
    return kBuckets;
  }

  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& retries_;
};

// One logical API call; `Execute` turns it into attempts.
struct Call {
  std::string_view verb;  // metrics label: get, list, create, update, patch, delete, ...
  std::string method;
  std::string path;  // path and query
  std::string body;
  std::string_view content_type = "application/json";
  std::string resource;     // metrics label
  bool idempotent = false;  // 5xx and transport errors may be retried
  bool eviction = false;    // a PodDisruptionBudget's 429 is final
};

class RestClientImpl final : public RestClient {
 public:
  RestClientImpl(const ClientConfig& cfg, std::unique_ptr<HttpTransport> transport,
                 RestClientOptions opts)
      : cfg_(cfg),
        transport_(std::move(transport)),
        opts_(opts),
        clock_(opts.clock != nullptr ? *opts.clock : RealClock::Instance()),
        limiter_(cfg.qps, cfg.burst, clock_),
        rng_(std::random_device{}()) {
    while (!cfg_.server.empty() && cfg_.server.back() == '/')
      cfg_.server.pop_back();
    if (opts.metrics != nullptr) {
      try {
        metrics_ = std::make_unique<Metrics>(*opts.metrics);
      } catch (const std::exception&) {
        // A conflicting family (another type under the same name) disables
        // metrics rather than failing the client.
        metrics_.reset();
      }
    }
  }

  const ClientConfig& config() const override { return cfg_; }

  Result<HttpResponse> Request(std::string_view method, std::string_view path_and_query,
                               std::string body, std::string_view content_type) override {
    Call call;
    call.method = std::string(method);
    call.verb = VerbForMethod(method);
    call.path = std::string(path_and_query);
    call.body = std::move(body);
    call.content_type = content_type;
    call.resource = ResourceFromPath(path_and_query);
    call.idempotent = method == "GET";
    return Execute(call);
  }

  Result<json> Get(const ObjectRef& ref) override {
    Call call = MakeCall("get", "GET", ref, ResourcePath(ref));
    call.idempotent = true;
    return ExecuteJson(call);
  }

  Result<std::string> ListPage(const ObjectRef& ref, const ListOptions& opts) override {
    ObjectRef collection = Collection(ref);
    std::string path = ResourcePath(collection);
    opts.AppendQuery(&path, /*watch=*/false);
    Call call = MakeCall("list", "GET", collection, std::move(path));
    call.idempotent = true;
    GPU_ASSIGN_OR_RETURN(HttpResponse resp, Execute(call));
    return std::move(resp.body);
  }

  Result<json> List(const ObjectRef& ref, const ListOptions& opts) override {
    bool restarted = false;
    ListOptions page_opts = opts;
    json result;
    json items = json::array();
    while (true) {
      auto page = ListPage(ref, page_opts);
      if (!page.ok()) {
        // A continue token outlived etcd's compaction: start over, once.
        if (IsGone(page.error()) && !page_opts.continue_token.empty() && !restarted) {
          restarted = true;
          page_opts = opts;
          page_opts.continue_token.clear();
          result = json();
          items = json::array();
          continue;
        }
        return std::move(page).error();
      }
      json parsed = json::parse(*page, nullptr, /*allow_exceptions=*/false);
      if (!parsed.is_object()) {
        return Error::Decode("list " + MetricResource(ref) + ": response is not a JSON object");
      }
      if (auto it = parsed.find("items"); it != parsed.end() && it->is_array()) {
        for (json& item : *it)
          items.push_back(std::move(item));
      }
      std::string next;
      if (auto m = parsed.find("metadata"); m != parsed.end() && m->is_object()) {
        if (auto c = m->find("continue"); c != m->end() && c->is_string()) next = *c;
      }
      if (result.is_null()) result = std::move(parsed);
      if (next.empty()) break;
      page_opts.continue_token = next;
      // The continue token pins the snapshot; the server rejects both together.
      page_opts.resource_version.clear();
      page_opts.resource_version_match.clear();
    }
    result["items"] = std::move(items);
    if (auto m = result.find("metadata"); m != result.end() && m->is_object()) {
      m->erase("continue");
      m->erase("remainingItemCount");
    }
    return result;
  }

  Result<json> Create(const ObjectRef& ref, const json& obj, const WriteOptions& w) override {
    // Subresources (eviction, binding) are POSTed to the object; the rest to
    // the collection.
    ObjectRef target = ref.subresource.empty() ? Collection(ref) : ref;
    std::string path = ResourcePath(target);
    AppendWriteQuery(&path, w, /*apply=*/false);
    Call call = MakeCall("create", "POST", target, std::move(path));
    call.body = Dump(obj);
    return ExecuteJson(call);
  }

  Result<json> Replace(const ObjectRef& ref, const json& obj, const WriteOptions& w) override {
    ObjectRef target = ref;
    if (target.name.empty()) {
      auto name = NameOf(obj);
      if (name.empty()) {
        return Error::Config("replace " + ref.gvr.resource + ": the object has no name");
      }
      target.name = name;
    }
    std::string path = ResourcePath(target);
    AppendWriteQuery(&path, w, /*apply=*/false);
    Call call = MakeCall("update", "PUT", target, std::move(path));
    call.body = Dump(obj);
    return ExecuteJson(call);
  }

  Result<json> Patch(const ObjectRef& ref, PatchType type, std::string_view patch,
                     const WriteOptions& w) override {
    if (ref.name.empty()) return Error::Config("patch " + ref.gvr.resource + ": name is required");
    std::string path = ResourcePath(ref);
    AppendWriteQuery(&path, w, /*apply=*/type == PatchType::kApply);
    Call call =
        MakeCall(type == PatchType::kApply ? "apply" : "patch", "PATCH", ref, std::move(path));
    call.body = std::string(patch);
    call.content_type = PatchContentType(type);
    return ExecuteJson(call);
  }

  Result<json> Delete(const ObjectRef& ref, const DeleteOptions& d) override {
    if (ref.name.empty()) {
      return Error::Config("delete " + ref.gvr.resource + ": name is required");
    }
    std::string path = ResourcePath(ref);
    AppendDeleteQuery(&path, d);
    Call call = MakeCall("delete", "DELETE", ref, std::move(path));
    call.body = d.ToJson();
    return ExecuteJson(call);
  }

  Result<json> DeleteCollection(const ObjectRef& ref, const ListOptions& opts,
                                const DeleteOptions& d) override {
    ObjectRef collection = Collection(ref);
    std::string path = ResourcePath(collection);
    opts.AppendQuery(&path, /*watch=*/false);
    AppendDeleteQuery(&path, d);
    Call call = MakeCall("deletecollection", "DELETE", collection, std::move(path));
    call.body = d.ToJson();
    return ExecuteJson(call);
  }

  Result<json> Evict(std::string_view ns, std::string_view pod, const DeleteOptions& d) override {
    GPU_ASSIGN_OR_RETURN(std::string api_version, EvictionApiVersion());
    ObjectRef ref{resources::kPods, std::string(ns), std::string(pod), "eviction"};
    json eviction = {{"apiVersion", api_version},
                     {"kind", "Eviction"},
                     {"metadata", {{"name", pod}, {"namespace", ns}}}};
    if (std::string opts = d.ToJson(); !opts.empty()) {
      eviction["deleteOptions"] = json::parse(opts);
    }
    Call call = MakeCall("create", "POST", ref, ResourcePath(ref));
    call.body = Dump(eviction);
    call.eviction = true;
    auto result = ExecuteJson(call);
    if (!result.ok() && IsBadRequest(result.error()) &&
        result.error().message().find("no kind \"Eviction\" is registered for version") !=
            std::string::npos) {
      // The server no longer takes this version (a downgrade, or apiservers
      // of two versions behind one address): discover again next time.
      std::lock_guard<std::mutex> lock(eviction_mu_);
      if (eviction_api_version_ == api_version) eviction_api_version_.clear();
    }
    return result;
  }

  Result<json> GetScale(const ObjectRef& ref) override {
    ObjectRef scale = ref.WithSub("scale");
    Call call = MakeCall("get", "GET", scale, ResourcePath(scale));
    call.idempotent = true;
    return ExecuteJson(call);
  }

  Result<json> UpdateScale(const ObjectRef& ref, int32_t replicas) override {
    ObjectRef scale = ref.WithSub("scale");
    json body = {{"apiVersion", "autoscaling/v1"},
                 {"kind", "Scale"},
                 {"metadata", {{"name", ref.name}, {"namespace", ref.ns}}},
                 {"spec", {{"replicas", replicas}}}};
    Call call = MakeCall("update", "PUT", scale, ResourcePath(scale));
    call.body = Dump(body);
    return ExecuteJson(call);
  }

  Result<std::monostate> Watch(const ObjectRef& ref, const ListOptions& opts,
                               const std::function<bool(WatchEvent&&)>& on_event,
                               std::stop_token stop) override {
    WatchDecoder decoder;
    std::optional<Error> decode_error;
    bool consumer_done = false;
    auto result = WatchRaw(
        ref, opts,
        [&](std::string_view chunk) {
          auto fed = decoder.Feed(chunk, [&](const WatchEventFrame& frame) {
            if (!on_event(WatchEvent{frame.type, std::string(frame.object)})) consumer_done = true;
            return !consumer_done;
          });
          if (!fed.ok()) decode_error = std::move(fed).error();
          return fed.ok() && !consumer_done;
        },
        stop);
    if (decode_error) return *decode_error;
    if (!result.ok()) return result;
    if (!consumer_done && decoder.buffered() > 0) {
      return Error::Decode("watch " + MetricResource(ref) + ": the stream ended inside an event");
    }
    return std::monostate{};
  }

  Result<std::monostate> WatchRaw(const ObjectRef& ref, const ListOptions& opts,
                                  const std::function<bool(std::string_view)>& on_chunk,
                                  std::stop_token stop) override {
    ObjectRef collection = Collection(ref);
    ListOptions watch_opts = opts;
    if (!ref.name.empty()) {
      // A single object is watched through its collection, as client-go does.
      std::string by_name = "metadata.name=" + ref.name;
      watch_opts.field_selector =
          watch_opts.field_selector.empty() ? by_name : watch_opts.field_selector + "," + by_name;
    }
    std::string path = ResourcePath(collection);
    watch_opts.AppendQuery(&path, /*watch=*/true);
    Call call = MakeCall("watch", "GET", collection, std::move(path));
    call.idempotent = true;

    for (int attempt = 0;; ++attempt) {
      if (!limiter_.Wait(stop)) return Error::Cancelled("watch " + call.resource + ": cancelled");
      GPU_ASSIGN_OR_RETURN(HttpRequest req, BuildRequest(call, /*watch=*/true));
      bool delivered = false;
      Clock::TimePoint start = clock_.Now();
      auto resp = transport_->Stream(
          req, [](int, const Headers&) {},
          [&](std::string_view chunk) {
            delivered = true;
            return on_chunk(chunk);
          },
          stop);
      Observe(call, resp, start);
      if (resp.ok() && Is2xx(resp->status)) return std::monostate{};
      Error err = resp.ok() ? ErrorFromResponse(*resp) : std::move(resp).error();
      // Once events flowed the caller owns recovery (it must resume from its
      // last resourceVersion), so only a failed start is retried here.
      if (delivered || IsCancelled(err)) return err;
      auto delay = RetryDelay(call, err, attempt);
      if (!delay) return err;
      CountRetry(call, resp);
      if (!Sleep(*delay, stop)) return Error::Cancelled("watch " + call.resource + ": cancelled");
    }
  }

 private:
  static std::string_view VerbForMethod(std::string_view method) {
    if (method == "GET") return "get";
    if (method == "POST") return "create";
    if (method == "PUT") return "update";
    if (method == "PATCH") return "patch";
    if (method == "DELETE") return "delete";
    return "other";
  }

  static std::string NameOf(const json& obj) {
    if (!obj.is_object()) return "";
    auto m = obj.find("metadata");
    if (m == obj.end() || !m->is_object()) return "";
    auto n = m->find("name");
    return n != m->end() && n->is_string() ? n->get<std::string>() : "";
  }

  Call MakeCall(std::string_view verb, std::string method, const ObjectRef& ref,
                std::string path) const {
    Call call;
    call.verb = verb;
    call.method = std::move(method);
    call.path = std::move(path);
    call.resource = MetricResource(ref);
    return call;
  }

  Result<HttpRequest> BuildRequest(const Call& call, bool watch) {
    HttpRequest req;
    req.method = call.method;
    req.url = cfg_.server + call.path;
    req.timeout = watch ? std::chrono::milliseconds(0) : cfg_.timeout;
    req.headers.reserve(4);
    if (cfg_.token_source) {
      auto token = cfg_.token_source->Token();
      if (!token.ok()) return std::move(token).error();
      req.headers.emplace_back("Authorization", "Bearer " + *token);
    } else if (!cfg_.bearer_token.empty()) {
      req.headers.emplace_back("Authorization", "Bearer " + cfg_.bearer_token);
    } else if (!cfg_.username.empty()) {
      req.headers.emplace_back("Authorization",
                               "Basic " + Base64(cfg_.username + ":" + cfg_.password));
    }
    req.headers.emplace_back("User-Agent", cfg_.user_agent);
    req.headers.emplace_back("Accept", "application/json");
    if (!call.body.empty()) {
      req.headers.emplace_back("Content-Type", std::string(call.content_type));
      req.body = call.body;
    }
    return req;
  }

  // The Eviction apiVersion, discovered on the first Evict and then kept.
  // Holding the lock through the discovery request makes concurrent first
  // Evicts wait for that one request instead of each sending their own. A
  // failed discovery caches nothing.
  Result<std::string> EvictionApiVersion() {
    std::lock_guard<std::mutex> lock(eviction_mu_);
    if (eviction_api_version_.empty()) {
      GPU_ASSIGN_OR_RETURN(GroupVersion gv, EvictionGroupVersion(*this));
      // kubectl drain's EvictPod: policy/v1 when the server names it, else
      // policy/v1beta1, which every server with the subresource takes.
      eviction_api_version_ = gv == GroupVersion{"policy", "v1"} ? "policy/v1" : "policy/v1beta1";
    }
    return eviction_api_version_;
  }

  static Error ErrorFromResponse(const HttpResponse& resp) {
    Error err = Error::FromResponse(resp.status, resp.body);
    std::string retry_after = resp.Header("Retry-After");
    if (!retry_after.empty()) {
      char* end = nullptr;
      long seconds = std::strtol(retry_after.c_str(), &end, 10);
      if (end != retry_after.c_str() && *end == '\0' && seconds >= 0 && seconds < 86'400) {
        err.set_retry_after(std::chrono::seconds(seconds));
      }
    }
    return err;
  }

  // Retry rules, chosen deliberately (client-go retries only responses that
  // carry Retry-After, plus connection errors for GET):
  //  - 429 TooManyRequests: any verb; the server rejected the request before
  //    acting on it (API priority and fairness, max-in-flight). Wait
  //    Retry-After, else back off. Except an eviction that a
  //    PodDisruptionBudget refuses (DisruptionBudget cause, or no Retry-After):
  //    that is a verdict, not overload.
  //  - 5xx with Retry-After: any verb; the server asks for the retry.
  //  - other 5xx and transport errors: reads only (get, list, watch start,
  //    scale get). A write may have been applied before the error, and
  //    repeating a create/patch/delete could double-apply it.
  //  - client-side timeouts are not retried: the server may be overloaded.
  std::optional<Clock::Duration> RetryDelay(const Call& call, const Error& err, int attempt) {
    if (attempt >= opts_.max_retries) return std::nullopt;
    if (err.kind() == Error::Kind::kApi && IsTooManyRequests(err)) {
      if (call.eviction && (HasCause(err, "DisruptionBudget") || !err.retry_after())) {
        return std::nullopt;
      }
      if (auto after = err.retry_after()) return ClampRetryAfter(*after);
      return Backoff(attempt);
    }
    if (IsServerError(err)) {
      if (auto after = err.retry_after()) return ClampRetryAfter(*after);
      if (call.idempotent) return Backoff(attempt);
      return std::nullopt;
    }
    if (IsTransport(err) && call.idempotent) return Backoff(attempt);
    return std::nullopt;
  }

  static Clock::Duration ClampRetryAfter(std::chrono::seconds s) {
    return std::min<Clock::Duration>(s, std::chrono::minutes(5));
  }

  // Exponential with "equal jitter": half the step is fixed, half random, so
  // retries from many clients spread out but still grow.
  Clock::Duration Backoff(int attempt) {
    auto step = std::chrono::duration_cast<Clock::Duration>(opts_.retry_base);
    auto cap = std::chrono::duration_cast<Clock::Duration>(opts_.retry_cap);
    for (int i = 0; i < attempt && step < cap; ++i)
      step *= 2;
    step = std::min(step, cap);
    std::lock_guard<std::mutex> lock(rng_mu_);
    std::uniform_int_distribution<int64_t> jitter(0, std::max<int64_t>(step.count() / 2, 0));
    return step / 2 + Clock::Duration(jitter(rng_));
  }

  // Waits on the injected clock; false when `stop` was requested.
  bool Sleep(Clock::Duration d, std::stop_token stop = {}) {
    std::mutex mu;
    std::condition_variable cv;
    std::stop_callback wake(stop, [&] {
      std::lock_guard<std::mutex> l(mu);
      cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(mu);
    Clock::TimePoint deadline = clock_.Now() + d;
    while (clock_.Now() < deadline) {
      if (stop.stop_requested()) return false;
      clock_.WaitUntil(lock, cv, deadline);
    }
    return !stop.stop_requested();
  }

  void Observe(const Call& call, const Result<HttpResponse>& resp, Clock::TimePoint start) {
    if (!metrics_) return;
    double seconds = std::chrono::duration<double>(clock_.Now() - start).count();
    metrics_->Observe(call.verb, call.resource, CodeLabel(resp), seconds);
  }

  void CountRetry(const Call& call, const Result<HttpResponse>& resp) {
    if (metrics_) metrics_->Retry(call.verb, call.resource, CodeLabel(resp));
  }

  static std::string CodeLabel(const Result<HttpResponse>& resp) {
    return resp.ok() ? std::to_string(resp->status) : "<error>";
  }

  Result<HttpResponse> Execute(const Call& call) {
    for (int attempt = 0;; ++attempt) {
      limiter_.Wait();
      GPU_ASSIGN_OR_RETURN(HttpRequest req, BuildRequest(call, /*watch=*/false));
      Clock::TimePoint start = clock_.Now();
      auto resp = transport_->Do(req);
      Observe(call, resp, start);
      if (resp.ok() && Is2xx(resp->status)) return resp;
      Error err = resp.ok() ? ErrorFromResponse(*resp) : std::move(resp).error();
      auto delay = RetryDelay(call, err, attempt);
      if (!delay) return err;
      CountRetry(call, resp);
      Sleep(*delay);
    }
  }

  Result<json> ExecuteJson(const Call& call) {
    GPU_ASSIGN_OR_RETURN(HttpResponse resp, Execute(call));
    json parsed = json::parse(resp.body, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
      return Error::Decode(std::string(call.verb) + " " + call.resource +
                           ": the response is not valid JSON");
    }
    return parsed;
  }

  ClientConfig cfg_;
  std::unique_ptr<HttpTransport> transport_;
  RestClientOptions opts_;
  Clock& clock_;
  TokenBucketRateLimiter limiter_;
  std::unique_ptr<Metrics> metrics_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
  std::mutex eviction_mu_;
  std::string eviction_api_version_;  // "" until discovered
};

}  // namespace

Result<std::unique_ptr<RestClient>> RestClient::Create(const ClientConfig& cfg,
                                                       RestClientOptions opts) {
  GPU_ASSIGN_OR_RETURN(auto transport, NewCurlTransport(cfg));
  return WithTransport(cfg, std::move(transport), opts);
}

std::unique_ptr<RestClient> RestClient::WithTransport(const ClientConfig& cfg,
                                                      std::unique_ptr<HttpTransport> transport,
                                                      RestClientOptions opts) {
  return std::make_unique<RestClientImpl>(cfg, std::move(transport), opts);
}

}  // namespace gpu_autoscaler::kube
