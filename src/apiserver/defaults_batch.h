// File: src/apiserver/defaults_batch.h
//
// batch/v1 Job defaulting and the Job strategy's selector generation, as
// kube-apiserver v1.20 has them (pkg/apis/batch/v1/defaults.go,
// pkg/registry/batch/job/strategy.go). defaults.cc calls these from its
// stages; not part of the interface: include defaults.h.
//
//   DecodeDefaultsJob(job);        // completions/parallelism 1, backoffLimit 6, labels
//   GenerateJobSelector(job);      // after metadata.uid is set, before validation
//
// Thread-safety: pure functions over caller-owned JSON.
#pragma once

#include <nlohmann/json_fwd.hpp>

namespace gpu_autoscaler::apiserver::defaults_internal {

// SetDefaults_Job: with neither completions nor parallelism both become 1,
// else parallelism 1; backoffLimit 6; an object without labels takes its pod
// template's labels.
void DecodeDefaultsJob(nlohmann::json& job);

// generateSelector (unless spec.manualSelector is true): the template gets
// the labels controller-uid=<metadata.uid> and job-name=<metadata.name>
// (unless it sets them itself, which validation then judges) and
// spec.selector.matchLabels gets controller-uid. An object still without
// labels then shows the generated ones, as the real server's read-back
// defaulting gives it.
void GenerateJobSelector(nlohmann::json& job);

}  // namespace gpu_autoscaler::apiserver::defaults_internal
