#include "controllers/custom_metrics_server.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "cost/utilization.h"
#include "kube/indexer.h"
#include "net/http_server.h"
#include "net/self_signed_cert.h"
#include "profiling/custom_metrics.h"
#include "reconcile/logging.h"
#include "reconcile/manager.h"

namespace gpu_autoscaler::controllers {
namespace {

using profiling::CustomMetricsRequest;

std::vector<profiling::MetricsPod> PodsIn(const kube::Store<kube::PodView>& store,
                                          const std::string& ns) {
  const auto views = store.HasIndex(kube::kNamespaceIndex)
                         ? store.ByIndex(kube::kNamespaceIndex, ns)
                         : store.List();
  std::vector<profiling::MetricsPod> pods;
  for (const auto& view : views) {
    if (view->ns() != ns) continue;
    profiling::MetricsPod pod{.ns = std::string(view->ns()), .name = std::string(view->name())};
    for (const kube::Label& label : view->labels())
      pod.labels.emplace(std::string(label.key.view()), std::string(label.value.view()));
    pods.push_back(std::move(pod));
  }
  return pods;
}

void Reply(net::ResponseWriter& w, const Status& error) {
  const profiling::CustomMetricsError e = profiling::CustomMetricsStatus(error);
  w.Respond(e.http_status, "application/json", e.body);
}

void ReplyStatus(net::ResponseWriter& w, int code, std::string_view reason, std::string message,
                 const nlohmann::json& details = nullptr) {
  nlohmann::json status = {{"kind", "Status"},
                           {"apiVersion", "v1"},
                           {"metadata", nlohmann::json::object()},
                           {"status", "Failure"},
                           {"message", std::move(message)},
                           {"reason", reason},
                           {"code", code}};
  if (!details.is_null()) status["details"] = details;
  w.Respond(code, "application/json",
            status.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    const size_t slash = path.find('/');
    std::string_view part = path.substr(0, slash);
    if (!part.empty()) out.push_back(part);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

}  // namespace

reconcile::AccessAttributes CustomMetricsAccessAttributes(std::string_view path) {
  const std::vector<std::string_view> parts = Segments(path);
  // /apis/GROUP/VERSION/...: the resource part starts at index 3.
  if (parts.size() <= 3 || parts[0] != "apis" || parts[1] != profiling::kCustomMetricsGroup) {
    return {.verb = "get", .path = std::string(path)};
  }
  reconcile::AccessAttributes a{.group = std::string(parts[1]), .version = std::string(parts[2])};
  size_t i = 3;
  if (parts[i] == "namespaces" && parts.size() > i + 2) {
    a.ns = std::string(parts[i + 1]);
    i += 2;
  }
  a.resource = std::string(parts[i]);
  if (parts.size() > i + 1) a.name = std::string(parts[i + 1]);
  if (parts.size() > i + 2) a.subresource = std::string(parts[i + 2]);
  a.verb = a.name.empty() ? "list" : "get";
  return a;
}

namespace {
Result<std::string> ReadPemFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError(flag + ": cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return InvalidArgumentError(flag + ": " + path + " holds no PEM certificate");
  }
  return text.str();
}
}  // namespace

Result<reconcile::DelegatedAuthConfig> ResolveCustomMetricsAuthentication(
    const CustomMetricsAuthFlags& flags, kube::RestClient& client) {
  reconcile::DelegatedAuthConfig config;
  if (flags.requestheader_client_ca_file.empty()) {
    GPU_ASSIGN_OR_RETURN(config, reconcile::FetchAuthenticationConfig(client));
  } else {
    GPU_ASSIGN_OR_RETURN(
        config.request_header.client_ca_pem,
        ReadPemFile("--requestheader-client-ca-file", flags.requestheader_client_ca_file));
  }
  if (flags.requestheader_allowed_names_set) {
    config.request_header.allowed_names.clear();
    std::stringstream names(flags.requestheader_allowed_names);
    for (std::string name; std::getline(names, name, ',');) {
      if (!name.empty()) config.request_header.allowed_names.push_back(name);
    }
  }
  if (!flags.client_ca_file.empty()) {
    GPU_ASSIGN_OR_RETURN(config.client_ca_pem,
                         ReadPemFile("--client-ca-file", flags.client_ca_file));
  }
  return config;
}

Result<std::unique_ptr<CustomMetricsServer>> CustomMetricsServer::Start(
    const CustomMetricsServerOptions& options, const kube::Store<kube::PodView>& pods,
    cost::UtilizationSource* source, Clock& clock) {
  if (options.client == nullptr) {
    return InvalidArgumentError(
        "custom metrics: no API client for TokenReview and "
        "SubjectAccessReview");
  }
  std::unique_ptr<CustomMetricsServer> self(new CustomMetricsServer());
  self->authorizer_ =
      std::make_unique<reconcile::RequestAuthorizer>(*options.client, options.authorizer);
  GPU_ASSIGN_OR_RETURN(self->authenticator_, reconcile::AggregatedApiAuthenticator::Create(
                                                 options.authentication, *self->authorizer_));
  std::string host;
  int port = -1;
  GPU_RETURN_IF_ERROR(reconcile::ParseBindAddress(options.bind_address, &host, &port)
                          .WithContext("--custom-metrics-bind-address"));
  if (port < 0) return InvalidArgumentError("--custom-metrics-bind-address: no port");
  net::HttpServerOptions o;
  o.bind_address = host;
  o.port = port;
  o.read_timeout = std::chrono::seconds(10);
  o.max_body_bytes = 64 * 1024;         // reads only
  o.request_client_certificate = true;  // the front proxy's and x509 users'
  if (!options.cert_dir.empty()) {
    o.tls_cert_file = options.cert_dir + "/tls.crt";
    o.tls_key_file = options.cert_dir + "/tls.key";
  } else {
    net::SelfSignedRequest request;
    char hostname[256] = {};
    if (::gethostname(hostname, sizeof(hostname) - 1) == 0 && hostname[0] != 0) {
      request.dns_names.push_back(hostname);
    }
    request.dns_names.push_back("localhost");
    request.ip_addresses = {"127.0.0.1"};
    request.ca_common_name = "gpu-autoscaler-custom-metrics-ca";
    GPU_ASSIGN_OR_RETURN(net::TemporaryServingPair pair,
                         net::WriteTemporaryServingPair(request, "gpu-autoscaler-custom-metrics"));
    self->generated_dir_ = pair.dir;
    self->generated_ca_ = pair.ca_cert_pem;
    o.tls_cert_file = pair.cert_file;
    o.tls_key_file = pair.key_file;
  }
  auto handler = [&pods, source, &clock, authn = self->authenticator_.get(),
                  authz = self->authorizer_.get()](const net::ServerRequest& req,
                                                   net::ResponseWriter& w) {
    const reconcile::Authentication who = authn->Authenticate(req);
    if (who.http_status != 200) return ReplyStatus(w, 401, "Unauthorized", "Unauthorized");
    reconcile::AccessAttributes attributes = CustomMetricsAccessAttributes(req.path);
    const std::string_view verb = reconcile::VerbForMethod(req.method);
    if (verb != "get") attributes.verb = std::string(verb.empty() ? "unknown" : verb);
    const reconcile::AuthDecision allowed = authz->Authorize(who.user, attributes);
    if (allowed.http_status == 403) {
      if (attributes.resource.empty()) {
        return ReplyStatus(w, 403, "Forbidden", allowed.reason);
      }
      // kube-apiserver's wording: `pods.custom.metrics.k8s.io "web-0" is forbidden: ...`.
      return ReplyStatus(
          w, 403, "Forbidden",
          attributes.resource + "." + attributes.group + " \"" + attributes.name +
              "\" is forbidden: " + allowed.reason,
          {{"name", attributes.name}, {"group", attributes.group}, {"kind", attributes.resource}});
    }
    if (allowed.http_status != 200) {
      return ReplyStatus(w, 500, "InternalError", allowed.reason);
    }
    if (req.method != "GET") {
      w.Respond(405, "application/json",
                profiling::CustomMetricsStatus(InvalidArgumentError("only GET is served")).body);
      return;
    }
    const std::string label_selector = req.QueryParam("labelSelector");
    const std::string metric_label_selector = req.QueryParam("metricLabelSelector");
    auto request =
        profiling::ParseCustomMetricsRequest({.path = req.path,
                                              .label_selector = label_selector,
                                              .metric_label_selector = metric_label_selector});
    if (!request.ok()) return Reply(w, request.error());
    std::vector<profiling::MetricsPod> candidates;
    std::vector<cost::PodGpuUsage> usage;
    if (request->kind == CustomMetricsRequest::Kind::kPod ||
        request->kind == CustomMetricsRequest::Kind::kPodsBySelector) {
      if (source == nullptr) {
        return Reply(w, UnavailableError("no GPU utilisation source: set --prometheus-url or "
                                         "cost.prometheusURL"));
      }
      auto fetched = source->Fetch();
      if (!fetched.ok()) {
        reconcile::Log(
            reconcile::LogLevel::kWarn, "custom metrics: utilisation source failed",
            {{"source", std::string(source->name())}, {"error", fetched.error().ToString()}});
        return Reply(w, fetched.error());
      }
      usage = std::move(*fetched);
      candidates = PodsIn(pods, request->ns);
    }
    const int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(clock.WallNow().time_since_epoch())
            .count();
    auto body = profiling::BuildCustomMetricsAnswer(*request, candidates, usage, now);
    if (!body.ok()) return Reply(w, body.error());
    w.Respond(200, "application/json", std::move(*body));
  };
  auto started = net::HttpServer::Start(o, std::move(handler));
  if (!started.ok()) {
    if (!self->generated_dir_.empty()) std::filesystem::remove_all(self->generated_dir_);
    return started.error().WithContext("custom metrics " + options.bind_address);
  }
  self->server_ = std::move(*started);
  return self;
}

CustomMetricsServer::~CustomMetricsServer() {
  if (server_) server_->Stop();
  if (!generated_dir_.empty()) std::filesystem::remove_all(generated_dir_);
}

int CustomMetricsServer::port() const {
  return server_ ? server_->port() : -1;
}

}  // namespace gpu_autoscaler::controllers
