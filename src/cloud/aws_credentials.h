// File: src/cloud/aws_credentials.h
//
// Where AWS credentials come from, tried in the order the AWS SDKs use:
//   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY [, AWS_SESSION_TOKEN]
//   2. the shared credentials file: $AWS_SHARED_CREDENTIALS_FILE or
//      ~/.aws/credentials, profile $AWS_PROFILE (default "default")
//   3. web identity (IRSA): AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
//      [+ AWS_ROLE_SESSION_NAME] -> STS AssumeRoleWithWebIdentity
//   4. IMDSv2: the instance profile's role credentials
// The first source that is configured answers; one that is configured but
// fails (an unreadable token file, STS refusing the token) is an error, not a
// fall-through. Nothing configured: a ProviderError kAuth naming each source
// tried and why it did not apply.
//
//   AwsCredentialChainOptions o;
//   o.region = "us-east-1";
//   o.sts_transport = transport;   // HTTPS to STS
//   o.imds_transport = imds;       // plain HTTP to 169.254.169.254
//   auto chain = NewAwsCredentialChain(std::move(o));
//   GPU_ASSIGN_OR_RETURN(AwsCredentials creds, chain->Get());
//
// Expiring credentials are cached and fetched again `refresh_before` ahead of
// their expiration; when a refresh fails while the cached ones are still
// valid, the cached ones are used. The environment and file reads are
// injected (AwsEnvironment) so tests never touch the real ones.
//
// Thread-safety: Get/Invalidate are safe to call from many threads at once.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "cloud/aws_imds.h"
#include "cloud/aws_sigv4.h"
#include "common/clock.h"
#include "common/status.h"
#include "kube/transport.h"

namespace gpu_autoscaler::cloud {

class AwsCredentialsProvider {
 public:
  virtual ~AwsCredentialsProvider() = default;
  virtual Result<AwsCredentials> Get() = 0;
  // Forgets cached credentials (after the service answered ExpiredToken).
  virtual void Invalidate() {}
};

std::shared_ptr<AwsCredentialsProvider> StaticAwsCredentials(AwsCredentials creds);

// The process environment and file system, or a test's stand-ins.
struct AwsEnvironment {
  std::function<std::optional<std::string>(const std::string& name)> get_env{};
  // A NotFound error when the file does not exist.
  std::function<Result<std::string>(const std::string& path)> read_file{};
  static AwsEnvironment Process();
};

struct AwsCredentialChainOptions {
  AwsEnvironment env = AwsEnvironment::Process();
  std::string region{};                                  // picks the regional STS endpoint
  std::string sts_endpoint{};                            // "" -> https://sts.<region>.amazonaws.com
  std::shared_ptr<kube::HttpTransport> sts_transport{};  // nullptr: web identity not tried
  std::shared_ptr<kube::HttpTransport> imds_transport{};  // nullptr: IMDS not tried
  ImdsOptions imds{};
  Clock* clock = &RealClock::Instance();
  std::chrono::seconds refresh_before{300};
  std::chrono::milliseconds sts_timeout{10'000};
};

std::shared_ptr<AwsCredentialsProvider> NewAwsCredentialChain(AwsCredentialChainOptions options);

// Reads `profile` from a shared credentials file (INI): nullopt when the
// profile is absent; an error when it lacks a key.
Result<std::optional<AwsCredentials>> ParseSharedCredentialsFile(std::string_view text,
                                                                 std::string_view profile);

// The credentials in an STS AssumeRoleWithWebIdentity response body.
Result<AwsCredentials> ParseAssumeRoleWithWebIdentityResponse(std::string_view xml);

// The credentials in an IMDS iam/security-credentials/<role> document.
Result<AwsCredentials> ParseImdsCredentials(std::string_view json_text);

}  // namespace gpu_autoscaler::cloud
