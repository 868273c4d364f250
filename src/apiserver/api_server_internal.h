// File: src/apiserver/api_server_internal.h
//
// The embedded API server's implementation, shared by its translation units:
// api_server.cc (lifecycle, dispatch and the public class), api_server_faults.cc
// (fault injection and simulated restarts), api_server_read.cc (get, list,
// watch), api_server_write.cc (create, update, patch, delete) and
// api_server_subresources.cc (eviction, binding, scale, access reviews). Errors
// are shaped like kube-apiserver's (api_server_errors.cc).
//
// Not part of the library's interface: include api_server.h instead.
//
// Thread-safety: as ApiServer::Impl documents per member; HTTP handlers run
// concurrently on the server's threads.
#pragma once

#include <dirent.h>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <ctime>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>
#include <variant>

#include <nlohmann/json.hpp>

#include "apiserver/access_review.h"
#include "apiserver/admission_webhooks.h"
#include "apiserver/api_server.h"
#include "apiserver/defaults.h"
#include "apiserver/patch.h"
#include "apiserver/priority_admission.h"
#include "apiserver/resources.h"
#include "apiserver/store.h"
#include "apiserver/validation.h"
#include "apiserver/yaml_json.h"
#include "common/base64.h"
#include "kube/error.h"
#include "kube/selector.h"
#include "net/http_server.h"

namespace gpu_autoscaler::apiserver {

using kube::Error;
using nlohmann::json;

inline constexpr int kMaxUpdateAttempts = 8;
// Watchers re-check cancellation at least this often.
inline constexpr auto kWatchPollInterval = std::chrono::milliseconds(200);
// kube-apiserver v1.20's watch timing (staging/src/k8s.io/apiserver): the
// default --min-request-timeout, and the cacher's bookmark schedule.
inline constexpr double kMinRequestTimeoutSeconds = 1800;
inline constexpr auto kBookmarkBeforeDeadline = std::chrono::seconds(2);
inline constexpr auto kBookmarkTick = std::chrono::seconds(1);
// The longest an expired Event waits for the expiry thread when no write
// comes first (etcd's lessor also revokes expired leases on a timer).
inline constexpr auto kExpiryCheckInterval = std::chrono::seconds(1);

// Warnings admission webhooks returned for the request this thread serves;
// every response carries them as Warning headers.
extern thread_local std::vector<std::string> t_warnings;
std::vector<std::pair<std::string, std::string>> WarningHeaders();

// Errors shaped like kube-apiserver's.
Error ApiErr(int code, std::string reason, std::string message);
std::string GroupResourceName(std::string_view group, std::string_view resource);
Error WithDetails(Error e, std::string_view group, std::string_view kind, std::string_view name);
Error NotFoundErr(std::string_view group, std::string_view resource, std::string_view name);
Error AlreadyExistsErr(std::string_view group, std::string_view resource, std::string_view name);
Error ConflictErr(std::string_view group, std::string_view resource, std::string_view name,
                  std::string_view why);
inline constexpr std::string_view kModified =
    "the object has been modified; please apply your changes to the latest version and try again";
Error BadRequestErr(std::string message);
Error GenericNotFound();
Error MethodNotAllowedErr();
Error InternalErr(std::string message);
Error UnrecognizedBody(const std::string& kind, const std::string& body, const std::string& why);
// Go's encoding/json wording for a body that is not JSON.
std::string GoJsonError(const std::string& body, const json::parse_error& e);

// Small helpers.
std::string FormatTime(Clock::WallTime t);
std::optional<int64_t> ParseInt(std::string_view s);
std::string MediaType(std::string_view content_type);
json* MetaOf(json& obj);  // creates metadata when absent; null for non-objects
std::string MetaString(const json& obj, const char* field);
bool HasFinalizers(const json& obj);
bool IsTerminating(const json& obj);
// The object without metadata and status: what metadata.generation tracks.
json SpecPart(const json& obj);
// Equality ignoring resourceVersion and managedFields: a no-op write.
bool SameObject(const json& a, const json& b);

// ---------------------------------------------------------------------------
// Fault injection state.

struct InjectedFault {
  std::string verb, resource;
  int code = 500;
  int count = 1;
  int retry_after_seconds = 0;
};

// Extra time before answering the matching calls ("" matches any), on top
// of the latency every call gets.
struct InjectedDelay {
  std::string verb, resource;
  std::chrono::milliseconds delay{0};
};

// One parsed API request.
struct Call {
  const net::ServerRequest& req;
  net::ResponseWriter& w;
  std::shared_ptr<const ResourceInfo> info;
  std::string ns, name, sub;
  std::string verb;

  std::string Key() const { return ns.empty() ? name : ns + "/" + name; }
  bool DryRun() const { return !req.QueryParam("dryRun").empty(); }
};

struct Selectors {
  std::optional<kube::LabelSelector> labels;
  std::vector<std::pair<int, kube::FieldSelector::Requirement>> fields;  // -1 name, -2 namespace
  bool Matches(const StoredObject& o) const {
    if (labels && !labels->empty() && !labels->Matches(o.labels)) return false;
    for (const auto& [index, r] : fields) {
      const std::string& value = index == -1   ? o.name
                                 : index == -2 ? o.ns
                                               : o.fields[static_cast<size_t>(index)];
      if ((value == r.value) != r.equals) return false;
    }
    return true;
  }
  bool empty() const { return (!labels || labels->empty()) && fields.empty(); }
};

// The request body as a JSON object, with kube-apiserver's errors for a wrong
// media type, malformed JSON or a non-object.
kube::Result<json> ParseBody(const Call& c);

// ---------------------------------------------------------------------------

struct ApiServer::Impl {
  explicit Impl(const ApiServerOptions& o)
      : opts(o),
        clock(o.clock ? *o.clock : RealClock::Instance()),
        registry(o.emulated_minor),
        store(o.watch_history),
        admission(store, [this](std::string_view g, std::string_view v,
                                std::string_view r) { return registry.Find(g, v, r) != nullptr; }),
        rng(std::random_device{}()) {}

