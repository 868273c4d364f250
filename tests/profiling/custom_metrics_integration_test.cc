// custom.metrics.k8s.io/v1beta2 through real processes: the embedded API
// server, gpu-autoscaler-manager with --custom-metrics-bind-address, and a
// loopback server answering the Prometheus query API with dcgm-exporter
// series for pods created in the API server. Requests have the shapes the
// kube-aggregator forwards for the HPA controller (path, query, Accept), with
// its front-proxy client certificate (signed by a test request-header CA
// published in kube-system/extension-apiserver-authentication) and
// X-Remote-User/X-Remote-Group; the manager authorises them by
// SubjectAccessReview against RBAC objects in the API server.
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/rest_client.h"
#include "kube/transport.h"
#include "net/http_server.h"
#include "net/self_signed_cert.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/test_paths.h"

namespace gpu_autoscaler {
namespace {

using nlohmann::json;

const kube::GroupVersionResource kClusterRoles{"rbac.authorization.k8s.io", "v1", "clusterroles",
                                               false};
const kube::GroupVersionResource kClusterRoleBindings{"rbac.authorization.k8s.io", "v1",
                                                      "clusterrolebindings", false};
constexpr char kHpaUser[] = "system:serviceaccount:kube-system:horizontal-pod-autoscaler";

// A CA and the client certificates it issues, as PEM.
struct TestCa {
  net::SelfSignedCertificates ca;
  net::ClientCertificate Issue(const std::string& cn,
                               const std::vector<std::string>& orgs = {}) const {
    auto cert = net::IssueClientCertificate(ca.ca_cert_pem, ca.ca_key_pem, cn, orgs);
    EXPECT_TRUE(cert.ok()) << cert.error().ToString();
    return cert.ok() ? *cert : net::ClientCertificate{};
  }
};
TestCa NewCa(const std::string& name) {
  auto ca = net::GenerateSelfSignedCertificates({.dns_names = {name}, .ca_common_name = name});
  EXPECT_TRUE(ca.ok()) << ca.error().ToString();
  return {ca.ok() ? *ca : net::SelfSignedCertificates{}};
}

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
    dir_ = testing::MakeTempDir("gpa-custom-metrics");
    // Bearer tokens for callers without a certificate (kube-apiserver's format).
    std::ofstream(dir_ + "/tokens.csv")
        << "hpa-token," << kHpaUser << ",uid-hpa,\"system:serviceaccounts\"\n"
        << "mallory-token,mallory,uid-mallory\n";
    server_ = testing::TestApiServer::Start(
        {.extra_args = {"--token-auth-file=" + dir_ + "/tokens.csv"}});
    ASSERT_TRUE(server_) << "api server did not start";
    if (server_->is_real_cluster()) GTEST_SKIP() << "writes kube-system objects";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client);
    ns_ = server_->CreateTestNamespace("custom-metrics");
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);

    // What kube-apiserver publishes when the aggregation layer is on.
    front_proxy_ca_ = NewCa("front-proxy-ca");
    client_ca_ = NewCa("client-ca");
    json cm = {{"apiVersion", "v1"},
               {"kind", "ConfigMap"},
               {"metadata", {{"name", "extension-apiserver-authentication"}}},
               {"data",
                {{"client-ca-file", client_ca_.ca.ca_cert_pem},
                 {"requestheader-client-ca-file", front_proxy_ca_.ca.ca_cert_pem},
                 {"requestheader-allowed-names", R"(["front-proxy-client"])"},
                 {"requestheader-username-headers", R"(["X-Remote-User"])"},
                 {"requestheader-group-headers", R"(["X-Remote-Group"])"},
                 {"requestheader-extra-headers-prefix", R"(["X-Remote-Extra-"])"}}}};
    ASSERT_TRUE(client_->Create({kube::resources::kConfigMaps, "kube-system", "", ""}, cm).ok());
    // RBAC as prometheus-adapter's manifests grant the HPA controller: the group's
    // resources, and discovery.
    json role = {{"apiVersion", "rbac.authorization.k8s.io/v1"},
                 {"kind", "ClusterRole"},
                 {"metadata", {{"name", "custom-metrics-reader"}}},
                 {"rules",
                  {{{"apiGroups", {"custom.metrics.k8s.io"}},
                    {"resources", {"*"}},
                    {"verbs", {"get", "list"}}},
                   {{"nonResourceURLs", {"/apis", "/apis/*"}}, {"verbs", {"get"}}}}}};
    ASSERT_TRUE(client_->Create({kClusterRoles}, role).ok());
    json binding = {
        {"apiVersion", "rbac.authorization.k8s.io/v1"},
        {"kind", "ClusterRoleBinding"},
        {"metadata", {{"name", "hpa-custom-metrics"}}},
        {"roleRef",
         {{"apiGroup", "rbac.authorization.k8s.io"},
          {"kind", "ClusterRole"},
          {"name", "custom-metrics-reader"}}},
        {"subjects",
         {{{"kind", "User"}, {"name", kHpaUser}}, {{"kind", "Group"}, {"name", "gpu-readers"}}}}};
    ASSERT_TRUE(client_->Create({kClusterRoleBindings}, binding).ok());
    aggregator_ = front_proxy_ca_.Issue("front-proxy-client");

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
    base_ = "https://127.0.0.1:" + std::to_string(port);
    transport_ = Transport(aggregator_);
    ASSERT_NE(transport_, nullptr);
  }

  // A client presenting `cert` (none when empty).
  std::unique_ptr<kube::HttpTransport> Transport(const net::ClientCertificate& cert) {
    kube::ClientConfig cfg;
    cfg.server = base_;
    cfg.insecure_skip_tls_verify = true;  // the generated serving pair
    cfg.client_cert_pem = cert.cert_pem;
    cfg.client_key_pem = cert.key_pem;
    auto transport = kube::NewCurlTransport(cfg);
    EXPECT_TRUE(transport.ok()) << transport.error().ToString();
    return transport.ok() ? std::move(*transport) : nullptr;
  }

  kube::HttpResponse Send(kube::HttpTransport& transport, const std::string& path_and_query,
                          std::vector<std::pair<std::string, std::string>> headers) {
    headers.emplace_back("Accept", "application/json, */*");
    kube::HttpRequest req{"GET", base_ + path_and_query, std::move(headers), "",
                          std::chrono::seconds(10)};
    auto resp = transport.Do(req);
    EXPECT_TRUE(resp.ok()) << resp.error().ToString();
    return resp.ok() ? *resp : kube::HttpResponse{};
  }
  void TearDown() override {
    manager_.Kill(SIGTERM);
    if (!dir_.empty() && !HasFailure()) std::filesystem::remove_all(dir_);
  }

  // A GET as the aggregator forwards the HPA controller's request.
  kube::HttpResponse Get(const std::string& path_and_query) {
    return Send(*transport_, path_and_query,
                {{"X-Remote-User", kHpaUser},
                 {"X-Remote-Group", "system:serviceaccounts"},
                 {"X-Remote-Group", "system:authenticated"}});
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
  TestCa front_proxy_ca_, client_ca_;
  net::ClientCertificate aggregator_;
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

// A 401/403 as kube-apiserver words it: a metav1.Status.
void ExpectStatus(const kube::HttpResponse& resp, int code, const std::string& reason) {
  EXPECT_EQ(resp.status, code) << resp.body;
  const json status = json::parse(resp.body, nullptr, false);
  ASSERT_TRUE(status.is_object()) << resp.body;
  EXPECT_EQ(status["kind"], "Status");
  EXPECT_EQ(status["status"], "Failure");
  EXPECT_EQ(status["reason"], reason);
  EXPECT_EQ(status["code"], code);
}

TEST_F(CustomMetricsTest, TheFrontProxyNamesTheUserAndRbacDecides) {
  // Allowed: the HPA's user through the aggregator (the other tests' path).
  kube::HttpResponse allowed;
  ASSERT_TRUE(testing::WaitFor([&] {
    allowed = Get(PodsPath("web-0", "gpu_utilization"));
    return allowed.status == 200;
  })) << allowed.status
      << " " << allowed.body;
  // Denied: the same aggregator naming a user no binding covers.
  const kube::HttpResponse denied =
      Send(*transport_, PodsPath("web-0", "gpu_utilization"), {{"X-Remote-User", "mallory"}});
  ExpectStatus(denied, 403, "Forbidden");
  EXPECT_NE(
      denied.body.find(
          R"(pods.custom.metrics.k8s.io \"web-0\" is forbidden: User \"mallory\" cannot get resource \"pods/gpu_utilization\" in API group \"custom.metrics.k8s.io\" in the namespace \")" +
          ns_),
      std::string::npos)
      << denied.body;
  // A group header is honoured too: mallory in gpu-readers may read.
  EXPECT_EQ(Send(*transport_, PodsPath("web-0", "gpu_utilization"),
                 {{"X-Remote-User", "mallory"}, {"X-Remote-Group", "gpu-readers"}})
                .status,
            200);
  // Discovery is a non-resource URL: allowed by the ClusterRole's /apis/*.
  EXPECT_EQ(Send(*transport_, "/apis/custom.metrics.k8s.io/v1beta2", {{"X-Remote-User", kHpaUser}})
                .status,
            200);
  ExpectStatus(
      Send(*transport_, "/apis/custom.metrics.k8s.io/v1beta2", {{"X-Remote-User", "mallory"}}), 403,
      "Forbidden");
  // A front proxy that names nobody is not a user.
  ExpectStatus(Send(*transport_, PodsPath("web-0", "gpu_utilization"), {}), 401, "Unauthorized");
}

TEST_F(CustomMetricsTest, RemoteUserHeadersWithoutTheFrontProxyCertificateAreIgnored) {
  const std::vector<std::pair<std::string, std::string>> forged = {
      {"X-Remote-User", kHpaUser}, {"X-Remote-Group", "system:masters"}};
  // No client certificate at all.
  auto plain = Transport({});
  ASSERT_NE(plain, nullptr);
  ExpectStatus(Send(*plain, PodsPath("web-0", "gpu_utilization"), forged), 401, "Unauthorized");
  // The allowed name, from another CA.
  auto rogue = Transport(NewCa("rogue-ca").Issue("front-proxy-client"));
  ExpectStatus(Send(*rogue, PodsPath("web-0", "gpu_utilization"), forged), 401, "Unauthorized");
  // The right CA, a name not in requestheader-allowed-names.
  auto other = Transport(front_proxy_ca_.Issue("some-other-client"));
  ExpectStatus(Send(*other, PodsPath("web-0", "gpu_utilization"), forged), 401, "Unauthorized");
  // The client CA is not the front proxy's: its certificates name their own user (CN),
  // never the header's.
  auto jane = Transport(client_ca_.Issue("jane"));
  ExpectStatus(Send(*jane, PodsPath("web-0", "gpu_utilization"), forged), 403, "Forbidden");
}

TEST_F(CustomMetricsTest, ClientCertificatesAndBearerTokensAuthenticateToo) {
  // x509: CN is the user, O the groups (gpu-readers is bound).
  auto reader = Transport(client_ca_.Issue("jane", {"gpu-readers"}));
  kube::HttpResponse resp;
  ASSERT_TRUE(testing::WaitFor([&] {
    resp = Send(*reader, PodsPath("web-0", "gpu_memory_used_bytes"), {});
    return resp.status == 200;
  })) << resp.status
      << " " << resp.body;
  // Bearer tokens, by TokenReview: the headers beside them are ignored.
  auto plain = Transport({});
  EXPECT_EQ(Send(*plain, PodsPath("web-0", "gpu_memory_used_bytes"),
                 {{"Authorization", "Bearer hpa-token"}})
                .status,
            200);
  ExpectStatus(Send(*plain, PodsPath("web-0", "gpu_memory_used_bytes"),
                    {{"Authorization", "Bearer mallory-token"}, {"X-Remote-User", kHpaUser}}),
               403, "Forbidden");
  ExpectStatus(Send(*plain, PodsPath("web-0", "gpu_memory_used_bytes"),
                    {{"Authorization", "Bearer not-a-token"}}),
               401, "Unauthorized");
}

TEST(CustomMetricsStartTest, WithoutTheAuthenticationConfigMapTheManagerSaysWhatIsMissing) {
  auto server = testing::TestApiServer::Start();
  ASSERT_TRUE(server) << "api server did not start";
  if (server->is_real_cluster()) GTEST_SKIP() << "the ConfigMap exists in a real cluster";
  const std::string dir = testing::MakeTempDir("gpa-custom-metrics-noauth");
  testing::ChildProcess manager;
  ASSERT_TRUE(manager.Spawn(
      {testing::BinaryPath("gpu-autoscaler-manager"),
       "--kubeconfig=" + testing::WriteKubeconfig(server->config(), dir),
       "--metrics-bind-address=0", "--health-probe-bind-address=127.0.0.1:0",
       "--controllers=node-gpu-inventory", "--custom-metrics-bind-address=127.0.0.1:0"},
      dir + "/manager.log"));
  std::optional<int> code;
  ASSERT_TRUE(testing::WaitFor([&] { return (code = manager.TryWait()).has_value(); }))
      << manager.Log();
  EXPECT_TRUE(WIFEXITED(*code) && WEXITSTATUS(*code) == 1) << *code << manager.Log();
  EXPECT_NE(manager.Log().find("ConfigMap kube-system/extension-apiserver-authentication not "
                               "found"),
            std::string::npos)
      << manager.Log();
  EXPECT_NE(manager.Log().find("--requestheader-client-ca-file"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gpu_autoscaler
