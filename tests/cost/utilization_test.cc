// Unit tests for src/cost/utilization.h: the Prometheus response decoder, the
// dcgm-exporter attribution (shared-GPU division, multi-GPU pods), and the
// error values of PrometheusDcgmSource against loopback servers that refuse,
// hang or answer garbage. The real-Prometheus test is
// prometheus_dcgm_integration_test.cc.
#include "cost/utilization.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "net/http_server.h"
#include "support/loopback_port.h"

namespace gpu_autoscaler::cost {
namespace {

using ::testing::HasSubstr;

PromSample Util(std::string host, std::string uuid, std::string ns, std::string pod, double percent,
                std::string vgpu = "", std::string container = "main") {
  PromSample s;
  s.labels = {{"__name__", std::string(kDcgmGpuUtilMetric)},
              {"Hostname", std::move(host)},
              {"UUID", std::move(uuid)},
              {"gpu", "0"},
              {"modelName", "NVIDIA A100-SXM4-80GB"},
              {"namespace", std::move(ns)},
              {"pod", std::move(pod)},
              {"container", std::move(container)}};
  if (!vgpu.empty()) s.labels["vgpu"] = std::move(vgpu);
  s.value = percent;
  return s;
}

PromSample Mem(std::string host, std::string uuid, std::string ns, std::string pod, double mib,
               std::string vgpu = "") {
  PromSample s =
      Util(std::move(host), std::move(uuid), std::move(ns), std::move(pod), mib, std::move(vgpu));
  s.labels["__name__"] = std::string(kDcgmFbUsedMetric);
  return s;
}

const PodGpuUsage* Find(const std::vector<PodGpuUsage>& v, const std::string& pod) {
  for (const auto& u : v) {
    if (u.pod == pod) return &u;
  }
  return nullptr;
}

TEST(DecodePrometheusVector, ReadsLabelsTimesAndValues) {
  auto r = DecodePrometheusVector(R"({"status":"success","data":{"resultType":"vector","result":[
      {"metric":{"__name__":"DCGM_FI_DEV_GPU_UTIL","pod":"a","UUID":"GPU-1"},"value":[1700000000.5,"37"]},
      {"metric":{"pod":"b"},"value":[1700000001,"NaN"]},
      {"metric":{},"value":[1,"+Inf"]},
      {"value":[1,"2.5e1"]}]}})");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].labels.at("__name__"), "DCGM_FI_DEV_GPU_UTIL");
  EXPECT_EQ((*r)[0].labels.at("UUID"), "GPU-1");
  EXPECT_EQ((*r)[0].timestamp, 1700000000.5);
  EXPECT_EQ((*r)[0].value, 37);
  EXPECT_TRUE(std::isnan((*r)[1].value));
  EXPECT_TRUE(std::isinf((*r)[2].value));
  EXPECT_EQ((*r)[3].value, 25);
  EXPECT_TRUE((*r)[3].labels.empty());
}

