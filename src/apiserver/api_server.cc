#include "apiserver/api_server.h"

#include <dirent.h>
#include <algorithm>
#include <atomic>
#include <cmath>
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
#include "apiserver/defaults.h"
#include "apiserver/patch.h"
#include "apiserver/resources.h"
#include "apiserver/store.h"
#include "apiserver/validation.h"
#include "apiserver/yaml_json.h"
#include "common/base64.h"
#include "kube/error.h"
#include "kube/selector.h"
#include "net/http_server.h"

namespace gpu_autoscaler::apiserver {
namespace {

using kube::Error;
using nlohmann::json;

constexpr int kMaxUpdateAttempts = 8;
// Watchers re-check cancellation at least this often.
constexpr auto kWatchPollInterval = std::chrono::milliseconds(200);

// Warnings admission webhooks returned for the request this thread serves;
// every response carries them as Warning headers.
thread_local std::vector<std::string> t_warnings;

std::vector<std::pair<std::string, std::string>> WarningHeaders() {
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& w : t_warnings)
    headers.emplace_back("Warning",
                         "299 - " + json(w).dump(-1, ' ', false, json::error_handler_t::replace));
  return headers;
}

// ---------------------------------------------------------------------------
// Errors shaped like kube-apiserver's.

Error ApiErr(int code, std::string reason, std::string message) {
  return Error(Error::Kind::kApi, code, std::move(reason), std::move(message));
}

std::string GroupResourceName(std::string_view group, std::string_view resource) {
  std::string out(resource);
  if (!group.empty()) out.append(".").append(group);
  return out;
}

Error WithDetails(Error e, std::string_view group, std::string_view kind, std::string_view name) {
  auto& d = e.mutable_details();
  d.group = std::string(group);
  d.kind = std::string(kind);
  d.name = std::string(name);
  d.present = true;
  return e;
}

Error NotFoundErr(std::string_view group, std::string_view resource, std::string_view name) {
  return WithDetails(
      ApiErr(404, "NotFound",
             GroupResourceName(group, resource) + " \"" + std::string(name) + "\" not found"),
      group, resource, name);
}

Error AlreadyExistsErr(std::string_view group, std::string_view resource, std::string_view name) {
  return WithDetails(
      ApiErr(409, "AlreadyExists",
             GroupResourceName(group, resource) + " \"" + std::string(name) + "\" already exists"),
      group, resource, name);
}

Error ConflictErr(std::string_view group, std::string_view resource, std::string_view name,
                  std::string_view why) {
  return WithDetails(
      ApiErr(409, "Conflict",
             "Operation cannot be fulfilled on " + GroupResourceName(group, resource) + " \"" +
                 std::string(name) + "\": " + std::string(why)),
      group, resource, name);
}

constexpr std::string_view kModified =
    "the object has been modified; please apply your changes to the latest version and try again";

Error BadRequestErr(std::string message) {
  return ApiErr(400, "BadRequest", std::move(message));
}

Error GenericNotFound() {
  Error e = ApiErr(404, "NotFound", "the server could not find the requested resource");
  e.mutable_details().present = true;
  return e;
}

Error MethodNotAllowedErr() {
  Error e = ApiErr(405, "MethodNotAllowed",
                   "the server does not allow this method on the requested resource");
  e.mutable_details().present = true;
  return e;
}

Error InternalErr(std::string message) {
  Error e = ApiErr(500, "InternalError", "Internal error occurred: " + message);
  e.mutable_details().causes.push_back({"", std::move(message), ""});
  return e;
}

// ---------------------------------------------------------------------------
// Small helpers.

std::string FormatTime(Clock::WallTime t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<int64_t> ParseInt(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  int64_t v = 0;
  size_t i = 0;
  bool neg = false;
  if (s[0] == '-') {
    neg = true;
    i = 1;
    if (s.size() == 1) return std::nullopt;
  }
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return neg ? -v : v;
}

std::string MediaType(std::string_view content_type) {
  auto semi = content_type.find(';');
  std::string out(content_type.substr(0, semi));
  while (!out.empty() && out.back() == ' ')
    out.pop_back();
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

json* MetaOf(json& obj) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find("metadata");
  if (it == obj.end() || !it->is_object()) {
    obj["metadata"] = json::object();
    return &obj["metadata"];
  }
  return &*it;
}

std::string MetaString(const json& obj, const char* field) {
  auto it = obj.find("metadata");
  if (it == obj.end() || !it->is_object()) return {};
  auto f = it->find(field);
  if (f == it->end() || !f->is_string()) return {};
  return f->get<std::string>();
}

bool HasFinalizers(const json& obj) {
  auto it = obj.find("metadata");
  if (it == obj.end() || !it->is_object()) return false;
  auto f = it->find("finalizers");
  return f != it->end() && f->is_array() && !f->empty();
}

bool IsTerminating(const json& obj) {
  auto it = obj.find("metadata");
  return it != obj.end() && it->is_object() && it->contains("deletionTimestamp") &&
         !(*it)["deletionTimestamp"].is_null();
}

// The object without metadata and status: what metadata.generation tracks.
json SpecPart(const json& obj) {
  json out = obj;
  if (out.is_object()) {
    out.erase("metadata");
    out.erase("status");
    out.erase("apiVersion");
    out.erase("kind");
  }
  return out;
}

// Equality ignoring resourceVersion and managedFields: a no-op write.
bool SameObject(const json& a, const json& b) {
  json x = a, y = b;
  for (json* o : {&x, &y}) {
    if (json* m = MetaOf(*o)) {
      m->erase("resourceVersion");
      m->erase("managedFields");
    }
  }
  return x == y;
}

std::string GoJsonError(const std::string& body, const json::parse_error& e) {
  if (e.byte >= body.size()) return "unexpected end of JSON input";
  char c = body[e.byte > 0 ? e.byte - 1 : 0];
  return std::string("invalid character '") + c + "' looking for beginning of value";
}

Error UnrecognizedBody(const std::string& kind, const std::string& body, const std::string& why) {
  std::string excerpt = body.size() > 30 ? body.substr(0, 30) + " ..." : body;
  return BadRequestErr("the object provided is unrecognized (must be of type " + kind +
                       "): couldn't get version/kind; json parse error: " + why + " (" + excerpt +
                       ")");
}

// ---------------------------------------------------------------------------
// Fault injection state.

struct InjectedFault {
  std::string verb, resource;
  int code = 500;
  int count = 1;
  int retry_after_seconds = 0;
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

}  // namespace

// ---------------------------------------------------------------------------

struct ApiServer::Impl {
  explicit Impl(const ApiServerOptions& o)
      : opts(o),
        clock(o.clock ? *o.clock : RealClock::Instance()),
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

  Status Init();
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
  Status LoadCrdDir(const std::string& dir);
  void EnsureNamespace(const std::string& name);
};

// ---------------------------------------------------------------------------

std::string ApiServer::Impl::NewUid() {
  std::lock_guard<std::mutex> lock(rng_mu);
  uint64_t a = rng(), b = rng();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xffff),
                static_cast<unsigned>(b >> 48),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

std::string ApiServer::Impl::RandomSuffix(int n) {
  static constexpr char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::lock_guard<std::mutex> lock(rng_mu);
  std::string out;
  for (int i = 0; i < n; ++i)
    out.push_back(kAlphabet[rng() % (sizeof(kAlphabet) - 1)]);
  return out;
}

json ApiServer::Impl::ParseStored(const StoredObject& o, const ResourceInfo& info) const {
  json obj = o.Parse();
  obj["apiVersion"] = info.ApiVersion();
  obj["kind"] = info.kind;
  return obj;
}

std::string ApiServer::Impl::FieldManager(const Call& c) const {
  std::string manager = c.req.QueryParam("fieldManager");
  if (!manager.empty()) return manager;
  return FieldManagerFromUserAgent(c.req.Header("User-Agent"));
}

Status ApiServer::Impl::StartHttp() {
  net::HttpServerOptions ho;
  ho.bind_address = opts.bind_address;
  ho.port = port.load() != 0 ? port.load() : opts.port;
  ho.tls_cert_file = opts.tls_cert_file;
  ho.tls_key_file = opts.tls_key_file;
  // As kube-apiserver answers an oversized request: a Status, not text.
  ho.body_too_large = [](size_t limit) {
    const json status = {{"kind", "Status"},
                         {"apiVersion", "v1"},
                         {"metadata", json::object()},
                         {"status", "Failure"},
                         {"message", "Request entity too large: limit is " + std::to_string(limit)},
                         {"reason", "RequestEntityTooLarge"},
                         {"code", 413}};
    return std::make_pair(std::string("application/json"), status.dump());
  };
  auto server = net::HttpServer::Start(
      ho, [this](const net::ServerRequest& req, net::ResponseWriter& w) { Handle(req, w); });
  if (!server.ok()) return server.error();
  std::lock_guard<std::mutex> lock(http_mu);
  http = std::move(server).value();
  port = http->port();
  return Status::Ok();
}

void ApiServer::Impl::EnsureNamespace(const std::string& name) {
  auto info = registry.Find("", "v1", "namespaces");
  json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}};
  (void)CreateObject(*info, "", std::move(ns), false, "kube-apiserver");
}

