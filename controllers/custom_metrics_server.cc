#include "controllers/custom_metrics_server.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <vector>

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

}  // namespace

Result<std::unique_ptr<CustomMetricsServer>> CustomMetricsServer::Start(
    const CustomMetricsServerOptions& options, const kube::Store<kube::PodView>& pods,
    cost::UtilizationSource* source, Clock& clock) {
  std::unique_ptr<CustomMetricsServer> self(new CustomMetricsServer());
  std::string host;
  int port = -1;
  GPU_RETURN_IF_ERROR(reconcile::ParseBindAddress(options.bind_address, &host, &port)
                          .WithContext("--custom-metrics-bind-address"));
  if (port < 0) return InvalidArgumentError("--custom-metrics-bind-address: no port");
  net::HttpServerOptions o;
  o.bind_address = host;
  o.port = port;
  o.read_timeout = std::chrono::seconds(10);
  o.max_body_bytes = 64 * 1024;  // reads only
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
  auto handler = [&pods, source, &clock](const net::ServerRequest& req, net::ResponseWriter& w) {
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
