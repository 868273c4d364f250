// File: src/cloud/aws_query.h
//
// The AWS Query protocol (Auto Scaling, STS): a form-encoded POST of
// Action=<Op>&Version=<v>&..., an XML answer, an XML <ErrorResponse> on
// failure. AwsQueryClient signs each attempt with SigV4 (or sends unsigned
// for STS AssumeRoleWithWebIdentity), maps error codes onto
// ProviderErrorKind, and retries throttling and unavailability with capped
// exponential backoff and full jitter through an injected sleeper.
//
//   AwsQueryClient asg(transport, {.endpoint = "https://autoscaling.us-east-1.amazonaws.com",
//                                  .scope = {"us-east-1", "autoscaling"},
//                                  .version = "2011-01-01"}, credentials);
//   GPU_ASSIGN_OR_RETURN(XmlElement doc, asg.Call("SetDesiredCapacity",
//       {{"AutoScalingGroupName", "gpu-a"}, {"DesiredCapacity", "3"}}));
//
// Error messages carry the operation, AWS code, message and request ID, with
// the credentials' secrets redacted should the service echo them.
//
// Thread-safety: Call is safe from many threads at once.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cloud/aws_credentials.h"
#include "cloud/aws_xml.h"
#include "cloud/node_group.h"

namespace gpu_autoscaler::cloud {

using QueryParams = std::vector<std::pair<std::string, std::string>>;

struct AwsErrorInfo {
  int http_status = 0;
  std::string code{};
  std::string message{};
  std::string request_id{};
};

// Parses a Query-protocol error body (<ErrorResponse><Error><Code>... or the
// EC2 form <Response><Errors><Error>...); nullopt when the body is not one.
std::optional<AwsErrorInfo> ParseAwsError(int http_status, std::string_view body);

// The error kind for an AWS error code (see docs/providers/aws.md for the
// table); `message` refines ValidationError into kNotFound.
ProviderErrorKind ClassifyAwsError(int http_status, std::string_view code,
                                   std::string_view message = "");

// Capacity and quota codes that a scaling activity's StatusMessage may name;
// kNone when the message names none.
ProviderErrorKind ClassifyLaunchFailureMessage(std::string_view status_message);

// "Action=X&Version=Y&K=V..." with AWS UriEncode.
std::string AwsFormEncode(const QueryParams& params);
// Decodes a form body into its pairs (the fake servers use it).
QueryParams FormDecode(std::string_view body);

struct AwsRetryPolicy {
  int max_attempts = 5;  // including the first
  std::chrono::milliseconds base_delay{100};
  std::chrono::milliseconds max_delay{20'000};
};

// Full jitter: min(max_delay, base_delay * 2^(retry-1)) * jitter01, retry >= 1.
std::chrono::milliseconds BackoffDelay(const AwsRetryPolicy& policy, int retry, double jitter01);

struct AwsQueryOptions {
  std::string endpoint{};  // "https://autoscaling.us-east-1.amazonaws.com"
  AwsScope scope{};
  std::string version{};  // "2011-01-01"
  std::chrono::milliseconds timeout{10'000};
  AwsRetryPolicy retry{};
  Clock* clock = &RealClock::Instance();
  // Waits between attempts; default sleeps the calling thread.
  std::function<void(std::chrono::milliseconds)> sleep{};
  // A uniform number in [0, 1); default std::random_device-seeded.
  std::function<double()> jitter{};
  std::string log_name = "aws";  // prefix of log lines ("aws-asg")
};

class AwsQueryClient {
 public:
  // `credentials` nullptr: requests go unsigned (STS AssumeRoleWithWebIdentity).
  AwsQueryClient(std::shared_ptr<kube::HttpTransport> transport, AwsQueryOptions options,
                 std::shared_ptr<AwsCredentialsProvider> credentials);

  // The parsed response document, or a ProviderError.
  Result<XmlElement> Call(const std::string& action, const QueryParams& params);

 private:
  // One signed request; `aws_code` gets the error code AWS answered, if any.
  Result<XmlElement> Attempt(const std::string& action, const std::string& body,
                             AwsCredentials* used, std::string* aws_code);

  std::shared_ptr<kube::HttpTransport> transport_{};
  AwsQueryOptions options_;
  std::shared_ptr<AwsCredentialsProvider> credentials_{};
};

}  // namespace gpu_autoscaler::cloud