TEST(DecodePrometheusVector, EmptyResultIsNoSamples) {
  auto r =
      DecodePrometheusVector(R"({"status":"success","data":{"resultType":"vector","result":[]}})");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST(DecodePrometheusVector, PrometheusErrorCarriesTypeAndMessage) {
  auto r = DecodePrometheusVector(
      R"({"status":"error","errorType":"bad_data","error":"1:2: parse error: unexpected"})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("bad_data"));
  EXPECT_THAT(r.error().message(), HasSubstr("parse error: unexpected"));
}

TEST(DecodePrometheusVector, MalformedBodiesAreErrorsNamingTheProblem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not valid JSON"},
      {"{\"status\":\"succ", "not valid JSON"},
      {"<html>502 Bad Gateway</html>", "not valid JSON"},
      {"[]", "not a JSON object"},
      {"{}", "no \"status\""},
      {R"({"status":"success"})", "no \"data\" object"},
      {R"({"status":"success","data":{"resultType":"matrix","result":[]}})", "want \"vector\""},
      {R"({"status":"success","data":{"resultType":"vector"}})", "no \"data.result\" array"},
      {R"({"status":"success","data":{"resultType":"vector","result":[1]}})",
       "data.result[0] is not an object"},
      {R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":7},"value":[1,"2"]}]}})",
       "data.result[0].metric.pod is not a string"},
      {R"({"status":"success","data":{"resultType":"vector","result":[{"value":[1]}]}})",
       "data.result[0].value is not a [time, \"value\"] pair"},
      {R"({"status":"success","data":{"resultType":"vector","result":[{"value":["1","2"]}]}})",
       "value[0] is not a number"},
      {R"({"status":"success","data":{"resultType":"vector","result":[{"value":[1,2]}]}})",
       "not a string"},
      {R"({"status":"success","data":{"resultType":"vector","result":[{"value":[1,"12abc"]}]}})",
       "\"12abc\" is not a number"},
  };
  for (const auto& [body, want] : cases) {
    auto r = DecodePrometheusVector(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument) << body;
    EXPECT_THAT(r.error().message(), HasSubstr(want)) << body;
  }
}

TEST(AttributeDcgmSamples, ExclusiveGpuIsThePodsOwn) {
  std::vector<PromSample> s = {Util("node-1", "GPU-a", "ml", "a", 37),
                               Mem("node-1", "GPU-a", "ml", "a", 1024)};
  auto u = AttributeDcgmSamples(s);
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].ns, "ml");
  EXPECT_EQ(u[0].pod, "a");
  EXPECT_DOUBLE_EQ(u[0].gpu_utilization, 0.37);
  EXPECT_DOUBLE_EQ(u[0].gpu_memory_bytes, 1024.0 * 1024 * 1024);
  EXPECT_EQ(u[0].devices, 1);
  EXPECT_DOUBLE_EQ(u[0].gpus, 1);
  EXPECT_DOUBLE_EQ(u[0].ShareUtilization(), 0.37);
}

TEST(AttributeDcgmSamples, TimeSlicedGpuIsDividedEqually) {
  // dcgm-exporter (virtual-GPU mode) copies the GPU's figures to each replica.
  std::vector<PromSample> s = {
      Util("node-1", "GPU-s", "ml", "b", 80, "0"), Util("node-1", "GPU-s", "ml", "c", 80, "1"),
      Mem("node-1", "GPU-s", "ml", "b", 4096, "0"), Mem("node-1", "GPU-s", "ml", "c", 4096, "1")};
  auto u = AttributeDcgmSamples(s);
  ASSERT_EQ(u.size(), 2u);
  for (const auto& p : u) {
    EXPECT_DOUBLE_EQ(p.gpu_utilization, 0.4) << p.pod;
    EXPECT_DOUBLE_EQ(p.gpu_memory_bytes, 2048.0 * 1024 * 1024) << p.pod;
    EXPECT_DOUBLE_EQ(p.gpus, 0.5) << p.pod;
    // Meter charges each pod half a GPU already: relative to that half, 80 %.
    EXPECT_DOUBLE_EQ(p.ShareUtilization(), 0.8) << p.pod;
  }
}

TEST(AttributeDcgmSamples, SameUuidOnAnotherHostOrMigInstanceIsAnotherDevice) {
  PromSample mig1 = Util("node-1", "GPU-m", "ml", "m1", 10);
  mig1.labels["GPU_I_ID"] = "1";
  PromSample mig2 = Util("node-1", "GPU-m", "ml", "m2", 30);
  mig2.labels["GPU_I_ID"] = "2";
  std::vector<PromSample> s = {mig1, mig2, Util("node-2", "GPU-a", "ml", "x", 50),
                               Util("node-3", "GPU-a", "ml", "y", 70)};
  auto u = AttributeDcgmSamples(s);
  ASSERT_EQ(u.size(), 4u);
  EXPECT_DOUBLE_EQ(Find(u, "m1")->gpu_utilization, 0.1);
  EXPECT_DOUBLE_EQ(Find(u, "m2")->gpu_utilization, 0.3);
  EXPECT_DOUBLE_EQ(Find(u, "x")->gpu_utilization, 0.5);
  EXPECT_DOUBLE_EQ(Find(u, "y")->gpu_utilization, 0.7);
}

TEST(AttributeDcgmSamples, MultiGpuPodGetsTheMeanAndTheMemorySum) {
  std::vector<PromSample> s = {
      Util("node-2", "GPU-0", "ml", "d", 60), Util("node-2", "GPU-1", "ml", "d", 20),
      Mem("node-2", "GPU-0", "ml", "d", 1000), Mem("node-2", "GPU-1", "ml", "d", 3000)};
  auto u = AttributeDcgmSamples(s);
  ASSERT_EQ(u.size(), 1u);
  EXPECT_DOUBLE_EQ(u[0].gpu_utilization, 0.4);
  EXPECT_DOUBLE_EQ(u[0].gpu_memory_bytes, 4000.0 * 1024 * 1024);
  EXPECT_EQ(u[0].devices, 2);
  EXPECT_DOUBLE_EQ(u[0].gpus, 2);
  EXPECT_DOUBLE_EQ(u[0].ShareUtilization(), 0.4);
}

