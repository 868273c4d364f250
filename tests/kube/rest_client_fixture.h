// File: tests/kube/rest_client_fixture.h
//
// The RestClient unit tests' fixture, shared by rest_client_test.cc (verbs,
// retries, watches) and rest_client_evict_test.cc (Evict and its version
// discovery): a client on a FakeTransport whose clock never sleeps.
//
// Thread-safety: AutoAdvanceClock is safe to share between threads; the
// fixture is used from the test's thread.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "kube/rest_client.h"
#include "support/fake_transport.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::kube::rest_client_test {

using nlohmann::json;
using testing::FakeTransport;
using namespace std::chrono_literals;

inline constexpr char kServer[] = "https://10.0.0.1:6443";

inline ClientConfig TestConfig() {
  ClientConfig cfg;
  cfg.server = kServer;
  cfg.bearer_token = "secret-token";
  cfg.qps = 0;  // unlimited unless a test sets it
  return cfg;
}

inline std::string GoldenBody(const std::string& file) {
  json golden =
      json::parse(testing::ReadFileOrDie(testing::SourcePath("tests/golden/kube/" + file)));
  return golden["response"]["body"].dump();
}

inline std::string HeaderOf(const HttpRequest& req, std::string_view name) {
  for (const auto& [k, v] : req.headers) {
    if (k == name) return v;
  }
  return "";
}

// A clock whose waits return at once, jumping time to the deadline and
// recording how long each wait asked for: retry and limiter delays become
// exact, deterministic values, with no threads or real sleeping.
class AutoAdvanceClock final : public Clock {
 public:
  TimePoint Now() const override {
    std::lock_guard<std::mutex> l(mu_);
    return now_;
  }
  WallTime WallNow() const override { return WallTime(Now().time_since_epoch()); }
  void WaitUntil(std::unique_lock<std::mutex>&, std::condition_variable&,
                 TimePoint deadline) override {
    std::lock_guard<std::mutex> l(mu_);
    if (deadline <= now_) return;
    waits_.push_back(deadline - now_);
    now_ = deadline;
  }
  std::vector<Duration> waits() const {
    std::lock_guard<std::mutex> l(mu_);
    return waits_;
  }

 private:
  mutable std::mutex mu_;
  TimePoint now_{};
  std::vector<Duration> waits_;
};

class RestClientTest : public ::testing::Test {
 protected:
  void SetUp() override { Reset(TestConfig()); }

  void Reset(const ClientConfig& cfg, RestClientOptions opts = {}) {
    opts.clock = &clock_;
    auto transport = std::make_unique<FakeTransport>();
    fake_ = transport.get();
    client_ = RestClient::WithTransport(cfg, std::move(transport), opts);
  }

  AutoAdvanceClock clock_;
  FakeTransport* fake_ = nullptr;
  std::unique_ptr<RestClient> client_;
};

}  // namespace gpu_autoscaler::kube::rest_client_test
