// File: controllers/node_pool_providers.h
//
// The one place a GPUNodePool's spec.provider.type becomes a
// cloud::NodeGroupProvider. "simulated" builds the in-memory cloud
// (src/cloud/simulated_provider.h) with one group per (instance type, tier)
// offering; the real clouds (aws-asg, gcp-mig, azure-vmss, cluster-api) plug
// in here: add a case to BuildNodeGroupProvider that constructs the provider
// from the spec's location fields and the credentials Secret.
//
//   auto provider = BuildNodeGroupProvider(parsed, {.client = &client, .clock = &clock});
//   if (!provider.ok()) ... ProviderError condition with the message ...
//
// Thread-safety: BuildNodeGroupProvider is reentrant; the providers are thread-safe.
#pragma once

#include <memory>

#include "cloud/node_group.h"
#include "common/clock.h"
#include "controllers/gpu_node_pool_spec.h"

namespace gpu_autoscaler::kube {
class RestClient;
}

namespace gpu_autoscaler::controllers {

class SecretData;

struct ProviderContext {
  kube::RestClient* client = nullptr;  // for Cluster API, and the simulated cloud's Nodes
  Clock* clock = nullptr;              // the simulated cloud's provisioning delay
  const SecretData* secret = nullptr;  // the credentials Secret; null: ambient credentials
};

// Unimplemented when the type is known but its provider is not built in.
Result<std::shared_ptr<cloud::NodeGroupProvider>> BuildNodeGroupProvider(
    const ParsedNodePool& pool, const ProviderContext& context);

}  // namespace gpu_autoscaler::controllers
