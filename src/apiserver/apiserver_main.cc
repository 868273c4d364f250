// gpu-autoscaler-apiserver: the embedded kube-apiserver-compatible server as a
// program, for integration tests and local demos. Prints
// "listening on http(s)://ADDRESS:PORT" to stdout once it serves.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "apiserver/api_server.h"
#include "common/flag_duration.h"
#include "common/shutdown_signals.h"

namespace {

constexpr char kUsage[] = R"(Usage: gpu-autoscaler-apiserver [flags]

A kube-apiserver-compatible server (Kubernetes v1.20 API semantics) with
in-memory storage, for tests and demos.

Flags:
  --bind-address ADDR         address to listen on (default 127.0.0.1)
  --port N                    port; 0 picks a free one (default 0)
  --crd-dir DIR               create every CustomResourceDefinition in DIR/*.yaml at start
  --token TOKEN               require "Authorization: Bearer TOKEN" on every request
                              (the cluster admin, group system:masters)
  --token-auth-file FILE      also accept these tokens: kube-apiserver's static token
                              file, token,user,uid,"group1,group2" per line; TokenReview
                              and SubjectAccessReview (RBAC over the stored roles and
                              bindings) answer for them
  --tls-cert-file FILE        serve HTTPS with this PEM certificate (needs --tls-key-file)
  --tls-key-file FILE         PEM private key for --tls-cert-file
  --watch-history N           watch events kept for resumption; older -> 410 (default 10000)
  --bookmark-interval DUR     also send a BOOKMARK this often on watches that allow them,
                              e.g. 1s, 1m (kube-apiserver 1.27+ sends one a minute).
                              Default 0: v1.20's timing only, the first 2 s before the
                              watch's deadline, then one a second
  --event-ttl DUR             delete an Event (core/v1) this long after its last write
                              (create, update or patch), as kube-apiserver's --event-ttl;
                              watchers see DELETED. E.g. 30m, 1h; 0 keeps Events
                              forever (default 1h)
  --emulated-version 1.N      the policy API of Kubernetes 1.N, N in 20..22 (default
                              1.20): 1.21 adds policy/v1 PodDisruptionBudgets, 1.22
                              policy/v1 Evictions; everything else stays v1.20's
  --enable-fault-injection    serve the /__faults admin API (latency, errors, dropped
                              watches, compaction, restarts)
  --log-format text|json      log format on stderr (default text)
  --help                      show this help
)";

int Fail(const std::string& message) {
  std::cerr << "gpu-autoscaler-apiserver: " << message << "\n"
            << "Run with --help for usage.\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using gpu_autoscaler::apiserver::ApiServer;
  using gpu_autoscaler::apiserver::ApiServerOptions;
  ApiServerOptions opts;
  std::string log_format = "text";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    auto eq = arg.find('=');
    bool has_inline = arg.rfind("--", 0) == 0 && eq != std::string::npos;
    if (has_inline) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    auto next = [&](std::string* out) {
      if (has_inline) {
        *out = value;
        return true;
      }
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--enable-fault-injection") {
      opts.enable_fault_injection = true;
    } else if (arg == "--bind-address" || arg == "--port" || arg == "--crd-dir" ||
               arg == "--token" || arg == "--token-auth-file" || arg == "--tls-cert-file" ||
               arg == "--tls-key-file" || arg == "--watch-history" ||
               arg == "--bookmark-interval" || arg == "--event-ttl" || arg == "--log-format" ||
               arg == "--emulated-version") {
      std::string v;
      if (!next(&v)) return Fail(arg + " needs a value");
      if (arg == "--bind-address") {
        opts.bind_address = v;
      } else if (arg == "--port") {
        char* end = nullptr;
        long port = std::strtol(v.c_str(), &end, 10);
        if (*end != '\0' || port < 0 || port > 65535) return Fail("bad --port " + v);
        opts.port = static_cast<int>(port);
      } else if (arg == "--crd-dir") {
        opts.crd_dir = v;
      } else if (arg == "--token") {
        opts.token = v;
      } else if (arg == "--token-auth-file") {
        opts.token_auth_file = v;
      } else if (arg == "--tls-cert-file") {
        opts.tls_cert_file = v;
      } else if (arg == "--tls-key-file") {
        opts.tls_key_file = v;
      } else if (arg == "--watch-history") {
        char* end = nullptr;
        long n = std::strtol(v.c_str(), &end, 10);
        if (*end != '\0' || n <= 0) return Fail("bad --watch-history " + v);
        opts.watch_history = static_cast<size_t>(n);
      } else if (arg == "--emulated-version") {
        char* end = nullptr;
        const long minor = v.rfind("1.", 0) == 0 ? std::strtol(v.c_str() + 2, &end, 10) : -1;
        if (end == nullptr || end == v.c_str() + 2 || *end != '\0' ||
            minor < gpu_autoscaler::apiserver::kMinEmulatedMinor ||
            minor > gpu_autoscaler::apiserver::kMaxEmulatedMinor) {
          return Fail("bad --emulated-version " + v + " (want 1.20, 1.21 or 1.22)");
        }
        opts.emulated_minor = static_cast<int>(minor);
      } else if (arg == "--event-ttl") {
        if (v == "0" || v == "0s") {
          opts.event_ttl = std::chrono::milliseconds(0);
        } else if (!gpu_autoscaler::ParseFlagDuration(v, &opts.event_ttl)) {
          return Fail("bad --event-ttl " + v);
        }
      } else if (arg == "--bookmark-interval") {
        if (!gpu_autoscaler::ParseFlagDuration(v, &opts.bookmark_interval)) {
          return Fail("bad --bookmark-interval " + v);
        }
      } else {
        if (v != "text" && v != "json") return Fail("bad --log-format " + v);
        log_format = v;
      }
    } else {
      return Fail("unknown argument " + arg);
    }
  }
  if (opts.tls_cert_file.empty() != opts.tls_key_file.empty()) {
    return Fail("--tls-cert-file and --tls-key-file go together");
  }

  auto logger = spdlog::stderr_logger_mt("apiserver");
  if (log_format == "json") {
    logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","logger":"%n","msg":"%v"})",
                        spdlog::pattern_time_type::utc);
  }
  // Library code (e.g. admission webhook failures) logs here too, not to stdout.
  spdlog::set_default_logger(logger);

  sigset_t signals = gpu_autoscaler::BlockShutdownSignals();  // before any thread starts
  signal(SIGPIPE, SIG_IGN);

  auto server = ApiServer::Start(opts);
  if (!server.ok()) {
    logger->error("cannot start: {}", server.error().ToString());
    return 1;
  }
  std::printf("listening on %s\n", (*server)->url().c_str());
  std::fflush(stdout);
  logger->info("serving on {}", (*server)->url());

  int sig = 0;
  sigwait(&signals, &sig);
  logger->info("received signal {}, shutting down", sig);
  (*server)->Stop();
  return 0;
}
