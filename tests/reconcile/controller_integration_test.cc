// A real controller (informer + workqueue + workers) against the test API
// server: objects created over HTTP get reconciled, transient errors are
// retried with backoff (on a fake clock), terminal errors are not retried.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "kube/generic_object.h"
#include "kube/object_codec.h"
#include "kube/rest_client.h"
#include "kube/shared_informer.h"
#include "reconcile/controller.h"
#include "reconcile/informer_source.h"
#include "support/api_server_fixture.h"

namespace gpu_autoscaler::reconcile {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using testing::TestApiServer;

constexpr const char* kObserved = "gpu-autoscaler.io/observed";

bool WaitFor(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(2ms);
  }
  return done();
}

// Copies data.value into an annotation. "flaky-*" fails twice first,
// "bad-*" fails terminally.
class ObserveReconciler final : public Reconciler {
 public:
  ObserveReconciler(kube::RestClient& client, const kube::Store<kube::GenericObject>& cache)
      : client_(client), cache_(cache) {}

  ReconcileResult Reconcile(const Request& req, std::stop_token) override {
    auto counter = calls_.find(req.Key());
    const int call = counter == calls_.end() ? 0 : ++counter->second;
    auto obj = cache_.Get(req.ns, req.name);
    if (!obj) return Done{};
    if (req.name.rfind("bad-", 0) == 0) return TerminalError{"invalid spec"};
    if (req.name.rfind("flaky-", 0) == 0 && call <= 2) return TransientError{"not yet"};
    auto parsed = obj->Parse();
    if (!parsed.ok()) return TransientError{parsed.error().ToString()};
    const std::string value = parsed->value("data", json::object()).value("value", "");
    const json annotations = parsed->at("metadata").value("annotations", json::object());
    if (annotations.value(kObserved, "") == value) return Done{};
    json patch = {{"metadata", {{"annotations", {{kObserved, value}}}}}};
    auto patched = client_.Patch({kube::resources::kConfigMaps, req.ns, req.name, ""},
                                 kube::PatchType::kMerge, patch.dump());
    if (!patched.ok()) return TransientError{patched.error().ToString()};
    return Done{};
  }

  // Registers a key to count; call before the controller runs (the map is
  // not mutated once workers read it).
  void Expect(const std::string& key) { calls_[key] = 0; }
  int Calls(const std::string& key) { return calls_.at(key).load(); }

 private:
  kube::RestClient& client_;
  const kube::Store<kube::GenericObject>& cache_;
  std::map<std::string, std::atomic<int>> calls_;
};

class ControllerIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok()) << client.error().ToString();
    client_ = std::move(*client);
    ns_ = server_->CreateTestNamespace("controller");
  }

  void CreateConfigMap(const std::string& name, const std::string& value) {
    auto r = client_->Create({kube::resources::kConfigMaps, ns_, "", ""},
                             json{{"apiVersion", "v1"},
                                  {"kind", "ConfigMap"},
                                  {"metadata", {{"name", name}}},
                                  {"data", {{"value", value}}}});
    ASSERT_TRUE(r.ok()) << r.error().ToString();
  }

  std::string Observed(const std::string& name) {
    auto got = client_->Get({kube::resources::kConfigMaps, ns_, name, ""});
    if (!got.ok()) return "<" + got.error().ToString() + ">";
    return got->at("metadata").value("annotations", json::object()).value(kObserved, "");
  }

  std::unique_ptr<TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::string ns_;
};

TEST_F(ControllerIntegrationTest, ReconcilesRetriesAndGivesUp) {
  kube::InformerOptions options;
  options.ns = ns_;
  kube::InformerFactory factory(client_.get(), options);
  auto configmaps = factory.Informer(kube::resources::kConfigMaps, kube::GenericObjectCodec());
  ASSERT_NE(configmaps, nullptr);

  ObserveReconciler reconciler(*client_, configmaps->store());
  for (const char* key : {"plain", "flaky-1", "bad-1", "after"})
    reconciler.Expect(ns_ + "/" + key);
  FakeClock clock;  // drives the queue's backoff only
  ControllerOptions copts;
  copts.name = "observe";
  copts.workers = 2;
  copts.clock = &clock;
  copts.rate_limiter = std::make_unique<kube::ItemExponentialFailureRateLimiter>(1s, 60s);
  Controller controller(std::move(copts), reconciler);
  InformerSource<kube::GenericObject> source(configmaps);
  controller.For(source);

  factory.Start();
  std::jthread run([&](std::stop_token stop) { EXPECT_TRUE(controller.Run(stop).ok()); });

  // Created objects are reconciled; updates are reconciled again.
  CreateConfigMap("plain", "1");
  ASSERT_TRUE(WaitFor([&] { return Observed("plain") == "1"; })) << Observed("plain");
  auto updated = client_->Patch({kube::resources::kConfigMaps, ns_, "plain", ""},
                                kube::PatchType::kMerge, R"({"data":{"value":"2"}})");
  ASSERT_TRUE(updated.ok()) << updated.error().ToString();
  ASSERT_TRUE(WaitFor([&] { return Observed("plain") == "2"; })) << Observed("plain");

  // Transient errors: retried after 1s, then 2s of (fake) backoff.
  const std::string flaky = ns_ + "/flaky-1";
  CreateConfigMap("flaky-1", "x");
  ASSERT_TRUE(WaitFor([&] { return reconciler.Calls(flaky) == 1; }));
  // NumRequeues counts before AddAfter reads the clock: step only once the
  // item waits, or the step lands before its deadline is set.
  ASSERT_TRUE(WaitFor([&] {
    return controller.queue().NumRequeues(flaky) == 1 && controller.queue().NumWaiting() == 1;
  }));
  EXPECT_EQ(Observed("flaky-1"), "");
  clock.Step(1s);
  ASSERT_TRUE(WaitFor([&] { return reconciler.Calls(flaky) == 2; }));
  ASSERT_TRUE(WaitFor([&] {
    return controller.queue().NumRequeues(flaky) == 2 && controller.queue().NumWaiting() == 1;
  }));
  clock.Step(1s);  // 1s into a 2s backoff: not yet
  clock.Step(1s);
  ASSERT_TRUE(WaitFor([&] { return Observed("flaky-1") == "x"; }));
  ASSERT_TRUE(WaitFor([&] { return controller.queue().NumRequeues(flaky) == 0; }));

  // Terminal errors are not retried, however long we wait.
  const std::string bad = ns_ + "/bad-1";
  CreateConfigMap("bad-1", "y");
  ASSERT_TRUE(WaitFor([&] { return reconciler.Calls(bad) == 1; }));
  clock.Step(1h);
  CreateConfigMap("after", "z");  // a later object is processed...
  ASSERT_TRUE(WaitFor([&] { return Observed("after") == "z"; }));
  EXPECT_EQ(reconciler.Calls(bad), 1);  // ...while the bad one stays put
  EXPECT_EQ(controller.queue().NumWaiting(), 0u);

  run.request_stop();
  run.join();
  factory.Stop();
}

}  // namespace
}  // namespace gpu_autoscaler::reconcile
