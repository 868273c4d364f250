// Decoding Pod, Node and generic objects into the trimmed views.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <thread>
#include <vector>

#include "kube/interned_string.h"
#include "kube/object_codec.h"
#include "kube/pod_view.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::kube {
namespace {

constexpr char kGpuPod[] = R"({
  "apiVersion": "v1", "kind": "Pod",
  "metadata": {
    "name": "train-7f9c-0", "namespace": "ml-team", "uid": "7d3c1c9e-1b7a-4c55-9d3a-0c7f1f6f2a11",
    "resourceVersion": "918273", "generation": 3,
    "creationTimestamp": "2026-11-22T08:17:35Z", "deletionTimestamp": "2026-11-22T09:00:00.123Z",
    "labels": {"app": "trainer", "team": "vision", "gpu": "a100"},
    "annotations": {"gpu-autoscaler.io/priority-class": "batch",
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"huge\": true}",
                    "note": "line\nbreak \"quoted\""},
    "ownerReferences": [
      {"apiVersion": "batch/v1", "kind": "Job", "name": "train-7f9c", "uid": "job-uid-1",
       "controller": true, "blockOwnerDeletion": true},
      {"apiVersion": "v1", "kind": "ConfigMap", "name": "cfg", "uid": "cm-uid"}],
    "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:containers": {}}}}]
  },
  "spec": {
    "nodeName": "gpu-node-3", "schedulerName": "gpu-scheduler", "priority": 1000,
    "nodeSelector": {"nvidia.com/gpu.product": "A100-SXM4-80GB"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "initContainers": [{"name": "fetch", "image": "busybox",
                        "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}],
    "containers": [
      {"name": "main", "image": "trainer:1.0", "command": ["python", "train.py"],
       "resources": {"requests": {"cpu": "500m", "memory": "16Gi", "nvidia.com/gpu": "4"},
                     "limits": {"memory": "16Gi", "nvidia.com/gpu": 4}}},
      {"name": "sidecar", "resources": {"requests": {"cpu": "100m", "nvidia.com/mig-1g.5gb": "1",
                                                     "ephemeral-storage": "1e9"}}}]
  },
  "status": {
    "phase": "Running",
    "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}],
    "containerStatuses": [{"name": "main", "ready": false, "restartCount": 2}]
  }
})";

TEST(PodViewTest, DecodesEverythingAControllerReads) {
  auto decoded = DecodePod(kGpuPod);
  ASSERT_TRUE(decoded.ok()) << decoded.error().ToString();
  const PodView& pod = *decoded;
  EXPECT_EQ(pod.ns(), "ml-team");
  EXPECT_EQ(pod.name(), "train-7f9c-0");
  EXPECT_EQ(pod.uid(), "7d3c1c9e-1b7a-4c55-9d3a-0c7f1f6f2a11");
  EXPECT_EQ(pod.resource_version(), "918273");
  EXPECT_EQ(pod.generation(), 3);
  EXPECT_EQ(pod.creation_timestamp(), 1'795'335'455);
  EXPECT_EQ(pod.deletion_timestamp(), 1'795'338'000);
  EXPECT_TRUE(pod.terminating());

  ASSERT_EQ(pod.labels().size(), 3u);
  EXPECT_EQ(pod.label("app"), "trainer");
  EXPECT_EQ(pod.label("gpu"), "a100");
  EXPECT_FALSE(pod.label("missing").has_value());
  EXPECT_EQ(pod.annotation("gpu-autoscaler.io/priority-class"), "batch");
  EXPECT_EQ(pod.annotation("note"), "line\nbreak \"quoted\"");
  EXPECT_FALSE(pod.annotation("kubectl.kubernetes.io/last-applied-configuration").has_value());
  EXPECT_EQ(pod.annotations().size(), 2u);

  ASSERT_EQ(pod.owner_references().size(), 2u);
  const OwnerReference* owner = pod.controller_ref();
  ASSERT_NE(owner, nullptr);
  EXPECT_EQ(owner->kind, "Job");
  EXPECT_EQ(owner->api_version, "batch/v1");
  EXPECT_EQ(owner->name, "train-7f9c");
  EXPECT_EQ(owner->uid, "job-uid-1");
  EXPECT_FALSE(pod.owner_references()[1].controller);

  EXPECT_EQ(pod.node_name(), "gpu-node-3");
  EXPECT_EQ(pod.scheduler_name(), "gpu-scheduler");
  EXPECT_EQ(pod.priority(), 1000);
  EXPECT_EQ(FindLabel(pod.node_selector(), "nvidia.com/gpu.product"), "A100-SXM4-80GB");
  ASSERT_EQ(pod.tolerations().size(), 1u);
  EXPECT_EQ(pod.tolerations()[0].key, "nvidia.com/gpu");
  EXPECT_EQ(pod.tolerations()[0].op, "Exists");
  EXPECT_EQ(pod.tolerations()[0].effect, "NoSchedule");

  EXPECT_EQ(pod.phase(), PodPhase::kRunning);
  EXPECT_EQ(pod.condition("PodScheduled"), ConditionStatus::kTrue);
  EXPECT_EQ(pod.condition("Ready"), ConditionStatus::kFalse);
  EXPECT_EQ(pod.condition("Initialized"), ConditionStatus::kUnknown);

  ASSERT_EQ(pod.containers().size(), 2u);
  const ContainerResources& main = pod.containers()[0];
  EXPECT_EQ(main.name, "main");
  EXPECT_EQ(FindQuantity(main.requests.span(), "cpu"), 500);
  EXPECT_EQ(FindQuantity(main.requests.span(), "memory"), 16LL << 30);
  EXPECT_EQ(FindQuantity(main.requests.span(), "nvidia.com/gpu"), 4);
  EXPECT_EQ(FindQuantity(main.limits.span(), "nvidia.com/gpu"), 4);  // a JSON number
  EXPECT_EQ(FindQuantity(main.limits.span(), "cpu"), 0);
  const ContainerResources& sidecar = pod.containers()[1];
  EXPECT_EQ(sidecar.name, "sidecar");
  EXPECT_EQ(FindQuantity(sidecar.requests.span(), "nvidia.com/mig-1g.5gb"), 1);
  EXPECT_EQ(FindQuantity(sidecar.requests.span(), "ephemeral-storage"), 1'000'000'000);
  ASSERT_EQ(pod.init_containers().size(), 1u);
  EXPECT_EQ(pod.init_containers()[0].name, "fetch");

  // Effective requests: max(sum of containers, max of init containers).
  EXPECT_EQ(pod.Request("cpu"), 2000);           // init 2 > 500m + 100m
  EXPECT_EQ(pod.Request("memory"), 16LL << 30);  // 16Gi > init 1Gi
  EXPECT_EQ(pod.Request("nvidia.com/gpu"), 4);
  EXPECT_EQ(pod.Request("nvidia.com/mig-1g.5gb"), 1);
  EXPECT_EQ(pod.Request("nvidia.com/mig-2g.10gb"), 0);
  EXPECT_EQ(pod.Limit("nvidia.com/gpu"), 4);
}

TEST(PodViewTest, RequestAddsTheRuntimeClassOverhead) {
  // Containers 500m + 250m; init 1 CPU: max(750m, 1000m) = 1000m, plus 120m
  // overhead. The GPU is not in the overhead; memory only there.
  auto pod = DecodePod(R"({"metadata": {"name": "kata", "namespace": "ml"},
    "spec": {"overhead": {"cpu": "120m", "memory": "160Mi"},
             "containers": [{"name": "a", "resources": {"requests": {"cpu": "500m", "nvidia.com/gpu": "1"}}},
                            {"name": "b", "resources": {"requests": {"cpu": "250m"}}}],
             "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1"}}}]}})");
  ASSERT_TRUE(pod.ok()) << pod.error().ToString();
  EXPECT_EQ(pod->Request("cpu"), 1120);
  EXPECT_EQ(pod->Request("memory"), 160LL << 20);
  EXPECT_EQ(pod->Request("nvidia.com/gpu"), 1);
  ASSERT_EQ(pod->overhead().size(), 2u);
  EXPECT_FALSE(DecodePod(R"({"spec": {"overhead": {"cpu": "lots"}}})").ok());
}

