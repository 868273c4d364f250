#include "apiserver/defaults.h"

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apiserver/object_golden.h"

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;
using testing::LoadGolden;
using testing::RequestBody;
using testing::ResponseBody;

// The recorded response without what the server (not defaulting) owns.
json WithoutServerMetadata(json obj) {
  for (const char* field : {"uid", "resourceVersion", "creationTimestamp", "managedFields",
                            "generation", "namespace"}) {
    obj["metadata"].erase(field);
  }
  return obj;
}

struct GoldenCase {
  const char* golden;
  const char* group;
};

class DefaultsGoldenTest : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(DefaultsGoldenTest, CreateMatchesTheRecordedObject) {
  const GoldenCase& c = GetParam();
  const json golden = LoadGolden(c.golden);
  json obj = RequestBody(golden);
  ApplyDefaults(c.group, obj.at("kind").get<std::string>(), obj);
  EXPECT_EQ(WithoutServerMetadata(obj), WithoutServerMetadata(ResponseBody(golden)));
}

TEST_P(DefaultsGoldenTest, DefaultingIsIdempotent) {
  const GoldenCase& c = GetParam();
  json once = RequestBody(LoadGolden(c.golden));
  const std::string kind = once.at("kind");
  ApplyDefaults(c.group, kind, once);
  json twice = once;
  ApplyDefaults(c.group, kind, twice);
  EXPECT_EQ(twice, once);
}

INSTANTIATE_TEST_SUITE_P(Goldens, DefaultsGoldenTest,
                         ::testing::Values(GoldenCase{"05-create-namespace", ""},
                                           GoldenCase{"08-create-pod", ""},
                                           GoldenCase{"11-create-pod-2", ""},
                                           GoldenCase{"14-create-pod-5", ""},
                                           GoldenCase{"37-create-pod-finalizer", ""},
                                           GoldenCase{"43-create-pdb", "policy"},
                                           GoldenCase{"46-create-lease", "coordination.k8s.io"},
                                           GoldenCase{"49-create-event", ""},
                                           GoldenCase{"50-create-crd", "apiextensions.k8s.io"},
                                           GoldenCase{"61-create-gpu-pod-admitted-real", ""}),
                         [](const auto& info) {
                           std::string name = info.param.golden;
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

TEST(DefaultsTest, WebhookSeesAdmittedPodWithoutStatus) {
  // The AdmissionReview the server sent to the mutating webhook: decode
  // defaults and built-in admission ran; the strategy's status did not.
  const json review = LoadGolden("admission-review-2");
  json pod = RequestBody(LoadGolden("61-create-gpu-pod-admitted-real"));
  ApplyDecodeDefaults("", "Pod", pod);
  ApplyAdmissionDefaults("", "Pod", pod);
  const json& sent = review.at("review").at("request").at("object");
  EXPECT_EQ(pod.at("spec"), sent.at("spec"));
  EXPECT_FALSE(pod.contains("status"));
}

TEST(DefaultsTest, ImagePullPolicyFollowsTheTag) {
  struct Case {
    const char* image;
    const char* policy;
  };
  for (const Case& c :
       {Case{"nginx", "Always"}, Case{"nginx:latest", "Always"}, Case{"nginx:1.19", "IfNotPresent"},
        Case{"registry:5000/team/app", "Always"}, Case{"registry:5000/team/app:2", "IfNotPresent"},
        Case{"app@sha256:0123456789abcdef", "IfNotPresent"}}) {
    json pod = {{"spec", {{"containers", {{{"name", "c"}, {"image", c.image}}}}}}};
    ApplyDecodeDefaults("", "Pod", pod);
    EXPECT_EQ(pod["spec"]["containers"][0]["imagePullPolicy"], c.policy) << c.image;
  }
}

TEST(DefaultsTest, ExplicitValuesAreKept) {
  json pod = json::parse(R"({"spec":{"restartPolicy":"Never","dnsPolicy":"Default",
      "terminationGracePeriodSeconds":5,"containers":[{"name":"c","image":"a:1",
      "imagePullPolicy":"Never","ports":[{"containerPort":80,"protocol":"UDP"}]}]}})");
  ApplyDefaults("", "Pod", pod);
  EXPECT_EQ(pod["spec"]["restartPolicy"], "Never");
  EXPECT_EQ(pod["spec"]["dnsPolicy"], "Default");
  EXPECT_EQ(pod["spec"]["terminationGracePeriodSeconds"], 5);
  EXPECT_EQ(pod["spec"]["containers"][0]["imagePullPolicy"], "Never");
  EXPECT_EQ(pod["spec"]["containers"][0]["ports"][0]["protocol"], "UDP");
}

