// `gpu-autoscaler recommend` as a real process on a 40-minute slice of the
// GenTD26 usage files (tests/data/genai/recommend_slice: 3 pods × 43 rows of
// each file, unchanged), with a fixed 15 % margin so the values can be
// worked out by hand.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support/child_process.h"
#include "support/test_paths.h"

namespace gpu_autoscaler {
namespace {

std::string Slice(const std::string& file) {
  return testing::SourcePath("tests/data/genai/recommend_slice/" + file);
}

testing::CommandResult Recommend(std::vector<std::string> args) {
  args.insert(args.begin(), {testing::BinaryPath("gpu-autoscaler"), "recommend"});
  return testing::RunCommand(args);
}

const nlohmann::json& Pod(const nlohmann::json& doc, const std::string& prefix) {
  for (const nlohmann::json& p : doc["pods"]) {
    if (p["pod"].get<std::string>().rfind(prefix, 0) == 0) return p;
  }
  ADD_FAILURE() << prefix;
  return doc;
}

TEST(RecommendCliIntegrationTest, SliceValues) {
  const auto run = Recommend({"--gpu-util", Slice("gpu_util.csv"), "--gpu-memory",
                              Slice("gpu_memory.csv"), "--memory", Slice("memory.csv"),
                              "--train-fraction", "0.5", "--margin", "0.15", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json doc = nlohmann::json::parse(run.out);
  const nlohmann::json& summary = doc["summary"];
  EXPECT_EQ(summary["pods"], 3);
  EXPECT_EQ(summary["gpu_model"], "A100-80GB");
  EXPECT_EQ(summary["margins_tuned"], false);

  // Each pod's timeline is [1662858720, 1662861114]; the cut is 1197 s in:
  // 21 samples teach, 22 score.
  // 23b8eba9: training GPU-memory peak 33,879,490,560 B; the end of its bucket
  // × 1.15 = 40.30 GB, over 3g.40gb's 40 GB, so no MIG slice below 7g.80gb.
  // Utilisation p95 = 68.1 %, in the bucket ending at 0.68445; × 1.15 =
  // 0.787 -> 80 %. Median 0 (mostly idle) -> time-slicing, fraction
  // max(0.80, 40.30 / 80) = 0.80.
  const nlohmann::json& busy = Pod(doc, "23b8eba9");
  EXPECT_EQ(busy["gpu"]["kind"], "time-slicing");
  EXPECT_NEAR(busy["gpu"]["gpu_memory_limit_bytes"].get<double>(), 40'301'580'346.6, 1);
  EXPECT_NEAR(busy["gpu"]["compute_share"].get<double>(), 0.80, 1e-12);
  EXPECT_NEAR(busy["gpu"]["gpu_fraction"].get<double>(), 0.80, 1e-12);
  // 673d3687: peak 18,608,095,232 B -> 22.34 GB; idle -> compute floor 5 %;
  // 3g.40gb's 0.5 exceeds 22.34 / 80 + 0.125 = 0.404 -> time-slicing, 0.2792.
  const nlohmann::json& idle = Pod(doc, "673d3687");
  EXPECT_EQ(idle["gpu"]["kind"], "time-slicing");
  EXPECT_NEAR(idle["gpu"]["gpu_memory_limit_bytes"].get<double>(), 22'339'500'554.9, 1);
  EXPECT_NEAR(idle["gpu"]["gpu_fraction"].get<double>(), 22'339'500'554.9 / 80e9, 1e-9);
  // e87d4367: peak 26,172,719,104 B -> 31.53 GB; idle in training; 3g.40gb
  // (0.5) is within 0.394 + 0.125 -> MIG 3g.40gb with a 40 GB limit.
  const nlohmann::json& mig = Pod(doc, "e87d4367");
  EXPECT_EQ(mig["gpu"]["kind"], "mig");
  EXPECT_EQ(mig["gpu"]["mig_profile"], "3g.40gb");
  EXPECT_DOUBLE_EQ(mig["gpu"]["gpu_memory_limit_bytes"].get<double>(), 40e9);
  // Memory: the training peak 0.8188 is in the bucket ending at 0.83626; × 1.15.
  EXPECT_NEAR(mig["memory"]["target"].get<double>(), 0.9616998333, 1e-9);

  // 100 × (1 − (0.80 + 0.27924 + 0.5) / 3)
  const double saved = 100 * (1 - (0.80 + 22'339'500'554.9 / 80e9 + 0.5) / 3);
  EXPECT_NEAR(summary["gpus_saved_pct"].get<double>(), saved, 1e-6);
  EXPECT_DOUBLE_EQ(summary["gpu_memory_exceed_minutes_pct"].get<double>(), 0);
  EXPECT_EQ(summary["gpu_memory_test_minutes"], 66);
  EXPECT_DOUBLE_EQ(summary["memory_exceed_minutes_pct"].get<double>(), 0);
  EXPECT_TRUE(doc["baselines"]["vpa"].contains("gpus_saved_pct"));
  EXPECT_DOUBLE_EQ(doc["baselines"]["whole_gpu"]["gpus_saved_pct"].get<double>(), 0);
}

TEST(RecommendCliIntegrationTest, TableAndHelp) {
  const auto table =
      Recommend({"--gpu-util", Slice("gpu_util.csv"), "--gpu-memory", Slice("gpu_memory.csv")});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("23b8eba99c14e73d454503a55ae96989"), std::string::npos);
  EXPECT_NE(table.out.find("GPUS-SAVED%"), std::string::npos);
  const auto help = Recommend({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--train-fraction"), std::string::npos);
}

TEST(RecommendCliIntegrationTest, BadInputGetsClearErrors) {
  const auto missing =
      Recommend({"--gpu-util", "/nonexistent.csv", "--gpu-memory", Slice("gpu_memory.csv")});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("cannot open /nonexistent.csv"), std::string::npos) << missing.err;

  const std::string dir = testing::MakeTempDir("recommend");
  const std::string bad = dir + "/bad.csv";
  std::ofstream(bad) << "value,timestamp_anon,container_ip\n10,60,p\n10,120\n";
  const auto malformed = Recommend({"--gpu-util", bad, "--gpu-memory", Slice("gpu_memory.csv")});
  EXPECT_EQ(malformed.exit_code, 1);
  EXPECT_NE(malformed.err.find(bad + ":3: expected 3 fields, found 2"), std::string::npos)
      << malformed.err;
  std::remove(bad.c_str());
  std::remove(dir.c_str());

  const auto no_flag = Recommend({"--gpu-util", Slice("gpu_util.csv")});
  EXPECT_EQ(no_flag.exit_code, 2);
  EXPECT_NE(no_flag.err.find("--gpu-memory is required"), std::string::npos);
  const auto bad_fraction = Recommend({"--gpu-util", Slice("gpu_util.csv"), "--gpu-memory",
                                       Slice("gpu_memory.csv"), "--train-fraction", "1.5"});
  EXPECT_EQ(bad_fraction.exit_code, 2);
  const auto bad_model = Recommend({"--gpu-util", Slice("gpu_util.csv"), "--gpu-memory",
                                    Slice("gpu_memory.csv"), "--gpu-model", "T4"});
  EXPECT_EQ(bad_model.exit_code, 2);
  EXPECT_NE(bad_model.err.find("--gpu-model"), std::string::npos);
}

}  // namespace
}  // namespace gpu_autoscaler
