#include "reconcile/logging.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <sstream>

namespace gpu_autoscaler::reconcile {
namespace {

TEST(LoggingTest, FormatsTextWithQuotingWhereNeeded) {
  EXPECT_EQ(FormatRecord(false, "reconciled", {{"controller", "nodes"}, {"key", "ns/a"}}),
            "reconciled controller=nodes key=ns/a");
  EXPECT_EQ(FormatRecord(false, "failed", {{"error", "pods \"x\" not found"}, {"empty", ""}}),
            R"(failed error="pods \"x\" not found" empty="")");
}

TEST(LoggingTest, FormatsJsonMembers) {
  const std::string members =
      FormatRecord(true, "say \"hi\"\n", {{"key", "a\tb"}, {"ctl", "\x01"}});
  auto parsed = nlohmann::json::parse("{" + members + "}");
  EXPECT_EQ(parsed["msg"], "say \"hi\"\n");
  EXPECT_EQ(parsed["key"], "a\tb");
  EXPECT_EQ(parsed["ctl"], "\x01");
}

TEST(LoggingTest, RejectsUnknownFormatAndLevel) {
  Status s = ConfigureLogging({.format = "xml", .level = "info"});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--log-format"), std::string::npos);
  s = ConfigureLogging({.format = "text", .level = "chatty"});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--log-level"), std::string::npos);
}

TEST(LoggingTest, JsonLinesParseAndHonourLevel) {
  ASSERT_TRUE(ConfigureLogging({.format = "json", .level = "info"}).ok());
  ::testing::internal::CaptureStderr();
  Log(LogLevel::kInfo, "reconciled", {{"controller", "nodes"}, {"key", "gpu-1"}});
  Log(LogLevel::kDebug, "hidden", {});
  spdlog::warn("plain \"spdlog\" call {}", 42);
  spdlog::default_logger()->flush();
  const std::string out = ::testing::internal::GetCapturedStderr();
  std::istringstream lines(out);
  std::string line;
  std::vector<nlohmann::json> records;
  while (std::getline(lines, line))
    records.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(records.size(), 2u) << out;
  EXPECT_EQ(records[0]["level"], "info");
  EXPECT_EQ(records[0]["msg"], "reconciled");
  EXPECT_EQ(records[0]["controller"], "nodes");
  EXPECT_EQ(records[0]["key"], "gpu-1");
  EXPECT_TRUE(records[0].contains("ts"));
  EXPECT_EQ(records[1]["level"], "warning");
  EXPECT_EQ(records[1]["msg"], "plain \"spdlog\" call 42");
  ASSERT_TRUE(ConfigureLogging({.format = "text", .level = "info"}).ok());
}

TEST(LoggingTest, TextLines) {
  ASSERT_TRUE(ConfigureLogging({.format = "text", .level = "debug"}).ok());
  ::testing::internal::CaptureStderr();
  Log(LogLevel::kDebug, "shown", {{"k", "v"}});
  spdlog::default_logger()->flush();
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find(" debug shown k=v\n"), std::string::npos) << out;
  ASSERT_TRUE(ConfigureLogging({.format = "text", .level = "info"}).ok());
}

}  // namespace
}  // namespace gpu_autoscaler::reconcile