TEST(DefaultsTest, ContainerDetailsAreDefaulted) {
  json pod = json::parse(R"({"spec":{"containers":[{"name":"c","image":"a:1",
      "ports":[{"containerPort":80}],
      "env":[{"name":"NODE","valueFrom":{"fieldRef":{"fieldPath":"spec.nodeName"}}}],
      "livenessProbe":{"httpGet":{"port":80}}}],
      "volumes":[{"name":"scratch"},{"name":"cfg","configMap":{"name":"x"}}]}})");
  ApplyDecodeDefaults("", "Pod", pod);
  const json& c = pod["spec"]["containers"][0];
  EXPECT_EQ(c["ports"][0]["protocol"], "TCP");
  EXPECT_EQ(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
  EXPECT_EQ(c["livenessProbe"], json::parse(R"({"httpGet":{"port":80,"path":"/","scheme":"HTTP"},
      "timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3})"));
  EXPECT_EQ(c["resources"], json::object());
  EXPECT_EQ(pod["spec"]["volumes"][0], json::parse(R"({"name":"scratch","emptyDir":{}})"));
  EXPECT_EQ(pod["spec"]["volumes"][1]["configMap"]["defaultMode"], 420);
}

TEST(DefaultsTest, EmptyOmitemptyFieldsAreDropped) {
  json pod = json::parse(R"({"metadata":{"labels":{},"finalizers":[]},
      "spec":{"volumes":[],"containers":[{"name":"c","image":"a:1","env":[],
      "resources":{"limits":{}}}]}})");
  ApplyDecodeDefaults("", "Pod", pod);
  EXPECT_FALSE(pod["metadata"].contains("labels"));
  EXPECT_FALSE(pod["metadata"].contains("finalizers"));
  EXPECT_FALSE(pod["spec"].contains("volumes"));
  EXPECT_FALSE(pod["spec"]["containers"][0].contains("env"));
  EXPECT_EQ(pod["spec"]["containers"][0]["resources"], json::object());
}

TEST(DefaultsTest, ExistingTolerationsSuppressTheDefaults) {
  json pod = json::parse(R"({"spec":{"containers":[{"name":"c","image":"a:1"}],
      "tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists",
      "effect":"NoExecute","tolerationSeconds":10}]}})");
  ApplyDefaults("", "Pod", pod);
  const json& tolerations = pod["spec"]["tolerations"];
  ASSERT_EQ(tolerations.size(), 2u);
  EXPECT_EQ(tolerations[0]["tolerationSeconds"], 10);
  EXPECT_EQ(tolerations[1]["key"], "node.kubernetes.io/unreachable");

  json tolerates_all = json::parse(R"({"spec":{"containers":[{"name":"c","image":"a:1"}],
      "tolerations":[{"operator":"Exists"}]}})");
  ApplyDefaults("", "Pod", tolerates_all);
  EXPECT_EQ(tolerates_all["spec"]["tolerations"].size(), 1u);
}

// Without a server, the Priority plugin knows the system classes only; the
// server resolves the others (and refuses unknown ones) before this runs.
TEST(DefaultsTest, PriorityComesFromTheBuiltInClasses) {
  json pod = json::parse(R"({"spec":{"priorityClassName":"system-node-critical",
      "containers":[{"name":"c","image":"a:1"}]}})");
  ApplyDefaults("", "Pod", pod);
  EXPECT_EQ(pod["spec"]["priority"], 2000001000);
  EXPECT_EQ(pod["spec"]["preemptionPolicy"], "PreemptLowerPriority");
  EXPECT_EQ(pod["spec"]["serviceAccountName"], "default");
  EXPECT_EQ(pod["spec"]["serviceAccount"], "default");

  json other = json::parse(R"({"spec":{"priorityClassName":"batch",
      "containers":[{"name":"c","image":"a:1"}]}})");
  ApplyDefaults("", "Pod", other);
  EXPECT_EQ(other["spec"]["priority"], 0);
  json kept = json::parse(R"({"spec":{"priority":7,"preemptionPolicy":"Never",
      "containers":[{"name":"c","image":"a:1"}]}})");
  ApplyDefaults("", "Pod", kept);
  EXPECT_EQ(kept["spec"]["priority"], 7);
  EXPECT_EQ(kept["spec"]["preemptionPolicy"], "Never");
}