Status ApiServer::Impl::Init() {
  for (const char* ns : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
    EnsureNamespace(ns);
  }
  if (!opts.token_auth_file.empty()) {
    std::ifstream in(opts.token_auth_file);
    if (!in) return NotFoundError("cannot read --token-auth-file " + opts.token_auth_file);
    std::stringstream text;
    text << in.rdbuf();
    GPU_ASSIGN_OR_RETURN(tokens, ParseTokenAuthFile(text.str()));
  }
  if (!opts.token.empty()) {
    tokens[opts.token] = {"admin", "admin", {"system:masters", "system:authenticated"}};
  }
  if (!opts.crd_dir.empty()) GPU_RETURN_IF_ERROR(LoadCrdDir(opts.crd_dir));
  return StartHttp();
}

Status ApiServer::Impl::LoadCrdDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return NotFoundError("cannot open --crd-dir " + dir);
  std::vector<std::string> files;
  while (dirent* entry = ::readdir(d)) {
    std::string name = entry->d_name;
    auto ends_with = [&](std::string_view suffix) {
      return name.size() >= suffix.size() &&
             name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends_with(".yaml") || ends_with(".yml")) files.push_back(dir + "/" + name);
  }
  ::closedir(d);
  std::sort(files.begin(), files.end());
  auto info = registry.Find("apiextensions.k8s.io", "v1", "customresourcedefinitions");
  for (const auto& path : files) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    auto docs = YamlDocumentsToJson(ss.str());
    if (!docs.ok()) return docs.error().WithContext(path);
    for (auto& doc : *docs) {
      if (!doc.is_object() || doc.value("kind", "") != "CustomResourceDefinition") continue;
      auto created = CreateObject(*info, "", doc, false, "kube-apiserver");
      if (!created.ok() && created.error().code() != 409) {
        return InvalidArgumentError(path + ": " + created.error().message());
      }
    }
  }
  return Status::Ok();
}

void ApiServer::Impl::Shutdown() {
  if (stopping.exchange(true)) return;
  store.NotifyAll();
  std::thread restarting;
  {
    std::lock_guard<std::mutex> lock(http_mu);
    restarting.swap(restart_thread);
  }
  if (restarting.joinable()) restarting.join();
  std::unique_ptr<net::HttpServer> server;
  {
    std::lock_guard<std::mutex> lock(http_mu);
    server = std::move(http);
  }
  if (server) server->Stop();
}

// ---------------------------------------------------------------------------
// Faults.

bool ApiServer::Impl::HandleFaultAdmin(const net::ServerRequest& req, net::ResponseWriter& w) {
  if (req.path.rfind("/__faults", 0) != 0) return false;
  if (!opts.enable_fault_injection) {
    RespondError(w, GenericNotFound());
    return true;
  }
  json body = json::object();
  if (!req.body.empty()) {
    body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      RespondError(w, BadRequestErr("fault body must be a JSON object"));
      return true;
    }
  }
  std::string action = req.path.substr(std::string_view("/__faults").size());
  if (action == "/status") {
    Respond(w, 200, json({{"restarts", restarts.load()}}).dump());
    return true;
  }
  if (req.method != "POST") {
    RespondError(w, MethodNotAllowedErr());
    return true;
  }
  if (action == "/latency") {
    std::lock_guard<std::mutex> lock(fault_mu);
    latency = std::chrono::milliseconds(body.value("ms", 0));
  } else if (action == "/error") {
    InjectedFault f;
    f.verb = body.value("verb", "");
    f.resource = body.value("resource", "");
    f.code = body.value("code", 500);
    f.count = body.value("count", 1);
    f.retry_after_seconds = body.value("retryAfterSeconds", 0);
    std::lock_guard<std::mutex> lock(fault_mu);
    faults.push_back(f);
  } else if (action == "/drop-watches") {
    watch_generation.fetch_add(1);
    store.NotifyAll();
  } else if (action == "/compact") {
    store.Compact();
  } else if (action == "/restart") {
    Respond(w, 200, R"({"status":"restarting"})");
    RestartAsync(std::chrono::milliseconds(body.value("downtimeMs", 200)));
    return true;
  } else if (action == "/clear") {
    std::lock_guard<std::mutex> lock(fault_mu);
    latency = std::chrono::milliseconds(0);
    faults.clear();
  } else {
    RespondError(w, GenericNotFound());
    return true;
  }
  Respond(w, 200, R"({"status":"ok"})");
  return true;
}

std::optional<Error> ApiServer::Impl::InjectedError(const std::string& verb,
                                                    const std::string& resource) {
  std::lock_guard<std::mutex> lock(fault_mu);
  for (auto it = faults.begin(); it != faults.end(); ++it) {
    if (!it->verb.empty() && it->verb != verb) continue;
    if (!it->resource.empty() && it->resource != resource) continue;
    // The real server's 410s are always "Expired" (a compacted resourceVersion).
    std::string reason =
        it->code == 410 ? "Expired" : std::string(kube::StatusReasonForCode(it->code));
    if (reason.empty()) reason = "Unknown";
    Error e = ApiErr(it->code, std::move(reason), "injected fault");
    if (it->retry_after_seconds > 0) {
      e.mutable_details().retry_after_seconds = it->retry_after_seconds;
    }
    if (it->count > 0 && --it->count == 0) faults.erase(it);
    return e;
  }
  return std::nullopt;
}