TEST(PodViewTest, StringsOutliveTheInputAndSurviveMoves) {
  std::string json = kGpuPod;
  auto decoded = DecodePod(json);
  ASSERT_TRUE(decoded.ok());
  json.assign(json.size(), 'x');                                          // scribble over the input
  DecodePod(R"({"metadata":{"name":"other","namespace":"x"}})").value();  // reuse the parser
  PodView moved = std::move(decoded).value();
  std::vector<PodView> many;
  many.push_back(std::move(moved));
  for (int i = 0; i < 20; ++i)
    many.emplace_back();  // reallocate
  EXPECT_EQ(many[0].name(), "train-7f9c-0");
  EXPECT_EQ(many[0].uid(), "7d3c1c9e-1b7a-4c55-9d3a-0c7f1f6f2a11");
  EXPECT_EQ(many[0].controller_ref()->name, "train-7f9c");
  EXPECT_EQ(many[0].containers()[1].name, "sidecar");
  EXPECT_EQ(many[0].annotation("note"), "line\nbreak \"quoted\"");
}

TEST(PodViewTest, RepeatedStringsAreInternedOnce) {
  auto a = DecodePod(kGpuPod);
  auto b = DecodePod(kGpuPod);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->labels()[0].key.id(), b->labels()[0].key.id());
  EXPECT_EQ(a->labels()[0].value.id(), b->labels()[0].value.id());
  EXPECT_EQ(a->node_name().data(), b->node_name().data());
  EXPECT_EQ(a->ns().data(), b->ns().data());
  // Unique strings are per object.
  EXPECT_NE(a->uid().data(), b->uid().data());
}

