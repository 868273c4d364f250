// Runs the real `autoscale_replay` program (bench/autoscale_replay.cc) on small
// hand-built traces: the JSON figures are computed by hand, bad flags and
// files are errors that name them.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/child_process.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::autoscale {
namespace {

using ::testing::HasSubstr;

// Two 1-GPU pods a day apart: A [0, 3600), B [86500, 90100). The training
// split is B's arrival rounded down to a minute, 86460 s, so the report covers B.
constexpr char kPods[] =
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,creation_time,deletion_time\n"
    "a,1000,1024,1,1000,,0,3600\n"
    "b,1000,1024,1,1000,,86500,90100\n";

// Per minute: 0.9, 1.2 and 0.2 requests/s: 2, 3 and 1 replicas at 0.5 per replica.
constexpr char kQps[] =
    "timestamp_anon,value,container_ip,request_type\n"
    "960.0,0.5,c1,Generative Requests\n"
    "970.0,0.4,,API Requests\n"
    "1020.0,1.2,c1,Generative Requests\n"
    "1080.0,0.2,c1,Generative Requests\n";

class AutoscaleReplayCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = testing::BinaryPath("bench/autoscale_replay");
    if (::access(binary_.c_str(), X_OK) != 0) GTEST_SKIP() << binary_ << " is not built";
    dir_ = testing::MakeTempDir("gpa-autoscale-replay");
    pods_ = Write("pods.csv", kPods);
    qps_ = Write("qps.csv", kQps);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  std::string binary_, dir_, pods_, qps_;
};

TEST_F(AutoscaleReplayCliTest, ReportsHandComputedFiguresAsJson) {
  testing::CommandResult r =
      testing::RunCommand({binary_, "--workload", "openb", "--openb-pods", pods_, "--json", "-",
                           "--no-progress", "--series-dir", dir_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  const nlohmann::json& w = j["workloads"][0];
  EXPECT_EQ(w["name"], "openb");
  EXPECT_EQ(w["gpu_pods"], 2);
  EXPECT_EQ(w["split_time_s"], 86460);
  const nlohmann::json& reactive = w["strategies"][0];
  EXPECT_EQ(reactive["strategy"], "reactive");
  EXPECT_EQ(reactive["pods"], 1);
  EXPECT_EQ(reactive["pending_p50_s"], 90);
  // B's node: requested at 86500, B runs 86590..90190: 3690 s of 8 GPUs.
  EXPECT_DOUBLE_EQ(reactive["gpu_hours"].get<double>(), 3690.0 * 8 / 3600);
  EXPECT_DOUBLE_EQ(reactive["cost"].get<double>(), 2 * 3690.0 * 8 / 3600);
  const nlohmann::json& oracle = w["strategies"][2];
  EXPECT_EQ(oracle["strategy"], "oracle");
  EXPECT_EQ(oracle["pending_max_s"], 0);
  // Requested at 86410, counted from the split at 86460 until B leaves at 90100.
  EXPECT_DOUBLE_EQ(oracle["gpu_hours"].get<double>(), 3640.0 * 8 / 3600);

  const std::string series = testing::ReadFileOrDie(dir_ + "/autoscale_openb_series.csv");
  EXPECT_THAT(series, HasSubstr("hours,demand_peak_gpus,reactive_ready_gpus,"));
}

TEST_F(AutoscaleReplayCliTest, TurnsQpsIntoReplicas) {
  testing::CommandResult r = testing::RunCommand(
      {binary_, "--workload", "genai", "--qps", qps_, "--json", "-", "--no-progress"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["workloads"][0]["gpu_pods"], 3);  // 2 at 0 s, a third at 60 s
}

TEST_F(AutoscaleReplayCliTest, PrintsATable) {
  testing::CommandResult r =
      testing::RunCommand({binary_, "--workload", "openb", "--openb-pods", pods_, "--no-progress"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("strategy     GPU-hours"));
  EXPECT_THAT(r.out, HasSubstr("oracle"));
}

TEST_F(AutoscaleReplayCliTest, HelpAndBadInput) {
  testing::CommandResult help = testing::RunCommand({binary_, "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("Usage: autoscale_replay"));

  testing::CommandResult bad = testing::RunCommand({binary_, "--step", "7"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("bad value for --step: 7"));

  testing::CommandResult unknown = testing::RunCommand({binary_, "--frobnicate", "1"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("unknown flag: --frobnicate"));

  const std::string broken =
      Write("broken.csv",
            "name,cpu_milli,memory_mib,num_gpu,gpu_milli,creation_time,deletion_time\n"
            "p,1,1,1,1000,500,400\n");
  testing::CommandResult r =
      testing::RunCommand({binary_, "--workload", "openb", "--openb-pods", broken});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("broken.csv:2: deletion_time 400 is before creation_time 500"));

  testing::CommandResult missing =
      testing::RunCommand({binary_, "--workload", "genai", "--qps", dir_ + "/none.csv.gz"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.err, HasSubstr("none.csv.gz"));
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
