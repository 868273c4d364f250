// File: src/api/resources.h
//
// The project's custom resources as the API client addresses them (group,
// version, plural, scope), for the manager, the webhook, the node agent and
// the CLI. The schemas are in crds/.
//
//   auto budgets = client->List(kube::ObjectRef{api::kBudgets, ns});
//
// Thread-safety: constants only.
#pragma once

#include "kube/resource.h"

namespace gpu_autoscaler::api {

inline const kube::GroupVersionResource kBudgets{"gpuautoscaler.io", "v1alpha1", "budgets",
                                                 /*namespaced=*/true};
// The cluster-scoped Budget (crds/clusterbudget.yaml): same spec and status.
inline const kube::GroupVersionResource kClusterBudgets{"gpuautoscaler.io", "v1alpha1",
                                                        "clusterbudgets", /*namespaced=*/false};
inline const kube::GroupVersionResource kGpuSharingPolicies{
    "gpuautoscaler.io", "v1alpha1", "gpusharingpolicies", /*namespaced=*/false};
// GPU node pools the autoscaler grows and shrinks (crds/gpunodepool.yaml).
inline const kube::GroupVersionResource kGpuNodePools{"gpuautoscaler.io", "v1alpha1",
                                                      "gpunodepools", /*namespaced=*/false};
// One per node, named after it, written by the node agent (crds/noderesourcereport.yaml).
inline const kube::GroupVersionResource kNodeResourceReports{
    "gpuautoscaler.io", "v1alpha1", "noderesourcereports", /*namespaced=*/false};
// Rescheduling: defragmentation and usage balancing (crds/reschedulepolicy.yaml).
inline const kube::GroupVersionResource kReschedulePolicies{
    "gpuautoscaler.io", "v1alpha1", "reschedulepolicies", /*namespaced=*/false};

// Profiled workloads and their recommendations (crds/serviceprofile.yaml).
inline const kube::GroupVersionResource kServiceProfiles{"gpuautoscaler.io", "v1alpha1",
                                                         "serviceprofiles", /*namespaced=*/true};

}  // namespace gpu_autoscaler::api
