#include "controllers/node_pool_providers.h"

#include "api/annotations.h"
#include "cloud/aws_asg.h"
#include "cloud/aws_credentials.h"
#include "cloud/azure_auth.h"
#include "cloud/azure_vmss.h"
#include "cloud/cloud_http.h"
#include "cloud/cluster_api.h"
#include "cloud/gcp_auth.h"
#include "cloud/gcp_mig.h"
#include "cloud/simulated_provider.h"
#include "controllers/secret_data.h"

namespace gpu_autoscaler::controllers {
namespace {

cloud::Lifecycle LifecycleOf(autoscale::CapacityTier tier) {
  switch (tier) {
    case autoscale::CapacityTier::kSpot:
      return cloud::Lifecycle::kSpot;
    case autoscale::CapacityTier::kReserved:
      return cloud::Lifecycle::kReserved;
    case autoscale::CapacityTier::kOnDemand:
      return cloud::Lifecycle::kOnDemand;
  }
  return cloud::Lifecycle::kUnknown;
}

std::shared_ptr<cloud::NodeGroupProvider> BuildSimulated(const ParsedNodePool& pool,
                                                         const ProviderContext& context) {
  auto cloud = std::make_shared<cloud::SimulatedCloud>(
      context.client, *context.clock,
      cloud::SimulatedCloudOptions{
          .zone = pool.provider.zone.empty() ? "sim-a" : pool.provider.zone,
          .provisioning_delay = pool.provider.provisioning_delay});
  for (size_t i = 0; i < pool.spec.instance_types.size(); ++i) {
    const autoscale::PoolInstanceType& it = pool.spec.instance_types[i];
    for (int t = 0; t < autoscale::kTierCount; ++t) {
      const auto tier = static_cast<autoscale::CapacityTier>(t);
      const std::string& group = pool.provider.Group(static_cast<int>(i), tier);
      if (group.empty()) continue;
      cloud->AddGroup({.name = group,
                       .instance_type = it.name,
                       .gpu_model = it.gpu_model,
                       .gpu_count = it.gpu_count,
                       .cpu_milli = it.cpu_milli,
                       .memory_mib = it.memory_mib,
                       .max_pods = it.max_pods,
                       .lifecycle = LifecycleOf(tier),
                       .min = 0,
                       .max = std::max(pool.spec.max_nodes, 0),
                       .labels = {{std::string(api::kNodePoolLabel), pool.spec.name}}});
    }
  }
  for (const std::string& group : pool.provider.simulated_capacity_errors)
    cloud->SetCapacityError(group, true);
  for (const std::string& group : pool.provider.simulated_launch_failures)
    cloud->SetLaunchFailure(group, true);
  return cloud;
}

// A key of the credentials Secret, "" without a Secret or the key.
Result<std::string> SecretValue(const ProviderContext& context, std::string_view key) {
  if (context.secret == nullptr) return std::string();
  return context.secret->Value(key, /*required=*/false);
}

Result<std::shared_ptr<cloud::NodeGroupProvider>> BuildAws(const ParsedNodePool& pool,
                                                           const ProviderContext& context) {
  const std::string& region = pool.provider.region;
  if (region.empty()) return InvalidArgumentError("aws-asg needs spec.provider.region");
  GPU_ASSIGN_OR_RETURN(std::string key_id, SecretValue(context, "aws_access_key_id"));
  GPU_ASSIGN_OR_RETURN(std::string secret_key, SecretValue(context, "aws_secret_access_key"));
  GPU_ASSIGN_OR_RETURN(std::string session, SecretValue(context, "aws_session_token"));
  GPU_ASSIGN_OR_RETURN(std::string endpoint, SecretValue(context, "endpoint"));
  GPU_ASSIGN_OR_RETURN(std::string ca_pem, SecretValue(context, "ca.crt"));
  cloud::AwsAsgOptions options{.region = region, .endpoint = endpoint};
  const std::string api =
      endpoint.empty() ? "https://autoscaling." + region + ".amazonaws.com" : endpoint;
  GPU_ASSIGN_OR_RETURN(auto transport, cloud::NewCloudTransport(api, ca_pem));
  std::shared_ptr<cloud::AwsCredentialsProvider> credentials;
  if (!key_id.empty() || !secret_key.empty()) {
    if (key_id.empty() || secret_key.empty()) {
      return InvalidArgumentError(
          "the credentials Secret needs both aws_access_key_id and aws_secret_access_key");
    }
    credentials =
        cloud::StaticAwsCredentials({key_id, secret_key, session, std::nullopt, "secret"});
  } else {
    // IRSA, the shared file or the instance profile, as the AWS SDKs look.
    cloud::AwsCredentialChainOptions chain{.region = region};
    GPU_ASSIGN_OR_RETURN(chain.sts_transport,
                         cloud::NewCloudTransport("https://sts." + region + ".amazonaws.com"));
    GPU_ASSIGN_OR_RETURN(chain.imds_transport, cloud::NewCloudTransport("http://169.254.169.254"));
    credentials = cloud::NewAwsCredentialChain(std::move(chain));
  }
  GPU_ASSIGN_OR_RETURN(auto provider,
                       cloud::NewAwsAsgProvider(options, transport, std::move(credentials)));
  return std::shared_ptr<cloud::NodeGroupProvider>(std::move(provider));
}

Result<std::shared_ptr<cloud::NodeGroupProvider>> BuildGcp(const ParsedNodePool& pool,
                                                           const ProviderContext& context) {
  if (context.clock == nullptr) return InvalidArgumentError("gcp-mig needs a clock");
  GPU_ASSIGN_OR_RETURN(std::string key_json, SecretValue(context, "key.json"));
  GPU_ASSIGN_OR_RETURN(std::string endpoint, SecretValue(context, "endpoint"));
  GPU_ASSIGN_OR_RETURN(std::string ca_pem, SecretValue(context, "ca.crt"));
  cloud::GcpMigOptions options{.project = pool.provider.project, .zone = pool.provider.zone};
  if (!endpoint.empty()) options.compute_endpoint = endpoint;
  GPU_ASSIGN_OR_RETURN(auto transport, cloud::NewCloudTransport(options.compute_endpoint, ca_pem));
  std::shared_ptr<cloud::AccessTokenSource> tokens;
  if (!key_json.empty()) {
    GPU_ASSIGN_OR_RETURN(cloud::GcpServiceAccountKey key,
                         cloud::ParseGcpServiceAccountKey(key_json));
    GPU_ASSIGN_OR_RETURN(auto token_transport, cloud::NewCloudTransport(key.token_uri, ca_pem));
    tokens =
        cloud::NewGcpServiceAccountTokenSource(std::move(key), token_transport, *context.clock);
  } else {  // Workload Identity or the node's service account
    GPU_ASSIGN_OR_RETURN(auto metadata,
                         cloud::NewCloudTransport("http://metadata.google.internal"));
    tokens = cloud::NewGcpMetadataTokenSource("http://metadata.google.internal", metadata,
                                              *context.clock);
  }
  return std::shared_ptr<cloud::NodeGroupProvider>(std::make_shared<cloud::GcpMigProvider>(
      options, transport, std::move(tokens), *context.clock));
}

Result<std::shared_ptr<cloud::NodeGroupProvider>> BuildAzure(const ParsedNodePool& pool,
                                                             const ProviderContext& context) {
  if (context.clock == nullptr) return InvalidArgumentError("azure-vmss needs a clock");
  cloud::AzureClientCredentials credentials;
  GPU_ASSIGN_OR_RETURN(credentials.tenant_id, SecretValue(context, "tenant_id"));
  GPU_ASSIGN_OR_RETURN(credentials.client_id, SecretValue(context, "client_id"));
  GPU_ASSIGN_OR_RETURN(credentials.client_secret, SecretValue(context, "client_secret"));
  GPU_ASSIGN_OR_RETURN(std::string endpoint, SecretValue(context, "endpoint"));
  GPU_ASSIGN_OR_RETURN(std::string ca_pem, SecretValue(context, "ca.crt"));
  cloud::AzureVmssOptions options{.subscription_id = pool.provider.subscription_id,
                                  .resource_group = pool.provider.resource_group};
  if (!endpoint.empty()) options.arm_endpoint = endpoint;
  GPU_ASSIGN_OR_RETURN(auto transport, cloud::NewCloudTransport(options.arm_endpoint, ca_pem));
  std::shared_ptr<cloud::AccessTokenSource> tokens;
  if (!credentials.client_secret.empty()) {
    GPU_ASSIGN_OR_RETURN(auto login, cloud::NewCloudTransport(credentials.login_endpoint, ca_pem));
    GPU_ASSIGN_OR_RETURN(tokens, cloud::NewAzureClientCredentialsTokenSource(
                                     std::move(credentials), login, *context.clock));
  } else {  // the node's managed identity
    GPU_ASSIGN_OR_RETURN(auto imds, cloud::NewCloudTransport("http://169.254.169.254"));
    tokens = cloud::NewAzureManagedIdentityTokenSource({}, imds, *context.clock);
  }
  return std::shared_ptr<cloud::NodeGroupProvider>(std::make_shared<cloud::AzureVmssProvider>(
      options, transport, std::move(tokens), *context.clock));
}

}  // namespace

Result<std::shared_ptr<cloud::NodeGroupProvider>> BuildNodeGroupProvider(
    const ParsedNodePool& pool, const ProviderContext& context) {
  const std::string& type = pool.provider.type;
  if (type == "simulated") {
    if (context.clock == nullptr) return InvalidArgumentError("the simulated cloud needs a clock");
    return BuildSimulated(pool, context);
  }
  if (type == "aws-asg") return BuildAws(pool, context);
  if (type == "gcp-mig") return BuildGcp(pool, context);
  if (type == "azure-vmss") return BuildAzure(pool, context);
  if (type == "cluster-api") {
    if (context.client == nullptr) return InvalidArgumentError("cluster-api needs an API client");
    // The manager's client outlives every provider it builds (non-owning).
    std::shared_ptr<kube::RestClient> client(std::shared_ptr<kube::RestClient>(), context.client);
    return std::shared_ptr<cloud::NodeGroupProvider>(
        cloud::NewClusterApiProvider(std::move(client), {}));
  }
  return UnimplementedError("provider type \"" + type + "\" is not built into this manager");
}

}  // namespace gpu_autoscaler::controllers
