// Unit tests of the azure-vmss parsers and error mapping with hand-written
// bodies shaped as ARM and IMDS document them.
#include <gtest/gtest.h>

#include "cloud/azure_auth.h"
#include "cloud/azure_interruption.h"
#include "cloud/azure_vmss.h"

namespace gpu_autoscaler::cloud {
namespace {

CloudError Classify(int status, std::string body) {
  kube::HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return ClassifyAzureHttpError(r);
}

TEST(AzureErrorTest, CodesMapToKinds) {
  CloudError throttled = Classify(429, R"({"error":{"code":"OperationNotAllowed",
      "message":"The server rejected the request because too many requests have been received",
      "details":[{"code":"TooManyRequests","target":"HighCostGet3Min"}]}})");
  EXPECT_EQ(throttled.kind, ProviderErrorKind::kThrottled);
  EXPECT_EQ(throttled.code, "OperationNotAllowed/TooManyRequests");
  EXPECT_EQ(Classify(429, R"({"error":{"code":"RetryableErrorDueToAnotherOperation"}})").kind,
            ProviderErrorKind::kUnavailable);
  EXPECT_EQ(Classify(409, R"({"error":{"code":"OperationNotAllowed","message":"Operation could
      not be completed as it results in exceeding approved standardNCADSA100v4Family Cores quota."}})")
                .kind,
            ProviderErrorKind::kUnavailable);  // raw newline: not JSON, 409 decides
  EXPECT_EQ(
      Classify(
          409,
          R"({"error":{"code":"OperationNotAllowed","message":"results in exceeding approved standardNCADSA100v4Family Cores Quota."}})")
          .kind,
      ProviderErrorKind::kQuotaExceeded);
  EXPECT_EQ(
      Classify(409, R"({"error":{"code":"OperationNotAllowed","message":"VM is deallocating"}})")
          .kind,
      ProviderErrorKind::kInvalid);
  EXPECT_EQ(Classify(409, R"({"error":{"code":"SkuNotAvailable"}})").kind,
            ProviderErrorKind::kInsufficientCapacity);
  EXPECT_EQ(Classify(400, R"({"error":{"code":"QuotaExceeded"}})").kind,
            ProviderErrorKind::kQuotaExceeded);
  EXPECT_EQ(Classify(403, R"({"error":{"code":"AuthorizationFailed","message":"The client 'x'
      does not have authorization"}})")
                .kind,
            ProviderErrorKind::kAuth);
  EXPECT_EQ(Classify(401, R"({"error":{"code":"ExpiredAuthenticationToken"}})").kind,
            ProviderErrorKind::kAuth);
  EXPECT_EQ(Classify(404, R"({"error":{"code":"ResourceNotFound"}})").kind,
            ProviderErrorKind::kNotFound);
  EXPECT_EQ(Classify(500, "oops").kind, ProviderErrorKind::kUnavailable);
}

TEST(AzureParseTest, AsyncOperation) {
  auto failed = ParseAzureAsyncOperation(R"({"status":"Failed","error":{"code":"AllocationFailed",
      "message":"Allocation failed."},"startTime":"2026-12-04T23:00:00Z"})");
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->error.kind, ProviderErrorKind::kInsufficientCapacity);
  auto canceled = ParseAzureAsyncOperation(R"({"status":"Canceled"})");
  EXPECT_EQ(canceled->error.kind, ProviderErrorKind::kUnavailable);
  EXPECT_EQ(canceled->error.code, "Canceled");
  auto running = ParseAzureAsyncOperation(R"({"status":"InProgress","percentComplete":50})");
  EXPECT_EQ(running->error.kind, ProviderErrorKind::kNone);
  EXPECT_FALSE(ParseAzureAsyncOperation(R"({"percentComplete":50})").ok());
  EXPECT_FALSE(ParseAzureAsyncOperation("").ok());
}

TEST(AzureParseTest, ScaleSetAndVms) {
  auto vmss = ParseAzureVmss(R"({"name":"gpu","location":"westeurope",
      "sku":{"name":"Standard_ND96asr_v4","tier":"Standard","capacity":4},
      "properties":{"provisioningState":"Updating","orchestrationMode":"Uniform",
        "virtualMachineProfile":{"priority":"Low","evictionPolicy":"Deallocate"}}})");
  ASSERT_TRUE(vmss.ok()) << vmss.error().ToString();
  EXPECT_EQ(vmss->capacity, 4);
  EXPECT_EQ(vmss->lifecycle, Lifecycle::kSpot);
  EXPECT_EQ(vmss->provisioning_state, "Updating");
  EXPECT_EQ(ParseAzureVmss(R"({"sku":{"capacity":1}})")->lifecycle, Lifecycle::kOnDemand);
  EXPECT_FALSE(ParseAzureVmss(R"({"sku":{}})").ok());
  EXPECT_FALSE(ParseAzureVmss(R"({"sku":{"capacity":-2}})").ok());

  auto vms = ParseAzureVmssVms(R"({"value":[
      {"instanceId":"7","name":"gpu_7","location":"westeurope","zones":["2"],
       "properties":{"provisioningState":"Creating"}},
      {"instanceId":"8","name":"gpu_8","location":"westeurope"}],
      "nextLink":"https://management.azure.com/next"})");
  ASSERT_TRUE(vms.ok()) << vms.error().ToString();
  ASSERT_EQ(vms->vms.size(), 2u);
  EXPECT_EQ(vms->vms[0].zone, "westeurope-2");
  EXPECT_EQ(vms->vms[0].provisioning_state, "Creating");
  EXPECT_EQ(vms->vms[1].zone, "westeurope");
  EXPECT_EQ(vms->next_link, "https://management.azure.com/next");
  EXPECT_FALSE(ParseAzureVmssVms(R"({"value":[{"instanceId":"../x"}]})").ok());
  EXPECT_FALSE(ParseAzureVmssVms(R"({})").ok());
}

