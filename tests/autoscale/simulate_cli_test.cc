// Runs the real `gpu-autoscaler simulate` program on small trace files and
// checks what it says about bad input: errors name the file and line and fail
// the run; warnings go to stderr and do not.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/child_process.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::autoscale {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kNodes[] =
    "sn,cpu_milli,memory_mib,gpu,model\n"
    "node-a,64000,262144,2,T4\n"
    "node-b,96000,786432,8,V100M32\n";
constexpr char kPodHeader[] = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\n";

class SimulateCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = testing::BinaryPath("gpu-autoscaler");
    if (::access(binary_.c_str(), X_OK) != 0) GTEST_SKIP() << binary_ << " is not built";
    dir_ = testing::MakeTempDir("gpa-simulate-cli");
    nodes_ = Write("nodes.csv", kNodes);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  testing::CommandResult Simulate(const std::string& pods) {
    return testing::RunCommand({binary_, "simulate", "--nodes", nodes_, "--pods", pods, "--policy",
                                "FirstFit", "--seeds", "42", "--threads", "1"});
  }

  std::string binary_;
  std::string dir_;
  std::string nodes_;
};

TEST_F(SimulateCliTest, RunsAGoodTraceWithoutWarnings) {
  const std::string pods = Write("pods.csv", std::string(kPodHeader) +
                                                 "p-1,1000,1024,1,500,\n"
                                                 "p-2,1000,1024,1,1000,T4\n");
  testing::CommandResult run = Simulate(pods);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("FirstFit"));
  EXPECT_THAT(run.err, Not(HasSubstr("warning")));
}

TEST_F(SimulateCliTest, WarnsAboutAGpuModelNoNodeHas) {
  const std::string pods = Write("pods.csv", std::string(kPodHeader) +
                                                 "p-1,1000,1024,1,1000,H800\n"
                                                 "p-2,1000,1024,1,1000,H800|T4\n"
                                                 "p-3,1000,1024,1,500,T4\n");
  testing::CommandResult run = Simulate(pods);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("FirstFit"));
  EXPECT_THAT(
      run.err,
      HasSubstr("gpu-autoscaler simulate: warning: 2 pods in " + pods +
                " ask for GPU model \"H800\" (gpu_spec), which no GPU node in " + nodes_ +
                " has; pods that can never be placed (no model they name is on a node): 1"));
}

TEST_F(SimulateCliTest, ANegativeGpuMilliIsAnErrorWithFileAndLine) {
  const std::string pods = Write("pods.csv", std::string(kPodHeader) +
                                                 "p-1,1000,1024,1,500,\n"
                                                 "p-2,1000,1024,1,-250,\n");
  testing::CommandResult run = Simulate(pods);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err,
              HasSubstr("gpu-autoscaler simulate: " + pods + ":3: gpu_milli -250 is negative"));
  EXPECT_EQ(run.out, "");
}

TEST_F(SimulateCliTest, AHeaderOnlyFileIsAnError) {
  const std::string pods = Write("pods.csv", kPodHeader);
  testing::CommandResult run = Simulate(pods);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr(pods + ":1: no pods after the header"));

  nodes_ = Write("empty-nodes.csv", "sn,cpu_milli,memory_mib,gpu,model\n");
  run = Simulate(pods);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr(nodes_ + ":1: no nodes after the header"));
}

TEST_F(SimulateCliTest, ADirectoryIsReportedAsADirectory) {
  testing::CommandResult run = Simulate(dir_);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr(dir_ + " is a directory"));
  EXPECT_THAT(run.err, Not(HasSubstr("empty file")));
}

TEST_F(SimulateCliTest, AcceptsAByteOrderMark) {
  const std::string pods =
      Write("pods.csv", "\xEF\xBB\xBF" + std::string(kPodHeader) + "p-1,1000,1024,1,500,\n");
  testing::CommandResult run = Simulate(pods);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("FirstFit"));
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
