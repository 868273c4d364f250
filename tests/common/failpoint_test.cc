#include "common/failpoint.h"

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <gtest/gtest.h>

namespace gpu_autoscaler::failpoint {
namespace {

class FailpointTest : public ::testing::Test {
 protected:
  void TearDown() override { ASSERT_TRUE(Configure("").ok()); }
};

TEST_F(FailpointTest, UnconfiguredPointsDoNothing) {
  EXPECT_TRUE(Evaluate("store.before_commit").ok());
  EXPECT_EQ(HitCount("store.before_commit"), 0);
}

TEST_F(FailpointTest, ErrorFiresFromTheNthEvaluationOn) {
  ASSERT_TRUE(Configure("a=error@3, b=off").ok());
  EXPECT_TRUE(Evaluate("a").ok());
  EXPECT_TRUE(Evaluate("a").ok());
  Status third = Evaluate("a");
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.code(), StatusCode::kInternal);
  EXPECT_EQ(third.message(), "failpoint a fired");
  EXPECT_FALSE(Evaluate("a").ok()) << "and every evaluation after it";
  EXPECT_TRUE(Evaluate("b").ok());
  EXPECT_TRUE(Evaluate("c").ok());
  EXPECT_EQ(HitCount("a"), 4);
  EXPECT_EQ(HitCount("b"), 1);
}

TEST_F(FailpointTest, BadSpecsAreRefusedAndChangeNothing) {
  ASSERT_TRUE(Configure("a=error").ok());
  for (const char* bad :
       {"a", "=kill", "a=explode", "a=kill@0", "a=kill@x", "a=sleep(x)", "a=sleep(5"}) {
    Status status = Configure(bad);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(Evaluate("a").ok()) << "the last good configuration stays";
}

TEST_F(FailpointTest, SleepStallsAndReturnsOk) {
  ASSERT_TRUE(Configure("slow=sleep(1)").ok());
  EXPECT_TRUE(Evaluate("slow").ok());
  EXPECT_EQ(HitCount("slow"), 1);
}

TEST_F(FailpointTest, KillEndsTheProcessWithSigkill) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (!Configure("die=kill@2").ok()) ::_exit(2);
    (void)Evaluate("die");
    (void)Evaluate("die");
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
}

}  // namespace
}  // namespace gpu_autoscaler::failpoint
