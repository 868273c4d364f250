// gpu-autoscaler-webhook: the GPU-sharing admission webhook. Serves
// /mutate-pods, /validate-pods, /validate-gpusharingpolicies and
// /validate-budgets over HTTPS (HTTP/2 and HTTP/1.1), keeps its
// GPUSharingPolicy, Namespace-label and Budget snapshots current with
// informers, and in --self-signed mode issues its own certificate and patches
// the webhook configurations' caBundle (with --self-signed-secret all replicas
// share one CA through a Secret). Prints "listening on ADDRESS:PORT"
// to stdout once it serves: the socket actually bound, so "0.0.0.0:8443" by
// default (every IPv4 interface) and "[::1]:8443" for an IPv6 address.
//
// /metrics is not on the admission port: like the other programs (and
// controller-runtime, whose webhook server serves admission only) it has its
// own --metrics-bind-address, served by reconcile::Manager's metrics endpoint
// (HTTPS, each scrape reviewed by TokenReview and SubjectAccessReview). The
// webhook runs no controllers, so it calls Manager::Serve and never Run.
#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "api/resources.h"
#include "common/flag_duration.h"
#include "common/shutdown_signals.h"
#include "kube/config.h"
#include "kube/generic_object.h"
#include "kube/object_codec.h"
#include "kube/rest_client.h"
#include "kube/shared_informer.h"
#include "net/self_signed_cert.h"
#include "reconcile/logging.h"
#include "reconcile/manager.h"
#include "reconcile/program.h"
#include "webhooks/admission_service.h"
#include "webhooks/budget_admission.h"
#include "webhooks/cert_bundle_patcher.h"
#include "webhooks/cert_source.h"
#include "webhooks/server.h"
#include "webhooks/shared_cert_secret.h"

namespace {

using namespace gpu_autoscaler;
using namespace gpu_autoscaler::webhooks;
using namespace std::chrono_literals;

constexpr char kUsage[] = R"(Usage: gpu-autoscaler-webhook [flags]

The GPU-sharing admission webhook: rewrites GPU pods according to
GPUSharingPolicy objects, validates policies, Budgets, sharing and QoS
annotations, and denies new GPU pods under an exhausted blockNewGPUPods Budget
or ClusterBudget.

Serving:
  --bind-address ADDR          address to listen on (default 0.0.0.0)
  --port N                     HTTPS port; 0 picks a free one (default 8443)
  --threads N                  event-loop threads (default 2)
  --tls-cert-file FILE         PEM serving certificate (chain allowed); reloaded when
                               the file changes (needs --tls-key-file)
  --tls-key-file FILE          PEM private key for --tls-cert-file
  --cert-check-interval DUR    how often to look for a rotated certificate (default 1s)
  --self-signed                generate a CA and a serving certificate for the Service
                               DNS names and patch the webhook configurations' caBundle
  --self-signed-ip IP          also certify this IP address (repeatable; e.g. 127.0.0.1)
  --write-ca-file FILE         with --self-signed: also write the CA certificate here
  --self-signed-secret NS/NAME with --self-signed: share the CA and serving certificate
                               with the other replicas through this kubernetes.io/tls
                               Secret (ca.crt, ca.key, tls.crt, tls.key): created when
                               absent, renewed near expiry, replaced when unusable.
                               Needs get/create/update on that Secret
  --self-signed-rotate-before DUR  renew when less than this is left, e.g. 720h for
                               30 days (default: a third of the certificate's lifetime)
  --self-signed-poll-interval DUR  how often to re-read the Secret (default 30s)
  --request-timeout DUR        a request must arrive completely within this (default 10s)
  --header-timeout DUR         TLS handshake and request headers deadline (default 10s)
  --idle-timeout DUR           close idle keep-alive connections after (default 90s)
  --max-connections N          connections beyond this are closed at accept (default 4096)
                               The admission port also answers /healthz and /readyz
                               (unauthenticated, ok/failed only); /metrics has its own port.

Metrics:
  --metrics-bind-address ADDR  where /metrics is served, host:port or :port; "0" disables
                               (default ":8080")
  --metrics-secure[=true|false]  serve /metrics over HTTPS, each scrape authorised by a
                               TokenReview and a SubjectAccessReview (nonResourceURLs
                               /metrics, verb get; needs a cluster and create on
                               tokenreviews and subjectaccessreviews); false serves plain
                               HTTP, on a loopback address only (default true)
  --metrics-cert-dir DIR       tls.crt and tls.key for /metrics, reloaded when they
                               change (default: a generated self-signed pair)

Kubernetes:
  --kubeconfig FILE            kubeconfig to use (default: in-cluster, then $KUBECONFIG;
                               without either the webhook runs on --policy-file only).
                               Needs list/watch on gpusharingpolicies, budgets,
                               clusterbudgets, serviceprofiles (gpuautoscaler.io)
                               and namespaces;
                               /readyz waits for all four caches
  --webhook-config-name NAME   Mutating/ValidatingWebhookConfiguration to patch
                               (default gpu-autoscaler-webhook)
  --service-name NAME          the webhook's Service (default gpu-autoscaler-webhook)
  --service-namespace NS       the Service's namespace (default gpu-autoscaler-system)
  --excluded-namespaces LIST   comma-separated namespaces never touched
                               (default kube-system,<service namespace>)
  --policy-file FILE           JSON GPUSharingPolicy object, array or List, used in
                               addition to the cluster's policies
  --log-format text|json       log format on stderr (default text)
  --help                       show this help

Durations: 500ms, 10s, 1m.
)";

bool ParseCount(const std::string& s, long min, long max, long* out) {
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < min || v > max) return false;
  *out = v;
  return true;
}

