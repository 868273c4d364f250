#include "apiserver/api_server_internal.h"

namespace gpu_autoscaler::apiserver {

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

void ApiServer::Impl::EnsureSystemPriorityClasses() {
  auto info = registry.Find("scheduling.k8s.io", "v1", "priorityclasses");
  for (json& pc : SystemPriorityClasses()) {
    (void)CreateObject(*info, "", std::move(pc), false, "kube-apiserver");
  }
}

Status ApiServer::Impl::Init() {
  for (const char* ns : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
    EnsureNamespace(ns);
  }
  EnsureSystemPriorityClasses();
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
  if (opts.event_ttl.count() > 0) {
    store.SetTimeToLive(registry.Find("", "v1", "events")->StorageKey(), opts.event_ttl, clock);
  }
  GPU_RETURN_IF_ERROR(StartHttp());
  // Started last: a failed Init destroys the Impl without Shutdown().
  if (opts.event_ttl.count() > 0) expiry_thread = std::thread([this] { RunExpiry(); });
  return Status::Ok();
}

void ApiServer::Impl::RunExpiry() {
  std::unique_lock<std::mutex> lock(expiry_mu);
  while (!stopping.load()) {
    lock.unlock();
    store.ExpireDue();
    Clock::TimePoint wake = clock.Now() + kExpiryCheckInterval;
    if (auto next = store.NextExpiry(); next && *next < wake) wake = *next;
    lock.lock();
    if (stopping.load()) break;
    clock.WaitUntil(lock, expiry_cv, wake);
  }
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
  {
    std::lock_guard<std::mutex> lock(expiry_mu);  // RunExpiry checks `stopping` under it
    expiry_cv.notify_all();
  }
  if (expiry_thread.joinable()) expiry_thread.join();
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
      // v1.20.2's build; an emulated later minor names only its version.
      const bool v120 = opts.emulated_minor == 20;
      const std::string minor = std::to_string(opts.emulated_minor);
      json v = {{"major", "1"},
                {"minor", minor},
                {"gitVersion", v120 ? "v1.20.2" : "v1." + minor + ".0"},
                {"gitCommit", v120 ? "faecb196815e248d3ecfb03c680a4507229c2a56" : ""},
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
      std::chrono::milliseconds delay = InjectedDelayFor(c.verb, c.info->resource);
      if (delay.count() == 0 && !c.sub.empty()) delay = InjectedDelayFor(c.verb, resource);
      if (delay.count() > 0) std::this_thread::sleep_for(delay);
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

// ---------------------------------------------------------------------------

ApiServer::ApiServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ApiServer::~ApiServer() {
  Stop();
}

Result<std::unique_ptr<ApiServer>> ApiServer::Start(const ApiServerOptions& opts) {
  if (opts.emulated_minor < kMinEmulatedMinor || opts.emulated_minor > kMaxEmulatedMinor) {
    return InvalidArgumentError("emulated version 1." + std::to_string(opts.emulated_minor) +
                                ": want 1." + std::to_string(kMinEmulatedMinor) + " to 1." +
                                std::to_string(kMaxEmulatedMinor));
  }
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
