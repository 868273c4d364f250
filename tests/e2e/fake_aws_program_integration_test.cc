// gpa-fake-aws, the program `make demo` runs for its spot interruption: the
// AWS interruption source (the node agent's) reads the notice file's content
// from its IMDS while the file exists, and nothing once it is removed.
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "cloud/aws_interruption.h"
#include "cloud/cloud_http.h"
#include "support/child_process.h"
#include "support/test_paths.h"

namespace gpu_autoscaler {
namespace {

using testing::ChildProcess;
using testing::WaitFor;

TEST(FakeAwsProgramTest, ServesTheNoticeFileAsTheSpotInstanceAction) {
  testing::CommandResult help =
      testing::RunCommand({testing::BinaryPath("gpa-fake-aws"), "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--notice-file PATH"), std::string::npos) << help.out;
  EXPECT_EQ(testing::RunCommand({testing::BinaryPath("gpa-fake-aws"), "--bogus"}).exit_code, 2);

  const std::string dir = testing::MakeTempDir("gpa-fake-aws");
  const std::string notice = dir + "/notice.json";
  ChildProcess fake;
  ASSERT_TRUE(fake.Spawn({testing::BinaryPath("gpa-fake-aws"), "--notice-file", notice},
                         dir + "/fake-aws.log"));
  std::string imds;
  ASSERT_TRUE(WaitFor([&] {
    const std::string log = fake.Log();
    const size_t at = log.find("imds_endpoint=");
    if (at == std::string::npos || log.find('\n', at) == std::string::npos) return false;
    imds = log.substr(at + 14, log.find('\n', at) - at - 14);
    return true;
  })) << fake.Log();
  auto transport = cloud::NewCloudTransport(imds);
  ASSERT_TRUE(transport.ok()) << transport.error().ToString();
  cloud::AwsInterruptionSource source(*transport, {.endpoint = imds});
  auto none = source.Poll();
  ASSERT_TRUE(none.ok()) << none.error().ToString();
  EXPECT_FALSE(*none);

  std::ofstream(notice) << R"({"action": "terminate", "time": "2026-12-05T03:00:00Z"})";
  std::optional<cloud::InterruptionNotice> got;
  ASSERT_TRUE(WaitFor([&] {
    auto polled = source.Poll();
    if (polled.ok()) got = *polled;
    return got.has_value();
  })) << fake.Log();
  EXPECT_EQ(got->kind, cloud::InterruptionNotice::Kind::kSpotInterruption);
  EXPECT_EQ(got->not_after_unix, 1796439600);  // 2026-12-05T03:00:00Z

  std::filesystem::remove(notice);
  ASSERT_TRUE(WaitFor([&] {
    auto polled = source.Poll();
    return polled.ok() && !*polled;
  })) << fake.Log();
  fake.Kill(SIGTERM);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gpu_autoscaler
