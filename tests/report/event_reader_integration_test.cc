// The report's Event reader against the test API server: among many unrelated
// Events it reads exactly the ones the report shows, through field selectors,
// in pages.
#include "report/event_reader.h"

#include <algorithm>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/rest_client.h"
#include "support/api_server_fixture.h"

namespace gpu_autoscaler {
namespace {

using nlohmann::json;

json Event(const std::string& ns, const std::string& name, const std::string& kind,
           const std::string& object, const std::string& reason) {
  return {{"apiVersion", "v1"},
          {"kind", "Event"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"involvedObject", {{"kind", kind}, {"namespace", ns}, {"name", object}}},
          {"reason", reason},
          {"message", reason + " on " + object},
          {"type", "Normal"},
          {"count", 1},
          {"firstTimestamp", "2027-01-15T08:10:00Z"},
          {"lastTimestamp", "2027-01-15T08:10:00Z"}};
}

TEST(EventReaderIntegrationTest, ReadsOnlyShownEventsInPages) {
  auto server = testing::TestApiServer::Start();
  ASSERT_TRUE(server);
  if (server->is_real_cluster()) GTEST_SKIP() << "needs a cluster with only the test's Events";
  auto client = kube::RestClient::Create(server->config());
  ASSERT_TRUE(client.ok());
  const std::string ns = server->CreateTestNamespace("events");
  auto create = [&](const json& event) {
    auto created = (*client)->Create({kube::resources::kEvents, ns, "", ""}, event);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
  };
  // Names sort the pool Events first, so the pages of each selector are fixed:
  // 120 pool Events in pages of 50 -> 50, 50, 20.
  for (int i = 0; i < 120; ++i) {
    create(Event(ns, "a-pool-" + std::to_string(1000 + i), "GPUNodePool",
                 "pool-" + std::to_string(i % 3), i % 2 == 0 ? "ScaleUp" : "Terminate"));
  }
  create(Event(ns, "b-node-1", "Node", "gpu-1", "Interruption"));
  create(Event(ns, "b-node-2", "Node", "gpu-2", "InterruptionDrained"));
  create(Event(ns, "b-node-3", "Node", "gpu-2", "RebalanceRecommendation"));
  create(Event(ns, "c-pod-1", "Pod", "batch-1", "Preempted"));
  create(Event(ns, "c-pod-2", "Pod", "batch-2", "Preempted"));
  // What the report does not show: Pod Events, other Node Events, a pool's
  // reason on a Pod.
  for (int i = 0; i < 400; ++i) {
    create(Event(ns, "z-pod-" + std::to_string(1000 + i), "Pod", "web-" + std::to_string(i),
                 i % 2 == 0 ? "Scheduled" : "ScaleUp"));
  }
  for (int i = 0; i < 100; ++i)
    create(Event(ns, "z-node-" + std::to_string(1000 + i), "Node", "gpu-" + std::to_string(i),
                 "GpuNodeDiscovered"));
  if (HasFatalFailure()) return;

  report::EventReadStats stats;
  auto events = report::ReadShownEvents(**client, 50, &stats);
  ASSERT_TRUE(events.ok()) << events.error().ToString();
  std::map<std::string, int> by_reason;
  for (const report::EventInput& e : *events) {
    EXPECT_TRUE(e.kind == "GPUNodePool" || e.kind == "Node" ||
                (e.kind == "Pod" && e.reason == "Preempted"))
        << e.kind << "/" << e.name;
    ++by_reason[e.kind + " " + e.reason];
  }
  EXPECT_EQ(by_reason, (std::map<std::string, int>{{"GPUNodePool ScaleUp", 60},
                                                   {"GPUNodePool Terminate", 60},
                                                   {"Node Interruption", 1},
                                                   {"Node InterruptionDrained", 1},
                                                   {"Node RebalanceRecommendation", 1},
                                                   {"Pod Preempted", 2}}));
  EXPECT_EQ(stats.items, 125);
  // 3 pages of pool Events, one list per interruption reason (4), one for
  // the Preempted pods.
  EXPECT_EQ(stats.lists, 3 + 4 + 1);

  // One page per selector when the page size is 0.
  auto whole = report::ReadShownEvents(**client, 0, &stats);
  ASSERT_TRUE(whole.ok()) << whole.error().ToString();
  EXPECT_EQ(whole->size(), 125u);
  EXPECT_EQ(stats.lists, 6);
}

TEST(EventReaderIntegrationTest, AServerErrorIsReturned) {
  auto server = testing::TestApiServer::Start();
  ASSERT_TRUE(server);
  if (!server->supports_faults()) GTEST_SKIP() << "needs fault injection";
  auto client = kube::RestClient::Create(server->config());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(
      server->InjectError({.verb = "list", .resource = "events", .code = 403, .count = -1}).ok());
  auto events = report::ReadShownEvents(**client, 50);
  ASSERT_FALSE(events.ok());
  EXPECT_NE(events.error().message().find("listing events (involvedObject.kind=GPUNodePool)"),
            std::string::npos)
      << events.error().ToString();
}

}  // namespace
}  // namespace gpu_autoscaler
