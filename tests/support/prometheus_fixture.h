// File: tests/support/prometheus_fixture.h
//
// A real Prometheus server for one test: started on a free 127.0.0.1 port
// with its own temporary TSDB directory and a generated configuration that
// scrapes the given targets every second, and stopped (SIGTERM, then SIGKILL)
// with its directory removed when the object goes. The server gets SIGKILL if
// the test process dies first (PR_SET_PDEATHSIG), so nothing is left running.
//
// The binary is $GPA_PROMETHEUS, else /usr/bin/prometheus (Debian's
// `prometheus` package, see hack/install-deps.sh), else `prometheus` on $PATH.
// A system service that the package may have started is never used.
//
//   std::string binary = TestPrometheus::FindBinary();
//   if (binary.empty()) GTEST_SKIP() << "prometheus is not installed";
//   auto prom = TestPrometheus::Start(binary, {"127.0.0.1:9400"});
//   ASSERT_TRUE(prom.ok()) << prom.error().ToString();
//   std::string url = (*prom)->url();   // http://127.0.0.1:<port>
//   // Several jobs, as a cluster's ServiceMonitors name them:
//   auto jobs = TestPrometheus::Start(binary, {{.name = "gpa-webhook", .targets =
//   {"127.0.0.1:8443"},
//                                                .scheme = "https", .insecure_skip_verify =
//                                                true}});
//
// Thread-safety: not thread-safe; one test owns one server.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace gpu_autoscaler::testing {

// One scrape job of the generated configuration.
struct ScrapeJob {
  std::string name;
  std::vector<std::string> targets;             // host:port, scraped at /metrics every second
  std::map<std::string, std::string> labels{};  // added to every series (e.g. node)
  std::string scheme = "http";
  bool insecure_skip_verify = false;  // for a self-signed https target
  bool honor_labels = false;
};

class TestPrometheus {
 public:
  // "" when no prometheus binary is installed.
  static std::string FindBinary();
  // Starts the server and waits (bounded) until it reports ready.
  // `targets` are host:port pairs scraped at /metrics every second.
  static Result<std::unique_ptr<TestPrometheus>> Start(const std::string& binary,
                                                       const std::vector<std::string>& targets);
  // The same with named jobs.
  static Result<std::unique_ptr<TestPrometheus>> Start(const std::string& binary,
                                                       const std::vector<ScrapeJob>& jobs);
  ~TestPrometheus();
  TestPrometheus(const TestPrometheus&) = delete;
  TestPrometheus& operator=(const TestPrometheus&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  // Stops the server now (the destructor does it otherwise). Idempotent.
  void Stop();
  // The last lines of the server's log, for failure messages.
  std::string LogTail() const;

 private:
  TestPrometheus() = default;
  Status StartOnce(const std::string& binary, const std::vector<ScrapeJob>& jobs);

  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace gpu_autoscaler::testing