TEST(AzureNamesTest, GroupNamesAndProviderIds) {
  AzureVmssOptions o;
  o.subscription_id = "sub-1";
  o.resource_group = "rg";
  auto ref = ParseAzureVmssName("gpu", o);
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref->Path(),
            "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Compute/"
            "virtualMachineScaleSets/gpu");
  auto full = ParseAzureVmssName(
      "subscriptions/s2/resourcegroups/RG2/providers/microsoft.compute/virtualMachineScaleSets/v",
      o);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->resource_group, "RG2");
  EXPECT_FALSE(ParseAzureVmssName("subscriptions/s/resourceGroups/r/providers/X/y/v", o).ok());
  EXPECT_FALSE(ParseAzureVmssName("a/b", o).ok());

  AzureVmssProvider vmss(o, nullptr, nullptr, RealClock::Instance());
  EXPECT_EQ(vmss.Name(), "azure-vmss");
  EXPECT_EQ(AzureProviderId(*ref, "3"),
            "azure:///subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Compute/"
            "virtualMachineScaleSets/gpu/virtualMachines/3");
  // cloud-provider-azure lowercases the resource group in Node providerIDs.
  EXPECT_EQ(*vmss.InstanceIdFromProviderId(
                "azure:///subscriptions/sub-1/resourcegroups/mc_rg_aks_eastus/providers/"
                "Microsoft.Compute/virtualMachineScaleSets/aks-gpu-1234-vmss/virtualMachines/12"),
            "12");
  for (const char* bad : {"gce://p/z/n",
                          "azure:///subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/"
                          "virtualMachines/vm1",
                          "azure:///subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/"
                          "virtualMachineScaleSets/v/virtualMachines/",
                          "azure:///subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/"
                          "virtualMachineScaleSets/v/virtualMachines/1/extra"}) {
    EXPECT_FALSE(vmss.InstanceIdFromProviderId(bad).ok()) << bad;
  }
}

TEST(AzureScheduledEventsTest, ParsesTheDocumentedShape) {
  auto doc = ParseAzureScheduledEvents(R"({"DocumentIncarnation":2,"Events":[
      {"EventId":"602d9444-d2cd-49c7-8624-8643e7171297","EventType":"Preempt",
       "ResourceType":"VirtualMachine","Resources":["myVM_1"],"EventStatus":"Scheduled",
       "NotBefore":"Mon, 19 Sep 2016 18:29:47 GMT","Description":"","EventSource":"Platform",
       "DurationInSeconds":-1}]})");
  ASSERT_TRUE(doc.ok()) << doc.error().ToString();
  EXPECT_EQ(doc->document_incarnation, 2);
  ASSERT_EQ(doc->events.size(), 1u);
  EXPECT_EQ(doc->events[0].event_type, "Preempt");
  EXPECT_EQ(doc->events[0].resources, (std::vector<std::string>{"myVM_1"}));
  EXPECT_TRUE(
      ParseAzureScheduledEvents(R"({"DocumentIncarnation":1,"Events":[]})")->events.empty());
  EXPECT_FALSE(ParseAzureScheduledEvents(R"({"Events":[{"EventType":"Preempt"}]})").ok());
  EXPECT_FALSE(ParseAzureScheduledEvents(R"({"Events":{}})").ok());
}

TEST(AzureAuthTest, CredentialsFromEnvironment) {
  std::map<std::string, std::string> env = {{"AZURE_TENANT_ID", "t"}, {"AZURE_CLIENT_ID", "c"}};
  auto getenv = [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  EXPECT_FALSE(AzureCredentialsFromEnv(getenv).ok());  // neither secret nor token file
  env["AZURE_CLIENT_SECRET"] = "s";
  auto creds = AzureCredentialsFromEnv(getenv);
  ASSERT_TRUE(creds.ok());
  EXPECT_EQ(creds->login_endpoint, "https://login.microsoftonline.com");
  env["AZURE_FEDERATED_TOKEN_FILE"] = "/var/run/secrets/azure/tokens/azure-identity-token";
  EXPECT_FALSE(AzureCredentialsFromEnv(getenv).ok());  // both
  FakeClock clock;
  AzureClientCredentials bad_tenant;
  bad_tenant.tenant_id = "t/../x";
  bad_tenant.client_id = "c";
  bad_tenant.client_secret = "s";
  EXPECT_FALSE(NewAzureClientCredentialsTokenSource(bad_tenant, nullptr, clock).ok());
}

}  // namespace
}  // namespace gpu_autoscaler::cloud