std::vector<std::string> SplitList(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    size_t comma = s.find(',');
    std::string_view item = s.substr(0, comma);
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

int Fail(const std::string& message) {
  std::cerr << "gpu-autoscaler-webhook: " << message << "\n"
            << "Run with --help for usage.\n";
  return 2;
}

struct Flags {
  AdmissionServerOptions server;
  std::string cert_file, key_file;
  std::chrono::milliseconds cert_check_interval{1000};
  bool self_signed = false;
  std::vector<std::string> self_signed_ips;
  std::string write_ca_file;
  std::string secret_namespace, secret_name;  // --self-signed-secret
  std::chrono::milliseconds rotate_before{0};
  std::chrono::milliseconds secret_poll_interval{30000};
  std::string kubeconfig;
  std::string webhook_config_name = "gpu-autoscaler-webhook";
  std::string service_name = "gpu-autoscaler-webhook";
  std::string service_namespace = "gpu-autoscaler-system";
  std::vector<std::string> excluded_namespaces;
  bool excluded_namespaces_set = false;
  std::string policy_file;
  std::string log_format = "text";
  std::string metrics_bind_address = ":8080";
  bool metrics_secure = true;
  std::string metrics_cert_dir;
};

// Parses argv into `flags`; returns an exit code, or -1 to carry on.
int ParseFlags(int argc, char** argv, Flags* flags) {
  flags->server.port = 8443;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    auto eq = arg.find('=');
    bool has_inline = arg.rfind("--", 0) == 0 && eq != std::string::npos;
    if (has_inline) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "--self-signed") {
      flags->self_signed = true;
      continue;
    }
    if (arg == "--metrics-secure") {  // a bare boolean, or =true/=false
      Status parsed = reconcile::ParseBoolFlag({arg, value, has_inline}, &flags->metrics_secure);
      if (!parsed.ok()) return Fail(parsed.message());
      continue;
    }
    if (!has_inline) {
      if (i + 1 >= argc) return Fail(arg + " needs a value");
      value = argv[++i];
    }
    long n = 0;
    std::chrono::milliseconds d{};
    if (arg == "--bind-address") {
      flags->server.bind_address = value;
    } else if (arg == "--port") {
      if (!ParseCount(value, 0, 65535, &n)) return Fail("bad --port " + value);
      flags->server.port = static_cast<int>(n);
    } else if (arg == "--threads") {
      if (!ParseCount(value, 1, 256, &n)) return Fail("bad --threads " + value);
      flags->server.threads = static_cast<int>(n);
    } else if (arg == "--max-connections") {
      if (!ParseCount(value, 1, 1'000'000, &n)) return Fail("bad --max-connections " + value);
      flags->server.max_connections = static_cast<size_t>(n);
    } else if (arg == "--tls-cert-file") {
      flags->cert_file = value;
    } else if (arg == "--tls-key-file") {
      flags->key_file = value;
    } else if (arg == "--self-signed-ip") {
      flags->self_signed_ips.push_back(value);
    } else if (arg == "--write-ca-file") {
      flags->write_ca_file = value;
    } else if (arg == "--self-signed-secret") {
      auto slash = value.find('/');
      if (slash == std::string::npos || slash == 0 || slash + 1 == value.size() ||
          value.find('/', slash + 1) != std::string::npos) {
        return Fail("bad --self-signed-secret " + value + " (want NAMESPACE/NAME)");
      }
      flags->secret_namespace = value.substr(0, slash);
      flags->secret_name = value.substr(slash + 1);
    } else if (arg == "--kubeconfig") {
      flags->kubeconfig = value;
    } else if (arg == "--webhook-config-name") {
      flags->webhook_config_name = value;
    } else if (arg == "--service-name") {
      flags->service_name = value;
    } else if (arg == "--service-namespace") {
      flags->service_namespace = value;
    } else if (arg == "--excluded-namespaces") {
      flags->excluded_namespaces = SplitList(value);
      flags->excluded_namespaces_set = true;
    } else if (arg == "--policy-file") {
      flags->policy_file = value;
    } else if (arg == "--metrics-bind-address") {
      flags->metrics_bind_address = value;
    } else if (arg == "--metrics-cert-dir") {
      flags->metrics_cert_dir = value;
    } else if (arg == "--log-format") {
      if (value != "text" && value != "json") return Fail("bad --log-format " + value);
      flags->log_format = value;
    } else if (arg == "--self-signed-rotate-before" || arg == "--self-signed-poll-interval") {
      if (!ParseFlagDuration(value, &d) || d.count() <= 0) return Fail("bad " + arg + " " + value);
      if (arg == "--self-signed-rotate-before") flags->rotate_before = d;
      if (arg == "--self-signed-poll-interval") flags->secret_poll_interval = d;
    } else if (arg == "--cert-check-interval" || arg == "--request-timeout" ||
               arg == "--header-timeout" || arg == "--idle-timeout") {
      if (!ParseFlagDuration(value, &d)) return Fail("bad " + arg + " " + value);
      if (arg == "--cert-check-interval") flags->cert_check_interval = d;
      if (arg == "--request-timeout") flags->server.request_timeout = d;
      if (arg == "--header-timeout") flags->server.header_timeout = d;
      if (arg == "--idle-timeout") flags->server.idle_timeout = d;
    } else {
      return Fail("unknown argument " + arg);
    }
  }
  if (flags->cert_file.empty() != flags->key_file.empty()) {
    return Fail("--tls-cert-file and --tls-key-file go together");
  }
  if (flags->self_signed == !flags->cert_file.empty()) {
    return Fail("give either --tls-cert-file/--tls-key-file or --self-signed");
  }
  if (!flags->write_ca_file.empty() && !flags->self_signed) {
    return Fail("--write-ca-file needs --self-signed");
  }
  if (!flags->secret_name.empty() && !flags->self_signed) {
    return Fail("--self-signed-secret needs --self-signed");
  }
  if (!flags->excluded_namespaces_set) {
    flags->excluded_namespaces = {"kube-system", flags->service_namespace};
  }
  if (Status s = reconcile::CheckPlainMetricsOnLoopback(flags->metrics_secure,
                                                        flags->metrics_bind_address);
      !s.ok()) {
    return Fail(s.message());
  }
  return -1;
}

