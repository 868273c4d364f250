// The decoder's field types for built-in kinds: what each JSON type decodes
// into, in Go's words, and that what the project's programs write decodes.
#include "apiserver/builtin_decode.h"

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;

std::string Why(std::string_view group, std::string_view kind, const char* text) {
  return BuiltinDecodeError(group, kind, json::parse(text)).value_or("");
}

TEST(BuiltinDecode, WellTypedObjectsDecode) {
  EXPECT_EQ(Why("coordination.k8s.io", "Lease",
                R"({"metadata":{"name":"l","labels":{"a":"b"},"generation":3},
                    "spec":{"holderIdentity":"m","leaseDurationSeconds":15,
                            "renewTime":"2026-12-05T10:00:00.000000Z","leaseTransitions":0}})"),
            "");
  EXPECT_EQ(Why("", "Pod", R"({"metadata":{"name":"p","ownerReferences":[{"kind":"Job",
                    "name":"j","uid":"u","controller":true}]},
                    "spec":{"priority":-5,"terminationGracePeriodSeconds":30,
                            "containers":[{"name":"c","image":"i","args":["a"],
                              "ports":[{"containerPort":8080}],
                              "resources":{"limits":{"nvidia.com/gpu":1}},
                              "env":[{"name":"X","value":"1"}]}],
                            "tolerations":[{"key":"k","operator":"Exists",
                                            "tolerationSeconds":300}]},
                    "status":{"phase":"Running"}})"),
            "");
  EXPECT_EQ(Why("policy", "PodDisruptionBudget",
                R"({"spec":{"minAvailable":"50%","maxUnavailable":null}})"),
            "");
  EXPECT_EQ(Why("policy", "PodDisruptionBudget", R"({"spec":{"minAvailable":2}})"), "");
  // Null decodes into anything, as in Go.
  EXPECT_EQ(Why("", "ConfigMap", R"({"metadata":{"labels":null},"data":{"k":null}})"), "");
  // Kinds without a table still have their metadata checked.
  EXPECT_EQ(Why("apps", "Deployment", R"({"metadata":{"name":"d"},"spec":{"anything":1}})"), "");
}

