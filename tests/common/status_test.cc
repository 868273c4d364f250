#include "common/status.h"

#include <gtest/gtest.h>

#include <memory>

namespace gpu_autoscaler {
namespace {

Result<int> ParsePositive(int v) {
  if (v <= 0) return InvalidArgumentError("must be positive");
  return v;
}

Result<int> Doubled(int v) {
  GPU_ASSIGN_OR_RETURN(int x, ParsePositive(v));
  return 2 * x;
}

Status Check(int v) {
  GPU_RETURN_IF_ERROR(Doubled(v).ok() ? Status::Ok() : InvalidArgumentError("bad"));
  return Status::Ok();
}

TEST(StatusTest, OkAndErrorToString) {
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_EQ(Status::Ok().ToString(), "OK");
  Status s = NotFoundError("pods \"x\" not found");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.ToString(), "NOT_FOUND: pods \"x\" not found");
  EXPECT_EQ(s.WithContext("get").message(), "get: pods \"x\" not found");
}

TEST(StatusTest, AssignOrReturnPropagatesError) {
  EXPECT_EQ(*Doubled(4), 8);
  auto r = Doubled(-1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.error().message(), "must be positive");
  EXPECT_TRUE(Check(3).ok());
  EXPECT_EQ(Check(0).message(), "bad");
}

TEST(StatusTest, ResultHoldsMoveOnlyValues) {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(7));
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
  EXPECT_EQ(Result<int>(InternalError("x")).value_or(5), 5);
}

}  // namespace
}  // namespace gpu_autoscaler