TEST(AttributeDcgmSamples, PodOnOneWholeAndOneSharedGpu) {
  std::vector<PromSample> s = {
      Util("n", "GPU-0", "ml", "e", 60), Util("n", "GPU-1", "ml", "e", 90, "0"),
      Util("n", "GPU-1", "ml", "f", 90, "1"), Util("n", "GPU-1", "ml", "g", 90, "2")};
  auto u = AttributeDcgmSamples(s);
  const PodGpuUsage* e = Find(u, "e");
  ASSERT_NE(e, nullptr);
  EXPECT_DOUBLE_EQ(e->gpu_utilization, (0.6 + 0.3) / 2);
  EXPECT_DOUBLE_EQ(e->gpus, 1.0 + 1.0 / 3);
  EXPECT_DOUBLE_EQ(e->ShareUtilization(), 0.9 / (4.0 / 3));
  EXPECT_DOUBLE_EQ(Find(u, "f")->gpu_utilization, 0.3);
}

TEST(AttributeDcgmSamples, IgnoresUnallocatedGpusOtherMetricsAndBadValues) {
  PromSample other = Util("n", "GPU-0", "ml", "a", 50);
  other.labels["__name__"] = "DCGM_FI_DEV_GPU_TEMP";
  std::vector<PromSample> s = {Util("n", "GPU-9", "", "", 0),  // no pod on it
                               other,
                               Util("n", "GPU-1", "ml", "nan", NAN),
                               Util("n", "GPU-2", "ml", "neg", -1),
                               Util("n", "GPU-3", "ml", "inf", INFINITY),
                               Mem("n", "GPU-4", "ml", "memonly", 10),
                               Util("n", "GPU-5", "ml", "over", 250)};
  auto u = AttributeDcgmSamples(s);
  ASSERT_EQ(u.size(), 2u);
  const PodGpuUsage* mem_only = Find(u, "memonly");
  ASSERT_NE(mem_only, nullptr);
  EXPECT_EQ(mem_only->gpu_utilization, -1);
  EXPECT_EQ(mem_only->ShareUtilization(), -1);
  EXPECT_DOUBLE_EQ(mem_only->gpu_memory_bytes, 10.0 * 1024 * 1024);
  EXPECT_DOUBLE_EQ(Find(u, "over")->gpu_utilization, 1.0);  // clamped
}

TEST(AttributeDcgmSamples, ExportedLabelsWinOverTheScrapeTargetsOwn) {
  PromSample s = Util("n", "GPU-0", "monitoring", "dcgm-exporter-x7k2p", 42);
  s.labels["exported_pod"] = "trainer-0";
  s.labels["exported_namespace"] = "ml";
  s.labels["exported_container"] = "main";
  auto u = AttributeDcgmSamples(std::vector<PromSample>{s});
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].ns, "ml");
  EXPECT_EQ(u[0].pod, "trainer-0");
}

TEST(AttributeDcgmSamples, SortedByNamespaceThenPod) {
  std::vector<PromSample> s = {Util("n", "G1", "b", "x", 1), Util("n", "G2", "a", "y", 1),
                               Util("n", "G3", "a", "x", 1)};
  auto u = AttributeDcgmSamples(s);
  ASSERT_EQ(u.size(), 3u);
  EXPECT_EQ(u[0].ns + "/" + u[0].pod, "a/x");
  EXPECT_EQ(u[1].ns + "/" + u[1].pod, "a/y");
  EXPECT_EQ(u[2].ns + "/" + u[2].pod, "b/x");
}

TEST(PrometheusDcgmSource, QuerySelectsBothMetricsAndTheExtraSelector) {
  PrometheusDcgmSource plain({.url = "http://p:9090/"});
  EXPECT_EQ(plain.Query(), R"({__name__=~"DCGM_FI_DEV_GPU_UTIL|DCGM_FI_DEV_FB_USED"})");
  PrometheusDcgmSource scoped({.url = "http://p:9090", .selector = R"(job="dcgm-exporter")"});
  EXPECT_EQ(scoped.Query(),
            R"({__name__=~"DCGM_FI_DEV_GPU_UTIL|DCGM_FI_DEV_FB_USED",job="dcgm-exporter"})");
  EXPECT_EQ(scoped.name(), "prometheus-dcgm");
}