  ApiServerOptions opts;
  Clock& clock;
  ResourceRegistry registry;
  Store store;
  TokenTable tokens;            // --token (the admin) and --token-auth-file
  AdmissionWebhooks admission;  // calls the registered admission webhooks

  std::mutex http_mu;
  std::unique_ptr<net::HttpServer> http;
  std::atomic<int> port{0};  // kept across simulated restarts
  std::thread restart_thread;
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> watch_generation{0};
  std::atomic<int> restarts{0};  // completed simulated restarts

  std::mutex rng_mu;
  std::mt19937_64 rng;

  std::mutex fault_mu;
  std::chrono::milliseconds latency{0};
  std::vector<InjectedFault> faults;
  std::vector<InjectedDelay> delays;

  // Deletes Events past --event-ttl (Store::ExpireDue) until Shutdown.
  std::thread expiry_thread;
  std::mutex expiry_mu;
  std::condition_variable expiry_cv;

  Status Init();
  void RunExpiry();
  Status StartHttp();
  void Shutdown();
  void Handle(const net::ServerRequest& req, net::ResponseWriter& w);

  // Responses.
  static void Respond(net::ResponseWriter& w, int code, const std::string& body) {
    w.Respond(code, "application/json", body, WarningHeaders());
  }
  static void RespondError(net::ResponseWriter& w, const Error& e) {
    std::vector<std::pair<std::string, std::string>> headers = WarningHeaders();
    if (e.details().retry_after_seconds > 0) {
      headers.emplace_back("Retry-After", std::to_string(e.details().retry_after_seconds));
    }
    w.Respond(e.code() > 0 ? e.code() : 500, "application/json", e.ToStatusJson().dump(), headers);
  }

  std::string NewUid();
  std::string RandomSuffix(int n);
  std::string Now() { return FormatTime(clock.WallNow()); }

  // Faults.
  bool HandleFaultAdmin(const net::ServerRequest& req, net::ResponseWriter& w);
  std::optional<Error> InjectedError(const std::string& verb, const std::string& resource);
  // The injected delay for such a call (the first matching rule), else 0.
  std::chrono::milliseconds InjectedDelayFor(const std::string& verb, const std::string& resource);
  void RestartAsync(std::chrono::milliseconds downtime);

  // Resources.
  void HandleResource(Call& c);
  void Get(Call& c);
  void List(Call& c);
  void Watch(Call& c);
  void Create(Call& c);
  void Update(Call& c);
  void Patch(Call& c);
  void Delete(Call& c);
  void DeleteCollection(Call& c);
  void Evict(Call& c);
  void Bind(Call& c);
  void Review(Call& c);  // TokenReview, SubjectAccessReview
  void Scale(Call& c);

  kube::Result<Selectors> ParseSelectors(const Call& c);
  json ParseStored(const StoredObject& o, const ResourceInfo& info) const;
  std::string Render(const StoredObject& o, const ResourceInfo& info) const {
    return WithTypeMeta(o.json, info.ApiVersion(), info.kind);
  }
  std::string FieldManager(const Call& c) const;

  // Shared write paths. They return {HTTP code, body}.
  using Reply = std::pair<int, std::string>;
  kube::Result<Reply> CreateObject(const ResourceInfo& info, const std::string& ns, json obj,
                                   bool dry_run, const std::string& manager);
  // `mutate` computes the desired object from the current one (null when
  // absent); it runs again when a concurrent write wins the race.
  using Mutator = std::function<kube::Result<json>(const json* current)>;
  kube::Result<Reply> UpdateObject(const ResourceInfo& info, const std::string& ns,
                                   const std::string& name, const std::string& sub,
                                   const Mutator& mutate, bool allow_create, bool dry_run,
                                   const std::string& manager, bool admit = true);
  kube::Result<Reply> DeleteObject(const ResourceInfo& info, const std::string& ns,
                                   const std::string& name, const json& options, bool dry_run,
                                   bool admit = true);
  void AfterWrite(const ResourceInfo& info, const json& obj, bool deleted);
  // Runs the mutating (which may rewrite `obj`) or validating admission
  // webhooks for one write; free when none is configured.
  kube::Result<std::monostate> Admit(bool mutating, const ResourceInfo& info, const char* operation,
                                     const std::string& sub, const std::string& ns,
                                     const std::string& name, json* obj, const json* old,
                                     bool dry_run, const json* options = nullptr);
  void DeleteNamespaceContents(const std::string& ns);
  // The stored PriorityClasses, as the Priority admission plugin reads them.
  PriorityClassLookup StoredPriorityClasses();
  // The Priority plugin's check of a PriorityClass create or update: at most
  // one may be marked globalDefault.
  std::optional<Error> CheckGlobalDefault(const ResourceInfo& info, const json& pc, bool create);
  Status LoadCrdDir(const std::string& dir);
  void EnsureNamespace(const std::string& name);
  // kube-apiserver's scheduling/bootstrap-system-priority-classes hook.
  void EnsureSystemPriorityClasses();
};

}  // namespace gpu_autoscaler::apiserver
