#include "fleet/fleet_plan.h"

#include <gtest/gtest.h>

#include "fleet/fleet_objects.h"

namespace gpu_autoscaler::fleet {
namespace {

using nlohmann::json;
using std::chrono::seconds;

// 2027-01-15T08:00:00Z, the FakeClock's default wall start.
const Clock::WallTime kNow{seconds(1'800'000'000)};

NodeState FreshNode(const std::string& name) {
  return {.name = name,
          .uid = name + "-uid",
          .managed = true,
          .ready = true,
          .last_heartbeat = kNow - seconds(5),
          .internal_ip = "10.1.0.7"};
}

TEST(FleetPlanTest, LeasesAreCreatedRenewedOnTheirPeriodAndOnlyOursDeleted) {
  FleetSnapshot s{.now = kNow};
  s.nodes = {FreshNode("a"),
             FreshNode("b"),
             FreshNode("c"),
             {.name = "real", .managed = false, .ready = true, .last_heartbeat = kNow}};
  s.leases = {
      {.name = "b", .renew_time = kNow - seconds(9), .ours = true},  // 9 s < 10 s: not yet
      {.name = "c",
       .renew_time = kNow - seconds(10),
       .ours = false},                                     // due (someone else's: ours now)
      {.name = "gone", .renew_time = kNow, .ours = true},  // node deleted
      {.name = "real", .renew_time = kNow - seconds(60), .ours = false},  // the real kubelet's
  };
  const FleetPlan plan = DecideFleet(s, {});
  ASSERT_EQ(plan.create_leases.size(), 1u);
  EXPECT_EQ(plan.create_leases[0].node, "a");
  EXPECT_EQ(plan.create_leases[0].node_uid, "a-uid");
  EXPECT_EQ(plan.renew_leases, std::vector<std::string>{"c"});
  EXPECT_EQ(plan.delete_leases, std::vector<std::string>{"gone"});
  EXPECT_TRUE(plan.node_status.empty());  // heartbeats 5 s old, period 1 m
  EXPECT_TRUE(plan.start_pods.empty());
}

TEST(FleetPlanTest, ReadyHeartbeatKeepsOtherConditionsAndAddsAnAddress) {
  NodeState stale = FreshNode("gpu-1");
  stale.last_heartbeat = kNow - seconds(60);  // exactly one period
  stale.internal_ip = "";
  stale.conditions = json::parse(R"([
    {"type": "Ready", "status": "True", "lastTransitionTime": "2027-01-15T07:00:00Z"},
    {"type": "GPUHealthy", "status": "False", "reason": "Xid79"}])");
  NodeState not_ready = FreshNode("gpu-2");
  not_ready.ready = false;
  not_ready.conditions = json::parse(R"([{"type": "Ready", "status": "False",
    "lastTransitionTime": "2027-01-15T07:00:00Z"}])");
  FleetSnapshot s{.now = kNow, .nodes = {stale, not_ready, FreshNode("gpu-3")}};
  s.leases = {{.name = "gpu-1", .renew_time = kNow, .ours = true},
              {.name = "gpu-2", .renew_time = kNow, .ours = true},
              {.name = "gpu-3", .renew_time = kNow, .ours = true}};
  const FleetPlan plan = DecideFleet(s, {.node_ip = "10.9.9.9"});
  ASSERT_EQ(plan.node_status.size(), 2u);
  EXPECT_EQ(plan.node_status[0].node, "gpu-1");
  const json& st = plan.node_status[0].patch["status"];
  ASSERT_EQ(st["conditions"].size(), 5u);  // Ready, GPUHealthy, the three pressures
  EXPECT_EQ(st["conditions"][0],
            json::parse(R"j({"type": "Ready", "status": "True", "reason": "KubeletReady",
              "message": "kubelet is posting ready status (gpu-autoscaler fleet)",
              "lastHeartbeatTime": "2027-01-15T08:00:00Z",
              "lastTransitionTime": "2027-01-15T07:00:00Z"})j"));
  EXPECT_EQ(st["conditions"][1],
            json::parse(R"({"type": "GPUHealthy", "status": "False", "reason": "Xid79"})"));
  EXPECT_EQ(st["conditions"][2]["type"], "MemoryPressure");
  EXPECT_EQ(st["conditions"][2]["status"], "False");
  EXPECT_EQ(st["conditions"][2]["reason"], "KubeletHasNoMemoryPressure");
  EXPECT_EQ(st["conditions"][4]["reason"], "KubeletHasSufficientPID");
  EXPECT_EQ(st["addresses"], json::parse(R"([{"type": "InternalIP", "address": "10.9.9.9"},
                                             {"type": "Hostname", "address": "gpu-1"}])"));
  // Ready=False -> True: the transition is now.
  const json& ready2 = plan.node_status[1].patch["status"]["conditions"][0];
  EXPECT_EQ(plan.node_status[1].node, "gpu-2");
  EXPECT_EQ(ready2["lastTransitionTime"], "2027-01-15T08:00:00Z");
  EXPECT_FALSE(plan.node_status[1].patch["status"].contains("addresses"));
}

TEST(FleetPlanTest, BoundPodsStartWithTheLowestFreeIpAndTerminatingOnesAreDeleted) {
  FleetSnapshot s{.now = kNow, .nodes = {FreshNode("gpu-1"), {.name = "real", .managed = false}}};
  s.leases = {{.name = "gpu-1", .renew_time = kNow, .ours = true}};
  s.pods = {
      {.ns = "b",
       .name = "web",
       .uid = "u1",
       .node = "gpu-1",
       .phase = "Pending",
       .containers = {{"server", "web:1"}},
       .init_containers = {{"setup", "init:1"}}},
      {.ns = "a",
       .name = "old",
       .uid = "u2",
       .node = "gpu-1",
       .phase = "Running",
       .pod_ip = "10.244.0.1",
       .containers = {{"main", "x"}}},
      {.ns = "a",
       .name = "new",
       .uid = "u3",
       .node = "gpu-1",
       .phase = "Pending",
       .containers = {{"main", "x"}}},
      {.ns = "a",
       .name = "bye",
       .uid = "u4",
       .node = "gpu-1",
       .phase = "Running",
       .pod_ip = "10.244.0.3",
       .terminating = true},
      {.ns = "a", .name = "done", .uid = "u5", .node = "gpu-1", .phase = "Succeeded"},
      {.ns = "a", .name = "unbound", .uid = "u6", .phase = "Pending"},
      {.ns = "a", .name = "other", .uid = "u7", .node = "real", .phase = "Pending"},
      {.ns = "a", .name = "leaving-real", .uid = "u8", .node = "real", .terminating = true},
  };
  const FleetPlan plan = DecideFleet(s, {});
  ASSERT_EQ(plan.start_pods.size(), 2u);
  // a/new first (namespace order): 10.244.0.1 and .3 are taken -> .2; then b/web -> .4.
  EXPECT_EQ(plan.start_pods[0].pod.name, "new");
  EXPECT_EQ(plan.start_pods[0].pod_ip, "10.244.0.2");
  EXPECT_EQ(plan.start_pods[1].pod.name, "web");
  EXPECT_EQ(plan.start_pods[1].pod_ip, "10.244.0.4");
  const json& st = plan.start_pods[1].patch["status"];
  EXPECT_EQ(st["phase"], "Running");
  EXPECT_EQ(st["hostIP"], "10.1.0.7");
  EXPECT_EQ(st["podIP"], "10.244.0.4");
  EXPECT_EQ(st["podIPs"], json::parse(R"([{"ip": "10.244.0.4"}])"));
  EXPECT_EQ(st["startTime"], "2027-01-15T08:00:00Z");
  ASSERT_EQ(st["conditions"].size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(
        st["conditions"][i]["type"],
        (std::vector<std::string>{"Initialized", "Ready", "ContainersReady", "PodScheduled"}[i]));
    EXPECT_EQ(st["conditions"][i]["status"], "True");
  }
  EXPECT_EQ(st["containerStatuses"],
            json::parse(R"([{"name": "server", "image": "web:1", "imageID": "", "ready": true,
              "started": true, "restartCount": 0,
              "state": {"running": {"startedAt": "2027-01-15T08:00:00Z"}}}])"));
  EXPECT_EQ(st["initContainerStatuses"][0]["state"]["terminated"]["reason"], "Completed");
  ASSERT_EQ(plan.delete_pods.size(), 1u);
  EXPECT_EQ(plan.delete_pods[0].name, "bye");
  EXPECT_EQ(plan.delete_pods[0].uid, "u4");
}