TEST(PodViewTest, InternTableFreesUnusedStrings) {
  const size_t before = InternedStringCount();
  {
    auto pod = DecodePod(R"({"metadata":{"name":"p","namespace":"ns-unique-4711",
                          "labels":{"unique-key-4711":"unique-value-4711"}}})");
    ASSERT_TRUE(pod.ok());
    EXPECT_EQ(InternedStringCount(), before + 3);
  }
  EXPECT_EQ(InternedStringCount(), before);
}

TEST(PodViewTest, InterningIsThreadSafe) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 2000; ++i) {
        InternedString a = InternedString::Make("shared-" + std::to_string(i % 50));
        InternedString b = a;
        InternedString c = InternedString::Make("shared-" + std::to_string(i % 50));
        ASSERT_EQ(a, c);
        ASSERT_EQ(b.view(), "shared-" + std::to_string(i % 50));
      }
    });
  }
  for (auto& t : threads)
    t.join();
}

TEST(PodViewTest, NullsAndMissingFieldsAreEmpty) {
  auto pod = DecodePod(R"({"metadata":{"name":"bare","namespace":"default",
      "creationTimestamp":null,"labels":null,"annotations":null,"ownerReferences":null},
      "spec":{"containers":[{"name":"c","resources":{}}],"nodeName":null,"priority":null},
      "status":{}})");
  ASSERT_TRUE(pod.ok()) << pod.error().ToString();
  EXPECT_EQ(pod->creation_timestamp(), kNoTime);
  EXPECT_FALSE(pod->terminating());
  EXPECT_TRUE(pod->labels().empty());
  EXPECT_EQ(pod->controller_ref(), nullptr);
  EXPECT_EQ(pod->node_name(), "");
  EXPECT_FALSE(pod->priority().has_value());
  EXPECT_EQ(pod->phase(), PodPhase::kUnknown);
  EXPECT_EQ(pod->Request("cpu"), 0);
}

TEST(PodViewTest, BadInputGivesAClearError) {
  auto truncated = DecodePod(R"({"metadata":{"name":"x")");
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.error().kind(), Error::Kind::kDecode);

  auto not_object = DecodePod("[1,2]");
  ASSERT_FALSE(not_object.ok());

  auto bad_quantity = DecodePod(
      R"({"metadata":{"name":"x"},"spec":{"containers":[{"name":"c",
          "resources":{"requests":{"nvidia.com/gpu":"four"}}}]}})");
  ASSERT_FALSE(bad_quantity.ok());
  EXPECT_NE(bad_quantity.error().message().find("spec.containers"), std::string::npos)
      << bad_quantity.error().message();
  EXPECT_NE(bad_quantity.error().message().find("nvidia.com/gpu"), std::string::npos);
  EXPECT_NE(bad_quantity.error().message().find("four"), std::string::npos);

  auto bad_time = DecodePod(R"({"metadata":{"name":"x","creationTimestamp":"yesterday"}})");
  ASSERT_FALSE(bad_time.ok());
  EXPECT_NE(bad_time.error().message().find("creationTimestamp"), std::string::npos);

  auto wrong_type = DecodePod(R"({"metadata":{"name":7}})");
  ASSERT_FALSE(wrong_type.ok());

  auto trailing = DecodePod(R"({"metadata":{"name":"x"}} {"more":1})");
  ASSERT_FALSE(trailing.ok());

  // A failed decode leaves nothing behind for the next one on this thread.
  auto after = DecodePod(R"({"metadata":{"name":"clean"}})");
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->labels().empty());
  EXPECT_TRUE(after->containers().empty());
}

