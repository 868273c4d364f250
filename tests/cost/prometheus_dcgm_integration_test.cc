// PrometheusDcgmSource against a real Prometheus (tests/support/prometheus_fixture.h)
// scraping dcgm-exporter-format metrics that this process serves. The GPU
// utilisation values replay the GenTD26 duty-cycle excerpt in tests/data/genai/.
//
// Layout served (dcgm-exporter in virtual-GPU mode):
//   node-1 GPU 0: ml/a alone                       <- trace pod 0
//   node-1 GPU 1: ml/b and ml/c time-slicing it    <- trace pod 1, copied to both
//   node-2 GPU 0 and GPU 1: ml/d on both           <- trace pods 2 and 3
//   node-2 GPU 2: no pod                           <- ignored
// Each step serves the next values; the test polls Fetch (bounded) until
// Prometheus has scraped them and then compares everything.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cost/usage_trace.h"
#include "cost/utilization.h"
#include "net/http_server.h"
#include "support/prometheus_fixture.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::cost {
namespace {

using ::testing::HasSubstr;
namespace support = gpu_autoscaler::testing;

struct Gpu {
  std::string host, index, uuid;
  std::vector<std::string> pods;  // "" = unallocated
};

const std::vector<Gpu>& Layout() {
  static const std::vector<Gpu> gpus = {
      {"node-1", "0", "GPU-5d1c7e0a-1f3b-4c55-9d2e-0a1b2c3d4e01", {"a"}},
      {"node-1", "1", "GPU-5d1c7e0a-1f3b-4c55-9d2e-0a1b2c3d4e02", {"b", "c"}},
      {"node-2", "0", "GPU-77aa0c41-8e2d-4a7b-b3c1-5f6e7d8c9b01", {"d"}},
      {"node-2", "1", "GPU-77aa0c41-8e2d-4a7b-b3c1-5f6e7d8c9b02", {"d"}},
      {"node-2", "2", "GPU-77aa0c41-8e2d-4a7b-b3c1-5f6e7d8c9b03", {""}},
  };
  return gpus;
}

// One step of the replay: per GPU of Layout(), utilisation (percent) and memory (MiB).
struct Step {
  std::vector<double> util_percent;
  std::vector<double> fb_mib;
};

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

// dcgm-exporter's text exposition for one step.
std::string Exposition(const Step& s) {
  std::ostringstream out;
  auto series = [&](const char* metric, const std::vector<double>& values) {
    for (size_t g = 0; g < Layout().size(); ++g) {
      const Gpu& gpu = Layout()[g];
      for (size_t r = 0; r < gpu.pods.size(); ++r) {
        const std::string& pod = gpu.pods[r];
        out << metric << "{gpu=\"" << gpu.index << "\",UUID=\"" << gpu.uuid
            << "\",pci_bus_id=\"00000000:0" << gpu.index << ":00.0\",device=\"nvidia" << gpu.index
            << "\",modelName=\"NVIDIA A100-SXM4-80GB\",Hostname=\"" << gpu.host << "\",container=\""
            << (pod.empty() ? "" : "main") << "\",namespace=\"" << (pod.empty() ? "" : "ml")
            << "\",pod=\"" << pod << "\"";
        if (gpu.pods.size() > 1) out << ",vgpu=\"" << r << "\"";
        out << "} " << Num(values[g]) << "\n";
      }
    }
  };
  out << "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n"
      << "# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n";
  series("DCGM_FI_DEV_GPU_UTIL", s.util_percent);
  out << "# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).\n"
      << "# TYPE DCGM_FI_DEV_FB_USED gauge\n";
  series("DCGM_FI_DEV_FB_USED", s.fb_mib);
  out << "# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).\n"
      << "# TYPE DCGM_FI_DEV_GPU_TEMP gauge\n"
      << "DCGM_FI_DEV_GPU_TEMP{gpu=\"0\",UUID=\"" << Layout()[0].uuid
      << "\",Hostname=\"node-1\",container=\"main\",namespace=\"ml\",pod=\"a\"} 41\n";
  return out.str();
}

struct Expected {
  double util = 0;  // 0..1
  double memory_bytes = 0;
  double gpus = 0;
};

std::map<std::string, Expected> Expect(const Step& s) {
  constexpr double kMiB = 1024.0 * 1024.0;
  const auto& u = s.util_percent;
  const auto& m = s.fb_mib;
  return {
      {"a", {u[0] / 100, m[0] * kMiB, 1}},
      {"b", {u[1] / 100 / 2, m[1] / 2 * kMiB, 0.5}},
      {"c", {u[1] / 100 / 2, m[1] / 2 * kMiB, 0.5}},
      {"d", {(u[2] + u[3]) / 100 / 2, (m[2] + m[3]) * kMiB, 2}},
  };
}

bool Matches(const std::vector<PodGpuUsage>& got, const std::map<std::string, Expected>& want,
             std::string* why) {
  std::ostringstream out;
  bool ok = got.size() == want.size();
  for (const PodGpuUsage& g : got) {
    out << g.ns << "/" << g.pod << " util=" << g.gpu_utilization << " mem=" << g.gpu_memory_bytes
        << " gpus=" << g.gpus << "; ";
    auto it = want.find(g.pod);
    if (g.ns != "ml" || it == want.end()) {
      ok = false;
      continue;
    }
    ok = ok && std::fabs(g.gpu_utilization - it->second.util) < 1e-12 &&
         std::fabs(g.gpu_memory_bytes - it->second.memory_bytes) < 1e-3 &&
         std::fabs(g.gpus - it->second.gpus) < 1e-12;
  }
  *why = out.str();
  return ok;
}

TEST(PrometheusDcgmIntegration, FetchReturnsTheServedDutyCyclesDividedPerPod) {
  const std::string binary = support::TestPrometheus::FindBinary();
  if (binary.empty()) {
    GTEST_SKIP() << "prometheus is not installed (Debian package `prometheus`; "
                    "hack/install-deps.sh installs it)";
  }

  // The replayed values: four pods of the GenTD26 excerpt, in file order.
  const std::string file = "tests/data/genai/pod_gpu_duty_cycle_excerpt.csv";
  auto trace = ParseUsageTraceCsv(support::ReadFileOrDie(support::SourcePath(file)), file);
  ASSERT_TRUE(trace.ok()) << trace.error().ToString();
  ASSERT_EQ(trace->pods.size(), 4u);
  std::vector<std::vector<double>> per_pod(4);
  for (const UsageTraceSample& s : trace->samples)
    per_pod[s.pod].push_back(s.value);
  std::vector<Step> steps;
  for (size_t i = 0; i < 95; i += 19) {
    Step s;
    for (size_t p = 0; p < 4; ++p)
      s.util_percent.push_back(per_pod[p][i]);
    s.util_percent.push_back(0);  // the unallocated GPU
    const double k = static_cast<double>(i);
    s.fb_mib = {2000 + k, 8000 + k, 3000 + k, 5000 + k, 0};
    steps.push_back(s);
  }

  std::mutex mu;
  size_t current = 0;
  auto exporter =
      net::HttpServer::Start({}, [&](const net::ServerRequest& r, net::ResponseWriter& w) {
        if (r.path != "/metrics") {
          w.Respond(404, "text/plain", "not found");
          return;
        }
        std::string body;
        {
          std::lock_guard<std::mutex> lock(mu);
          body = Exposition(steps[current]);
        }
        w.Respond(200, "text/plain; version=0.0.4", std::move(body));
      });
  ASSERT_TRUE(exporter.ok()) << exporter.error().ToString();

  auto prom =
      support::TestPrometheus::Start(binary, {"127.0.0.1:" + std::to_string((*exporter)->port())});
  ASSERT_TRUE(prom.ok()) << prom.error().ToString();

  PrometheusDcgmSource source({.url = (*prom)->url(), .selector = R"(job="dcgm")"});
  for (size_t i = 0; i < steps.size(); ++i) {
    {
      std::lock_guard<std::mutex> lock(mu);
      current = i;
    }
    const auto want = Expect(steps[i]);
    std::string why = "no answer";
    bool matched = false;
    // Bounded wait for the next scrape (every second) to reach the query.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!matched && std::chrono::steady_clock::now() < deadline) {
      auto got = source.Fetch();
      if (got.ok()) {
        matched = Matches(*got, want, &why);
      } else {
        why = got.error().ToString();
      }
      if (!matched) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ASSERT_TRUE(matched) << "step " << i << ": last answer: " << why << "\n" << (*prom)->LogTail();
  }

  // A selector Prometheus cannot parse: its error answer, not a crash.
  PrometheusDcgmSource bad({.url = (*prom)->url(), .selector = "job=~"});
  auto err = bad.Fetch();
  ASSERT_FALSE(err.ok());
  EXPECT_THAT(err.error().message(), HasSubstr("bad_data"));

  // Prometheus down: connection refused, naming the URL.
  const std::string url = (*prom)->url();
  (*prom)->Stop();
  auto down = source.Fetch();
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code(), StatusCode::kUnavailable);
  EXPECT_THAT(down.error().message(), HasSubstr(url + "/api/v1/query"));
  (*exporter)->Stop();
}

}  // namespace
}  // namespace gpu_autoscaler::cost
