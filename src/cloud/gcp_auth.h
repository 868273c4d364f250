// File: src/cloud/gcp_auth.h
//
// Access tokens for the Compute Engine API: from a service-account key file
// (an RS256-signed JWT exchanged at the key's token_uri with the
// urn:ietf:params:oauth:grant-type:jwt-bearer grant) or from the metadata
// server (the VM's or Workload Identity's service account). Both cache the
// token until shortly before it expires.
//
//   GPU_ASSIGN_OR_RETURN(auto transport, NewCloudTransport("https://oauth2.googleapis.com"));
//   GPU_ASSIGN_OR_RETURN(auto tokens,
//       NewGcpServiceAccountTokenSource("/var/secrets/gcp/key.json", transport, clock));
//   GPU_ASSIGN_OR_RETURN(std::string bearer, tokens->Token());
//
// Errors never quote the key file, the assertion or a token.
//
// Thread-safety: token sources are safe to share; the parsers are pure.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "cloud/cloud_http.h"

namespace gpu_autoscaler::cloud {

inline constexpr std::string_view kGcpComputeScope = "https://www.googleapis.com/auth/compute";

// The fields of a service-account key file ("type": "service_account") the
// JWT-bearer flow needs.
struct GcpServiceAccountKey {
  std::string client_email;
  std::string private_key_pem;
  std::string private_key_id;
  std::string token_uri = "https://oauth2.googleapis.com/token";
  std::string project_id;
};
Result<GcpServiceAccountKey> ParseGcpServiceAccountKey(std::string_view json);

// "<b64url(header)>.<b64url(claims)>.<b64url(RS256 signature)>".
Result<std::string> SignJwtRs256(std::string_view header_json, std::string_view claims_json,
                                 const std::string& private_key_pem);

// The JWT-bearer assertion: iss = client_email, aud = token_uri, the scope,
// iat = now, exp = now + 1 h, kid = private_key_id.
Result<std::string> MakeGcpJwtAssertion(const GcpServiceAccountKey& key, std::string_view scope,
                                        Clock::WallTime now);

Result<std::shared_ptr<AccessTokenSource>> NewGcpServiceAccountTokenSource(
    const std::string& key_file, std::shared_ptr<kube::HttpTransport> transport, Clock& clock,
    std::string scope = std::string(kGcpComputeScope));
std::shared_ptr<AccessTokenSource> NewGcpServiceAccountTokenSource(
    GcpServiceAccountKey key, std::shared_ptr<kube::HttpTransport> transport, Clock& clock,
    std::string scope = std::string(kGcpComputeScope));

// GET <metadata>/computeMetadata/v1/instance/service-accounts/default/token
// with Metadata-Flavor: Google. `metadata_endpoint` is normally
// "http://metadata.google.internal".
std::shared_ptr<AccessTokenSource> NewGcpMetadataTokenSource(
    std::string metadata_endpoint, std::shared_ptr<kube::HttpTransport> transport, Clock& clock);

}  // namespace gpu_autoscaler::cloud