// A loopback server answering every request with a fixed status and body.
class FixedServer {
 public:
  FixedServer(int status, std::string body) {
    auto s = net::HttpServer::Start(
        {}, [status, body](const net::ServerRequest& r, net::ResponseWriter& w) {
          if (r.path != "/api/v1/query") {
            w.Respond(404, "text/plain", "not found");
            return;
          }
          w.Respond(status, "application/json", body);
        });
    EXPECT_TRUE(s.ok()) << s.error().ToString();
    server_ = std::move(s).value();
  }
  ~FixedServer() { server_->Stop(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

 private:
  std::unique_ptr<net::HttpServer> server_;
};

TEST(PrometheusDcgmSource, ConnectionRefusedIsUnavailableNamingTheUrl) {
  auto port = gpu_autoscaler::testing::FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  const std::string url = "http://127.0.0.1:" + std::to_string(*port);
  PrometheusDcgmSource source({.url = url});
  auto r = source.Fetch();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kUnavailable);
  EXPECT_THAT(r.error().message(), HasSubstr(url + "/api/v1/query"));
}

TEST(PrometheusDcgmSource, HungServerIsDeadlineExceeded) {
  // Listens but never accepts: the kernel completes the handshake and takes
  // the request, nobody ever answers.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 8), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  PrometheusDcgmSource source({.url = url, .timeout = std::chrono::milliseconds(300)});
  auto r = source.Fetch();
  ::close(fd);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kDeadlineExceeded) << r.error().ToString();
  EXPECT_THAT(r.error().message(), HasSubstr(url));
}

TEST(PrometheusDcgmSource, MalformedJsonIsAnError) {
  FixedServer server(200, "{\"status\":\"success\",\"data\":{\"resultType\":\"vec");
  PrometheusDcgmSource source({.url = server.url()});
  auto r = source.Fetch();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr(server.url()));
  EXPECT_THAT(r.error().message(), HasSubstr("not valid JSON"));
}

TEST(PrometheusDcgmSource, PrometheusErrorAnswerIsAnError) {
  FixedServer server(422,
                     R"({"status":"error","errorType":"execution","error":"too many samples"})");
  PrometheusDcgmSource source({.url = server.url()});
  auto r = source.Fetch();
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr("HTTP 422"));
  EXPECT_THAT(r.error().message(), HasSubstr("too many samples"));
}

TEST(PrometheusDcgmSource, GatewayErrorIsUnavailable) {
  FixedServer server(502, "<html>Bad Gateway</html>");
  PrometheusDcgmSource source({.url = server.url()});
  auto r = source.Fetch();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kUnavailable);
  EXPECT_THAT(r.error().message(), HasSubstr("HTTP 502"));
}

TEST(PrometheusDcgmSource, OversizedAnswerIsAnError) {
  FixedServer server(200, std::string(4096, ' '));
  PrometheusDcgmSource source({.url = server.url(), .max_body_bytes = 1024});
  auto r = source.Fetch();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kResourceExhausted);
}

TEST(PrometheusDcgmSource, DecodesAndAttributesAGoodAnswer) {
  FixedServer server(200, R"({"status":"success","data":{"resultType":"vector","result":[
      {"metric":{"__name__":"DCGM_FI_DEV_GPU_UTIL","UUID":"GPU-1","Hostname":"n","namespace":"ml","pod":"a","container":"main"},"value":[1,"50"]},
      {"metric":{"__name__":"DCGM_FI_DEV_FB_USED","UUID":"GPU-1","Hostname":"n","namespace":"ml","pod":"a","container":"main"},"value":[1,"100"]}]}})");
  PrometheusDcgmSource source({.url = server.url() + "/"});
  auto r = source.Fetch();
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_DOUBLE_EQ((*r)[0].gpu_utilization, 0.5);
  EXPECT_DOUBLE_EQ((*r)[0].gpu_memory_bytes, 100.0 * 1024 * 1024);
}

}  // namespace
}  // namespace gpu_autoscaler::cost
