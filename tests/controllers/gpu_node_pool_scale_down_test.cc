// The crash-safe termination steps of the GPUNodePool controller
// (controllers/gpu_node_pool_scale_down.h): the intent annotation's format
// and the pure decision of what a pass still has to do for an intent.
#include "controllers/gpu_node_pool_scale_down.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::controllers {
namespace {

using nlohmann::json;

TerminationIntent Intent() {
  return {.id = "6b1f0c2e",
          .pool = "l4",
          .group = "gpu-od",
          .instance_id = "gpu-0001",
          .node = "l4-a",
          .tier = autoscale::CapacityTier::kSpot,
          .interrupted = true,
          .desired_before = 3};
}

TEST(TerminationIntentTest, EncodesAndParsesBack) {
  const std::string text = EncodeTerminationIntent(Intent());
  EXPECT_EQ(json::parse(text),
            json::parse(R"({"id":"6b1f0c2e","pool":"l4","group":"gpu-od","instance":"gpu-0001",
                            "tier":"spot","interrupted":true,"desiredBefore":3})"));
  auto parsed = ParseTerminationIntent(text);
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(parsed->id, "6b1f0c2e");
  EXPECT_EQ(parsed->pool, "l4");
  EXPECT_EQ(parsed->group, "gpu-od");
  EXPECT_EQ(parsed->instance_id, "gpu-0001");
  EXPECT_EQ(parsed->node, "");  // where the annotation lives, not in it
  EXPECT_EQ(parsed->tier, autoscale::CapacityTier::kSpot);
  EXPECT_TRUE(parsed->interrupted);
  EXPECT_EQ(parsed->desired_before, 3);
}

TEST(TerminationIntentTest, RejectsWhatItCannotAct) {
  const json good = json::parse(EncodeTerminationIntent(Intent()));
  auto without = [&](const char* key) {
    json j = good;
    j.erase(key);
    return j.dump();
  };
  auto with = [&](const char* key, const json& value) {
    json j = good;
    j[key] = value;
    return j.dump();
  };
  for (const std::string& bad :
       {std::string(""), std::string("[]"), std::string("{\"id\":"), without("id"), without("pool"),
        without("group"), without("instance"), without("tier"), without("desiredBefore"),
        with("id", ""), with("pool", 7), with("tier", "gold"), with("interrupted", "yes"),
        with("desiredBefore", -1), with("desiredBefore", 2.5), with("desiredBefore", 5'000'000)}) {
    EXPECT_FALSE(ParseTerminationIntent(bad).ok()) << bad;
  }
  EXPECT_TRUE(ParseTerminationIntent(without("interrupted")).ok());
}

TEST(DecideTerminationTest, EachStepOnce) {
  const TerminationIntent intent = Intent();  // desired 3 when written
  // Fresh: terminate, record, delete the Node.
  TerminationSteps s =
      DecideTermination(intent, {.group_known = true, .instance_listed = true, .group_desired = 3});
  EXPECT_TRUE(s.call_provider);
  EXPECT_TRUE(s.record);
  EXPECT_TRUE(s.delete_node);
  // The group grew meanwhile (a scale-up in the same pass): still to do.
  EXPECT_TRUE(
      DecideTermination(intent, {.group_known = true, .instance_listed = true, .group_desired = 5})
          .call_provider);
  // Still listed but the size already dropped: the decrement was done, the
  // instance is on its way out (a Machine not yet deleted by its MachineSet).
  s = DecideTermination(intent, {.group_known = true, .instance_listed = true, .group_desired = 2});
  EXPECT_FALSE(s.call_provider);
  EXPECT_TRUE(s.record);
  // Gone: only the record and the Node are left.
  s = DecideTermination(intent,
                        {.group_known = true, .instance_listed = false, .group_desired = 3});
  EXPECT_FALSE(s.call_provider);
  EXPECT_TRUE(s.record);
  EXPECT_TRUE(s.delete_node);
  // Recorded (killed after the status write): the Node only.
  s = DecideTermination(intent, {.group_known = true, .instance_listed = false, .recorded = true});
  EXPECT_FALSE(s.call_provider);
  EXPECT_FALSE(s.record);
  EXPECT_TRUE(s.delete_node);
  // A group the pool no longer names: nothing, the intent stays.
  s = DecideTermination(intent, {.group_known = false, .instance_listed = false});
  EXPECT_FALSE(s.call_provider || s.record || s.delete_node);
}

TEST(DecideTerminationTest, RecordedMeansAnEntryWithTheId) {
  const json actions = json::parse(R"([
    {"action": "Cordon", "message": "cordoned l4-a"},
    {"action": "Terminate", "id": "6b1f0c2e"},
    "not an object"])");
  EXPECT_TRUE(ActionRecorded(actions, "6b1f0c2e"));
  EXPECT_FALSE(ActionRecorded(actions, "other"));
  EXPECT_FALSE(ActionRecorded(actions, ""));
  EXPECT_FALSE(ActionRecorded(json::object(), "6b1f0c2e"));
  EXPECT_EQ(TerminationMessage(Intent()),
            "terminated l4-a (gpu-0001) in group gpu-od after its interruption notice");
}

TEST(InstanceShuttingDownTest, EachProvidersStatesOnTheWayOut) {
  for (const char* state :
       {"Terminating", "Terminating:Wait", "Terminating:Proceed", "Terminated", "DELETING",
        "ABANDONING", "DELETING:ZONE_RESOURCE_POOL_EXHAUSTED", "Deleting", "Deleted"}) {
    cloud::Instance instance;
    instance.state = state;
    EXPECT_TRUE(InstanceShuttingDown(instance)) << state;
  }
  for (const char* state : {"", "InService", "Pending", "RUNNING", "CREATING", "Succeeded",
                            "Running", "Provisioned", "Creating"}) {
    cloud::Instance instance;
    instance.state = state;
    EXPECT_FALSE(InstanceShuttingDown(instance)) << state;
  }
}

}  // namespace
}  // namespace gpu_autoscaler::controllers
