#include "controllers/node_pool_providers.h"

#include <gtest/gtest.h>

#include "cloud/node_group.h"
#include "kube/rest_client.h"
#include "support/fake_transport.h"

namespace gpu_autoscaler::controllers {
namespace {

ParsedNodePool Pool(const std::string& type) {
  ParsedNodePool pool;
  pool.spec.name = "gpu";
  pool.provider.type = type;
  return pool;
}

TEST(BuildNodeGroupProviderTest, EveryProviderTypeIsBuiltIn) {
  FakeClock clock;
  kube::ClientConfig cfg;
  cfg.server = "https://api.test";
  auto client =
      kube::RestClient::WithTransport(cfg, std::make_unique<testing::FakeTransport>(), {});
  ProviderContext context{.client = client.get(), .clock = &clock};

  ParsedNodePool aws = Pool("aws-asg");
  aws.provider.region = "us-east-1";
  auto built = BuildNodeGroupProvider(aws, context);
  ASSERT_TRUE(built.ok()) << built.error().ToString();
  EXPECT_EQ((*built)->Name(), "aws-asg");
  EXPECT_EQ(*(*built)->InstanceIdFromProviderId("aws:///us-east-1a/i-0abc"), "i-0abc");

  ParsedNodePool gcp = Pool("gcp-mig");
  gcp.provider.project = "p";
  gcp.provider.zone = "us-central1-a";
  built = BuildNodeGroupProvider(gcp, context);
  ASSERT_TRUE(built.ok()) << built.error().ToString();
  EXPECT_EQ((*built)->Name(), "gcp-mig");

  ParsedNodePool azure = Pool("azure-vmss");
  azure.provider.subscription_id = "sub";
  azure.provider.resource_group = "rg";
  built = BuildNodeGroupProvider(azure, context);
  ASSERT_TRUE(built.ok()) << built.error().ToString();
  EXPECT_EQ((*built)->Name(), "azure-vmss");

  built = BuildNodeGroupProvider(Pool("cluster-api"), context);
  ASSERT_TRUE(built.ok()) << built.error().ToString();
  EXPECT_EQ((*built)->Name(), "cluster-api");
}

TEST(BuildNodeGroupProviderTest, MissingSettingsAreErrorsThatNameThem) {
  FakeClock clock;
  auto no_region = BuildNodeGroupProvider(Pool("aws-asg"), {.clock = &clock});
  ASSERT_FALSE(no_region.ok());
  EXPECT_NE(no_region.error().message().find("spec.provider.region"), std::string::npos);
  EXPECT_FALSE(BuildNodeGroupProvider(Pool("cluster-api"), {.clock = &clock}).ok());
  EXPECT_EQ(BuildNodeGroupProvider(Pool("openstack"), {.clock = &clock}).error().code(),
            StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace gpu_autoscaler::controllers