TEST(PodViewTest, DecodesListWithMetadataAndContinue) {
  std::string list = R"({"kind":"PodList","apiVersion":"v1",
      "metadata":{"resourceVersion":"4242","continue":"token-abc","remainingItemCount":3},
      "items":[)";
  for (int i = 0; i < 3; ++i) {
    if (i > 0) list += ",";
    list += R"({"metadata":{"name":"p)" + std::to_string(i) +
            R"(","namespace":"ns","resourceVersion":")" + std::to_string(100 + i) +
            R"("},"spec":{"containers":[{"name":"c","resources":{"requests":{"nvidia.com/gpu":")" +
            std::to_string(i) + R"("}}}]}})";
  }
  list += "]}";
  auto decoded = DecodePodList(list);
  ASSERT_TRUE(decoded.ok()) << decoded.error().ToString();
  EXPECT_EQ(decoded->meta.resource_version, "4242");
  EXPECT_EQ(decoded->meta.continue_token, "token-abc");
  ASSERT_EQ(decoded->items.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(decoded->items[i].name(), "p" + std::to_string(i));
    EXPECT_EQ(decoded->items[i].resource_version(), std::to_string(100 + i));
    EXPECT_EQ(decoded->items[i].Request("nvidia.com/gpu"), i);
  }

  auto empty = DecodePodList(R"({"metadata":{"resourceVersion":"7"},"items":null})");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->items.empty());
  EXPECT_EQ(empty->meta.resource_version, "7");
  EXPECT_EQ(empty->meta.continue_token, "");

  EXPECT_FALSE(DecodePodList(R"({"items":[{"metadata":{"name":"x"}},]})").ok());
}

// Every pod in the recorded kube-apiserver list decodes to the same values a
// full JSON tree gives.
TEST(PodViewTest, MatchesATreeParseOfRecordedServerOutput) {
  for (const char* file :
       {"15-list-page-1.json", "16-list-page-2.json", "22-list-all-namespaces.json"}) {
    auto golden = nlohmann::json::parse(
        testing::ReadFileOrDie(testing::SourcePath(std::string("tests/golden/kube/") + file)));
    const nlohmann::json& body = golden["response"]["body"];
    auto decoded = DecodePodList(body.dump());
    ASSERT_TRUE(decoded.ok()) << file << ": " << decoded.error().ToString();
    EXPECT_EQ(decoded->meta.resource_version, body["metadata"].value("resourceVersion", ""));
    EXPECT_EQ(decoded->meta.continue_token, body["metadata"].value("continue", ""));
    ASSERT_EQ(decoded->items.size(), body["items"].size()) << file;
    for (size_t i = 0; i < decoded->items.size(); ++i) {
      const PodView& pod = decoded->items[i];
      const nlohmann::json& item = body["items"][i];
      EXPECT_EQ(pod.name(), item["metadata"]["name"].get<std::string>());
      EXPECT_EQ(pod.ns(), item["metadata"]["namespace"].get<std::string>());
      EXPECT_EQ(pod.uid(), item["metadata"]["uid"].get<std::string>());
      EXPECT_EQ(pod.resource_version(), item["metadata"]["resourceVersion"].get<std::string>());
      EXPECT_EQ(pod.labels().size(),
                item["metadata"].value("labels", nlohmann::json::object()).size());
      for (const Label& l : pod.labels()) {
        EXPECT_EQ(l.value.view(), item["metadata"]["labels"][l.key.str()].get<std::string>());
      }
      EXPECT_EQ(pod.node_name(), item["spec"].value("nodeName", ""));
      EXPECT_EQ(PodPhaseName(pod.phase()), item["status"].value("phase", "Unknown"));
      ASSERT_EQ(pod.containers().size(), item["spec"]["containers"].size());
      for (size_t c = 0; c < pod.containers().size(); ++c) {
        const auto& want = item["spec"]["containers"][c];
        EXPECT_EQ(pod.containers()[c].name, want["name"].get<std::string>());
        auto requests = want.value("resources", nlohmann::json::object())
                            .value("requests", nlohmann::json::object());
        EXPECT_EQ(pod.containers()[c].requests.size(), requests.size());
      }
    }
  }
}

