// File: src/api/annotations.h
//
// One home for the API: the annotation and label keys that more than one part
// of gpu-autoscaler reads or writes (the admission webhook, the manager's
// controllers, the scheduler, the node agent, the CLI). Other headers that
// name a key (webhooks/mutate.h, cost/metering.h) alias these constants.
//
//   if (pod.annotations[std::string(api::kBudgetExemptAnnotation)] == api::kTrue) ...
//   labels[std::string(api::kNamespaceNameLabel)] = ns;
//
// Thread-safety: constants only.
#pragma once

#include <string_view>

namespace gpu_autoscaler::api {

// The value that switches a boolean annotation or label on. Anything else
// (including "True", "yes", "1") is off: exemptions must be spelt exactly.
inline constexpr std::string_view kTrue = "true";

// Budgets (crds/budget.yaml, docs/webhooks.md "Budget enforcement").
// Pod annotation: this pod is never denied by a blockNewGPUPods Budget.
inline constexpr std::string_view kBudgetExemptAnnotation = "gpuautoscaler.io/budget-exempt";
// Namespace label: no pod of this namespace is denied by a Budget.
inline constexpr std::string_view kBudgetExemptNamespaceLabel = "gpuautoscaler.io/budget-exempt";

// GPU sharing (docs/webhooks.md): what pods ask for and what admission decided.
inline constexpr std::string_view kSharingAnnotation = "gpuautoscaler.io/sharing";
inline constexpr std::string_view kGpuMemoryAnnotation = "gpuautoscaler.io/gpu-memory";
inline constexpr std::string_view kGpuComputeAnnotation = "gpuautoscaler.io/gpu-compute";
inline constexpr std::string_view kPolicyAnnotation = "gpuautoscaler.io/policy";
inline constexpr std::string_view kModeAnnotation = "gpuautoscaler.io/mode";
inline constexpr std::string_view kMigProfileAnnotation = "gpuautoscaler.io/mig-profile";
inline constexpr std::string_view kOriginalRequestAnnotation = "gpuautoscaler.io/original-request";
// Time-slicing replicas (or MPS clients) per GPU that admission decided.
inline constexpr std::string_view kReplicasAnnotation = "gpuautoscaler.io/replicas";
inline constexpr std::string_view kMpsThreadPercentageAnnotation =
    "gpuautoscaler.io/mps-thread-percentage";

// Profiles (docs/profiling.md). Written by admission on a pod whose
// requests it set from a ServiceProfile's recommendation: the profile's name,
// and the container requests and limits the pod was created with, as JSON
// {"<container>":{"requests":{"cpu":"2"},"limits":{"cpu":"4"}}}.
inline constexpr std::string_view kServiceProfileAnnotation = "gpuautoscaler.io/service-profile";
inline constexpr std::string_view kOriginalResourcesAnnotation =
    "gpuautoscaler.io/original-resources";

// Scheduling (docs/scheduler.md). Written by gpu-autoscaler-scheduler in the
// Binding, so the pod gets it together with spec.nodeName; the node agent
// exposes exactly these GPUs to the pod. On a pending pod the annotation asks
// for these GPU indices (a pin, like HAMi's nvidia.com/use-gpuuuid).
inline constexpr std::string_view kGpuIndicesAnnotation = "gpuautoscaler.io/gpu-indices";
// The scheduler's policy and score for the chosen node, for `kubectl describe`.
inline constexpr std::string_view kPlacementAnnotation = "gpuautoscaler.io/placement";
// Gang scheduling: pods with the same group (in one namespace) are bound all
// or none. Volcano's key is honoured too; the minimum member count comes from
// kPodGroupMinMemberAnnotation (default: every pod of the group seen pending).
inline constexpr std::string_view kPodGroupAnnotation = "gpuautoscaler.io/pod-group";
inline constexpr std::string_view kVolcanoPodGroupAnnotation = "scheduling.k8s.io/group-name";
inline constexpr std::string_view kPodGroupMinMemberAnnotation =
    "gpuautoscaler.io/pod-group-min-member";
// Node label: the NVLink islands of the node's GPUs. Islands are separated
// by '_', members by '.', ranges use '-' ("0-3_4-7", "0.2_1.3"), so the value
// is a valid label value. The node agent writes it from NVML's topology.
inline constexpr std::string_view kNvlinkIslandsLabel = "gpuautoscaler.io/nvlink-islands";

// Autoscaling (docs/autoscaling.md). Pod annotation: the autoscaler never
// voluntarily disrupts this pod's node (consolidation, a scaleDownSpot
// Budget) and never evicts the pod while draining. The key is the issue's
// (Karpenter's karpenter.sh/do-not-disrupt under our name).
inline constexpr std::string_view kDoNotDisruptAnnotation = "gpu-autoscaler.io/do-not-disrupt";
// Node label: the GPUNodePool a node belongs to (written by the simulated
// cloud; real providers' nodes are matched by spec.providerID). As a pod's
// nodeSelector key it names the pool that serves the pod; without one a
// pending pod goes to the first pool (by name) whose GPU model it accepts.
inline constexpr std::string_view kNodePoolLabel = "gpuautoscaler.io/node-pool";
// Node taint the controller puts on a node it drains (value: the reason).
inline constexpr std::string_view kDisruptionTaint = "gpu-autoscaler.io/disruption";

// Spot interruption (docs/autoscaling.md). The node agent taints a node whose
// cloud announced its end (NoSchedule, value: the notice kind) and records the
// notice ("<kind> <not-after RFC 3339>") so the GPUNodePool controller can
// order replacement capacity at once. The names are the issue's, with a hyphen.
inline constexpr std::string_view kInterruptionTaintKey = "gpu-autoscaler.io/interruption";
inline constexpr std::string_view kInterruptionNoticeAnnotation =
    "gpu-autoscaler.io/interruption-notice";

// PSI evictions of the node agent, written on its Node before each Eviction
// call (JSON: [{"uid": "...", "pod": "ns/name", "at": <unix seconds>}], those
// within the rate window), so a restarted agent keeps the rate limit.
inline constexpr std::string_view kPressureEvictionsAnnotation =
    "gpuautoscaler.io/pressure-evictions";

// The simulated fleet (`gpu-autoscaler fleet`, docs/scheduler.md). Pod
// annotation: the usage the fleet's cAdvisor-style /metrics reports for the
// pod's containers, "cpu=0.3,memory=600Mi" for every container or
// "server:cpu=0.3;sidecar:memory=64Mi" per container (src/fleet/usage_annotation.h).
inline constexpr std::string_view kFleetUsageAnnotation = "gpuautoscaler.io/fleet-usage";
// KWOK's marker of a fake node (kwok.x-k8s.io/node: fake): the fleet plays
// the kubelet for such nodes.
inline constexpr std::string_view kKwokNodeAnnotation = "kwok.x-k8s.io/node";
inline constexpr std::string_view kKwokNodeAnnotationValue = "fake";

// Set by kube-apiserver on every namespace (Kubernetes >= 1.21); cannot be
// forged by a label edit.
inline constexpr std::string_view kNamespaceNameLabel = "kubernetes.io/metadata.name";

}  // namespace gpu_autoscaler::api
