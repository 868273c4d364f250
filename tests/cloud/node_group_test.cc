#include "cloud/node_group.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::cloud {
namespace {

TEST(ProviderErrorTest, KindSurvivesContextAndPicksStatusCode) {
  Status s =
      ProviderError(ProviderErrorKind::kInsufficientCapacity, "no p4d.24xlarge in us-east-1a")
          .WithContext("aws-asg SetDesiredCapacity gpu-a100");
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ClassifyProviderError(s), ProviderErrorKind::kInsufficientCapacity);
  EXPECT_NE(s.message().find("no p4d.24xlarge"), std::string::npos);
  EXPECT_EQ(ClassifyProviderError(ProviderError(ProviderErrorKind::kThrottled, "slow down")),
            ProviderErrorKind::kThrottled);
  EXPECT_EQ(ProviderError(ProviderErrorKind::kAuth, "expired").code(),
            StatusCode::kPermissionDenied);
}

TEST(ProviderErrorTest, UntaggedStatusesClassifyByCode) {
  EXPECT_EQ(ClassifyProviderError(Status::Ok()), ProviderErrorKind::kNone);
  EXPECT_EQ(ClassifyProviderError(NotFoundError("group x")), ProviderErrorKind::kNotFound);
  EXPECT_EQ(ClassifyProviderError(InvalidArgumentError("bad")), ProviderErrorKind::kInvalid);
  EXPECT_EQ(ClassifyProviderError(DeadlineExceededError("hung")), ProviderErrorKind::kUnavailable);
  EXPECT_TRUE(ProviderError(ProviderErrorKind::kNone, "ignored").ok());
}

TEST(LifecycleTest, Names) {
  EXPECT_EQ(LifecycleName(Lifecycle::kSpot), "spot");
  EXPECT_EQ(LifecycleName(Lifecycle::kOnDemand), "on-demand");
  EXPECT_EQ(InterruptionKindName(InterruptionNotice::Kind::kPreempted), "Preempted");
}

}  // namespace
}  // namespace gpu_autoscaler::cloud