TEST(NodeViewTest, DecodesCapacityTaintsAndLabels) {
  auto node = DecodeNode(R"({"kind":"Node","metadata":{"name":"gpu-node-3","uid":"n-uid",
      "resourceVersion":"55","labels":{"nvidia.com/gpu.product":"NVIDIA-A100-SXM4-80GB",
      "beta.kubernetes.io/instance-type":"p4d.24xlarge","topology.kubernetes.io/zone":"us-east-1a",
      "karpenter.sh/capacity-type":"spot"}},
      "spec":{"providerID":"aws:///us-east-1a/i-0abc","unschedulable":true,
        "taints":[{"key":"nvidia.com/gpu","value":"present","effect":"NoSchedule"},
                  {"key":"node.kubernetes.io/unreachable","effect":"NoExecute"}]},
      "status":{"capacity":{"cpu":"96","memory":"1152Gi","nvidia.com/gpu":"8","pods":"110"},
        "allocatable":{"cpu":"95500m","memory":"1100Gi","nvidia.com/gpu":"8","nvidia.com/mig-1g.10gb":"0"},
        "conditions":[{"type":"MemoryPressure","status":"False"},{"type":"Ready","status":"True"}],
        "addresses":[{"type":"InternalIP","address":"10.0.3.7"},{"type":"Hostname","address":"ip-10-0-3-7"}],
        "images":[{"names":["a"],"sizeBytes":1}]}})");
  ASSERT_TRUE(node.ok()) << node.error().ToString();
  EXPECT_EQ(node->ns(), "");
  EXPECT_EQ(node->name(), "gpu-node-3");
  EXPECT_EQ(node->uid(), "n-uid");
  EXPECT_EQ(node->resource_version(), "55");
  EXPECT_EQ(node->gpu_product(), "NVIDIA-A100-SXM4-80GB");
  EXPECT_EQ(node->instance_type(), "p4d.24xlarge");
  EXPECT_EQ(node->zone(), "us-east-1a");
  EXPECT_EQ(node->capacity_type(), "spot");
  EXPECT_EQ(node->provider_id(), "aws:///us-east-1a/i-0abc");
  EXPECT_TRUE(node->unschedulable());
  ASSERT_EQ(node->taints().size(), 2u);
  EXPECT_EQ(node->taints()[0].key, "nvidia.com/gpu");
  EXPECT_EQ(node->taints()[0].value, "present");
  EXPECT_EQ(node->taints()[0].effect, TaintEffect::kNoSchedule);
  EXPECT_EQ(node->taints()[1].effect, TaintEffect::kNoExecute);
  EXPECT_EQ(node->ready(), ConditionStatus::kTrue);
  EXPECT_EQ(node->Capacity("cpu"), 96'000);
  EXPECT_EQ(node->Allocatable("cpu"), 95'500);
  EXPECT_EQ(node->Capacity("memory"), 1152LL << 30);
  EXPECT_EQ(node->Allocatable("nvidia.com/gpu"), 8);
  EXPECT_EQ(node->Allocatable("nvidia.com/mig-1g.10gb"), 0);
  EXPECT_EQ(node->Capacity("pods"), 110);
  ASSERT_EQ(node->addresses().size(), 2u);
  EXPECT_EQ(node->addresses()[0].type, "InternalIP");
  EXPECT_EQ(node->addresses()[0].address, "10.0.3.7");

  auto list = DecodeNodeList(R"({"metadata":{"resourceVersion":"9"},"items":[
      {"metadata":{"name":"a"},"status":{"conditions":[{"type":"Ready","status":"False"}]}},
      {"metadata":{"name":"b"}}]})");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->items.size(), 2u);
  EXPECT_EQ(list->items[0].ready(), ConditionStatus::kFalse);
  EXPECT_EQ(list->items[1].ready(), ConditionStatus::kUnknown);
}

