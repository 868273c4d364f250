// A small manager soak (bench/manager_soak.cc, docs/reliability.md "Soak"):
// the embedded API server and the manager with every controller as real
// processes, 100 GPU nodes and 2,000 bound pods, then six simulated minutes
// of churn. It asserts that every churn call landed, that the manager's view
// converged on the API server's (metered pods, pods under the sharing policy,
// the GPU inventory) and that the manager's RSS did not grow by more than a
// generous bound over the second half. No assertion is on time: the latency
// ratio check is off and the step length only paces the churn.
#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/child_process.h"
#include "support/test_paths.h"

namespace gpu_autoscaler {
namespace {

using nlohmann::json;

TEST(ManagerSoakTest, ChurnConvergesAndTheManagerDoesNotGrow) {
  const std::string soak = testing::BinaryPath("bench/manager_soak");
  if (!std::filesystem::exists(soak)) GTEST_SKIP() << soak << " not built (benchmarks off)";
  const testing::CommandResult run = testing::RunCommand(
      {soak, "--nodes", "100", "--pods", "2000", "--steps", "6", "--duration", "12s",
       "--churn-percent", "2", "--node-updates", "20", "--threads", "2",
       // Generous: the small soak allocates a few MiB while caches warm up.
       "--max-rss-growth", "64", "--max-rss-slope", "100000", "--max-p99-ratio", "0",
       "--converge-timeout", "120s", "--bin-dir", testing::BinaryPath(""), "-o", "json"});
  const json out = json::parse(run.out, nullptr, false);
  ASSERT_FALSE(out.is_discarded()) << "exit " << run.exit_code << "\n" << run.out << run.err;
  EXPECT_TRUE(out["converged"].get<bool>()) << out["disagreement"];
  EXPECT_EQ(out["failed_ops"], 0);
  ASSERT_EQ(out["samples"].size(), 7u);
  // Each step replaced 40 pods and patched 20 nodes.
  EXPECT_EQ(out["samples"][6]["ops"], 60);
  EXPECT_LE(out["rss_growth_second_half_mib"].get<double>(), 64.0);
  EXPECT_GT(out["samples"][6]["manager_rss_mib"].get<double>(), 0);
  EXPECT_GT(out["samples"][6]["apiserver_rss_mib"].get<double>(), 0);
  // The inventory and sharing-policy controllers saw the churn.
  EXPECT_GT(out["controllers"]["node-gpu-inventory"]["reconciles"].get<double>(), 0);
  EXPECT_GT(out["controllers"]["sharing-policy"]["reconciles"].get<double>(), 0);
  EXPECT_TRUE(out["pass"].get<bool>()) << out["failures"];
  EXPECT_EQ(run.exit_code, 0) << run.err;
}

TEST(ManagerSoakTest, BadFlagsAreRefusedWithUsage) {
  const std::string soak = testing::BinaryPath("bench/manager_soak");
  if (!std::filesystem::exists(soak)) GTEST_SKIP() << soak << " not built (benchmarks off)";
  const testing::CommandResult bad = testing::RunCommand({soak, "--pods", "-3"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("bad value for --pods"), std::string::npos) << bad.err;
  const testing::CommandResult help = testing::RunCommand({soak, "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--churn-percent"), std::string::npos);
}

}  // namespace
}  // namespace gpu_autoscaler
