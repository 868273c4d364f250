// File: tests/support/crd_apply.h
//
// Applies a CustomResourceDefinition (server-side apply, forced) and waits
// until it is Established, as `kubectl apply` then `kubectl wait
// --for=condition=Established` would: tests that need a CRD on a real cluster
// create it themselves.
//
//   ASSERT_TRUE(testing::ApplyCrdAndWait(*client, crd_json).ok());
//
// Thread-safety: as the client.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace gpu_autoscaler::kube {
class RestClient;
}

namespace gpu_autoscaler::testing {

Status ApplyCrdAndWait(kube::RestClient& client, const nlohmann::json& crd);

}  // namespace gpu_autoscaler::testing
