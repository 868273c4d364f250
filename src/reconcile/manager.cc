#include "reconcile/manager.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <random>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "common/shutdown_signals.h"
#include "kube/leader_election.h"
#include "net/http_server.h"
#include "net/self_signed_cert.h"
#include "reconcile/controller.h"
#include "reconcile/logging.h"
#include "reconcile/request_auth.h"

namespace gpu_autoscaler::reconcile {

namespace {

class FunctionRunnable final : public Runnable {
 public:
  FunctionRunnable(std::string name, bool needs_le, std::function<Status(std::stop_token)> run)
      : name_(std::move(name)), needs_le_(needs_le), run_(std::move(run)) {}
  std::string name() const override { return name_; }
  Status Run(std::stop_token stop) override { return run_(std::move(stop)); }
  bool NeedsLeaderElection() const override { return needs_le_; }

 private:
  std::string name_;
  bool needs_le_;
  std::function<Status(std::stop_token)> run_;
};

std::string DefaultIdentity() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, 8, "unknown");
  std::random_device rd;
  char suffix[17];
  std::snprintf(suffix, sizeof suffix, "%08x%08x", rd(), rd());
  return std::string(host) + "_" + suffix;
}

// Blocks until `stop` is requested.
void WaitForStop(std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, stop, [] { return false; });
}

}  // namespace

std::unique_ptr<Runnable> MakeRunnable(std::string name, bool needs_leader_election,
                                       std::function<Status(std::stop_token)> run) {
  return std::make_unique<FunctionRunnable>(std::move(name), needs_leader_election, std::move(run));
}

Status ParseBindAddress(std::string_view address, std::string* host, int* port) {
  if (address.empty() || address == "0") {
    *port = -1;
    return Status::Ok();
  }
  const auto colon = address.rfind(':');
  if (colon == std::string_view::npos) {
    return InvalidArgumentError("bind address \"" + std::string(address) +
                                "\": want host:port or :port");
  }
  std::string_view h = address.substr(0, colon);
  const std::string_view p = address.substr(colon + 1);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  int value = 0;
  if (p.empty() || p.size() > 5) {
    return InvalidArgumentError("bind address \"" + std::string(address) + "\": bad port");
  }
  for (char c : p) {
    if (c < '0' || c > '9') {
      return InvalidArgumentError("bind address \"" + std::string(address) + "\": bad port");
    }
    value = value * 10 + (c - '0');
  }
  if (value > 65535) {
    return InvalidArgumentError("bind address \"" + std::string(address) + "\": bad port");
  }
  *host = h.empty() ? "0.0.0.0" : std::string(h);
  *port = value;
  return Status::Ok();
}

Status CheckPlainMetricsOnLoopback(bool metrics_secure, std::string_view metrics_bind_address) {
  if (metrics_secure) return Status::Ok();
  std::string host;
  int port = -1;
  GPU_RETURN_IF_ERROR(
      ParseBindAddress(metrics_bind_address, &host, &port).WithContext("--metrics-bind-address"));
  if (port < 0) return Status::Ok();  // disabled
  if (host != "127.0.0.1" && host != "::1" && host != "localhost") {
    return InvalidArgumentError(
        "--metrics-secure=false serves /metrics without authentication, so only on a loopback "
        "address (e.g. --metrics-bind-address=127.0.0.1:8080); \"" +
        std::string(metrics_bind_address) + "\" is not one");
  }
  return Status::Ok();
}

struct Manager::Impl {
  ~Impl() {
    if (!generated_cert_dir.empty()) std::filesystem::remove_all(generated_cert_dir);
  }
  std::unique_ptr<net::HttpServer> metrics_server;
  std::unique_ptr<net::HttpServer> health_server;
  std::unique_ptr<RequestAuthorizer> metrics_authorizer;
  std::string generated_cert_dir;  // removed with the manager
  std::string generated_ca_pem;
  std::atomic<bool> leading{false};
  std::unique_ptr<kube::LeaseClient> owned_lease_client;
};

