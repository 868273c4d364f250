// custom.metrics.k8s.io/v1beta2 through real processes: the embedded API
// server, gpu-autoscaler-manager with --custom-metrics-bind-address, and a
// loopback server answering the Prometheus query API with dcgm-exporter
// series for pods created in the API server. Requests have the shapes the
// kube-aggregator forwards for the HPA controller (path, query, Accept).
#include <signal.h>

#include <atomic>
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/rest_client.h"
#include "kube/transport.h"
#include "net/http_server.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/test_paths.h"

namespace gpu_autoscaler {
namespace {

using nlohmann::json;

// Each GPU's series as dcgm-exporter exports them, pod labels included.
json DcgmSeries(const std::string& metric, const std::string& ns, const std::string& pod,
                const std::string& uuid, double value) {
  return json{{"metric",
               {{"__name__", metric},
                {"gpu", "0"},
                {"UUID", uuid},
                {"Hostname", "gpu-node-1"},
                {"modelName", "NVIDIA A100-SXM4-80GB"},
                {"namespace", ns},
                {"pod", pod},
                {"container", "main"}}},
              {"value", {1796000000.0, std::to_string(value)}}};
}

class CustomMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client);
    ns_ = server_->CreateTestNamespace("custom-metrics");
    dir_ = testing::MakeTempDir("gpa-custom-metrics");
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);

    for (const auto& [name, app] :
         {std::pair{"web-0", "web"}, {"web-1", "web"}, {"web-2", "web"}, {"batch-0", "batch"}}) {
      json pod = {{"apiVersion", "v1"},
                  {"kind", "Pod"},
                  {"metadata", {{"name", name}, {"labels", {{"app", app}}}}},
                  {"spec", {{"containers", {{{"name", "main"}, {"image", "i"}}}}}}};
      ASSERT_TRUE(client_->Create({kube::resources::kPods, ns_, "", ""}, pod).ok());
    }
    // web-0 has a whole GPU at 42 % with 10240 MiB; web-1 and batch-0
    // time-slice one GPU that is 60 % busy with 6000 MiB (dcgm-exporter copies
    // the GPU's figures to both: the manager divides them); web-2 has no series.
    json result = json::array({DcgmSeries("DCGM_FI_DEV_GPU_UTIL", ns_, "web-0", "GPU-a", 42),
                               DcgmSeries("DCGM_FI_DEV_FB_USED", ns_, "web-0", "GPU-a", 10240),
                               DcgmSeries("DCGM_FI_DEV_GPU_UTIL", ns_, "web-1", "GPU-b", 60),
                               DcgmSeries("DCGM_FI_DEV_FB_USED", ns_, "web-1", "GPU-b", 6000),
                               DcgmSeries("DCGM_FI_DEV_GPU_UTIL", ns_, "batch-0", "GPU-b", 60),
                               DcgmSeries("DCGM_FI_DEV_FB_USED", ns_, "batch-0", "GPU-b", 6000)});
    prometheus_body_ =
        json{{"status", "success"}, {"data", {{"resultType", "vector"}, {"result", result}}}}
            .dump();
    auto prometheus =
        net::HttpServer::Start({}, [this](const net::ServerRequest& r, net::ResponseWriter& w) {
          if (r.path != "/api/v1/query") return w.Respond(404, "text/plain", "not found");
          if (prometheus_down_) return w.Respond(503, "text/plain", "service unavailable");
          w.Respond(200, "application/json", prometheus_body_);
        });
    ASSERT_TRUE(prometheus.ok());
    prometheus_ = std::move(*prometheus);

    ASSERT_TRUE(manager_.Spawn(
        {testing::BinaryPath("gpu-autoscaler-manager"), "--kubeconfig=" + kubeconfig_,
         "--metrics-bind-address=0", "--health-probe-bind-address=127.0.0.1:0",
         "--controllers=node-gpu-inventory",
         "--prometheus-url=http://127.0.0.1:" + std::to_string(prometheus_->port()),
         "--custom-metrics-bind-address=127.0.0.1:0"},
        dir_ + "/manager.log"));
    int port = -1;
    ASSERT_TRUE(testing::WaitFor([&] {
      return (port = manager_.PortFromLog("custom_metrics_port")) > 0;
    })) << manager_.Log();
    kube::ClientConfig cfg;
    cfg.server = "https://127.0.0.1:" + std::to_string(port);
    cfg.insecure_skip_tls_verify = true;  // the generated pair, as an APIService without caBundle
    base_ = cfg.server;
    auto transport = kube::NewCurlTransport(cfg);
    ASSERT_TRUE(transport.ok());
    transport_ = std::move(*transport);
  }
  void TearDown() override {
    manager_.Kill(SIGTERM);
    if (!dir_.empty() && !HasFailure()) std::filesystem::remove_all(dir_);
  }

  // A GET as the aggregator forwards the HPA controller's request.
  kube::HttpResponse Get(const std::string& path_and_query) {
    kube::HttpRequest req{"GET",
                          base_ + path_and_query,
                          {{"Accept", "application/json, */*"},
                           {"X-Remote-User",
                            "system:serviceaccount:kube-system:horizontal-pod-"
                            "autoscaler"},
                           {"X-Remote-Group", "system:serviceaccounts"}},
                          "",
                          std::chrono::seconds(10)};
    auto resp = transport_->Do(req);
    EXPECT_TRUE(resp.ok()) << resp.error().ToString();
    return resp.ok() ? *resp : kube::HttpResponse{};
  }
  std::string PodsPath(const std::string& pod, const std::string& metric) {
    return "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns_ + "/pods/" + pod + "/" + metric;
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::unique_ptr<net::HttpServer> prometheus_;
  std::string prometheus_body_;
  std::atomic<bool> prometheus_down_{false};
  testing::ChildProcess manager_;
  std::unique_ptr<kube::HttpTransport> transport_;
  std::string ns_, dir_, kubeconfig_, base_;
};