TEST(FleetPlanTest, AFullCidrLeavesPodsWaiting) {
  FleetSnapshot s{.now = kNow, .nodes = {FreshNode("n")}};
  s.leases = {{.name = "n", .renew_time = kNow, .ours = true}};
  // A /29 has six usable addresses, .1 to .6; the node IPs .1 (the default
  // for nodes without one) and .5 (the node's) are not for pods.
  s.nodes[0].internal_ip = "192.168.7.5";
  for (const char* name : {"p1", "p2", "p3", "p4", "p5"})
    s.pods.push_back({.ns = "a", .name = name, .node = "n"});
  const FleetPlan plan = DecideFleet(s, {.node_ip = "192.168.7.1", .pod_cidr = "192.168.7.0/29"});
  ASSERT_EQ(plan.start_pods.size(), 4u);
  EXPECT_EQ(plan.start_pods[0].pod_ip, "192.168.7.2");
  EXPECT_EQ(plan.start_pods[1].pod_ip, "192.168.7.3");
  EXPECT_EQ(plan.start_pods[2].pod_ip, "192.168.7.4");
  EXPECT_EQ(plan.start_pods[3].pod_ip, "192.168.7.6");
  EXPECT_EQ(plan.start_pods[3].pod.name, "p4");
  EXPECT_EQ(plan.pods_without_ip, 1);
}

