#include "kube/event_recorder.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "kube/meta_time.h"

namespace gpu_autoscaler::kube {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

class FakeSink final : public EventSink {
 public:
  struct Call {
    std::string verb;  // "create" or "patch"
    std::string ns;
    std::string name;
    json body;
  };
  Result<std::monostate> Create(const std::string& ns, const json& event) override {
    while (block.load())
      std::this_thread::sleep_for(100us);
    std::lock_guard<std::mutex> l(mu);
    calls.push_back({"create", ns, event["metadata"]["name"], event});
    if (fail_creates) return Error(Error::Kind::kApi, 500, "InternalError", "boom");
    return std::monostate();
  }
  Result<std::monostate> Patch(const std::string& ns, const std::string& name,
                               const json& patch) override {
    std::lock_guard<std::mutex> l(mu);
    calls.push_back({"patch", ns, name, patch});
    if (patch_not_found) return Error(Error::Kind::kApi, 404, "NotFound", "gone");
    return std::monostate();
  }
  std::vector<Call> Calls() {
    std::lock_guard<std::mutex> l(mu);
    return calls;
  }

  std::mutex mu;
  std::vector<Call> calls;
  std::atomic<bool> block{false};
  bool fail_creates = false;
  bool patch_not_found = false;
};

EventObject Node(const std::string& name) {
  return {"v1", "Node", "", name, "uid-" + name};
}
EventObject Pod(const std::string& name) {
  return {"v1", "Pod", "ml", name, "uid-" + name};
}

TEST(EventRecorderTest, CreatesEventWithAllFields) {
  FakeClock clock;
  FakeSink sink;
  EventRecorder recorder(sink, {.component = "gpu-autoscaler", .clock = &clock});
  recorder.Record(Pod("web-1"), EventType::kWarning, "GpuLost", "2 of 8 GPUs disappeared");
  ASSERT_TRUE(recorder.Flush(30s));
  auto calls = sink.Calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].verb, "create");
  EXPECT_EQ(calls[0].ns, "ml");
  const json& e = calls[0].body;
  EXPECT_EQ(e["kind"], "Event");
  EXPECT_EQ(e["metadata"]["namespace"], "ml");
  EXPECT_EQ(e["metadata"]["name"].get<std::string>().rfind("web-1.", 0), 0u);
  EXPECT_EQ(e["involvedObject"], json::parse(R"({"apiVersion":"v1","kind":"Pod","name":"web-1",
                                                 "namespace":"ml","uid":"uid-web-1"})"));
  EXPECT_EQ(e["reason"], "GpuLost");
  EXPECT_EQ(e["message"], "2 of 8 GPUs disappeared");
  EXPECT_EQ(e["type"], "Warning");
  EXPECT_EQ(e["source"]["component"], "gpu-autoscaler");
  EXPECT_EQ(e["count"], 1);
  EXPECT_EQ(e["firstTimestamp"], FormatTime(clock.WallNow()));
  EXPECT_EQ(e["lastTimestamp"], e["firstTimestamp"]);
  EXPECT_EQ(recorder.stats().created, 1);
}

TEST(EventRecorderTest, ClusterScopedObjectsGoToDefaultNamespace) {
  FakeClock clock;
  FakeSink sink;
  EventRecorder recorder(sink, {.clock = &clock});
  recorder.Record(Node("gpu-1"), EventType::kNormal, "Registered", "ok");
  ASSERT_TRUE(recorder.Flush(30s));
  auto calls = sink.Calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].ns, "default");
  EXPECT_FALSE(calls[0].body["involvedObject"].contains("namespace"));
}

TEST(EventRecorderTest, AggregatesRepeatsWithinWindow) {
  FakeClock clock;
  FakeSink sink;
  EventRecorder recorder(sink, {.clock = &clock});
  recorder.Record(Pod("a"), EventType::kNormal, "Scaled", "to 3");
  ASSERT_TRUE(recorder.Flush(30s));
  clock.Step(9min);
  recorder.Record(Pod("a"), EventType::kNormal, "Scaled", "to 3");
  ASSERT_TRUE(recorder.Flush(30s));
  clock.Step(1min);
  recorder.Record(Pod("a"), EventType::kNormal, "Scaled", "to 3");
  ASSERT_TRUE(recorder.Flush(30s));
  auto calls = sink.Calls();
  ASSERT_EQ(calls.size(), 3u);
  const std::string name = calls[0].name;
  EXPECT_EQ(calls[1].verb, "patch");
  EXPECT_EQ(calls[1].name, name);
  EXPECT_EQ(calls[1].ns, "ml");
  EXPECT_EQ(calls[1].body["count"], 2);
  EXPECT_EQ(calls[1].body["lastTimestamp"], FormatTime(clock.WallNow() - 1min));
  EXPECT_EQ(calls[2].body["count"], 3);
  // Different message or reason: a new Event.
  recorder.Record(Pod("a"), EventType::kNormal, "Scaled", "to 4");
  // Silent for more than the window: a new Event too.
  ASSERT_TRUE(recorder.Flush(30s));
  clock.Step(11min);
  recorder.Record(Pod("a"), EventType::kNormal, "Scaled", "to 3");
  ASSERT_TRUE(recorder.Flush(30s));
  calls = sink.Calls();
  ASSERT_EQ(calls.size(), 5u);
  EXPECT_EQ(calls[3].verb, "create");
  EXPECT_EQ(calls[4].verb, "create");
  EXPECT_NE(calls[4].name, name);
  EXPECT_EQ(recorder.stats().patched, 2);
  EXPECT_EQ(recorder.stats().created, 3);
}

