// File: src/cloud/aws_interruption.h
//
// The AWS spot interruption notice source: polls IMDSv2
//   GET /latest/meta-data/spot/instance-action
//     404: no notice; 200: {"action":"terminate|stop|hibernate","time":"<RFC 3339>"}
//     (about two minutes before the instance goes)
//   GET /latest/meta-data/events/recommendations/rebalance
//     404: none; 200: {"noticeTime":"<RFC 3339>"} (best effort, may precede the above)
// An instance-action wins over a rebalance recommendation.
//
//   AwsInterruptionSource source(transport, {.endpoint = "http://169.254.169.254"});
//   GPU_ASSIGN_OR_RETURN(std::optional<InterruptionNotice> n, source.Poll());
//   if (n) DrainNode(n->not_after_unix);
//
// The session token is refreshed before its TTL (ImdsClient). A malformed
// notice body is an error (kUnavailable) naming the path.
//
// Thread-safety: Poll is safe from many threads at once.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "cloud/aws_imds.h"
#include "cloud/node_group.h"

namespace gpu_autoscaler::cloud {

class AwsInterruptionSource final : public InterruptionSource {
 public:
  AwsInterruptionSource(std::shared_ptr<kube::HttpTransport> transport, ImdsOptions options = {});
  Result<std::optional<InterruptionNotice>> Poll() override;

 private:
  ImdsClient imds_;
};

// Pure parsers of the two documents.
Result<InterruptionNotice> ParseSpotInstanceAction(std::string_view json_text);
Result<InterruptionNotice> ParseRebalanceRecommendation(std::string_view json_text);

}  // namespace gpu_autoscaler::cloud
