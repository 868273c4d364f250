// Fault injection and simulated restarts of the embedded API server.
#include "apiserver/api_server_internal.h"

namespace gpu_autoscaler::apiserver {

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
    const auto ms = std::chrono::milliseconds(body.value("ms", 0));
    std::string verb = body.value("verb", ""), resource = body.value("resource", "");
    std::lock_guard<std::mutex> lock(fault_mu);
    if (verb.empty() && resource.empty()) {
      latency = ms;
    } else {
      // One rule per verb and resource: the last one set.
      std::erase_if(
          delays, [&](const InjectedDelay& d) { return d.verb == verb && d.resource == resource; });
      if (ms.count() > 0) delays.push_back({std::move(verb), std::move(resource), ms});
    }
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
    delays.clear();
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

std::chrono::milliseconds ApiServer::Impl::InjectedDelayFor(const std::string& verb,
                                                            const std::string& resource) {
  std::lock_guard<std::mutex> lock(fault_mu);
  for (const InjectedDelay& d : delays) {
    if ((d.verb.empty() || d.verb == verb) && (d.resource.empty() || d.resource == resource)) {
      return d.delay;
    }
  }
  return std::chrono::milliseconds(0);
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

}  // namespace gpu_autoscaler::apiserver