Manager::Manager(ManagerOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  registry_ = options_.registry ? options_.registry : std::make_shared<prometheus::Registry>();
  identity_ = options_.identity.empty() ? DefaultIdentity() : options_.identity;
}

Manager::~Manager() {
  if (impl_->metrics_server) impl_->metrics_server->Stop();
  if (impl_->health_server) impl_->health_server->Stop();
}

void Manager::Add(std::unique_ptr<Runnable> runnable) {
  runnables_.push_back(std::move(runnable));
}

void Manager::AddController(Controller& controller) {
  Add(MakeRunnable("controller/" + controller.name(), true,
                   [&controller](std::stop_token stop) { return controller.Run(stop); }));
  AddMetricsHook([&controller] { controller.queue().UpdateUnfinishedWorkMetrics(); });
}

void Manager::AddReadyzCheck(std::string name, std::function<Status()> check) {
  std::lock_guard<std::mutex> l(checks_mu_);
  readyz_.push_back({std::move(name), std::move(check)});
}

void Manager::AddHealthzCheck(std::string name, std::function<Status()> check) {
  std::lock_guard<std::mutex> l(checks_mu_);
  healthz_.push_back({std::move(name), std::move(check)});
}

void Manager::AddMetricsHook(std::function<void()> hook) {
  std::lock_guard<std::mutex> l(checks_mu_);
  metrics_hooks_.push_back(std::move(hook));
}

bool Manager::IsLeader() const {
  return impl_->leading.load();
}

int Manager::metrics_port() const {
  return impl_->metrics_server ? impl_->metrics_server->port() : -1;
}
int Manager::health_port() const {
  if (impl_->health_server) return impl_->health_server->port();
  const bool shared = options_.metrics_bind_address == options_.health_probe_bind_address;
  return shared ? metrics_port() : -1;
}

// controller-runtime's format: "[+]name ok" / "[-]name failed: reason".
std::string Manager::RenderChecks(const std::vector<Check>& checks, bool verbose, bool* ok) const {
  std::string body;
  *ok = true;
  for (const Check& c : checks) {
    Status s = c.check();
    if (s.ok()) {
      body += "[+]" + c.name + " ok\n";
    } else {
      *ok = false;
      body += "[-]" + c.name + " failed: " + s.message() + "\n";
    }
  }
  if (!*ok) return body + "check failed\n";
  return verbose ? body + "ok\n" : "ok";
}

const std::string& Manager::generated_metrics_ca() const {
  return impl_->generated_ca_pem;
}

Status Manager::PrepareSecureMetrics(std::string* cert_file, std::string* key_file) {
  if (!options_.client) {
    return FailedPreconditionError(
        "secure metrics need an API client for TokenReview and "
        "SubjectAccessReview");
  }
  std::string bind_host;
  int bind_port = -1;
  if (options_.metrics_bind_address == options_.health_probe_bind_address &&
      ParseBindAddress(options_.metrics_bind_address, &bind_host, &bind_port).ok() &&
      bind_port > 0) {
    return InvalidArgumentError(
        "secure metrics need the health probes on their own address "
        "(--health-probe-bind-address)");
  }
  impl_->metrics_authorizer = std::make_unique<RequestAuthorizer>(
      *options_.client, RequestAuthorizerOptions{.clock = options_.clock});
  if (!options_.metrics_cert_dir.empty()) {
    *cert_file = options_.metrics_cert_dir + "/tls.crt";
    *key_file = options_.metrics_cert_dir + "/tls.key";
    return Status::Ok();
  }
  // controller-runtime generates a self-signed pair when given none; it lives
  // in a private directory for the manager's lifetime.
  net::SelfSignedRequest request;
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) == 0 && host[0] != 0) {
    request.dns_names.push_back(host);
  }
  request.dns_names.push_back("localhost");
  request.ip_addresses = {"127.0.0.1"};
  request.ca_common_name = "gpu-autoscaler-metrics-ca";
  GPU_ASSIGN_OR_RETURN(net::TemporaryServingPair pair,
                       net::WriteTemporaryServingPair(request, "gpu-autoscaler-metrics"));
  impl_->generated_cert_dir = pair.dir;
  *cert_file = pair.cert_file;
  *key_file = pair.key_file;
  impl_->generated_ca_pem = std::move(pair.ca_cert_pem);
  return Status::Ok();
}

