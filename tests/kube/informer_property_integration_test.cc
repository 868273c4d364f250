// Property: whatever happens between them (random creates, updates and
// deletes across namespaces, dropped watches, compacted history forcing 410
// relists, a server restart), informers end up holding exactly the server's
// state, and their handlers saw each object added once and deleted once.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kube/object_codec.h"
#include "kube/rest_client.h"
#include "kube/shared_informer.h"
#include "support/api_server_fixture.h"

namespace gpu_autoscaler::kube {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::TestApiServer;

constexpr int kOperations = 4000;  // in total, spread over the namespaces
constexpr int kNamespaces = 4;

// Tracks handler calls per key and flags any call that contradicts the
// events before it (an add for a key already present, an update or delete for
// a key never added).
class EventLedger {
 public:
  template <typename T>
  EventHandler<T> Handler() {
    return {.on_add = [this](const auto& o) { Add(ObjectKeyOf(*o)); },
            .on_update = [this](const auto&, const auto& o) { Update(ObjectKeyOf(*o)); },
            .on_delete = [this](const auto& o, bool) { Delete(ObjectKeyOf(*o)); }};
  }
  void Add(const std::string& key) {
    std::lock_guard<std::mutex> l(mu_);
    ++adds_;
    if (!live_.insert(key).second) violations_.push_back("duplicate add " + key);
  }
  void Update(const std::string& key) {
    std::lock_guard<std::mutex> l(mu_);
    if (live_.count(key) == 0) violations_.push_back("update of unknown " + key);
  }
  void Delete(const std::string& key) {
    std::lock_guard<std::mutex> l(mu_);
    ++deletes_;
    if (live_.erase(key) == 0) violations_.push_back("delete of unknown " + key);
  }
  int64_t balance() {
    std::lock_guard<std::mutex> l(mu_);
    return adds_ - deletes_;
  }
  std::set<std::string> live() {
    std::lock_guard<std::mutex> l(mu_);
    return live_;
  }
  std::vector<std::string> violations() {
    std::lock_guard<std::mutex> l(mu_);
    return violations_;
  }

 private:
  std::mutex mu_;
  std::set<std::string> live_;
  int64_t adds_ = 0, deletes_ = 0;
  std::vector<std::string> violations_;
};

// key -> resourceVersion
using Snapshot = std::map<std::string, std::string>;

template <typename T>
Snapshot StoreSnapshot(const Store<T>& store) {
  Snapshot out;
  store.ForEach([&](const T& o) { out[ObjectKeyOf(o)] = std::string(o.resource_version()); });
  return out;
}

class PropertyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    if (!server_->supports_faults()) GTEST_SKIP() << "needs fault injection";
    ClientConfig cfg = server_->config();
    cfg.qps = 5000;  // the default limiter (50/s) would dominate the run time
    cfg.burst = 5000;
    auto client = RestClient::Create(cfg);
    ASSERT_TRUE(client.ok()) << client.error().ToString();
    client_ = std::move(client).value();
    for (int i = 0; i < kNamespaces; ++i)
      namespaces_.push_back(server_->CreateTestNamespace("prop"));
  }

  // The server's pods in our namespaces, optionally only those with gpu=yes.
  Result<Snapshot> ServerSnapshot(const std::string& label_selector) {
    Snapshot out;
    for (const std::string& ns : namespaces_) {
      ListOptions opts;
      opts.label_selector = label_selector;
      auto list = client_->List({resources::kPods, ns, ""}, opts);
      if (!list.ok()) return std::move(list).error();
      for (const json& item : (*list)["items"]) {
        out[ns + "/" + item["metadata"]["name"].get<std::string>()] =
            item["metadata"]["resourceVersion"].get<std::string>();
      }
    }
    return out;
  }

  // Keeps only our namespaces (the server may hold others).
  Snapshot Ours(const Snapshot& s) {
    Snapshot out;
    for (const auto& [key, rv] : s) {
      for (const std::string& ns : namespaces_) {
        if (key.rfind(ns + "/", 0) == 0) out[key] = rv;
      }
    }
    return out;
  }

  // Retries a request through restarts and injected trouble.
  template <typename F>
  void Retry(F op) {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (op()) return;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "request kept failing";
  }

  std::unique_ptr<TestApiServer> server_;
  std::unique_ptr<RestClient> client_;
  std::vector<std::string> namespaces_;
};

