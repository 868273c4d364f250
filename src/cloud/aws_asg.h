// File: src/cloud/aws_asg.h
//
// NodeGroupProvider over EC2 Auto Scaling groups ("aws-asg"), through the
// Auto Scaling Query API (version 2011-01-01, SigV4 signing name
// "autoscaling"): DescribeAutoScalingGroups (following NextToken),
// SetDesiredCapacity (HonorCooldown) and TerminateInstanceInAutoScalingGroup
// (ShouldDecrementDesiredCapacity); DescribeScalingActivities for launch
// failures.
//
//   AwsAsgOptions o;  o.region = "us-east-1";
//   GPU_ASSIGN_OR_RETURN(auto provider, NewAwsAsgProvider(o, transport, credentials));
//   GPU_ASSIGN_OR_RETURN(NodeGroup g, provider->Describe("gpu-a100-spot"));
//
// Scaling is asynchronous: SetDesiredCapacity succeeds at once and an EC2
// capacity shortage (InsufficientInstanceCapacity) or quota
// (VcpuLimitExceeded) shows up later in the group's scaling activities, which
// LaunchFailure reads. Synchronous error codes map as in ClassifyAwsError.
//
// Spot or on-demand per instance: the Auto Scaling API does not say. A
// MixedInstancesPolicy whose distribution is all on-demand (percentage above
// base 100) or all spot (base 0, percentage 0) decides it; otherwise the
// group tag "gpuautoscaler.io/capacity-type" (spot | on-demand) does; else
// Lifecycle::kUnknown (docs/providers/aws.md).
//
// Thread-safety: safe to call from many threads at once.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cloud/aws_credentials.h"
#include "cloud/aws_query.h"
#include "cloud/node_group.h"

namespace gpu_autoscaler::cloud {

inline constexpr std::string_view kAwsCapacityTypeTag = "gpuautoscaler.io/capacity-type";

struct AwsAsgOptions {
  std::string region{};
  // "" -> https://autoscaling.<region>.amazonaws.com (".com.cn" for cn-*).
  std::string endpoint{};
  std::chrono::milliseconds request_timeout{10'000};
  AwsRetryPolicy retry{};
  int page_size = 100;          // MaxRecords of DescribeAutoScalingGroups (1..100)
  bool honor_cooldown = false;  // SetDesiredCapacity HonorCooldown
  Clock* clock = &RealClock::Instance();
  std::function<void(std::chrono::milliseconds)> sleep{};  // default: sleeps the thread
  std::function<double()> jitter{};                        // default: random [0, 1)
};

// One entry of DescribeScalingActivities.
struct AsgScalingActivity {
  std::string id{};
  std::string status_code{};  // Successful, Failed, Cancelled, InProgress, ...
  std::string status_message{};
  std::string description{};  // "Launching a new EC2 instance: i-0abc"
  std::string cause{};
};

class AwsAsgProvider final : public NodeGroupProvider {
 public:
  AwsAsgProvider(const AwsAsgOptions& options, std::shared_ptr<kube::HttpTransport> transport,
                 std::shared_ptr<AwsCredentialsProvider> credentials);

  std::string_view Name() const override { return "aws-asg"; }
  Result<NodeGroup> Describe(const std::string& group) override;
  Status SetDesiredSize(const std::string& group, int desired) override;
  Status TerminateInstances(const std::string& group, const std::vector<std::string>& instance_ids,
                            bool decrement_desired) override;
  Result<std::string> InstanceIdFromProviderId(std::string_view provider_id) const override;

  // Several groups (every group in the region when `groups` is empty) in one
  // paginated DescribeAutoScalingGroups; groups that do not exist are absent.
  Result<std::vector<NodeGroup>> DescribeGroups(const std::vector<std::string>& groups);

  // The newest launch activity of the group when it failed: a ProviderError
  // kInsufficientCapacity or kQuotaExceeded (or kUnavailable for another
  // cause) carrying the activity's StatusMessage. OK when the newest launch
  // did not fail or there was none.
  Status LaunchFailure(const std::string& group) override;

 private:
  AwsQueryClient client_;
  AwsAsgOptions options_;
};

Result<std::unique_ptr<NodeGroupProvider>> NewAwsAsgProvider(
    const AwsAsgOptions& options, std::shared_ptr<kube::HttpTransport> transport,
    std::shared_ptr<AwsCredentialsProvider> credentials);

// Pure pieces, exposed for tests.
// "aws:///us-east-1a/i-0abc"
std::string AwsProviderId(std::string_view zone, std::string_view instance_id);
Result<std::string> AwsInstanceIdFromProviderId(std::string_view provider_id);
// The groups of one DescribeAutoScalingGroups page and its NextToken.
Result<std::vector<NodeGroup>> ParseDescribeAutoScalingGroups(const XmlElement& doc,
                                                              std::string* next_token);
Result<std::vector<AsgScalingActivity>> ParseDescribeScalingActivities(const XmlElement& doc);

}  // namespace gpu_autoscaler::cloud