TEST(FleetPlanTest, OptionsAreValidated) {
  EXPECT_TRUE(ValidateFleetOptions({}).ok());
  EXPECT_FALSE(ValidateFleetOptions({.pod_cidr = "10.0.0.0"}).ok());
  EXPECT_FALSE(ValidateFleetOptions({.pod_cidr = "10.0.0.0/31"}).ok());
  EXPECT_FALSE(ValidateFleetOptions({.pod_cidr = "300.0.0.0/16"}).ok());
  EXPECT_FALSE(ValidateFleetOptions({.node_ip = "10.0.0"}).ok());
  EXPECT_FALSE(ValidateFleetOptions({.lease_duration_seconds = 0}).ok());
}

TEST(FleetPlanTest, LeaseObjectAndRenewal) {
  const json lease = LeaseObject("gpu-1", "uid-1", kNow + std::chrono::microseconds(250), 40);
  EXPECT_EQ(lease, json::parse(R"({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
    "metadata": {"name": "gpu-1", "namespace": "kube-node-lease",
                 "labels": {"app.kubernetes.io/managed-by": "gpu-autoscaler-fleet"},
                 "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "gpu-1",
                                      "uid": "uid-1"}]},
    "spec": {"holderIdentity": "gpu-1", "leaseDurationSeconds": 40,
             "renewTime": "2027-01-15T08:00:00.000250Z"}})"));
  EXPECT_FALSE(LeaseObject("n", "", kNow, 40)["metadata"].contains("ownerReferences"));
  EXPECT_EQ(LeaseRenewPatch(kNow)["spec"]["renewTime"], "2027-01-15T08:00:00.000000Z");
}

TEST(FleetObjectsTest, ReadsNodesLeasesAndPods) {
  auto sel = NodeSelection::Parse("kwok.x-k8s.io/node=fake", "");
  ASSERT_TRUE(sel.ok());
  const json node = json::parse(R"({"metadata": {"name": "gpu-1", "uid": "u",
      "annotations": {"kwok.x-k8s.io/node": "fake"}},
    "status": {"conditions": [{"type": "Ready", "status": "True",
                               "lastHeartbeatTime": "2027-01-15T07:59:00Z"}],
               "addresses": [{"type": "Hostname", "address": "gpu-1"},
                             {"type": "InternalIP", "address": "10.1.2.3"}]}})");
  const NodeState n = NodeStateFromJson(node, *sel);
  EXPECT_TRUE(n.managed);
  EXPECT_TRUE(n.ready);
  EXPECT_EQ(n.last_heartbeat, kNow - seconds(60));
  EXPECT_EQ(n.internal_ip, "10.1.2.3");
  EXPECT_FALSE(NodeStateFromJson(json::parse(R"({"metadata": {"name": "x"}})"), *sel).managed);
  auto by_label = NodeSelection::Parse("", "type=kwok");
  ASSERT_TRUE(by_label.ok());
  EXPECT_TRUE(
      NodeStateFromJson(json::parse(R"({"metadata": {"name": "x", "labels": {"type": "kwok"}}})"),
                        *by_label)
          .managed);
  EXPECT_FALSE(NodeSelection::Parse("a in (", "").ok());

  const LeaseState l = LeaseStateFromJson(json::parse(R"({"metadata": {"name": "gpu-1",
      "labels": {"app.kubernetes.io/managed-by": "gpu-autoscaler-fleet"}},
    "spec": {"renewTime": "2027-01-15T08:00:00.000000Z"}})"));
  EXPECT_EQ(l.name, "gpu-1");
  EXPECT_TRUE(l.ours);
  EXPECT_EQ(l.renew_time, kNow);

  const PodState p = PodStateFromJson(json::parse(R"({"metadata": {"namespace": "nlp",
      "name": "chat-a", "uid": "u1", "deletionTimestamp": "2027-01-15T08:00:00Z",
      "annotations": {"gpuautoscaler.io/fleet-usage": "cpu=0.3"}},
    "spec": {"nodeName": "gpu-1", "containers": [{"name": "server", "image": "chat:1"}, {}]},
    "status": {"phase": "Running", "podIP": "10.0.0.9"}})"));
  EXPECT_EQ(p.ns, "nlp");
  EXPECT_EQ(p.node, "gpu-1");
  EXPECT_TRUE(p.terminating);
  EXPECT_EQ(p.usage_annotation, "cpu=0.3");
  ASSERT_EQ(p.containers.size(), 1u);  // a container without a name is skipped
  EXPECT_EQ(p.containers[0].image, "chat:1");
  EXPECT_EQ(p.phase, "Running");
  EXPECT_EQ(p.pod_ip, "10.0.0.9");
  // Wrong types read as absent.
  const PodState bad = PodStateFromJson(json::parse(R"({"metadata": [], "spec": 3})"));
  EXPECT_TRUE(bad.name.empty());
  EXPECT_FALSE(bad.terminating);
}

}  // namespace
}  // namespace gpu_autoscaler::fleet