Status Manager::Serve() {
  auto serve = [&](const std::string& address, const char* what,
                   std::unique_ptr<net::HttpServer>* server, bool secure) -> Status {
    if (*server) return Status::Ok();
    std::string host;
    int port = -1;
    GPU_RETURN_IF_ERROR(ParseBindAddress(address, &host, &port).WithContext(what));
    if (port < 0) return Status::Ok();
    net::HttpServerOptions o;
    o.bind_address = host;
    o.port = port;
    o.read_timeout = std::chrono::seconds(10);
    if (secure) GPU_RETURN_IF_ERROR(PrepareSecureMetrics(&o.tls_cert_file, &o.tls_key_file));
    auto started = net::HttpServer::Start(
        o, [this, secure](const net::ServerRequest& req, net::ResponseWriter& w) {
          if (req.method != "GET" && req.method != "HEAD") {
            w.Respond(405, "text/plain", "method not allowed\n");
            return;
          }
          if (secure) {
            if (req.path != "/metrics") {
              w.Respond(404, "text/plain", "not found\n");
              return;
            }
            AuthDecision d =
                impl_->metrics_authorizer->Check(req.Header("Authorization"), req.method, req.path);
            if (d.http_status != 200) {
              w.Respond(d.http_status, "text/plain; charset=utf-8", d.reason + "\n");
              return;
            }
          }
          if (req.path == "/metrics") {
            std::vector<std::function<void()>> hooks;
            {
              std::lock_guard<std::mutex> l(checks_mu_);
              hooks = metrics_hooks_;
            }
            for (auto& hook : hooks)
              hook();
            w.Respond(200, "text/plain; version=0.0.4; charset=utf-8",
                      prometheus::TextSerializer().Serialize(registry_->Collect()));
            return;
          }
          if (req.path == "/healthz" || req.path == "/readyz" || req.path == "/livez") {
            std::vector<Check> checks;
            {
              std::lock_guard<std::mutex> l(checks_mu_);
              checks = req.path == "/readyz" ? readyz_ : healthz_;
            }
            bool ok = true;
            std::string body = RenderChecks(checks, req.HasQueryParam("verbose"), &ok);
            w.Respond(ok ? 200 : 500, "text/plain; charset=utf-8", std::move(body));
            return;
          }
          w.Respond(404, "text/plain", "not found\n");
        });
    if (!started.ok()) return started.error().WithContext(std::string(what) + " " + address);
    *server = std::move(*started);
    Log(LogLevel::kInfo, "serving",
        {{"endpoint", what},
         {"address", address},
         {"port", std::to_string((*server)->port())},
         {"scheme", secure ? "https" : "http"}});
    return Status::Ok();
  };
  // One fixed address for both: the metrics server answers the probes too
  // (":0" twice means two servers on two free ports).
  std::string host;
  int port = -1;
  const bool same = options_.metrics_bind_address == options_.health_probe_bind_address &&
                    ParseBindAddress(options_.metrics_bind_address, &host, &port).ok() && port > 0;
  GPU_RETURN_IF_ERROR(serve(options_.metrics_bind_address, "metrics", &impl_->metrics_server,
                            options_.metrics_secure));
  if (same && impl_->metrics_server && !options_.metrics_secure) return Status::Ok();
  return serve(options_.health_probe_bind_address, "health probes", &impl_->health_server, false);
}