TEST(BuiltinDecode, EachMismatchIsNamedAsGoNamesIt) {
  struct Case {
    const char* group;
    const char* kind;
    const char* object;
    const char* message;
  };
  const Case cases[] = {
      {"coordination.k8s.io", "Lease", R"({"spec":{"leaseDurationSeconds":"15"}})",
       "json: cannot unmarshal string into Go struct field LeaseSpec.spec.leaseDurationSeconds "
       "of type int32"},
      {"coordination.k8s.io", "Lease", R"({"spec":{"leaseDurationSeconds":2147483648}})",
       "json: cannot unmarshal number 2147483648 into Go struct field "
       "LeaseSpec.spec.leaseDurationSeconds of type int32"},
      {"coordination.k8s.io", "Lease", R"({"spec":{"leaseTransitions":-2147483649}})",
       "json: cannot unmarshal number -2147483649 into Go struct field "
       "LeaseSpec.spec.leaseTransitions of type int32"},
      {"coordination.k8s.io", "Lease", R"({"spec":[]})",
       "json: cannot unmarshal array into Go struct field Lease.spec of type v1.LeaseSpec"},
      {"coordination.k8s.io", "Lease", R"({"spec":{"renewTime":17}})",
       "json: cannot unmarshal number into Go struct field LeaseSpec.spec.renewTime of type "
       "v1.MicroTime"},
      {"", "ConfigMap", R"({"metadata":"m"})",
       "json: cannot unmarshal string into Go struct field ConfigMap.metadata of type "
       "v1.ObjectMeta"},
      {"", "ConfigMap", R"({"metadata":{"annotations":{"a":true}}})",
       "json: cannot unmarshal bool into Go struct field ObjectMeta.metadata.annotations of type "
       "string"},
      {"", "ConfigMap", R"({"metadata":{"finalizers":["a",1]}})",
       "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.finalizers of "
       "type string"},
      {"", "ConfigMap", R"({"metadata":{"generation":1e3}})",
       "json: cannot unmarshal number 1000.0 into Go struct field ObjectMeta.metadata.generation "
       "of type int64"},
      {"", "ConfigMap", R"({"metadata":{"ownerReferences":[{"controller":"yes"}]}})",
       "json: cannot unmarshal string into Go struct field "
       "OwnerReference.metadata.ownerReferences.controller of type bool"},
      {"", "ConfigMap", R"({"data":["a"]})",
       "json: cannot unmarshal array into Go struct field ConfigMap.data of type "
       "map[string]string"},
      {"", "Secret", R"({"data":{"k":1}})",
       "json: cannot unmarshal number into Go struct field Secret.data of type string"},
      {"", "Pod", R"({"spec":{"containers":["c"]}})",
       "json: cannot unmarshal string into Go struct field PodSpec.spec.containers of type "
       "v1.Container"},
      {"", "Pod", R"({"spec":{"containers":[{"name":"a"},{"ports":[{"containerPort":"80"}]}]}})",
       "json: cannot unmarshal string into Go struct field "
       "ContainerPort.spec.containers.ports.containerPort of type int32"},
      {"", "Pod", R"({"spec":{"initContainers":[{"args":"--x"}]}})",
       "json: cannot unmarshal string into Go struct field Container.spec.initContainers.args "
       "of type []string"},
      {"", "Pod", R"({"spec":{"priority":"high"}})",
       "json: cannot unmarshal string into Go struct field PodSpec.spec.priority of type int32"},
      {"", "Pod", R"({"status":{"phase":1}})",
       "json: cannot unmarshal number into Go struct field PodStatus.status.phase of type "
       "v1.PodPhase"},
      {"", "Node", R"({"spec":{"unschedulable":"true"}})",
       "json: cannot unmarshal string into Go struct field NodeSpec.spec.unschedulable of type "
       "bool"},
      {"", "Node", R"({"spec":{"taints":[{"effect":["NoSchedule"]}]}})",
       "json: cannot unmarshal array into Go struct field Taint.spec.taints.effect of type "
       "v1.TaintEffect"},
      {"scheduling.k8s.io", "PriorityClass", R"({"value":3000000000})",
       "json: cannot unmarshal number 3000000000 into Go struct field PriorityClass.value of "
       "type int32"},
      {"scheduling.k8s.io", "PriorityClass", R"({"globalDefault":"yes"})",
       "json: cannot unmarshal string into Go struct field PriorityClass.globalDefault of type "
       "bool"},
      {"", "Event", R"({"count":"2"})",
       "json: cannot unmarshal string into Go struct field Event.count of type int32"},
      {"", "Event", R"({"involvedObject":{"name":3}})",
       "json: cannot unmarshal number into Go struct field ObjectReference.involvedObject.name "
       "of type string"},
      {"policy", "PodDisruptionBudget", R"({"spec":{"minAvailable":1.5}})",
       "json: cannot unmarshal number 1.5 into Go struct field "
       "PodDisruptionBudgetSpec.spec.minAvailable of type intstr.IntOrString"},
      {"policy", "PodDisruptionBudget", R"({"spec":{"selector":{"matchLabels":{"a":1}}}})",
       "json: cannot unmarshal number into Go struct field LabelSelector.spec.selector."
       "matchLabels of type string"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Why(c.group, c.kind, c.object), c.message) << c.object;
  }
}

TEST(BuiltinDecode, MetadataComesFirstAndOnlyOneMismatchIsReported) {
  EXPECT_EQ(Why("coordination.k8s.io", "Lease",
                R"({"spec":{"leaseDurationSeconds":"x"},"metadata":{"name":5}})"),
            "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.name of type "
            "string");
}

}  // namespace
}  // namespace gpu_autoscaler::apiserver
