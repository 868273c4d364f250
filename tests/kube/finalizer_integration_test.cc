// Finalizers against the test API server: the JSON Patch guards protect
// against stale reads, and cleanup runs before the object goes away.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/finalizer.h"
#include "kube/rest_client.h"
#include "support/api_server_fixture.h"

namespace gpu_autoscaler::kube {
namespace {

using json = nlohmann::json;
using testing::TestApiServer;

constexpr const char* kFinalizer = "gpu-autoscaler.io/cleanup";

class FinalizerIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    auto client = RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok()) << client.error().ToString();
    client_ = std::move(*client);
    ns_ = server_->CreateTestNamespace("finalizer");
    ref_ = ObjectRef{resources::kConfigMaps, ns_, "pool", ""};
    auto created = client_->Create(
        ObjectRef{resources::kConfigMaps, ns_, "", ""},
        json{{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata", {{"name", "pool"}, {"finalizers", json::array({"example.com/other"})}}},
             {"data", {{"size", "1"}}}});
    ASSERT_TRUE(created.ok()) << created.error().ToString();
  }

  // Even when a test fails: drop every finalizer, so the namespace the
  // fixture deletes does not stay Terminating on a real cluster.
  void TearDown() override {
    if (client_ && !ns_.empty()) {
      (void)client_->Patch(ref_, PatchType::kMerge, R"({"metadata":{"finalizers":null}})");
    }
  }

  json Fetch() {
    auto got = client_->Get(ref_);
    EXPECT_TRUE(got.ok()) << got.error().ToString();
    return got.ok() ? *got : json();
  }

  std::unique_ptr<TestApiServer> server_;
  std::unique_ptr<RestClient> client_;
  std::string ns_;
  ObjectRef ref_;
};

TEST_F(FinalizerIntegrationTest, AddApplyCleanupRemove) {
  int applied = 0, cleaned = 0;
  FinalizerCallbacks callbacks{.apply =
                                   [&](const json&) {
                                     ++applied;
                                     return Status::Ok();
                                   },
                               .cleanup =
                                   [&](const json& obj) {
                                     EXPECT_TRUE(obj["metadata"].contains("deletionTimestamp"));
                                     ++cleaned;
                                     return Status::Ok();
                                   }};
  // 1. No finalizer yet: it is added (after the existing one), nothing applied.
  auto outcome = ReconcileWithFinalizer(*client_, ref_, Fetch(), kFinalizer, callbacks);
  ASSERT_TRUE(outcome.ok()) << outcome.error().ToString();
  EXPECT_EQ(*outcome, FinalizerOutcome::kFinalizerAdded);
  EXPECT_EQ(Fetch()["metadata"]["finalizers"], json::array({"example.com/other", kFinalizer}));
  EXPECT_EQ(applied, 0);

  // 2. Finalizer present, not deleted: apply.
  outcome = ReconcileWithFinalizer(*client_, ref_, Fetch(), kFinalizer, callbacks);
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(*outcome, FinalizerOutcome::kApplied);
  EXPECT_EQ(applied, 1);

  // 3. Deleted: the finalizers hold the object; cleanup, then ours is removed.
  auto deleted = client_->Delete(ref_);
  ASSERT_TRUE(deleted.ok()) << deleted.error().ToString();
  json doomed = Fetch();
  ASSERT_TRUE(doomed["metadata"].contains("deletionTimestamp"));
  outcome = ReconcileWithFinalizer(*client_, ref_, doomed, kFinalizer, callbacks);
  ASSERT_TRUE(outcome.ok()) << outcome.error().ToString();
  EXPECT_EQ(*outcome, FinalizerOutcome::kCleanedUp);
  EXPECT_EQ(cleaned, 1);
  EXPECT_EQ(Fetch()["metadata"]["finalizers"], json::array({"example.com/other"}));

  // 4. Deleted without our finalizer: nothing to do.
  outcome = ReconcileWithFinalizer(*client_, ref_, Fetch(), kFinalizer, callbacks);
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(*outcome, FinalizerOutcome::kNothing);
  EXPECT_EQ(cleaned, 1);
}

TEST_F(FinalizerIntegrationTest, StaleObjectIsRejectedByTestGuard) {
  const json stale = Fetch();
  // Someone else changes the object after we read it.
  auto changed = client_->Patch(ref_, PatchType::kMerge, R"({"data":{"size":"2"}})");
  ASSERT_TRUE(changed.ok()) << changed.error().ToString();

  auto outcome = ReconcileWithFinalizer(*client_, ref_, stale, kFinalizer, {});
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.error().code(), StatusCode::kAborted) << outcome.error().ToString();
  json now = Fetch();
  EXPECT_EQ(now["metadata"]["finalizers"], json::array({"example.com/other"}));
  EXPECT_EQ(now["data"]["size"], "2");

  // With the fresh object it succeeds.
  outcome = ReconcileWithFinalizer(*client_, ref_, now, kFinalizer, {});
  ASSERT_TRUE(outcome.ok()) << outcome.error().ToString();
  EXPECT_EQ(*outcome, FinalizerOutcome::kFinalizerAdded);
}

TEST_F(FinalizerIntegrationTest, StaleIndexIsRejectedOnRemove) {
  auto outcome = ReconcileWithFinalizer(*client_, ref_, Fetch(), kFinalizer, {});
  ASSERT_TRUE(outcome.ok()) << outcome.error().ToString();
  ASSERT_TRUE(client_->Delete(ref_).ok());
  const json stale = Fetch();  // finalizers: [other, ours]
  // The other finalizer goes first, shifting ours to index 0.
  auto removed = client_->Patch(ref_, PatchType::kJson,
                                R"([{"op":"remove","path":"/metadata/finalizers/0"}])");
  ASSERT_TRUE(removed.ok()) << removed.error().ToString();

  int cleaned = 0;
  outcome = ReconcileWithFinalizer(*client_, ref_, stale, kFinalizer, {.cleanup = [&](const json&) {
    ++cleaned;
    return Status::Ok();
  }});
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.error().code(), StatusCode::kAborted);
  EXPECT_EQ(Fetch()["metadata"]["finalizers"], json::array({kFinalizer}));

  // Fresh read: removing the last finalizer lets the server delete the object.
  outcome =
      ReconcileWithFinalizer(*client_, ref_, Fetch(), kFinalizer, {.cleanup = [&](const json&) {
        ++cleaned;
        return Status::Ok();
      }});
  ASSERT_TRUE(outcome.ok()) << outcome.error().ToString();
  EXPECT_EQ(*outcome, FinalizerOutcome::kCleanedUp);
  auto gone = client_->Get(ref_);
  ASSERT_FALSE(gone.ok());
  EXPECT_TRUE(IsNotFound(gone.error()));
}

TEST_F(FinalizerIntegrationTest, CleanupErrorKeepsFinalizer) {
  ASSERT_TRUE(ReconcileWithFinalizer(*client_, ref_, Fetch(), kFinalizer, {}).ok());
  ASSERT_TRUE(client_->Delete(ref_).ok());
  auto outcome = ReconcileWithFinalizer(
      *client_, ref_, Fetch(), kFinalizer,
      {.cleanup = [](const json&) { return UnavailableError("GPU agent unreachable"); }});
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.error().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Fetch()["metadata"]["finalizers"], json::array({"example.com/other", kFinalizer}));
}

}  // namespace
}  // namespace gpu_autoscaler::kube
