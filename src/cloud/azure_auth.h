// File: src/cloud/azure_auth.h
//
// Access tokens for Azure Resource Manager:
//  - client credentials: POST <login>/<tenant>/oauth2/v2.0/token with
//    grant_type=client_credentials, scope https://management.azure.com/.default,
//    and either a client secret or (AAD workload identity) a federated token
//    file sent as a client_assertion;
//  - managed identity: GET <imds>/metadata/identity/oauth2/token
//    ?api-version=2018-02-01&resource=https://management.azure.com/ with
//    header Metadata: true (optionally a user-assigned identity's client_id).
// Tokens are cached until shortly before they expire.
//
//   AzureClientCredentials c{.tenant_id = "...", .client_id = "...", .client_secret = "..."};
//   auto tokens = NewAzureClientCredentialsTokenSource(c, transport, clock);
//
// Errors never quote the secret, the assertion or a token.
//
// Thread-safety: token sources are safe to share.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "cloud/cloud_http.h"

namespace gpu_autoscaler::cloud {

struct AzureClientCredentials {
  std::string tenant_id{};
  std::string client_id{};
  std::string client_secret{};         // either this...
  std::string federated_token_file{};  // ...or this (AZURE_FEDERATED_TOKEN_FILE), re-read per grant
  std::string login_endpoint = "https://login.microsoftonline.com";  // AZURE_AUTHORITY_HOST
  std::string scope = "https://management.azure.com/.default";
};

// From AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET,
// AZURE_FEDERATED_TOKEN_FILE and AZURE_AUTHORITY_HOST (the variables the
// Azure SDKs and the AAD workload identity webhook use). `getenv` is
// injectable for tests.
Result<AzureClientCredentials> AzureCredentialsFromEnv(
    const std::function<const char*(const char*)>& getenv);

Result<std::shared_ptr<AccessTokenSource>> NewAzureClientCredentialsTokenSource(
    AzureClientCredentials credentials, std::shared_ptr<kube::HttpTransport> transport,
    Clock& clock);

struct AzureManagedIdentityOptions {
  std::string imds_endpoint = "http://169.254.169.254";
  std::string api_version = "2018-02-01";
  std::string resource = "https://management.azure.com/";
  std::string client_id{};  // a user-assigned identity; "" for the system-assigned one
};
std::shared_ptr<AccessTokenSource> NewAzureManagedIdentityTokenSource(
    AzureManagedIdentityOptions options, std::shared_ptr<kube::HttpTransport> transport,
    Clock& clock);

}  // namespace gpu_autoscaler::cloud