// Policies from --policy-file: one object, an array, or a List with items.
Result<std::vector<GpuSharingPolicy>> LoadPolicyFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return InvalidArgumentError(path + ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json doc = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgumentError(path + ": not valid JSON");
  if (doc.is_object() && doc.contains("items")) doc = doc["items"];
  if (doc.is_object()) doc = nlohmann::json::array({doc});
  if (!doc.is_array()) return InvalidArgumentError(path + ": expected a policy, array or List");
  std::vector<GpuSharingPolicy> out;
  for (size_t i = 0; i < doc.size(); ++i) {
    auto policy = AdmissionService::ParsePolicy(doc[i].dump());
    if (!policy.ok()) {
      return policy.error().WithContext(path + ": item " + std::to_string(i));
    }
    out.push_back(std::move(policy).value());
  }
  return out;
}

Result<kube::ClientConfig> LoadKubeConfig(const Flags& flags, bool* available) {
  *available = true;
  if (!flags.kubeconfig.empty()) {
    auto cfg = kube::LoadKubeconfigFiles({flags.kubeconfig});
    if (!cfg.ok()) return cfg.error().ToStatus();
    return std::move(cfg).value();
  }
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* kubeconfig = std::getenv("KUBECONFIG");
  if ((host == nullptr || *host == '\0') && (kubeconfig == nullptr || *kubeconfig == '\0')) {
    *available = false;
    return kube::ClientConfig{};
  }
  auto cfg = kube::LoadDefaultConfig();
  if (!cfg.ok()) return cfg.error().ToStatus();
  return std::move(cfg).value();
}

