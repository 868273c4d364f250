// --event-ttl on the API server program: an Event created over HTTP is
// deleted once its time to live passes, a watcher sees DELETED, and other
// kinds stay. The wait is a watch with a generous server-side timeout.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/rest_client.h"
#include "support/api_server_fixture.h"

namespace gpu_autoscaler {
namespace {

using nlohmann::json;

TEST(EventTtlIntegrationTest, AnEventVanishesAfterItsTimeToLive) {
  auto server = testing::TestApiServer::Start({.extra_args = {"--event-ttl=1s"}});
  ASSERT_TRUE(server) << "api server did not start";
  if (server->is_real_cluster()) GTEST_SKIP() << "a real cluster's --event-ttl is its own";
  auto client = kube::RestClient::Create(server->config());
  ASSERT_TRUE(client.ok());
  const std::string ns = server->CreateTestNamespace("event-ttl");
  const json event = {{"apiVersion", "v1"},
                      {"kind", "Event"},
                      {"metadata", {{"name", "web.scheduled"}, {"namespace", ns}}},
                      {"involvedObject", {{"kind", "Pod"}, {"namespace", ns}, {"name", "web"}}},
                      {"reason", "Scheduled"},
                      {"message", "Successfully assigned web to gpu-1"},
                      {"type", "Normal"},
                      {"count", 1},
                      {"firstTimestamp", "2027-01-15T08:10:00Z"},
                      {"lastTimestamp", "2027-01-15T08:10:00Z"}};
  const json config_map = {{"apiVersion", "v1"},
                           {"kind", "ConfigMap"},
                           {"metadata", {{"name", "kept"}, {"namespace", ns}}},
                           {"data", {{"k", "v"}}}};
  ASSERT_TRUE((*client)->Create({kube::resources::kConfigMaps, ns}, config_map).ok());
  auto created = (*client)->Create({kube::resources::kEvents, ns}, event);
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  const std::string created_rv = (*created)["metadata"]["resourceVersion"];

  // Watch from the creation until the DELETED arrives (the server ends the
  // watch after 60 s if it never does).
  json deleted;
  auto watched = (*client)->Watch({kube::resources::kEvents, ns},
                                  {.resource_version = created_rv, .timeout_seconds = 60},
                                  [&](kube::WatchEvent&& e) {
                                    if (e.type != kube::WatchEventType::kDeleted) return true;
                                    deleted = json::parse(e.object_json);
                                    return false;
                                  });
  ASSERT_TRUE(watched.ok()) << watched.error().ToString();
  ASSERT_TRUE(deleted.is_object()) << "no DELETED event within the watch's 60 s";
  EXPECT_EQ(deleted["kind"], "Event");
  EXPECT_EQ(deleted["metadata"]["name"], "web.scheduled");
  EXPECT_EQ(deleted["reason"], "Scheduled");
  EXPECT_GT(std::stoull(deleted["metadata"]["resourceVersion"].get<std::string>()),
            std::stoull(created_rv));

  auto get = (*client)->Get({kube::resources::kEvents, ns, "web.scheduled"});
  ASSERT_FALSE(get.ok());
  EXPECT_EQ(get.error().code(), 404);
  auto list = (*client)->List({kube::resources::kEvents, ns});
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE((*list)["items"].empty());
  EXPECT_TRUE((*client)->Get({kube::resources::kConfigMaps, ns, "kept"}).ok());
}

}  // namespace
}  // namespace gpu_autoscaler