TEST_F(PropertyTest, InformersConvergeToServerStateThroughFaults) {
  InformerOptions all;
  all.backoff.initial = 10ms;
  all.backoff.max = 200ms;
  all.page_size = 50;
  InformerOptions gpu_only = all;
  gpu_only.label_selector = "gpu=yes";

  InformerFactory factory(client_.get(), all);
  auto pods = factory.Informer(resources::kPods, PodViewCodec());
  auto gpu_pods = factory.Informer(resources::kPods, GenericObjectCodec(), &gpu_only);
  ASSERT_TRUE(pods && gpu_pods);
  EventLedger pod_ledger, gpu_ledger;
  pods->AddEventHandler(pod_ledger.Handler<PodView>());
  gpu_pods->AddEventHandler(gpu_ledger.Handler<GenericObject>());
  factory.Start();
  ASSERT_TRUE(factory.WaitForSync({}, 60s));

  // One writer thread per namespace (seeded, so each namespace's sequence is
  // reproducible); this thread injects faults as the operations progress.
  std::atomic<int> done{0};
  std::vector<std::set<std::string>> existing(kNamespaces);
  std::vector<std::thread> writers;
  for (int n = 0; n < kNamespaces; ++n) {
    writers.emplace_back([&, n] {
      std::mt19937 rng(20240611 + n);
      const std::string& ns = namespaces_[n];
      for (int op = 0; op < kOperations / kNamespaces; ++op, ++done) {
        const int dice = static_cast<int>(rng() % 100);
        if (existing[n].empty() || dice < 45) {
          std::string name = "pod-" + std::to_string(op);
          json labels = {{"gpu", rng() % 2 ? "yes" : "no"},
                         {"team", "t" + std::to_string(rng() % 4)}};
          json pod = {{"apiVersion", "v1"},
                      {"kind", "Pod"},
                      {"metadata", {{"name", name}, {"labels", labels}}},
                      {"spec", {{"containers", {{{"name", "c"}, {"image", "img:1"}}}}}}};
          Retry([&] {
            auto r = client_->Create({resources::kPods, ns, ""}, pod);
            return r.ok() || IsAlreadyExists(r.error());  // a retried create may have landed
          });
          existing[n].insert(name);
        } else if (dice < 75) {
          auto it = existing[n].begin();
          std::advance(it, rng() % existing[n].size());
          json labels = {{"gpu", rng() % 2 ? "yes" : "no"}, {"rev", std::to_string(op)}};
          std::string patch = json{{"metadata", {{"labels", labels}}}}.dump();
          Retry([&] {
            return client_->Patch({resources::kPods, ns, *it}, PatchType::kMerge, patch).ok();
          });
        } else {
          auto it = existing[n].begin();
          std::advance(it, rng() % existing[n].size());
          DeleteOptions now;
          now.grace_period_seconds = 0;
          Retry([&] {
            auto r = client_->Delete({resources::kPods, ns, *it}, now);
            return r.ok() || IsNotFound(r.error());
          });
          existing[n].erase(it);
        }
      }
    });
  }
  auto wait_for_ops = [&](int n) {
    while (done.load() < n)
      std::this_thread::sleep_for(1ms);
  };
  wait_for_ops(kOperations / 4);
  EXPECT_TRUE(server_->DropWatches().ok());
  wait_for_ops(kOperations / 2);
  EXPECT_TRUE(server_->Compact().ok());
  EXPECT_TRUE(server_->DropWatches().ok());
  wait_for_ops(3 * kOperations / 4);
  EXPECT_TRUE(server_->Restart(300ms).ok());
  for (auto& w : writers)
    w.join();

  Snapshot want_all, want_gpu;
  Retry([&] {
    auto a = ServerSnapshot("");
    auto g = ServerSnapshot("gpu=yes");
    if (!a.ok() || !g.ok()) return false;
    want_all = *a;
    want_gpu = *g;
    return true;
  });
  size_t expected_pods = 0;
  for (const auto& names : existing)
    expected_pods += names.size();
  ASSERT_EQ(want_all.size(), expected_pods);

  // Converged: same keys at the same resourceVersions, nothing extra.
  bool converged = false;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!converged && std::chrono::steady_clock::now() < deadline) {
    converged = Ours(StoreSnapshot(pods->store())) == want_all &&
                Ours(StoreSnapshot(gpu_pods->store())) == want_gpu &&
                pods->stats().queue_depth == 0 && gpu_pods->stats().queue_depth == 0;
    if (!converged) std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(Ours(StoreSnapshot(pods->store())), want_all);
  EXPECT_EQ(Ours(StoreSnapshot(gpu_pods->store())), want_gpu);

  // Handler accounting: every cached object was added exactly once and not
  // deleted since; nothing was reported that contradicts the sequence.
  EXPECT_EQ(pod_ledger.violations(), std::vector<std::string>{});
  EXPECT_EQ(gpu_ledger.violations(), std::vector<std::string>{});
  EXPECT_EQ(pod_ledger.balance(), static_cast<int64_t>(pods->store().size()));
  EXPECT_EQ(gpu_ledger.balance(), static_cast<int64_t>(gpu_pods->store().size()));
  std::set<std::string> cached;
  for (const auto& [key, rv] : StoreSnapshot(pods->store()))
    cached.insert(key);
  EXPECT_EQ(pod_ledger.live(), cached);

  auto stats = pods->stats();
  EXPECT_GE(stats.reflector.watches, 3);  // the faults forced new watches
  EXPECT_EQ(stats.adds - stats.deletes, static_cast<int64_t>(pods->store().size()));
  RecordProperty("relists", static_cast<int>(stats.reflector.relists));
  RecordProperty("tombstones", static_cast<int>(stats.tombstones));
}

}  // namespace
}  // namespace gpu_autoscaler::kube