// Labels of a cached Namespace; empty when the informer does not know it (yet).
std::map<std::string, std::string> CachedNamespaceLabels(
    const kube::SharedInformer<kube::GenericObject>& namespaces, std::string_view ns) {
  std::map<std::string, std::string> out;
  auto obj = namespaces.store().Get(ns);
  if (!obj) return out;
  for (const kube::Label& l : obj->labels())
    out.emplace(l.key.view(), l.value.view());
  return out;
}

// One Sync() of the shared Secret, logging any write (and why).
Result<SecretCertificates> SyncSharedSecret(SharedCertSecret& secret, const Flags& flags,
                                            const std::shared_ptr<spdlog::logger>& logger) {
  auto synced = secret.Sync();
  if (!synced.ok()) return synced.error();
  if (synced->wrote) {
    logger->info("wrote Secret {}/{} with new certificates ({})", flags.secret_namespace,
                 flags.secret_name, synced->reason);
  }
  return std::move(synced->certs);
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (int rc = ParseFlags(argc, argv, &flags); rc >= 0) return rc;

  // One format for every line the program writes (the other programs' too):
  // text, or JSON with "ts", "level" and "msg".
  if (Status s = reconcile::ConfigureLogging({.format = flags.log_format}); !s.ok()) {
    return Fail(s.message());
  }
  auto logger = spdlog::default_logger();

  sigset_t signals = BlockShutdownSignals();
  signal(SIGPIPE, SIG_IGN);

  // Admission logic.
  std::vector<GpuSharingPolicy> file_policies;
  if (!flags.policy_file.empty()) {
    auto loaded = LoadPolicyFile(flags.policy_file);
    if (!loaded.ok()) return Fail(loaded.error().message());
    file_policies = std::move(loaded).value();
  }
  auto metrics = std::make_shared<prometheus::Registry>();
  flags.server.metrics = metrics;
  auto& budget_gauges =
      prometheus::BuildGauge()
          .Name("gpu_autoscaler_webhook_budgets")
          .Help(
              "Budgets in the webhook's cache, by state: valid (enforced when exhausted) or "
              "invalid (did not parse; ignored and logged)")
          .Register(*metrics);
  prometheus::Gauge& valid_budgets = budget_gauges.Add({{"state", "valid"}});
  prometheus::Gauge& invalid_budgets = budget_gauges.Add({{"state", "invalid"}});

  auto budget_gate =
      std::make_shared<BudgetGate>(&RealClock::Instance(), cost::AttributionLabels{});
  // Informers, created below when there is a cluster; the admission service
  // only reads them through these callbacks.
  std::unique_ptr<kube::InformerFactory> factory;
  std::shared_ptr<kube::SharedInformer<kube::GenericObject>> policies, namespaces, budgets,
      cluster_budgets, profiles;

  AdmissionConfig admission_config;
  admission_config.excluded_namespaces = flags.excluded_namespaces;
  admission_config.namespace_labels = [&namespaces](std::string_view ns) {
    return namespaces ? CachedNamespaceLabels(*namespaces, ns)
                      : std::map<std::string, std::string>{};
  };
  admission_config.budgets = budget_gate;
  AdmissionService service(admission_config);
  service.SetPolicies(file_policies);

  // Kubernetes client (optional).
  bool have_kube = false;
  auto kube_config = LoadKubeConfig(flags, &have_kube);
  if (!kube_config.ok()) return Fail("kubeconfig: " + kube_config.error().message());
  std::unique_ptr<kube::RestClient> client;
  if (have_kube) {
    auto created = kube::RestClient::Create(*kube_config);
    if (!created.ok()) return Fail("kube client: " + created.error().ToString());
    client = std::move(created).value();
  } else {
    logger->warn("no kubeconfig and not in a cluster: serving --policy-file policies only");
  }
  std::string metrics_host;
  int metrics_port = -1;
  if (Status s =
          reconcile::ParseBindAddress(flags.metrics_bind_address, &metrics_host, &metrics_port);
      !s.ok()) {
    return Fail("--metrics-bind-address: " + s.message());
  }
  if (flags.metrics_secure && metrics_port >= 0 && !client) {
    return Fail(
        "--metrics-secure needs a cluster (--kubeconfig) for TokenReview and "
        "SubjectAccessReview; without one use --metrics-bind-address=0, or "
        "--metrics-secure=false on a loopback address");
  }

  // Certificates.
  std::shared_ptr<CertificateSource> certs;
  std::string ca_pem;
  std::shared_ptr<MemoryCertificateSource> shared_certs;  // --self-signed-secret
  std::unique_ptr<SharedCertSecret> shared_secret;
  std::string served_cert_pem;
  if (flags.self_signed && !flags.secret_name.empty()) {
    if (!client) return Fail("--self-signed-secret needs a cluster (--kubeconfig)");
    CertPolicy policy{
        .dns_names = net::ServiceDnsNames(flags.service_name, flags.service_namespace),
        .ip_addresses = flags.self_signed_ips,
        .rotate_before = std::chrono::duration_cast<std::chrono::seconds>(flags.rotate_before)};
    shared_secret =
        std::make_unique<SharedCertSecret>(client.get(), flags.secret_namespace, flags.secret_name,
                                           std::move(policy), RealClock::Instance());
    // Nothing to serve before the Secret is settled: retry a while, then
    // exit so the kubelet restarts the pod with a back-off.
    auto backoff = 1s;
    for (int attempt = 1;; ++attempt) {
      auto synced = SyncSharedSecret(*shared_secret, flags, logger);
      if (synced.ok()) {
        auto pair = ParseCertifiedKey(synced->cert_pem, synced->key_pem);
        if (!pair.ok()) return Fail(pair.error().ToString());
        shared_certs = std::make_shared<MemoryCertificateSource>(std::move(pair).value());
        served_cert_pem = synced->cert_pem;
        ca_pem = synced->ca_bundle_pem;
        break;
      }
      logger->warn("{}", synced.error().ToString());
      if (attempt >= 8) return Fail("gave up settling the shared certificate Secret");
      std::this_thread::sleep_for(backoff);
      backoff = std::min<std::chrono::seconds>(backoff * 2, 30s);
    }
    certs = shared_certs;
    if (!flags.write_ca_file.empty()) {
      std::ofstream out(flags.write_ca_file);
      out << ca_pem;
      if (!out) return Fail("cannot write " + flags.write_ca_file);
    }
  } else if (flags.self_signed) {
    net::SelfSignedRequest request;
    request.dns_names = net::ServiceDnsNames(flags.service_name, flags.service_namespace);
    request.ip_addresses = flags.self_signed_ips;
    auto generated = net::GenerateSelfSignedCertificates(request);
    if (!generated.ok()) return Fail(generated.error().ToString());
    auto pair = ParseCertifiedKey(generated->serving_cert_pem, generated->serving_key_pem);
    if (!pair.ok()) return Fail(pair.error().ToString());
    certs = std::make_shared<StaticCertificateSource>(std::move(pair).value());
    ca_pem = generated->ca_cert_pem;
    if (!flags.write_ca_file.empty()) {
      std::ofstream out(flags.write_ca_file);
      out << ca_pem;
      if (!out) return Fail("cannot write " + flags.write_ca_file);
    }
  } else {
    auto files = FileCertificateSource::Open(flags.cert_file, flags.key_file, RealClock::Instance(),
                                             flags.cert_check_interval);
    if (!files.ok()) return Fail(files.error().message());
    certs = std::move(files).value();
  }

  // Informers: policies (rebuild the policy snapshot), namespaces (labels for
  // namespaceSelector and the budget exemption, read at each review) and
  // budgets (rebuild the budget snapshot).
  if (client) {
    factory = std::make_unique<kube::InformerFactory>(client.get());
    policies = factory->Informer(api::kGpuSharingPolicies, kube::GenericObjectCodec());
    auto rebuild = [&service, &file_policies, &policies, logger] {
      std::vector<GpuSharingPolicy> all = file_policies;
      for (const auto& obj : policies->store().List()) {
        auto policy = AdmissionService::ParsePolicy(obj->json());
        if (!policy.ok()) {
          logger->warn("ignoring GPUSharingPolicy {}: {}", obj->name(), policy.error().message());
          continue;
        }
        all.push_back(std::move(policy).value());
      }
      size_t count = all.size();
      service.SetPolicies(std::move(all));
      logger->debug("policy snapshot: {} policies", count);
    };
    policies->AddEventHandler({.on_add = [rebuild](const auto&) { rebuild(); },
                               .on_update = [rebuild](const auto&, const auto&) { rebuild(); },
                               .on_delete = [rebuild](const auto&, bool) { rebuild(); }});
    namespaces = factory->Informer(kube::resources::kNamespaces, kube::GenericObjectCodec());
    budgets = factory->Informer(api::kBudgets, kube::GenericObjectCodec());
    cluster_budgets = factory->Informer(api::kClusterBudgets, kube::GenericObjectCodec());
    // Runs on the two informers' dispatch threads, one at a time. Each problem
    // is logged once, not at every status update of some other Budget.
    auto logged = std::make_shared<std::set<std::string>>();
    auto rebuild_mu = std::make_shared<std::mutex>();
    auto rebuild_budgets = [&budget_gate, &budgets, &cluster_budgets, &valid_budgets,
                            &invalid_budgets, logger, logged, rebuild_mu] {
      std::lock_guard<std::mutex> lock(*rebuild_mu);
      std::vector<std::string> jsons;
      for (const auto* informer : {&budgets, &cluster_budgets})
        for (const auto& obj : (*informer)->store().List())
          jsons.push_back(obj->json());
      BudgetLoad load = LoadBudgets(jsons, budget_gate->keys());
      std::set<std::string> current(load.errors.begin(), load.errors.end());
      for (const std::string& error : current) {
        if (!logged->contains(error)) logger->warn("ignoring {}", error);
      }
      *logged = std::move(current);
      valid_budgets.Set(static_cast<double>(load.budgets.size()));
      invalid_budgets.Set(static_cast<double>(load.errors.size()));
      budget_gate->SetBudgets(std::move(load.budgets));
    };
    for (const auto* informer : {&budgets, &cluster_budgets})
      (*informer)->AddEventHandler(
          {.on_add = [rebuild_budgets](const auto&) { rebuild_budgets(); },
           .on_update = [rebuild_budgets](const auto&, const auto&) { rebuild_budgets(); },
           .on_delete = [rebuild_budgets](const auto&, bool) { rebuild_budgets(); }});
    // ServiceProfiles: the recommendations new pods get (Initial and Auto).
    profiles = factory->Informer(api::kServiceProfiles, kube::GenericObjectCodec());
    auto logged_profiles = std::make_shared<std::set<std::string>>();
    auto rebuild_profiles = [&service, &profiles, logger, logged_profiles] {
      std::vector<std::string> jsons;
      for (const auto& obj : profiles->store().List())
        jsons.push_back(obj->json());
      ProfileRuleLoad load = LoadProfileRules(jsons);
      std::set<std::string> current(load.errors.begin(), load.errors.end());
      for (const std::string& error : current) {
        if (!logged_profiles->contains(error)) logger->warn("ignoring {}", error);
      }
      *logged_profiles = std::move(current);
      service.SetProfiles(std::move(load.rules));
    };
    profiles->AddEventHandler(
        {.on_add = [rebuild_profiles](const auto&) { rebuild_profiles(); },
         .on_update = [rebuild_profiles](const auto&, const auto&) { rebuild_profiles(); },
         .on_delete = [rebuild_profiles](const auto&, bool) { rebuild_profiles(); }});
    factory->Start();
    flags.server.ready = [&policies, &namespaces, &budgets, &cluster_budgets, &profiles] {
      return policies->HasSynced() && namespaces->HasSynced() && budgets->HasSynced() &&
             cluster_budgets->HasSynced() && profiles->HasSynced();
    };
  }

  auto server = AdmissionServer::Start(
      flags.server, certs,
      [&service](AdmissionEndpoint e, std::string_view body) { return service.Review(e, body); });
  if (!server.ok()) {
    logger->error("cannot start: {}", server.error().ToString());
    if (factory) factory->Stop();
    return 1;
  }
  // The socket actually bound (not a guess at a reachable address): "0.0.0.0"
  // means every IPv4 interface.
  const std::string listen_address = (*server)->listen_address();

  // /metrics on its own port, served and authorised as the other programs'.
  reconcile::Manager metrics_endpoint({.metrics_bind_address = flags.metrics_bind_address,
                                       .health_probe_bind_address = "0",
                                       .metrics_secure = flags.metrics_secure,
                                       .metrics_cert_dir = flags.metrics_cert_dir,
                                       .client = client.get(),
                                       .registry = metrics});
  if (Status s = metrics_endpoint.Serve(); !s.ok()) {
    logger->error("cannot serve /metrics: {}", s.ToString());
    (*server)->Stop();
    if (factory) factory->Stop();
    return 1;
  }
  std::printf("listening on %s\n", listen_address.c_str());
  std::fflush(stdout);
  logger->info("serving HTTPS on {} (admission_port={} metrics_port={})", listen_address,
               (*server)->port(), metrics_endpoint.metrics_port());

  // --self-signed: keep the caBundle current (at start, after failures, and
  // periodically in case an upgrade reset it).
  std::mutex patch_mu;
  std::condition_variable_any patch_cv;
  std::jthread patch_thread;
  if (flags.self_signed && client) {
    patch_thread = std::jthread([&](std::stop_token stop) {
      auto patcher =
          std::make_unique<CaBundlePatcher>(client.get(), flags.webhook_config_name, ca_pem);
      std::string bundle_pem = ca_pem;
      auto backoff = 1s;
      while (!stop.stop_requested()) {
        // --self-signed-secret: serve whatever the Secret holds now.
        if (shared_secret) {
          auto synced = SyncSharedSecret(*shared_secret, flags, logger);
          if (!synced.ok()) {
            logger->warn("{}", synced.error().ToString());
          } else if (synced->cert_pem != served_cert_pem) {
            auto pair = ParseCertifiedKey(synced->cert_pem, synced->key_pem);
            if (pair.ok()) {
              logger->info("serving certificate {} from Secret {}/{}", (*pair)->serial_hex(),
                           flags.secret_namespace, flags.secret_name);
              shared_certs->Set(std::move(pair).value());
              served_cert_pem = synced->cert_pem;
            } else {
              logger->warn("Secret {}/{}: {}", flags.secret_namespace, flags.secret_name,
                           pair.error().ToString());
            }
          }
          if (synced.ok() && synced->ca_bundle_pem != bundle_pem) {
            bundle_pem = synced->ca_bundle_pem;
            patcher = std::make_unique<CaBundlePatcher>(client.get(), flags.webhook_config_name,
                                                        bundle_pem);
          }
        }
        Status synced = patcher->Sync();
        std::chrono::milliseconds wait = shared_secret ? flags.secret_poll_interval : 60s;
        if (synced.ok()) {
          backoff = 1s;
        } else {
          logger->warn("caBundle: {}; retrying in {}s", synced.ToString(), backoff.count());
          wait = std::min<std::chrono::milliseconds>(wait, backoff);
          backoff = std::min<std::chrono::seconds>(backoff * 2, 30s);
        }
        std::unique_lock<std::mutex> lock(patch_mu);
        patch_cv.wait_for(lock, stop, wait, [] { return false; });
      }
    });
  } else if (flags.self_signed) {
    logger->warn("--self-signed without a cluster: caBundle not patched");
  }

  int sig = 0;
  sigwait(&signals, &sig);
  logger->info("received signal {}, shutting down", sig);
  if (patch_thread.joinable()) {
    patch_thread.request_stop();
    patch_thread.join();
  }
  (*server)->Stop();
  if (factory) factory->Stop();
  return 0;
}
