#include "reconcile/program.h"

#include <gtest/gtest.h>

#include <vector>

namespace gpu_autoscaler::reconcile {
namespace {

Result<std::vector<ProgramFlag>> Scan(std::vector<std::string> args) {
  std::vector<char*> argv;
  static std::string program = "prog";
  argv.push_back(program.data());
  for (std::string& a : args)
    argv.push_back(a.data());
  return ScanFlags(static_cast<int>(argv.size()), argv.data(), {"--port", "--name"},
                   {"--leader-elect"});
}

TEST(ProgramFlagsTest, FormsOfFlags) {
  auto flags = Scan({"--port=80", "--name", "x", "--leader-elect", "-h", "--leader-elect=false"});
  ASSERT_TRUE(flags.ok()) << flags.error().message();
  ASSERT_EQ(flags->size(), 5u);
  EXPECT_EQ((*flags)[0].name, "--port");
  EXPECT_EQ((*flags)[0].value, "80");
  EXPECT_EQ((*flags)[1].value, "x");
  bool leader = false;
  EXPECT_TRUE(ParseBoolFlag((*flags)[2], &leader).ok());
  EXPECT_TRUE(leader);
  EXPECT_EQ((*flags)[3].name, "--help");
  EXPECT_TRUE(ParseBoolFlag((*flags)[4], &leader).ok());
  EXPECT_FALSE(leader);
  int port = 0;
  EXPECT_TRUE(ParseIntFlag((*flags)[0], 0, 65535, &port).ok());
  EXPECT_EQ(port, 80);
}

TEST(ProgramFlagsTest, ErrorsNameTheFlag) {
  EXPECT_EQ(Scan({"--nope"}).error().message(), "unknown flag --nope (see --help)");
  EXPECT_EQ(Scan({"--port"}).error().message(), "--port: missing value");
  EXPECT_EQ(Scan({"stray"}).error().message(), "unexpected argument stray");
  int n = 0;
  EXPECT_EQ(
      ParseIntFlag({.name = "--port", .value = "70000", .has_value = true}, 0, 65535, &n).message(),
      "--port: want 0..65535, got \"70000\"");
  bool b = false;
  EXPECT_EQ(
      ParseBoolFlag({.name = "--leader-elect", .value = "yes", .has_value = true}, &b).message(),
      "--leader-elect: want true or false, got \"yes\"");
  double q = 0;
  EXPECT_FALSE(ParsePositiveFlag({.name = "--qps", .value = "0", .has_value = true}, &q).ok());
  EXPECT_FALSE(ParsePositiveFlag({.name = "--qps", .value = "inf", .has_value = true}, &q).ok());
  EXPECT_FALSE(ParsePositiveFlag({.name = "--qps", .value = "nan", .has_value = true}, &q).ok());
  EXPECT_TRUE(ParsePositiveFlag({.name = "--qps", .value = "2.5", .has_value = true}, &q).ok());
  EXPECT_DOUBLE_EQ(q, 2.5);
}

}  // namespace
}  // namespace gpu_autoscaler::reconcile