TEST(EventRecorderTest, PatchOfExpiredEventFallsBackToCreate) {
  FakeClock clock;
  FakeSink sink;
  EventRecorder recorder(sink, {.clock = &clock});
  recorder.Record(Pod("a"), EventType::kNormal, "R", "m");
  ASSERT_TRUE(recorder.Flush(30s));
  sink.patch_not_found = true;
  recorder.Record(Pod("a"), EventType::kNormal, "R", "m");
  ASSERT_TRUE(recorder.Flush(30s));
  auto calls = sink.Calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[1].verb, "patch");
  EXPECT_EQ(calls[2].verb, "create");
  EXPECT_EQ(calls[2].body["count"], 1);
}

TEST(EventRecorderTest, SpamFilterLimitsPerObject) {
  FakeClock clock;
  FakeSink sink;
  EventRecorder recorder(sink, {.clock = &clock});
  for (int i = 0; i < 30; ++i) {
    recorder.Record(Pod("noisy"), EventType::kWarning, "Flap", "flap " + std::to_string(i));
  }
  recorder.Record(Pod("quiet"), EventType::kNormal, "Hello", "once");
  ASSERT_TRUE(recorder.Flush(30s));
  EXPECT_EQ(recorder.stats().created, 26);  // 25 burst + the other object
  EXPECT_EQ(recorder.stats().dropped_spam, 5);
  // One token per 5 minutes.
  clock.Step(4min);
  recorder.Record(Pod("noisy"), EventType::kWarning, "Flap", "later");
  ASSERT_TRUE(recorder.Flush(30s));
  EXPECT_EQ(recorder.stats().dropped_spam, 6);
  clock.Step(1min);
  recorder.Record(Pod("noisy"), EventType::kWarning, "Flap", "later");
  ASSERT_TRUE(recorder.Flush(30s));
  EXPECT_EQ(recorder.stats().created, 27);
}

TEST(EventRecorderTest, RecordNeverBlocksAndDropsWhenFull) {
  FakeClock clock;
  FakeSink sink;
  sink.block = true;  // the API server hangs
  EventRecorder recorder(sink, {.clock = &clock, .queue_capacity = 3});
  for (int i = 0; i < 10; ++i) {
    recorder.Record(Pod("p" + std::to_string(i)), EventType::kNormal, "R", "m");
  }
  // One is in flight, three queued, the rest dropped; we got here without blocking.
  const auto dropped = recorder.stats().dropped_queue_full;
  EXPECT_GE(dropped, 6);
  EXPECT_LE(dropped, 7);
  sink.block = false;
  ASSERT_TRUE(recorder.Flush(30s));
  EXPECT_EQ(recorder.stats().created + dropped, 10);
}

TEST(EventRecorderTest, CountsFailures) {
  FakeClock clock;
  FakeSink sink;
  sink.fail_creates = true;
  EventRecorder recorder(sink, {.clock = &clock});
  recorder.Record(Pod("a"), EventType::kNormal, "R", "m");
  ASSERT_TRUE(recorder.Flush(30s));
  EXPECT_EQ(recorder.stats().failed, 1);
  EXPECT_EQ(recorder.stats().created, 0);
}

TEST(EventRecorderTest, ExportsOutcomesAsPrometheusCounters) {
  FakeClock clock;
  FakeSink sink;
  prometheus::Registry registry;
  EventRecorder recorder(sink, {.clock = &clock, .metrics = &registry});
  recorder.Record(Pod("a"), EventType::kNormal, "Scaled", "to 3");
  ASSERT_TRUE(recorder.Flush(30s));
  recorder.Record(Pod("a"), EventType::kNormal, "Scaled", "to 3");
  ASSERT_TRUE(recorder.Flush(30s));
  sink.fail_creates = true;
  recorder.Record(Pod("b"), EventType::kWarning, "Failed", "no GPU");
  ASSERT_TRUE(recorder.Flush(30s));

  const std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_NE(text.find(R"(gpu_autoscaler_events_total{result="created"} 1)"), std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(gpu_autoscaler_events_total{result="patched"} 1)"), std::string::npos);
  EXPECT_NE(text.find(R"(gpu_autoscaler_events_total{result="failed"} 1)"), std::string::npos);
  EXPECT_NE(text.find(R"(gpu_autoscaler_events_total{result="dropped_spam"} 0)"),
            std::string::npos);
}

TEST(EventObjectTest, FromJson) {
  auto o = EventObject::Of(
      json::parse(R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"n1","uid":"u1"}})"));
  EXPECT_EQ(o.kind, "Node");
  EXPECT_EQ(o.name, "n1");
  EXPECT_EQ(o.uid, "u1");
  EXPECT_EQ(o.ns, "");
  EXPECT_EQ(EventObject::Of(json(3)).name, "");
}

}  // namespace
}  // namespace gpu_autoscaler::kube