TEST_F(CustomMetricsTest, DiscoveryListsThePodMetrics) {
  const kube::HttpResponse resp = Get("/apis/custom.metrics.k8s.io/v1beta2");
  ASSERT_EQ(resp.status, 200) << resp.body;
  EXPECT_EQ(resp.Header("Content-Type"), "application/json");
  const json list = json::parse(resp.body);
  EXPECT_EQ(list["kind"], "APIResourceList");
  EXPECT_EQ(list["groupVersion"], "custom.metrics.k8s.io/v1beta2");
  ASSERT_EQ(list["resources"].size(), 2u);
  EXPECT_EQ(list["resources"][0]["name"], "pods/gpu_utilization");
  EXPECT_EQ(list["resources"][0]["namespaced"], true);
  EXPECT_EQ(list["resources"][0]["kind"], "MetricValueList");
  EXPECT_EQ(list["resources"][1]["name"], "pods/gpu_memory_used_bytes");
}

TEST_F(CustomMetricsTest, TheHpaPodsMetricReadByLabelSelector) {
  // What the HPA's Pods metric source asks for a Deployment selecting app=web.
  json list;
  ASSERT_TRUE(testing::WaitFor([&] {  // until the manager's pod informer has synced
    const kube::HttpResponse resp =
        Get(PodsPath("*", "gpu_utilization") + "?labelSelector=app%3Dweb");
    if (resp.status != 200) return false;
    list = json::parse(resp.body);
    return list["items"].size() == 2;
  })) << list.dump(2)
      << manager_.Log();
  EXPECT_EQ(list["kind"], "MetricValueList");
  EXPECT_EQ(list["apiVersion"], "custom.metrics.k8s.io/v1beta2");
  // web-2 has no dcgm series: left out, not reported as 0.
  const json& web0 = list["items"][0];
  EXPECT_EQ(web0["describedObject"],
            json({{"kind", "Pod"}, {"namespace", ns_}, {"name", "web-0"}, {"apiVersion", "v1"}}));
  EXPECT_EQ(web0["metric"], json({{"name", "gpu_utilization"}}));
  EXPECT_EQ(web0["windowSeconds"], 0);
  EXPECT_EQ(web0["value"], "42");
  EXPECT_TRUE(web0["timestamp"].is_string());
  // web-1 holds half of a GPU that is 60 % busy: 0.3 of the GPU, 60 % of its share.
  EXPECT_EQ(list["items"][1]["describedObject"]["name"], "web-1");
  EXPECT_EQ(list["items"][1]["value"], "60");

  const kube::HttpResponse memory =
      Get(PodsPath("*", "gpu_memory_used_bytes") + "?labelSelector=app+in+%28web%2Cbatch%29");
  ASSERT_EQ(memory.status, 200) << memory.body;
  const json mem = json::parse(memory.body);
  ASSERT_EQ(mem["items"].size(), 3u) << mem.dump(2);
  EXPECT_EQ(mem["items"][0]["describedObject"]["name"], "batch-0");
  EXPECT_EQ(mem["items"][0]["value"], "3145728k");     // 6000 MiB / 2 = 3145728000 bytes
  EXPECT_EQ(mem["items"][1]["value"], "10737418240");  // 10240 MiB
  EXPECT_EQ(mem["items"][2]["value"], "3145728k");
}

TEST_F(CustomMetricsTest, OnePodUnknownMetricsAndMissingData) {
  kube::HttpResponse resp;
  ASSERT_TRUE(testing::WaitFor([&] {
    resp = Get(PodsPath("web-0", "gpu_memory_used_bytes"));
    return resp.status == 200;
  })) << resp.status
      << " " << resp.body;
  const json one = json::parse(resp.body);
  ASSERT_EQ(one["items"].size(), 1u);
  EXPECT_EQ(one["items"][0]["value"], "10737418240");

  auto expect_status = [&](const std::string& path, int code, const std::string& reason) {
    const kube::HttpResponse r = Get(path);
    EXPECT_EQ(r.status, code) << path << ": " << r.body;
    const json status = json::parse(r.body);
    EXPECT_EQ(status["kind"], "Status") << path;
    EXPECT_EQ(status["status"], "Failure") << path;
    EXPECT_EQ(status["reason"], reason) << path;
    EXPECT_EQ(status["code"], code) << path;
  };
  expect_status(PodsPath("*", "cpu_usage"), 404, "NotFound");
  expect_status(PodsPath("web-2", "gpu_utilization"), 404, "NotFound");  // no figure
  expect_status(PodsPath("ghost", "gpu_utilization"), 404, "NotFound");
  expect_status(PodsPath("*", "gpu_utilization") + "?labelSelector=app+in+%28web", 400,
                "BadRequest");
  prometheus_down_ = true;
  expect_status(PodsPath("*", "gpu_utilization"), 503, "ServiceUnavailable");
}

}  // namespace
}  // namespace gpu_autoscaler
