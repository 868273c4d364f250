// File: controllers/node_pool_providers.h
//
// The one place a GPUNodePool's spec.provider.type becomes a
// cloud::NodeGroupProvider. "simulated" builds the in-memory cloud
// (src/cloud/simulated_provider.h) with one group per (instance type, tier)
// offering; the real clouds are built from the spec's location fields and the
// credentials Secret (docs/providers/): aws-asg from aws_access_key_id /
// aws_secret_access_key [/ aws_session_token], else the ambient chain (IRSA,
// shared file, IMDS); gcp-mig from key.json, else the metadata server;
// azure-vmss from tenant_id / client_id / client_secret, else the managed
// identity; cluster-api through the manager's own client. Optional keys
// `endpoint` and `ca.crt` point a provider at a private endpoint (or a test
// double) and the CA it presents.
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