TEST(DefaultsTest, PriorityClassDefaultsAsGoRendersIt) {
  json pc = json::parse(R"({"metadata":{"name":"x"},"globalDefault":false,"description":""})");
  ApplyDefaults("scheduling.k8s.io", "PriorityClass", pc);
  EXPECT_EQ(pc, json::parse(R"({"metadata":{"name":"x"},"value":0,
      "preemptionPolicy":"PreemptLowerPriority"})"));
}

TEST(DefaultsTest, QosClass) {
  struct Case {
    const char* spec;
    const char* qos;
  };
  for (const Case& c : {
           Case{R"({"containers":[{"name":"a"}]})", "BestEffort"},
           Case{R"({"containers":[{"name":"a","resources":{"limits":{"nvidia.com/gpu":"1"}}}]})",
                "BestEffort"},
           Case{R"({"containers":[{"name":"a","resources":{"limits":{"cpu":"1","memory":"1Gi"},
                "requests":{"cpu":"1","memory":"1Gi"}}}]})",
                "Guaranteed"},
           Case{R"({"containers":[{"name":"a","resources":{"limits":{"cpu":"1000m",
                "memory":"1024Mi"},"requests":{"cpu":"1","memory":"1Gi"}}}]})",
                "Guaranteed"},
           Case{R"({"containers":[{"name":"a","resources":{"limits":{"cpu":"1","memory":"1Gi"},
                "requests":{"cpu":"500m","memory":"1Gi"}}}]})",
                "Burstable"},
           Case{R"({"containers":[{"name":"a","resources":{"limits":{"cpu":"1"}}}]})", "Burstable"},
           Case{R"({"containers":[{"name":"a","resources":{"limits":{"cpu":"1","memory":"1Gi"},
                "requests":{"cpu":"1","memory":"1Gi"}}},{"name":"b"}]})",
                "Burstable"},
       }) {
    EXPECT_EQ(PodQosClass(json::parse(c.spec)), c.qos) << c.spec;
  }
}

TEST(DefaultsTest, DeploymentDefaults) {
  json d = json::parse(R"({"spec":{"selector":{"matchLabels":{"a":"b"}},
      "template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"x"}]}}}})");
  ApplyDefaults("apps", "Deployment", d);
  EXPECT_EQ(d["spec"]["replicas"], 1);
  EXPECT_EQ(d["spec"]["strategy"], json::parse(R"({"type":"RollingUpdate",
      "rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}})"));
  EXPECT_EQ(d["spec"]["revisionHistoryLimit"], 10);
  EXPECT_EQ(d["spec"]["progressDeadlineSeconds"], 600);
  EXPECT_EQ(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
  EXPECT_EQ(d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "Always");
  EXPECT_FALSE(d["spec"]["template"]["spec"].contains("tolerations"));  // admission is pods-only
}

TEST(DefaultsTest, UnknownKindsAreUntouched) {
  const json cr = RequestBody(LoadGolden("52-create-cr"));
  json copy = cr;
  ApplyDefaults("example.gpuautoscaler.io", "Widget", copy);
  EXPECT_EQ(copy, cr);
}

TEST(DefaultsTest, MarkCrdEstablished) {
  json crd = ResponseBody(LoadGolden("50-create-crd"));
  MarkCrdEstablished(crd, "2026-11-22T08:17:50Z");
  EXPECT_EQ(crd["status"]["acceptedNames"], crd["spec"]["names"]);
  ASSERT_EQ(crd["status"]["conditions"].size(), 2u);
  EXPECT_EQ(crd["status"]["conditions"][1]["type"], "Established");
  EXPECT_EQ(crd["status"]["conditions"][1]["status"], "True");
  EXPECT_EQ(crd["status"]["storedVersions"], json::parse(R"(["v1alpha1"])"));
}

TEST(DefaultsTest, TracksGeneration) {
  EXPECT_FALSE(TracksGeneration("", "Pod"));
  EXPECT_FALSE(TracksGeneration("coordination.k8s.io", "Lease"));
  EXPECT_TRUE(TracksGeneration("policy", "PodDisruptionBudget"));
  EXPECT_TRUE(TracksGeneration("apiextensions.k8s.io", "CustomResourceDefinition"));
  EXPECT_TRUE(TracksGeneration("example.gpuautoscaler.io", "Widget"));
}

}  // namespace
}  // namespace gpu_autoscaler::apiserver
