// File: bench/pod_fixture.h
//
// Realistic GPU pod JSON for the informer benchmarks: what kube-apiserver
// returns for a training pod owned by a Job (6 labels, 4 annotations, one or
// two containers with env, mounts and GPU requests, managedFields, status
// with conditions and container statuses; about 5 KB each).
//
//   std::string list = PodListJson(0, 10'000, "123456", "");
//   nlohmann::json body = PodCreateBody(42, "bench-ns-3");  // for POST,
//                                       // after BatchHighPriorityClass()
//
// Deterministic: pod i is always the same bytes.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace gpu_autoscaler::bench {

// splitmix64: a stable pseudo-random number per index, for every fixture.
uint64_t Mix(uint64_t x);

// Namespace of pod `index` ("team-0" .. "team-19").
std::string PodNamespace(int index, int namespaces = 20);
std::string PodName(int index);

// The pod as a GET/LIST returns it (server-populated fields included).
nlohmann::json PodObject(int index);
// The pod as a client creates it (no uid, status or managedFields). It names
// PriorityClass "batch-high" and sends its priority: create
// BatchHighPriorityClass() first, or the Priority admission plugin refuses it.
nlohmann::json PodCreateBody(int index, const std::string& ns);
// PriorityClass "batch-high" (value 1000, PreemptLowerPriority), for POST.
nlohmann::json BatchHighPriorityClass();

// A PodList of pods [first, first + count).
std::string PodListJson(int first, int count, const std::string& resource_version,
                        const std::string& continue_token);

}  // namespace gpu_autoscaler::bench