Status Manager::Run(std::stop_token stop) {
  GPU_RETURN_IF_ERROR(Serve());

  std::mutex error_mu;
  Status first_error;
  // `shutdown` ends leader-elected work; `background` ends the rest afterwards.
  std::stop_source shutdown;
  std::stop_source background;
  auto fail = [&](const std::string& what, const Status& s) {
    {
      std::lock_guard<std::mutex> l(error_mu);
      if (first_error.ok()) first_error = s.WithContext(what);
    }
    Log(LogLevel::kError, "runnable failed, shutting down",
        {{"runnable", what}, {"error", s.ToString()}});
    shutdown.request_stop();
  };
  std::stop_callback forward_stop(stop, [&] { shutdown.request_stop(); });

  std::vector<Runnable*> elected, everywhere;
  for (auto& r : runnables_) {
    (options_.leader_election && r->NeedsLeaderElection() ? elected : everywhere)
        .push_back(r.get());
  }
  auto start_all = [&](const std::vector<Runnable*>& list, std::stop_token token) {
    std::vector<std::jthread> threads;
    for (Runnable* r : list) {
      threads.emplace_back([&, r, token] {
        Status s = r->Run(token);
        if (!s.ok()) fail(r->name(), s);
      });
    }
    return threads;
  };

  std::vector<std::jthread> background_threads = start_all(everywhere, background.get_token());

  if (!options_.leader_election) {
    WaitForStop(shutdown.get_token());
  } else {
    kube::LeaseClient* leases = options_.lease_client;
    if (leases == nullptr) {
      if (options_.client == nullptr) {
        background.request_stop();
        return InvalidArgumentError("leader election needs a client or a lease client");
      }
      impl_->owned_lease_client = kube::NewRestLeaseClient(
          *options_.client, options_.leader_election_namespace, options_.leader_election_id);
      leases = impl_->owned_lease_client.get();
    }
    kube::LeaderElectionConfig le;
    le.identity = identity_;
    le.lease_duration = options_.lease_duration;
    le.renew_deadline = options_.renew_deadline;
    le.retry_period = options_.retry_period;
    le.release_on_cancel = true;
    le.clock = options_.clock;
    le.on_started_leading = [&](std::stop_token leading) {
      impl_->leading = true;
      Log(LogLevel::kInfo, "became leader, starting leader-elected runnables",
          {{"identity", identity_}});
      std::vector<std::jthread> threads = start_all(elected, leading);
      for (auto& t : threads)
        t.join();  // each drains its in-flight work
    };
    le.on_stopped_leading = [&] {
      impl_->leading = false;
      Log(LogLevel::kInfo, "stopped leading", {{"identity", identity_}});
    };
    le.on_new_leader = [](const std::string& who) {
      Log(LogLevel::kInfo, "new leader observed", {{"leader", who}});
    };
    kube::LeaderElector elector(*leases, std::move(le));
    Status s = elector.Run(shutdown.get_token());
    if (!s.ok()) {
      fail("leader election", s);
    } else if (!shutdown.get_token().stop_requested()) {
      fail("leader election", UnavailableError("leader election lost"));
    }
  }

  Log(LogLevel::kInfo, "stopping remaining runnables", {});
  background.request_stop();
  for (auto& t : background_threads)
    t.join();
  if (impl_->metrics_server) impl_->metrics_server->Stop();
  if (impl_->health_server) impl_->health_server->Stop();
  Log(LogLevel::kInfo, "manager stopped", {});
  std::lock_guard<std::mutex> l(error_mu);
  return first_error;
}

SignalStopper::SignalStopper(std::stop_source source) {
  sigset_t set = BlockShutdownSignals();
  thread_ = std::jthread([set, source](std::stop_token stop) mutable {
    const timespec tick{0, 100'000'000};  // re-check `stop` every 100 ms
    while (!stop.stop_requested()) {
      siginfo_t info;
      const int sig = sigtimedwait(&set, &info, &tick);
      if (sig == SIGTERM || sig == SIGINT) {
        Log(LogLevel::kInfo, "signal received, shutting down gracefully",
            {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
        source.request_stop();
      }
    }
  });
}

SignalStopper::~SignalStopper() {
  thread_.request_stop();
  thread_.join();
}

}  // namespace gpu_autoscaler::reconcile