// The autoscaler reads a Node's do-not-disrupt and interruption-notice
// annotations, and a pod's PodScheduled reason (SchedulingGated is not a
// request for capacity).
TEST(NodeViewTest, KeepsAnnotationsAndConditionReasons) {
  std::string node_json = R"({"metadata":{"name":"n","annotations":{
      "gpu-autoscaler.io/do-not-disrupt":"true",
      "gpu-autoscaler.io/interruption-notice":"SpotInterruption 2026-12-05T03:00:00Z",
      "kubectl.kubernetes.io/last-applied-configuration":"{}"}},
      "status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady"}]}})";
  auto node = DecodeNode(node_json);
  ASSERT_TRUE(node.ok()) << node.error().ToString();
  node_json.assign(node_json.size(), 'x');  // the view owns its strings
  EXPECT_EQ(node->annotation("gpu-autoscaler.io/do-not-disrupt"), "true");
  EXPECT_EQ(node->annotation("gpu-autoscaler.io/interruption-notice"),
            "SpotInterruption 2026-12-05T03:00:00Z");
  EXPECT_FALSE(node->annotation("kubectl.kubernetes.io/last-applied-configuration"));
  EXPECT_EQ(node->annotations().size(), 2u);
  ASSERT_EQ(node->conditions().size(), 1u);
  EXPECT_EQ(node->conditions()[0].reason, "KubeletReady");

  auto pod = DecodePod(R"({"metadata":{"name":"p","namespace":"ml"},"status":{"phase":"Pending",
      "conditions":[{"type":"PodScheduled","status":"False","reason":"SchedulingGated"}]}})");
  ASSERT_TRUE(pod.ok()) << pod.error().ToString();
  ASSERT_EQ(pod->conditions().size(), 1u);
  EXPECT_EQ(pod->conditions()[0].reason, "SchedulingGated");
}

TEST(GenericObjectTest, KeepsMetadataAndRawJson) {
  const std::string json =
      R"({"apiVersion":"gpu.example.com/v1","kind":"GpuPool","metadata":{"name":"pool-a",)"
      R"("namespace":"infra","uid":"u1","resourceVersion":"12","generation":4,)"
      R"("labels":{"tier":"gold"},"ownerReferences":[{"kind":"Cluster","name":"c1","uid":"cu"}]},)"
      R"("spec":{"replicas":3,"nested":{"a":[1,2,{"b":"c"}]}}})";
  auto obj = DecodeGenericObject(json);
  ASSERT_TRUE(obj.ok()) << obj.error().ToString();
  EXPECT_EQ(obj->ns(), "infra");
  EXPECT_EQ(obj->name(), "pool-a");
  EXPECT_EQ(obj->uid(), "u1");
  EXPECT_EQ(obj->resource_version(), "12");
  EXPECT_EQ(obj->generation(), 4);
  EXPECT_EQ(obj->label("tier"), "gold");
  ASSERT_EQ(obj->owner_references().size(), 1u);
  EXPECT_EQ(obj->owner_references()[0].name, "c1");
  EXPECT_EQ(obj->json(), json);
  auto tree = obj->Parse();
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ((*tree)["spec"]["replicas"], 3);

  auto list = DecodeGenericList(R"({"metadata":{"resourceVersion":"77","continue":""},"items":[
      {"metadata":{"name":"x","namespace":"a"},"spec":{"k":1}},{"metadata":{"name":"y"}}]})");
  ASSERT_TRUE(list.ok()) << list.error().ToString();
  ASSERT_EQ(list->items.size(), 2u);
  EXPECT_EQ(list->items[0].json(), R"({"metadata":{"name":"x","namespace":"a"},"spec":{"k":1}})");
  EXPECT_EQ(list->items[1].name(), "y");
  EXPECT_EQ(list->meta.resource_version, "77");
}

TEST(GenericObjectTest, ResourceVersionOfABookmark) {
  auto rv = DecodeResourceVersion(
      R"({"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12345","creationTimestamp":null}})");
  ASSERT_TRUE(rv.ok());
  EXPECT_EQ(*rv, "12345");
  EXPECT_FALSE(DecodeResourceVersion("not json").ok());
}

}  // namespace
}  // namespace gpu_autoscaler::kube