void ApiServer::Impl::RestartAsync(std::chrono::milliseconds downtime) {
  std::lock_guard<std::mutex> lock(http_mu);
  if (restart_thread.joinable() || stopping.load()) return;
  restart_thread = std::thread([this, downtime] {
    std::unique_ptr<net::HttpServer> old;
    {
      std::lock_guard<std::mutex> l(http_mu);
      old = std::move(http);
    }
    watch_generation.fetch_add(1);
    store.NotifyAll();
    if (old) old->Stop();
    old.reset();
    store.Compact();
    auto until = std::chrono::steady_clock::now() + downtime;
    while (!stopping.load() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    // The port may linger briefly; keep trying to bind it again.
    for (int attempt = 0; attempt < 200 && !stopping.load(); ++attempt) {
      if (StartHttp().ok()) {
        restarts.fetch_add(1);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    // Let a later restart run; Shutdown() joins this thread if it got here first.
    std::thread self;
    {
      std::lock_guard<std::mutex> l(http_mu);
      if (restart_thread.get_id() == std::this_thread::get_id()) self.swap(restart_thread);
    }
    if (self.joinable()) self.detach();
  });
}

// ---------------------------------------------------------------------------
// Dispatch.

void ApiServer::Impl::Handle(const net::ServerRequest& req, net::ResponseWriter& w) {
  t_warnings.clear();
  try {
    if (!opts.token.empty()) {
      const std::string_view header = req.Header("Authorization");
      constexpr std::string_view kBearer = "Bearer ";
      if (header.rfind(kBearer, 0) != 0 ||
          tokens.find(header.substr(kBearer.size())) == tokens.end()) {
        RespondError(w, ApiErr(401, "Unauthorized", "Unauthorized"));
        return;
      }
    }
    if (HandleFaultAdmin(req, w)) return;
    std::chrono::milliseconds delay;
    {
      std::lock_guard<std::mutex> lock(fault_mu);
      delay = latency;
    }
    if (delay.count() > 0) std::this_thread::sleep_for(delay);

    const std::string& path = req.path;
    if (path == "/version" || path == "/version/") {
      json v = {{"major", "1"},
                {"minor", "20"},
                {"gitVersion", "v1.20.2"},
                {"gitCommit", "faecb196815e248d3ecfb03c680a4507229c2a56"},
                {"gitTreeState", "archive"},
                {"buildDate", "2026-11-22T08:09:00Z"},
                {"goVersion", "go1.19.8"},
                {"compiler", "gc"},
                {"platform", "linux/amd64"}};
      Respond(w, 200, v.dump());
      return;
    }
    if (path == "/healthz" || path == "/livez" || path == "/readyz") {
      w.Respond(200, "text/plain; charset=utf-8", "ok");
      return;
    }
    std::vector<std::string> segs;
    for (size_t i = 0; i < path.size();) {
      size_t j = path.find('/', i);
      if (j == std::string::npos) j = path.size();
      if (j > i) segs.push_back(path.substr(i, j - i));
      i = j + 1;
    }
    std::string group, version;
    size_t rest;
    if (!segs.empty() && segs[0] == "api") {
      if (segs.size() == 1) {
        Respond(w, 200,
                registry.ApiVersionsJson(opts.bind_address + ":" + std::to_string(port.load())));
        return;
      }
      version = segs[1];
      rest = 2;
    } else if (!segs.empty() && segs[0] == "apis") {
      if (segs.size() == 1) {
        Respond(w, 200, registry.GroupListJson());
        return;
      }
      group = segs[1];
      if (segs.size() == 2) {
        auto doc = registry.GroupJson(group);
        if (doc) {
          Respond(w, 200, *doc);
        } else {
          RespondError(w, GenericNotFound());
        }
        return;
      }
      version = segs[2];
      rest = 3;
    } else {
      RespondError(w, GenericNotFound());
      return;
    }
    if (segs.size() == rest) {
      auto doc = registry.ResourceListJson(group, version);
      if (doc && req.method == "GET") {
        Respond(w, 200, *doc);
      } else {
        RespondError(w, GenericNotFound());
      }
      return;
    }
    Call c{req, w, nullptr, "", "", "", ""};
    std::vector<std::string> r(segs.begin() + static_cast<long>(rest), segs.end());
    if (r.size() >= 3 && r[0] == "namespaces") {
      auto info = registry.Find(group, version, r[2]);
      if (info && info->namespaced) {
        c.info = info;
        c.ns = r[1];
        r.erase(r.begin(), r.begin() + 2);
      }
    }
    if (!c.info) c.info = registry.Find(group, version, r[0]);
    if (!c.info || r.size() > 3 || (c.info->namespaced && c.ns.empty() && r.size() > 1) ||
        (r.size() == 3 && !c.info->HasSubresource(r[2]))) {
      RespondError(w, GenericNotFound());
      return;
    }
    if (r.size() >= 2) c.name = r[1];
    if (r.size() == 3) c.sub = r[2];

    bool watch = req.QueryParam("watch") == "1" || req.QueryParam("watch") == "true";
    const std::string& m = req.method;
    if (m == "GET") {
      c.verb = c.name.empty() ? (watch ? "watch" : "list") : "get";
    } else if (m == "POST") {
      c.verb = "create";
    } else if (m == "PUT") {
      c.verb = "update";
    } else if (m == "PATCH") {
      c.verb = "patch";
    } else if (m == "DELETE") {
      c.verb = c.name.empty() ? "deletecollection" : "delete";
    } else {
      RespondError(w, MethodNotAllowedErr());
      return;
    }
    if (opts.enable_fault_injection) {
      std::string resource = c.sub.empty() ? c.info->resource : c.info->resource + "/" + c.sub;
      auto injected = InjectedError(c.verb, c.info->resource);
      if (!injected && !c.sub.empty()) injected = InjectedError(c.verb, resource);
      if (injected) {
        RespondError(w, *injected);
        return;
      }
    }
    HandleResource(c);
  } catch (const json::exception& e) {
    if (!w.Cancelled()) RespondError(w, InternalErr(e.what()));
  }
}

void ApiServer::Impl::HandleResource(Call& c) {
  const ResourceInfo& info = *c.info;
  // Collections: list/watch/create/deletecollection.
  if (c.name.empty()) {
    if (c.verb == "list") return List(c);
    if (c.verb == "watch") return Watch(c);
    if (c.verb == "create") {
      if (info.resource == "bindings") return Bind(c);
      if (info.resource == "tokenreviews" || info.resource == "subjectaccessreviews") {
        return Review(c);
      }
      return Create(c);
    }
    if (c.verb == "deletecollection") {
      if (std::find(info.verbs.begin(), info.verbs.end(), "deletecollection") == info.verbs.end()) {
        return RespondError(c.w, MethodNotAllowedErr());
      }
      return DeleteCollection(c);
    }
    return RespondError(c.w, MethodNotAllowedErr());
  }
  if (c.sub == "eviction") {
    if (c.verb != "create") return RespondError(c.w, MethodNotAllowedErr());
    return Evict(c);
  }
  if (c.sub == "binding") {
    if (c.verb != "create") return RespondError(c.w, MethodNotAllowedErr());
    return Bind(c);
  }
  if (c.sub == "scale") return Scale(c);
  if (c.verb == "get") return Get(c);
  if (c.verb == "update") return Update(c);
  if (c.verb == "patch") return Patch(c);
  if (c.verb == "delete" && c.sub.empty()) return Delete(c);
  RespondError(c.w, MethodNotAllowedErr());
}

void ApiServer::Impl::Get(Call& c) {
  ObjectPtr obj = store.Get(c.info->StorageKey(), c.Key());
  if (!obj) return RespondError(c.w, NotFoundErr(c.info->group, c.info->resource, c.name));
  Respond(c.w, 200, Render(*obj, *c.info));
}

kube::Result<Selectors> ApiServer::Impl::ParseSelectors(const Call& c) {
  Selectors s;
  std::string label = c.req.QueryParam("labelSelector");
  if (!label.empty()) {
    auto parsed = kube::LabelSelector::Parse(label);
    if (!parsed.ok()) return BadRequestErr(parsed.error().message());
    s.labels = std::move(parsed).value();
  }
  std::string field = c.req.QueryParam("fieldSelector");
  if (!field.empty()) {
    auto parsed = kube::FieldSelector::Parse(field);
    if (!parsed.ok()) return BadRequestErr(parsed.error().message());
    for (const auto& r : parsed->requirements()) {
      int index;
      if (r.field == "metadata.name") {
        index = -1;
      } else if (r.field == "metadata.namespace") {
        index = -2;
      } else {
        const auto& f = c.info->selectable_fields;
        auto it = std::find(f.begin(), f.end(), r.field);
        if (it == f.end()) return BadRequestErr("field label not supported: " + r.field);
        index = static_cast<int>(it - f.begin());
      }
      s.fields.emplace_back(index, r);
    }
  }
  return s;
}

namespace {

struct ContinueToken {
  uint64_t rv = 0;
  std::string start;  // key relative to the list prefix
};

std::string EncodeContinue(int64_t rv, const std::string& start) {
  json token = {{"v", "meta.k8s.io/v1"}, {"rv", rv}, {"start", start}};
  return Base64UrlEncode(token.dump());
}

kube::Result<ContinueToken> DecodeContinue(const std::string& text) {
  auto raw = Base64UrlDecode(text);
  if (!raw) return BadRequestErr("continue key is not valid: illegal base64 data");
  json token = json::parse(*raw, nullptr, false);
  if (token.is_discarded() || !token.is_object() || token.value("v", "") != "meta.k8s.io/v1" ||
      !token.contains("rv") || !token["rv"].is_number_integer() || !token.contains("start") ||
      !token["start"].is_string()) {
    return BadRequestErr("continue key is not valid: incorrect encoded start resourceVersion");
  }
  int64_t rv = token["rv"].get<int64_t>();
  ContinueToken out;
  out.rv = rv <= 0 ? 0 : static_cast<uint64_t>(rv);
  out.start = token["start"].get<std::string>();
  if (rv <= 0) {
    return BadRequestErr("continue key is not valid: incorrect encoded start resourceVersion");
  }
  return out;
}

}  // namespace

void ApiServer::Impl::List(Call& c) {
  const ResourceInfo& info = *c.info;
  auto selectors = ParseSelectors(c);
  if (!selectors.ok()) return RespondError(c.w, selectors.error());
  std::string rv_param = c.req.QueryParam("resourceVersion");
  std::string rv_match = c.req.QueryParam("resourceVersionMatch");
  std::string cont = c.req.QueryParam("continue");
  int64_t limit = 0;
  if (c.req.HasQueryParam("limit")) {
    auto l = ParseInt(c.req.QueryParam("limit"));
    if (!l) return RespondError(c.w, BadRequestErr("invalid limit"));
    limit = std::max<int64_t>(*l, 0);
  }
  ListRequest lr;
  lr.storage_key = info.StorageKey();
  lr.prefix = c.ns.empty() ? "" : c.ns + "/";
  lr.limit = limit;
  const Selectors& sel = *selectors;
  if (!sel.empty()) lr.filter = [&sel](const StoredObject& o) { return sel.Matches(o); };

  if (!cont.empty()) {
    if (!rv_param.empty()) {
      return RespondError(
          c.w, BadRequestErr("specifying resource version is not allowed when using continue"));
    }
    auto token = DecodeContinue(cont);
    if (!token.ok()) return RespondError(c.w, token.error());
    if (token->rv < store.compacted_resource_version()) {
      Error e = ApiErr(
          410, "Expired",
          "The provided continue parameter is too old to display a consistent list result. You "
          "can start a new list without the continue parameter, or use the continue token in "
          "this response to retrieve the remainder of the results. Continuing with the provided "
          "token results in an inconsistent list - objects that were created, modified, or "
          "deleted between the time the first chunk was returned and now may show up in the "
          "list.");
      e.set_list_continue(EncodeContinue(-1, token->start));
      return RespondError(c.w, e);
    }
    lr.at_resource_version = token->rv;
    lr.start_after = lr.prefix + token->start;
    // The token's start is just past the last key ("<key>\0"): resume after that key.
    if (!lr.start_after.empty() && lr.start_after.back() == '\0') lr.start_after.pop_back();
  } else if (rv_param == "0") {
    lr.limit = 0;  // served whole from the watch cache, like kube-apiserver
  } else if (!rv_param.empty()) {
    auto rv = ParseInt(rv_param);
    if (!rv || *rv < 0) {
      return RespondError(c.w, BadRequestErr("invalid resource version: " + rv_param));
    }
    uint64_t want = static_cast<uint64_t>(*rv);
    if (want > store.current_resource_version() &&
        !store.WaitForResourceVersion(want, clock.Now() + std::chrono::seconds(3), clock)) {
      Error e = ApiErr(504, "Timeout",
                       "Too large resource version: " + rv_param +
                           ", current: " + std::to_string(store.current_resource_version()));
      e.mutable_details().retry_after_seconds = 1;
      return RespondError(c.w, e);
    }
    if (rv_match == "Exact") {
      if (want < store.compacted_resource_version()) {
        return RespondError(
            c.w, ApiErr(410, "Expired", "The resourceVersion for the provided list is too old."));
      }
      lr.at_resource_version = want;
    }
  }
  auto result = store.List(lr);
  if (!result.ok()) return RespondError(c.w, result.error());
  const ListResult& page = *result;
  json meta = {{"resourceVersion", std::to_string(page.resource_version)}};
  if (page.more) {
    std::string start = page.last_key.substr(lr.prefix.size());
    start.push_back('\0');
    meta["continue"] = EncodeContinue(static_cast<int64_t>(page.resource_version), start);
    if (sel.empty()) meta["remainingItemCount"] = page.remaining;
  } else if (info.custom) {
    meta["continue"] = "";
  }
  std::string body;
  size_t total = 0;
  for (const auto& item : page.items)
    total += item->json.size() + 64;
  body.reserve(total + 256);
  body.append("{\"kind\":").append(json(info.list_kind).dump());
  body.append(",\"apiVersion\":").append(json(info.ApiVersion()).dump());
  body.append(",\"metadata\":").append(meta.dump());
  body.append(",\"items\":[");
  bool first = true;
  for (const auto& item : page.items) {
    if (!first) body.push_back(',');
    first = false;
    if (info.custom) {
      body.append(Render(*item, info));
    } else {
      body.append(item->json);
    }
  }
  body.append("]}");
  Respond(c.w, 200, body);
}

void ApiServer::Impl::Watch(Call& c) {
  const ResourceInfo& info = *c.info;
  auto selectors = ParseSelectors(c);
  if (!selectors.ok()) return RespondError(c.w, selectors.error());
  const Selectors& sel = *selectors;
  std::string rv_param = c.req.QueryParam("resourceVersion");
  bool bookmarks = c.req.QueryParam("allowWatchBookmarks") == "true" ||
                   c.req.QueryParam("allowWatchBookmarks") == "1";
  auto timeout = ParseInt(c.req.QueryParam("timeoutSeconds"));
  Clock::TimePoint now = clock.Now();
  Clock::TimePoint end = now + std::chrono::hours(1);
  if (timeout && *timeout > 0) end = now + std::chrono::seconds(*timeout);
  uint64_t generation = watch_generation.load();
  std::string prefix = c.ns.empty() ? "" : c.ns + "/";
  std::string storage_key = info.StorageKey();

  auto event_line = [&](std::string_view type, const std::string& object) {
    std::string line;
    line.reserve(object.size() + 40);
    line.append("{\"type\":\"").append(type).append("\",\"object\":").append(object);
    line.append("}\n");
    return line;
  };
  auto expired = [&]() {
    Error e = ApiErr(410, "Expired", "The resourceVersion for the provided watch is too old.");
    c.w.Write(event_line("ERROR", e.ToStatusJson().dump()));
    c.w.End();
  };

  uint64_t cursor;
  std::vector<ObjectPtr> initial;
  if (rv_param.empty() || rv_param == "0") {
    ListRequest lr;
    lr.storage_key = storage_key;
    lr.prefix = prefix;
    if (!sel.empty()) lr.filter = [&sel](const StoredObject& o) { return sel.Matches(o); };
    auto listed = store.List(lr);
    if (!listed.ok()) return RespondError(c.w, listed.error());
    cursor = listed->resource_version;
    initial = std::move(listed->items);
  } else {
    auto rv = ParseInt(rv_param);
    if (!rv || *rv < 0) {
      return RespondError(c.w, BadRequestErr("invalid resource version: " + rv_param));
    }
    cursor = static_cast<uint64_t>(*rv);
  }
  if (!c.w.StartStream(200, "application/json")) return;
  if (cursor < store.compacted_resource_version()) return expired();
  for (const auto& obj : initial) {
    if (!c.w.Write(event_line("ADDED", Render(*obj, info)))) return;
  }
  initial.clear();

  auto next_bookmark = clock.Now() + opts.bookmark_interval;
  auto should_stop = [&] {
    return c.w.Cancelled() || stopping.load() || watch_generation.load() != generation;
  };
  std::vector<StoreEvent> events;
  while (true) {
    if (should_stop()) {
      if (!c.w.Cancelled()) c.w.End();
      return;
    }
    now = clock.Now();
    if (now >= end) {
      c.w.End();
      return;
    }
    auto deadline = std::min(end, now + kWatchPollInterval);
    if (bookmarks) deadline = std::min(deadline, next_bookmark);
    events.clear();
    if (!store.WaitForEvents(cursor, 512, deadline, clock, should_stop, &events)) {
      return expired();
    }
    for (const StoreEvent& e : events) {
      cursor = e.resource_version;
      if (e.storage_key != storage_key) continue;
      if (e.object->key.compare(0, prefix.size(), prefix) != 0) continue;
      bool now_matches = sel.Matches(*e.object);
      bool was_matching = e.prev && sel.Matches(*e.prev);
      std::string line;
      switch (e.type) {
        case EventType::kAdded:
          if (now_matches) line = event_line("ADDED", Render(*e.object, info));
          break;
        case EventType::kModified:
          if (now_matches && was_matching) {
            line = event_line("MODIFIED", Render(*e.object, info));
          } else if (now_matches) {
            line = event_line("ADDED", Render(*e.object, info));
          } else if (was_matching) {
            // The object as it was, at the RV where it stopped matching.
            json prev = e.prev->Parse();
            prev["metadata"]["resourceVersion"] = std::to_string(e.resource_version);
            line = event_line("DELETED", WithTypeMeta(prev.dump(), info.ApiVersion(), info.kind));
          }
          break;
        case EventType::kDeleted:
          if (was_matching) line = event_line("DELETED", Render(*e.object, info));
          break;
      }
      if (!line.empty() && !c.w.Write(line)) return;
    }
    if (bookmarks && clock.Now() >= next_bookmark) {
      json bookmark = {{"kind", info.kind},
                       {"apiVersion", info.ApiVersion()},
                       {"metadata", {{"resourceVersion", std::to_string(cursor)}}}};
      if (!c.w.Write(event_line("BOOKMARK", bookmark.dump()))) return;
      next_bookmark = clock.Now() + opts.bookmark_interval;
    }
  }
}

// ---------------------------------------------------------------------------
// Writes.

namespace {

kube::Result<json> ParseBody(const Call& c) {
  std::string media = MediaType(c.req.Header("Content-Type"));
  if (!media.empty() && media != "application/json" && media != "*/*") {
    Error e = ApiErr(415, "UnsupportedMediaType", "415: Unsupported Media Type");
    e.mutable_details().present = true;
    return e;
  }
  try {
    json body = json::parse(c.req.body);
    if (!body.is_object()) {
      return UnrecognizedBody(c.info->kind, c.req.body,
                              "json: cannot unmarshal " + std::string(body.type_name()) +
                                  " into Go value of type struct");
    }
    return body;
  } catch (const json::parse_error& e) {
    return UnrecognizedBody(c.info->kind, c.req.body, GoJsonError(c.req.body, e));
  }
}

// Checks apiVersion/kind of a body against the endpoint, filling them in when absent.
std::optional<Error> CheckTypeMeta(json& obj, const ResourceInfo& info, const std::string& kind,
                                   const std::string& api_version) {
  std::string got_kind = obj.value("kind", "");
  std::string got_version = obj.value("apiVersion", "");
  if (got_kind.empty()) obj["kind"] = kind;
  if (got_version.empty()) obj["apiVersion"] = api_version;
  if ((!got_kind.empty() && got_kind != kind)) {
    return BadRequestErr(got_kind + " in version \"" + info.version + "\" cannot be handled as a " +
                         kind + ": no kind \"" + got_kind + "\" is registered for version \"" +
                         got_version + "\"");
  }
  return std::nullopt;
}

ValidationTarget TargetOf(const ResourceInfo& info, const std::string& sub) {
  return ValidationTarget{info.group, info.version, info.resource, info.kind, info.namespaced, sub};
}

}  // namespace

kube::Result<std::monostate> ApiServer::Impl::Admit(bool mutating, const ResourceInfo& info,
                                                    const char* operation, const std::string& sub,
                                                    const std::string& ns, const std::string& name,
                                                    json* obj, const json* old, bool dry_run,
                                                    const json* options) {
  if (!admission.Active()) return std::monostate{};
  AdmissionAttributes a = AdmissionAttributesFor(info, operation, sub, ns, name);
  a.object = obj;
  a.old_object = old;
  a.dry_run = dry_run;
  a.options = options;
  return mutating ? admission.Mutate(a, obj, &t_warnings) : admission.Validate(a, &t_warnings);
}

void ApiServer::Impl::AfterWrite(const ResourceInfo& info, const json& obj, bool deleted) {
  if (info.group == "admissionregistration.k8s.io") admission.Invalidate();
  if (info.group != "apiextensions.k8s.io" || info.resource != "customresourcedefinitions") return;
  std::string name = MetaString(obj, "name");
  if (deleted) {
    std::string storage_key =
        obj["spec"].value("group", "") + "/" + obj["spec"]["names"].value("plural", "");
    registry.UnregisterCrd(name);
    for (const auto& [key, object_key] : store.KeysWithPrefix("")) {
      if (key == storage_key) (void)store.Delete(key, object_key, 0);
    }
    return;
  }
  (void)registry.RegisterCrd(obj);
}

kube::Result<ApiServer::Impl::Reply> ApiServer::Impl::CreateObject(const ResourceInfo& info,
                                                                   const std::string& ns, json obj,
                                                                   bool dry_run,
                                                                   const std::string& manager) {
  json* meta = MetaOf(obj);
  if (meta == nullptr) return BadRequestErr("the object must be a JSON object");
  if (info.namespaced) {
    std::string body_ns = MetaString(obj, "namespace");
    if (!body_ns.empty() && body_ns != ns) {
      return BadRequestErr(
          "the namespace of the provided object does not match the namespace sent on the request");
    }
    (*meta)["namespace"] = ns;
  } else {
    meta->erase("namespace");
  }
  std::string name = MetaString(obj, "name");
  const std::string request_name = name;  // admission sees "" for generateName
  if (name.empty()) {
    std::string generate = MetaString(obj, "generateName");
    if (!generate.empty()) {
      name = generate + RandomSuffix(5);
      (*meta)["name"] = name;
    }
  }
  if (info.namespaced) {
    auto ns_obj = store.Get("/namespaces", ns);
    if (!ns_obj) return NotFoundErr("", "namespaces", ns);
    if (ns_obj->json.find("\"deletionTimestamp\"") != std::string::npos &&
        IsTerminating(ns_obj->Parse())) {
      Error e = ApiErr(403, "Forbidden",
                       GroupResourceName(info.group, info.resource) + " \"" + name +
                           "\" is forbidden: unable to create new content in namespace " + ns +
                           " because it is being terminated");
      return WithDetails(e, info.group, info.resource, name);
    }
  }
  // Server-owned fields.
  for (const char* f : {"resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                        "selfLink", "uid", "creationTimestamp"}) {
    meta->erase(f);
  }
  bool has_status = info.HasSubresource("status");
  if (has_status && info.resource != "nodes" && info.resource != "namespaces" &&
      info.resource != "customresourcedefinitions") {
    obj.erase("status");
  }
  std::unique_ptr<json> schema;
  if (info.custom && !info.schema_json.empty()) {
    schema = std::make_unique<json>(json::parse(info.schema_json));
  }
  auto default_object = [&] {
    if (schema) {
      PruneUnknownFields(*schema, obj);
    } else if (!info.custom) {
      ApplyDefaults(info.group, info.kind, obj);
    }
  };
  default_object();
  if (!manager.empty()) {  // empty: server-side apply already tracked the fields
    ApplyContext ctx{Now(), info.ApiVersion(), ""};
    UpdateManagedFields(nullptr, obj, manager, ctx);
  }
  if (admission.Active()) {
    auto admitted = Admit(true, info, "CREATE", "", ns, request_name, &obj, nullptr, dry_run);
    if (!admitted.ok()) return admitted.error();
    default_object();  // a patched object is decoded (defaulted, pruned) again
    meta = MetaOf(obj);
    if (meta == nullptr) return BadRequestErr("the object must be a JSON object");
  }
  (*meta)["uid"] = NewUid();
  (*meta)["creationTimestamp"] = Now();
  if (info.tracks_generation) {
    (*meta)["generation"] = 1;
  } else {
    meta->erase("generation");
  }
  auto valid = ValidateCreate(TargetOf(info, ""), obj, schema.get());
  if (!valid.ok()) return valid.error();
  name = MetaString(obj, "name");
  auto validated = Admit(false, info, "CREATE", "", ns, request_name, &obj, nullptr, dry_run);
  if (!validated.ok()) return validated.error();
  if (dry_run) return Reply{201, obj.dump()};
  auto created = store.Create(info.StorageKey(), obj, info.selectable_fields);
  if (!created.ok()) {
    if (created.error().code() == 409) return AlreadyExistsErr(info.group, info.resource, name);
    return created.error();
  }
  std::string body = Render(*created->object, info);
  if (info.group == "admissionregistration.k8s.io") AfterWrite(info, obj, false);
  if (info.resource == "customresourcedefinitions") {
    AfterWrite(info, obj, false);
    // Like the apiextensions controllers: accept the names and mark it Established.
    json crd = ParseStored(*created->object, info);
    json status = crd.value("status", json::object());
    status["acceptedNames"] = crd["spec"]["names"];
    std::string now = Now();
    status["conditions"] = json::array({{{"type", "NamesAccepted"},
                                         {"status", "True"},
                                         {"reason", "NoConflicts"},
                                         {"message", "no conflicts found"},
                                         {"lastTransitionTime", now}},
                                        {{"type", "Established"},
                                         {"status", "True"},
                                         {"reason", "InitialNamesAccepted"},
                                         {"message", "the initial names have been accepted"},
                                         {"lastTransitionTime", now}}});
    crd["status"] = status;
    (void)store.Update(info.StorageKey(), created->object->key, created->object->resource_version,
                       crd, info.selectable_fields);
  }
  return Reply{201, body};
}

void ApiServer::Impl::Create(Call& c) {
  if (!c.sub.empty()) return RespondError(c.w, MethodNotAllowedErr());
  auto body = ParseBody(c);
  if (!body.ok()) return RespondError(c.w, body.error());
  if (auto e = CheckTypeMeta(*body, *c.info, c.info->kind, c.info->ApiVersion())) {
    return RespondError(c.w, *e);
  }
  auto reply = CreateObject(*c.info, c.ns, std::move(body).value(), c.DryRun(), FieldManager(c));
  if (!reply.ok()) return RespondError(c.w, reply.error());
  Respond(c.w, reply->first, reply->second);
}

kube::Result<ApiServer::Impl::Reply> ApiServer::Impl::UpdateObject(
    const ResourceInfo& info, const std::string& ns, const std::string& name,
    const std::string& sub, const Mutator& mutate, bool allow_create, bool dry_run,
    const std::string& manager, bool admit) {
  std::string key = ns.empty() ? name : ns + "/" + name;
  std::unique_ptr<json> schema;
  if (info.custom && !info.schema_json.empty()) {
    schema = std::make_unique<json>(json::parse(info.schema_json));
  }
  for (int attempt = 0; attempt < kMaxUpdateAttempts; ++attempt) {
    ObjectPtr current = store.Get(info.StorageKey(), key);
    if (!current) {
      if (!allow_create) return NotFoundErr(info.group, info.resource, name);
      auto desired = mutate(nullptr);
      if (!desired.ok()) return desired.error();
      json obj = std::move(desired).value();
      if (json* meta = MetaOf(obj)) (*meta)["name"] = name;
      auto created = CreateObject(info, ns, std::move(obj), dry_run, manager);
      if (!created.ok() && created.error().code() == 409 &&
          created.error().reason() == "AlreadyExists") {
        continue;  // lost a race with another create
      }
      return created;
    }
    json old = ParseStored(*current, info);
    auto desired = mutate(&old);
    if (!desired.ok()) return desired.error();
    json updated = std::move(desired).value();
    json* meta = MetaOf(updated);
    if (meta == nullptr) return BadRequestErr("the object must be a JSON object");
    std::string body_name = MetaString(updated, "name");
    if (!body_name.empty() && body_name != name) {
      return BadRequestErr("the name of the object (" + body_name +
                           ") does not match the name on the URL (" + name + ")");
    }
    std::string body_uid = MetaString(updated, "uid");
    if (!body_uid.empty() && body_uid != current->uid) {
      return ConflictErr(info.group, info.resource, name,
                         "Precondition failed: UID in precondition: " + current->uid +
                             ", UID in object meta: " + body_uid);
    }
    std::string body_rv = MetaString(updated, "resourceVersion");
    if (!body_rv.empty() && body_rv != std::to_string(current->resource_version)) {
      return ConflictErr(info.group, info.resource, name, kModified);
    }
    const json& old_meta = old["metadata"];
    if (sub == "status" || sub == "finalize") {
      // Only status (or spec.finalizers) changes through these subresources.
      json result = old;
      if (sub == "status") {
        if (updated.contains("status")) {
          result["status"] = updated["status"];
        } else {
          result.erase("status");
        }
      } else {
        result["spec"]["finalizers"] =
            updated.value("spec", json::object()).value("finalizers", json::array());
      }
      if (meta->contains("managedFields"))
        result["metadata"]["managedFields"] = (*meta)["managedFields"];
      updated = std::move(result);
      meta = MetaOf(updated);
    } else if (sub != "binding") {  // a binding's mutator writes spec and status itself
      for (const char* f : {"uid", "creationTimestamp", "deletionTimestamp",
                            "deletionGracePeriodSeconds", "generation", "namespace", "name"}) {
        if (old_meta.contains(f)) {
          (*meta)[f] = old_meta[f];
        } else {
          meta->erase(f);
        }
      }
      if (info.HasSubresource("status")) {
        if (old.contains("status")) {
          updated["status"] = old["status"];
        } else {
          updated.erase("status");
        }
      }
    }
    updated["apiVersion"] = info.ApiVersion();
    updated["kind"] = info.kind;
    auto default_object = [&] {
      if (info.custom) {
        if (schema) PruneUnknownFields(*schema, updated);
      } else {
        ApplyDefaults(info.group, info.kind, updated);
      }
    };
    default_object();
    if (!manager.empty()) {
      ApplyContext ctx{Now(), info.ApiVersion(), sub == "status" ? "status" : ""};
      UpdateManagedFields(&old, updated, manager, ctx);
    }
    if (admit && admission.Active()) {
      auto admitted = Admit(true, info, "UPDATE", sub, ns, name, &updated, &old, dry_run);
      if (!admitted.ok()) return admitted.error();
      default_object();
      if (MetaOf(updated) == nullptr) return BadRequestErr("the object must be a JSON object");
    }
    if (sub != "binding") {  // kube-apiserver's BindingREST sets nodeName without pod validation
      auto valid = ValidateUpdate(TargetOf(info, sub), old, updated, schema.get());
      if (!valid.ok()) return valid.error();
    }
    meta = MetaOf(updated);
    if (info.tracks_generation && SpecPart(old) != SpecPart(updated)) {
      (*meta)["generation"] = old_meta.value("generation", 0) + 1;
    }
    if (admit) {
      auto validated = Admit(false, info, "UPDATE", sub, ns, name, &updated, &old, dry_run);
      if (!validated.ok()) return validated.error();
    }
    meta = MetaOf(updated);
    (*meta)["resourceVersion"] = std::to_string(current->resource_version);
    if (SameObject(old, updated)) return Reply{200, Render(*current, info)};
    bool finalize = IsTerminating(old) && !HasFinalizers(updated);
    if (dry_run) return Reply{200, updated.dump()};
    auto written = store.Update(info.StorageKey(), key, current->resource_version, updated,
                                info.selectable_fields);
    if (!written.ok()) {
      if (written.error().code() == 409) continue;  // raced with another writer: retry
      if (written.error().code() == 404) return NotFoundErr(info.group, info.resource, name);
      return written.error();
    }
    std::string body = Render(*written->object, info);
    AfterWrite(info, updated, false);
    if (finalize) {
      // The last finalizer is gone from a terminating object: it is deleted now.
      auto deleted = store.Delete(info.StorageKey(), key, written->object->resource_version);
      if (deleted.ok()) {
        AfterWrite(info, updated, true);
        body = Render(*deleted->object, info);
      }
    }
    return Reply{200, body};
  }
  return ConflictErr(info.group, info.resource, name, kModified);
}

void ApiServer::Impl::Update(Call& c) {
  auto body = ParseBody(c);
  if (!body.ok()) return RespondError(c.w, body.error());
  if (auto e = CheckTypeMeta(*body, *c.info, c.info->kind, c.info->ApiVersion())) {
    return RespondError(c.w, *e);
  }
  json desired = std::move(body).value();
  auto reply = UpdateObject(
      *c.info, c.ns, c.name, c.sub, [&](const json*) -> kube::Result<json> { return desired; },
      c.info->allow_create_on_update&& c.sub.empty(), c.DryRun(), FieldManager(c));
  if (!reply.ok()) return RespondError(c.w, reply.error());
  Respond(c.w, reply->first, reply->second);
}

void ApiServer::Impl::Patch(Call& c) {
  const ResourceInfo& info = *c.info;
  std::string media = MediaType(c.req.Header("Content-Type"));
  const std::string& patch = c.req.body;
  std::string manager = FieldManager(c);
  Mutator mutate;
  bool allow_create = false;
  if (media == "application/json-patch+json") {
    mutate = [&](const json* current) { return ApplyJsonPatch(*current, patch); };
  } else if (media == "application/merge-patch+json") {
    mutate = [&](const json* current) { return ApplyMergePatch(*current, patch); };
  } else if (media == "application/strategic-merge-patch+json") {
    if (info.custom) {
      return RespondError(
          c.w, ApiErr(415, "UnsupportedMediaType",
                      "the body of the request was in an unknown format - accepted media types "
                      "include: application/json-patch+json, application/merge-patch+json, "
                      "application/apply-patch+yaml"));
    }
    mutate = [&](const json* current) {
      return ApplyStrategicMergePatch(*current, patch, info.kind);
    };
  } else if (media == "application/apply-patch+yaml") {
    std::string field_manager = c.req.QueryParam("fieldManager");
    if (field_manager.empty()) {
      return RespondError(c.w, BadRequestErr("PATCH " + c.req.path +
                                             ": fieldManager is required for apply requests"));
    }
    bool force = c.req.QueryParam("force") == "true";
    allow_create = c.sub.empty();
    mutate = [&, field_manager, force](const json* current) -> kube::Result<json> {
      ApplyContext ctx{Now(), info.ApiVersion(), c.sub};
      auto applied = ApplyServerSide(current, patch, field_manager, force, ctx);
      if (!applied.ok()) return applied.error();
      json obj = std::move(applied).value();
      if (auto e = CheckTypeMeta(obj, info, info.kind, info.ApiVersion())) return *e;
      return obj;
    };
    manager.clear();  // ApplyServerSide maintains managedFields itself
  } else {
    Error e = ApiErr(415, "UnsupportedMediaType", "415: Unsupported Media Type");
    e.mutable_details().present = true;
    return RespondError(c.w, e);
  }
  auto reply = UpdateObject(info, c.ns, c.name, c.sub, mutate, allow_create, c.DryRun(), manager);
  if (!reply.ok()) return RespondError(c.w, reply.error());
  Respond(c.w, reply->first, reply->second);
}

kube::Result<ApiServer::Impl::Reply> ApiServer::Impl::DeleteObject(const ResourceInfo& info,
                                                                   const std::string& ns,
                                                                   const std::string& name,
                                                                   const json& options,
                                                                   bool dry_run, bool admit) {
  std::string key = ns.empty() ? name : ns + "/" + name;
  for (int attempt = 0; attempt < kMaxUpdateAttempts; ++attempt) {
    ObjectPtr current = store.Get(info.StorageKey(), key);
    if (!current) return NotFoundErr(info.group, info.resource, name);
    json obj = ParseStored(*current, info);
    if (options.contains("preconditions") && options["preconditions"].is_object()) {
      const json& pre = options["preconditions"];
      std::string uid = pre.value("uid", "");
      if (!uid.empty() && uid != current->uid) {
        return WithDetails(ApiErr(409, "Conflict",
                                  "Operation cannot be fulfilled on " + info.kind + " \"" + name +
                                      "\": the UID in the precondition (" + uid +
                                      ") does not match the UID in record (" + current->uid +
                                      "). The object might have been deleted and then recreated"),
                           "", info.kind, name);
      }
      std::string rv = pre.value("resourceVersion", "");
      if (!rv.empty() && rv != std::to_string(current->resource_version)) {
        return WithDetails(ApiErr(409, "Conflict",
                                  "Operation cannot be fulfilled on " + info.kind + " \"" + name +
                                      "\": the ResourceVersion in the precondition (" + rv +
                                      ") does not match the ResourceVersion in record (" +
                                      std::to_string(current->resource_version) +
                                      "). The object might have been modified"),
                           "", info.kind, name);
      }
    }
    if (admit && admission.Active()) {
      for (bool mutating : {true, false}) {
        auto admitted =
            Admit(mutating, info, "DELETE", "", ns, name, nullptr, &obj, dry_run, &options);
        if (!admitted.ok()) return admitted.error();
      }
    }
    if (dry_run) return Reply{200, Render(*current, info)};
    bool is_pod = info.group.empty() && info.resource == "pods";
    bool finalizers = HasFinalizers(obj);
    std::optional<int64_t> grace;
    if (options.contains("gracePeriodSeconds") && options["gracePeriodSeconds"].is_number()) {
      grace = options["gracePeriodSeconds"].get<int64_t>();
    }
    if (is_pod) {
      if (!grace) grace = obj["spec"].value("terminationGracePeriodSeconds", int64_t{30});
      std::string phase = obj.value("status", json::object()).value("phase", "");
      if (obj["spec"].value("nodeName", "").empty() || phase == "Succeeded" || phase == "Failed") {
        grace = 0;  // nothing runs it: no graceful termination
      }
    }
    if (info.resource == "namespaces" && info.group.empty()) {
      DeleteNamespaceContents(name);
    }
    bool immediate = !finalizers && (!is_pod || *grace == 0);
    bool already_terminating = IsTerminating(obj);
    if (!immediate || is_pod) {
      if (!already_terminating ||
          (is_pod && grace &&
           obj["metadata"].value("deletionGracePeriodSeconds", int64_t{-1}) > *grace)) {
        // Graceful deletion: mark the object terminating first (a MODIFIED event).
        auto when = clock.WallNow() + std::chrono::seconds(is_pod ? *grace : 0);
        obj["metadata"]["deletionTimestamp"] = FormatTime(when);
        obj["metadata"]["deletionGracePeriodSeconds"] = is_pod ? *grace : 0;
        if (info.resource == "namespaces" && info.group.empty()) {
          obj["status"]["phase"] = "Terminating";
        }
        if (info.tracks_generation) {
          obj["metadata"]["generation"] = obj["metadata"].value("generation", 0) + 1;
        }
        auto marked = store.Update(info.StorageKey(), key, current->resource_version, obj,
                                   info.selectable_fields);
        if (!marked.ok()) {
          if (marked.error().code() == 409) continue;
          return NotFoundErr(info.group, info.resource, name);
        }
        current = marked->object;
      }
      if (!immediate) return Reply{200, Render(*current, info)};
    }
    auto deleted = store.Delete(info.StorageKey(), key, current->resource_version);
    if (!deleted.ok()) {
      if (deleted.error().code() == 409) continue;
      return NotFoundErr(info.group, info.resource, name);
    }
    AfterWrite(info, ParseStored(*deleted->object, info), true);
    if (info.return_deleted_object) return Reply{200, Render(*deleted->object, info)};
    json status = {{"kind", "Status"},
                   {"apiVersion", "v1"},
                   {"metadata", json::object()},
                   {"status", "Success"},
                   {"details", {{"name", name}, {"kind", info.resource}, {"uid", current->uid}}}};
    if (!info.group.empty()) status["details"]["group"] = info.group;
    return Reply{200, status.dump()};
  }
  return ConflictErr(info.group, info.resource, name, kModified);
}

// Like the namespace controller, but synchronous and without waiting for
// finalizers of the contents: a test server has no controllers to remove them.
void ApiServer::Impl::DeleteNamespaceContents(const std::string& ns) {
  for (const auto& [storage_key, key] : store.KeysWithPrefix(ns + "/")) {
    (void)store.Delete(storage_key, key, 0);
  }
}

namespace {
kube::Result<json> DeleteOptionsOf(const Call& c) {
  json options = json::object();
  if (!c.req.body.empty()) {
    options = json::parse(c.req.body, nullptr, false);
    if (options.is_discarded() || !options.is_object()) {
      return BadRequestErr("the body of the request was not a valid DeleteOptions");
    }
  }
  if (c.req.HasQueryParam("gracePeriodSeconds")) {
    auto grace = ParseInt(c.req.QueryParam("gracePeriodSeconds"));
    if (!grace) return BadRequestErr("invalid gracePeriodSeconds");
    options["gracePeriodSeconds"] = *grace;
  }
  if (c.req.HasQueryParam("propagationPolicy")) {
    options["propagationPolicy"] = c.req.QueryParam("propagationPolicy");
  }
  if (options.contains("propagationPolicy")) {
    std::string p = options.value("propagationPolicy", "");
    if (p != "Orphan" && p != "Background" && p != "Foreground") {
      return BadRequestErr(
          "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: "
          "Unsupported value: \"" +
          p + "\": supported values: \"Foreground\", \"Background\", \"Orphan\"");
    }
  }
  return options;
}
}  // namespace

void ApiServer::Impl::Delete(Call& c) {
  auto options = DeleteOptionsOf(c);
  if (!options.ok()) return RespondError(c.w, options.error());
  bool dry_run = c.DryRun() || (options->contains("dryRun") && !(*options)["dryRun"].empty());
  auto reply = DeleteObject(*c.info, c.ns, c.name, *options, dry_run);
  if (!reply.ok()) return RespondError(c.w, reply.error());
  Respond(c.w, reply->first, reply->second);
}

void ApiServer::Impl::DeleteCollection(Call& c) {
  const ResourceInfo& info = *c.info;
  auto options = DeleteOptionsOf(c);
  if (!options.ok()) return RespondError(c.w, options.error());
  auto selectors = ParseSelectors(c);
  if (!selectors.ok()) return RespondError(c.w, selectors.error());
  const Selectors& sel = *selectors;
  ListRequest lr;
  lr.storage_key = info.StorageKey();
  lr.prefix = c.ns.empty() ? "" : c.ns + "/";
  if (!sel.empty()) lr.filter = [&sel](const StoredObject& o) { return sel.Matches(o); };
  auto listed = store.List(lr);
  if (!listed.ok()) return RespondError(c.w, listed.error());
  std::string items;
  for (const auto& obj : listed->items) {
    auto reply = DeleteObject(info, obj->ns, obj->name, *options, c.DryRun());
    if (!reply.ok()) continue;  // gone meanwhile
    if (!items.empty()) items.push_back(',');
    items.append(info.custom ? Render(*obj, info) : obj->json);
  }
  std::string body = "{\"kind\":" + json(info.list_kind).dump() +
                     ",\"apiVersion\":" + json(info.ApiVersion()).dump() +
                     ",\"metadata\":{\"resourceVersion\":\"" +
                     std::to_string(store.current_resource_version()) + "\"},\"items\":[" + items +
                     "]}";
  Respond(c.w, 200, body);
}

// ---------------------------------------------------------------------------
// Subresources.

namespace {

bool PodHealthy(const json& pod) {
  if (IsTerminating(pod)) return false;
  const json status = pod.value("status", json::object());
  if (status.value("phase", "") != "Running") return false;
  for (const auto& cond : status.value("conditions", json::array())) {
    if (cond.value("type", "") == "Ready") return cond.value("status", "") == "True";
  }
  return false;
}

// An int or a percentage of `total` (rounded up, as the disruption controller does).
int64_t IntOrPercent(const json& v, int64_t total) {
  if (v.is_number()) return v.get<int64_t>();
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (!s.empty() && s.back() == '%') {
      auto pct = ParseInt(s.substr(0, s.size() - 1));
      if (pct) return static_cast<int64_t>(std::ceil(static_cast<double>(*pct * total) / 100.0));
    }
    auto n = ParseInt(s);
    if (n) return *n;
  }
  return 0;
}

const char* kSuccessCreated =
    R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201})";

// kube-apiserver v1.20 registers Eviction in policy/v1beta1 only (policy/v1
// from 1.22), and its pods/eviction discovery entry says so. Another
// apiVersion fails to decode, before the pod is looked up, with the 400 that
// the handler's transformDecodeError makes of the scheme's error.
std::optional<Error> CheckEvictionVersion(const json& body) {
  const auto kind_it = body.find("kind");
  const auto version_it = body.find("apiVersion");
  std::string kind =
      kind_it != body.end() && kind_it->is_string() ? kind_it->get<std::string>() : "";
  std::string api_version =
      version_it != body.end() && version_it->is_string() ? version_it->get<std::string>() : "";
  if (kind.empty()) kind = "Eviction";  // defaulted from the endpoint, as apiVersion is
  if (kind != "Eviction" || api_version.empty() || api_version == "policy/v1beta1") {
    return std::nullopt;
  }
  size_t slash = api_version.find('/');
  std::string version = slash == std::string::npos ? api_version : api_version.substr(slash + 1);
  return BadRequestErr("Eviction in version \"" + version +
                       "\" cannot be handled as a Eviction: no kind \"Eviction\" is registered "
                       "for version \"" +
                       api_version + "\" in scheme \"pkg/api/legacyscheme/scheme.go:30\"");
}

}  // namespace

void ApiServer::Impl::Evict(Call& c) {
  auto body = json::parse(c.req.body.empty() ? "{}" : c.req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return RespondError(c.w, UnrecognizedBody("Eviction", c.req.body, "invalid JSON"));
  }
  if (auto bad = CheckEvictionVersion(body)) return RespondError(c.w, *bad);
  ObjectPtr pod = store.Get(c.info->StorageKey(), c.Key());
  if (!pod) return RespondError(c.w, NotFoundErr("", "pods", c.name));
  json pod_obj = pod->Parse();
  std::string phase = pod_obj.value("status", json::object()).value("phase", "");
  json options = body.value("deleteOptions", json::object());
  if (!options.is_object()) options = json::object();
  if (phase != "Succeeded" && phase != "Failed" && phase != "Pending") {
    // Budgets that select this pod.
    ListRequest pdbs;
    pdbs.storage_key = "policy/poddisruptionbudgets";
    pdbs.prefix = c.ns + "/";
    auto budgets = store.List(pdbs);
    std::vector<json> matching;
    if (budgets.ok()) {
      for (const auto& b : budgets->items) {
        json pdb = b->Parse();
        auto sel = kube::LabelSelector::FromJson(
            pdb.value("spec", json::object()).value("selector", json::object()).dump());
        if (!sel.ok() || sel->empty()) continue;
        if (sel->Matches(pod->labels)) matching.push_back(std::move(pdb));
      }
    }
    if (matching.size() > 1) {
      return RespondError(c.w, InternalErr("This pod has more than one PodDisruptionBudget, "
                                           "which the eviction subresource does not support."));
    }
    if (matching.size() == 1) {
      const json& pdb = matching[0];
      const json spec = pdb.value("spec", json::object());
      auto sel = kube::LabelSelector::FromJson(spec.value("selector", json::object()).dump());
      ListRequest pods;
      pods.storage_key = c.info->StorageKey();
      pods.prefix = c.ns + "/";
      auto listed = store.List(pods);
      int64_t expected = 0, healthy = 0;
      if (listed.ok() && sel.ok()) {
        for (const auto& p : listed->items) {
          if (!sel->Matches(p->labels)) continue;
          ++expected;
          if (PodHealthy(p->Parse())) ++healthy;
        }
      }
      int64_t desired = 0;
      if (spec.contains("minAvailable")) {
        desired = IntOrPercent(spec["minAvailable"], expected);
      } else if (spec.contains("maxUnavailable")) {
        desired = std::max<int64_t>(0, expected - IntOrPercent(spec["maxUnavailable"], expected));
      }
      bool pod_healthy = PodHealthy(pod_obj);
      if (pod_healthy && healthy - desired <= 0) {
        Error e = ApiErr(429, "TooManyRequests",
                         "Cannot evict pod as it would violate the pod's disruption budget.");
        e.mutable_details().causes.push_back({"DisruptionBudget",
                                              "The disruption budget " + MetaString(pdb, "name") +
                                                  " needs " + std::to_string(desired) +
                                                  " healthy pods and has " +
                                                  std::to_string(healthy) + " currently",
                                              ""});
        return RespondError(c.w, e);
      }
    }
  }
  // The eviction deletes the pod without calling admission on the pod again.
  auto reply = DeleteObject(*c.info, c.ns, c.name, options, c.DryRun(), /*admit=*/false);
  if (!reply.ok()) return RespondError(c.w, reply.error());
  Respond(c.w, 201, kSuccessCreated);
}

void ApiServer::Impl::Review(Call& c) {
  json review = json::parse(c.req.body.empty() ? "{}" : c.req.body, nullptr, false);
  if (!review.is_object()) {
    return RespondError(c.w, UnrecognizedBody(c.info->kind, c.req.body, "invalid JSON"));
  }
  Result<json> answer = InvalidArgumentError("unreachable");
  if (c.info->resource == "tokenreviews") {
    answer = ReviewToken(review, tokens);
  } else {
    RbacObjects rbac;
    auto load = [&](const char* resource, std::vector<json>* out) {
      ListRequest lr;
      lr.storage_key = std::string("rbac.authorization.k8s.io/") + resource;
      auto listed = store.List(lr);
      if (!listed.ok()) return;
      for (const auto& item : listed->items)
        out->push_back(item->Parse());
    };
    load("roles", &rbac.roles);
    load("clusterroles", &rbac.cluster_roles);
    load("rolebindings", &rbac.role_bindings);
    load("clusterrolebindings", &rbac.cluster_role_bindings);
    answer = ReviewAccess(review, rbac);
  }
  if (!answer.ok()) {
    return RespondError(c.w, ApiErr(422, "Invalid", answer.error().message()));
  }
  Respond(c.w, 201, answer->dump());
}

// BindingREST.assignPod in kube-apiserver: the binding's uid and
// resourceVersion are preconditions; the pod gets spec.nodeName, the binding's
// annotations and PodScheduled=True. Any refusal is a 409 on pods/binding.
void ApiServer::Impl::Bind(Call& c) {
  auto body = ParseBody(c);
  if (!body.ok()) return RespondError(c.w, body.error());
  std::string pod_name = c.name.empty() ? MetaString(*body, "name") : c.name;
  std::string node = body->value("target", json::object()).value("name", "");
  if (node.empty()) {
    Error e = ApiErr(422, "Invalid",
                     "Binding.core \"" + pod_name + "\" is invalid: target.name: Required value");
    e.mutable_details().causes.push_back({"FieldValueRequired", "Required value", "target.name"});
    return RespondError(c.w, WithDetails(e, "", "Binding", pod_name));
  }
  const std::string want_uid = MetaString(*body, "uid");
  const std::string want_rv = MetaString(*body, "resourceVersion");
  json annotations = json::object();
  if (const json* meta = MetaOf(*body);
      meta != nullptr && meta->contains("annotations") && (*meta)["annotations"].is_object()) {
    annotations = (*meta)["annotations"];
  }
  auto conflict = [&](const std::string& why) {
    return ConflictErr("", "pods/binding", pod_name, why);
  };
  const std::string now = Now();
  auto pods = registry.Find("", "v1", "pods");
  auto reply = UpdateObject(
      *pods, c.ns, pod_name, "binding",
      [&](const json* current) -> kube::Result<json> {
        json pod = *current;
        const json& meta = pod["metadata"];
        if (!want_uid.empty() && meta.value("uid", "") != want_uid) {
          return conflict("Precondition failed: UID in precondition: " + want_uid +
                          ", UID in object meta: " + meta.value("uid", ""));
        }
        if (!want_rv.empty() && meta.value("resourceVersion", "") != want_rv) {
          return conflict("Precondition failed: ResourceVersion in precondition: " + want_rv +
                          ", ResourceVersion in object meta: " + meta.value("resourceVersion", ""));
        }
        if (meta.contains("deletionTimestamp")) {
          return conflict("pod " + pod_name + " is being deleted, cannot be assigned to a host");
        }
        std::string bound = pod["spec"].value("nodeName", "");
        if (!bound.empty()) {
          return conflict("pod " + pod_name + " is already assigned to node \"" + bound + "\"");
        }
        pod["spec"]["nodeName"] = node;
        for (auto& [key, value] : annotations.items())
          pod["metadata"]["annotations"][key] = value;
        json& conditions = pod["status"]["conditions"];
        if (!conditions.is_array()) conditions = json::array();
        json scheduled = {{"type", "PodScheduled"},
                          {"status", "True"},
                          {"lastProbeTime", nullptr},
                          {"lastTransitionTime", now}};
        bool replaced = false;
        for (json& condition : conditions) {
          if (condition.value("type", "") != "PodScheduled") continue;
          if (condition.value("status", "") == "True")
            scheduled["lastTransitionTime"] = condition.value("lastTransitionTime", now);
          condition = scheduled;
          replaced = true;
        }
        if (!replaced) conditions.push_back(scheduled);
        return pod;
      },
      false, c.DryRun(), FieldManager(c), /*admit=*/false);  // pods/binding: not admitted here
  if (!reply.ok()) return RespondError(c.w, reply.error());
  Respond(c.w, 201, kSuccessCreated);
}

void ApiServer::Impl::Scale(Call& c) {
  const ResourceInfo& info = *c.info;
  std::string spec_path = info.custom ? info.scale_spec_path : ".spec.replicas";
  std::string status_path = info.custom ? info.scale_status_path : ".status.replicas";
  auto json_ptr = [](const std::string& path) {
    std::string p = path;
    for (char& ch : p) {
      if (ch == '.') ch = '/';
    }
    return json::json_pointer(p);
  };
  auto to_scale = [&](const json& obj) {
    json scale = {{"kind", "Scale"},
                  {"apiVersion", "autoscaling/v1"},
                  {"metadata",
                   {{"name", MetaString(obj, "name")},
                    {"uid", MetaString(obj, "uid")},
                    {"resourceVersion", MetaString(obj, "resourceVersion")},
                    {"creationTimestamp", MetaString(obj, "creationTimestamp")}}},
                  {"spec", json::object()},
                  {"status", {{"replicas", 0}}}};
    if (!MetaString(obj, "namespace").empty()) {
      scale["metadata"]["namespace"] = MetaString(obj, "namespace");
    }
    if (obj.contains(json_ptr(spec_path))) scale["spec"]["replicas"] = obj[json_ptr(spec_path)];
    if (!status_path.empty() && obj.contains(json_ptr(status_path))) {
      scale["status"]["replicas"] = obj[json_ptr(status_path)];
    }
    if (obj.contains("spec") && obj["spec"].contains("selector")) {
      auto sel = kube::LabelSelector::FromJson(obj["spec"]["selector"].dump());
      if (sel.ok()) scale["status"]["selector"] = sel->ToString();
    }
    return scale;
  };
  std::string sub_resource = info.resource + "/scale";
  if (c.verb == "get") {
    ObjectPtr obj = store.Get(info.StorageKey(), c.Key());
    if (!obj) return RespondError(c.w, NotFoundErr(info.group, sub_resource, c.name));
    return Respond(c.w, 200, to_scale(ParseStored(*obj, info)).dump());
  }
  if (c.verb != "update" && c.verb != "patch") return RespondError(c.w, MethodNotAllowedErr());
  std::string media = MediaType(c.req.Header("Content-Type"));
  auto reply = UpdateObject(
      info, c.ns, c.name, "",
      [&](const json* current) -> kube::Result<json> {
        json scale = to_scale(*current);
        if (c.verb == "update") {
          auto parsed = json::parse(c.req.body, nullptr, false);
          if (parsed.is_discarded()) return UnrecognizedBody("Scale", c.req.body, "invalid JSON");
          scale = std::move(parsed);
        } else {
          kube::Result<json> patched = media == "application/json-patch+json"
                                           ? ApplyJsonPatch(scale, c.req.body)
                                           : ApplyMergePatch(scale, c.req.body);
          if (!patched.ok()) return patched.error();
          scale = std::move(patched).value();
        }
        std::string rv = MetaString(scale, "resourceVersion");
        if (!rv.empty() && rv != MetaString(*current, "resourceVersion")) {
          return ConflictErr(info.group, sub_resource, c.name, kModified);
        }
        json obj = *current;
        obj["metadata"].erase("resourceVersion");
        if (scale.contains("spec") && scale["spec"].contains("replicas")) {
          obj[json_ptr(spec_path)] = scale["spec"]["replicas"];
        }
        return obj;
      },
      false, c.DryRun(), FieldManager(c), /*admit=*/false);  // <r>/scale: not admitted here
  if (!reply.ok()) {
    if (reply.error().code() == 404) {
      return RespondError(c.w, NotFoundErr(info.group, sub_resource, c.name));
    }
    return RespondError(c.w, reply.error());
  }
  ObjectPtr obj = store.Get(info.StorageKey(), c.Key());
  if (!obj) return RespondError(c.w, NotFoundErr(info.group, sub_resource, c.name));
  Respond(c.w, 200, to_scale(ParseStored(*obj, info)).dump());
}

// ---------------------------------------------------------------------------

ApiServer::ApiServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ApiServer::~ApiServer() {
  Stop();
}

Result<std::unique_ptr<ApiServer>> ApiServer::Start(const ApiServerOptions& opts) {
  auto impl = std::make_unique<Impl>(opts);
  Status status;
  try {
    status = impl->Init();
  } catch (const std::exception& e) {
    status = InternalError(std::string("api server: ") + e.what());
  }
  if (!status.ok()) return status;
  return std::unique_ptr<ApiServer>(new ApiServer(std::move(impl)));
}

int ApiServer::port() const {
  return impl_->port.load();
}

std::string ApiServer::url() const {
  bool tls = !impl_->opts.tls_cert_file.empty();
  return std::string(tls ? "https://" : "http://") + impl_->opts.bind_address + ":" +
         std::to_string(impl_->port.load());
}

void ApiServer::Stop() {
  if (impl_) impl_->Shutdown();
}

}  // namespace gpu_autoscaler::apiserver
