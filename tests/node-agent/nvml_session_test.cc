// The NVML shim against the fake NVML (a real dlopen of libgpa-fake-nvml.so):
// return codes as Status, a full read of GPUs, MIG, NVLink and processes, a
// missing library, a failing call, and a hung call bounded by the deadline.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "node-agent/nvml/nvml_abi.h"
#include "node-agent/nvml/nvml_errors.h"
#include "node-agent/nvml/nvml_library.h"
#include "node-agent/nvml/nvml_reader.h"
#include "node-agent/nvml/nvml_session.h"
#include "support/child_process.h"
#include "support/fake_nvml/scenario.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::node_agent::nvml {
namespace {

std::string FakeLibrary() {
  return testing::BinaryPath("libgpa-fake-nvml.so");
}

class NvmlSessionTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("gpa-nvml"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Scenario(const std::string& json) {
    // A new file name per scenario: the fake reloads when the path changes.
    const std::string path = dir_ + "/scenario-" + std::to_string(++n_) + ".json";
    std::ofstream(path) << json;
    setenv("GPA_FAKE_NVML_SCENARIO", path.c_str(), 1);
  }
  std::string dir_;
  int n_ = 0;
};

constexpr const char* kScenario = R"({"gpus": [
  {"name": "NVIDIA H100 80GB HBM3", "memoryMiB": 81559, "usedMiB": 1024, "util": 37,
   "nvlinkPeers": [1], "processes": [{"pid": 100, "usedMiB": 1000, "smUtil": 30},
                                     {"pid": 101, "usedMiB": 24, "smUtil": 7}]},
  {"name": "NVIDIA H100 80GB HBM3", "memoryMiB": 81559, "nvlinkPeers": [0]},
  {"name": "NVIDIA H100 80GB HBM3", "memoryMiB": 81559,
   "mig": {"enabled": true, "devices": [{"profile": "1g.10gb", "gi": 9, "memoryMiB": 9984,
                                         "usedMiB": 512},
                                        {"profile": "3g.40gb", "gi": 2, "memoryMiB": 40192}]},
   "processes": [{"pid": 200, "usedMiB": 512, "smUtil": 12, "gi": 9}]},
  {"name": "NVIDIA H100 80GB HBM3", "memoryMiB": 81559}]})";

TEST(NvmlErrors, NamesAndCodes) {
  EXPECT_EQ(NvmlErrorName(NVML_ERROR_GPU_IS_LOST), "NVML_ERROR_GPU_IS_LOST");
  EXPECT_EQ(NvmlErrorName(12345), "NVML_ERROR_12345");
  EXPECT_TRUE(NvmlStatus(NVML_SUCCESS, "nvmlInit_v2").ok());
  Status s = NvmlStatus(NVML_ERROR_GPU_IS_LOST, "nvmlDeviceGetMemoryInfo", "gpu 3", "GPU is lost");
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "nvmlDeviceGetMemoryInfo(gpu 3): NVML_ERROR_GPU_IS_LOST: GPU is lost");
  EXPECT_EQ(NvmlStatusCode(NVML_ERROR_NOT_SUPPORTED), StatusCode::kUnimplemented);
  EXPECT_EQ(NvmlStatusCode(NVML_ERROR_NOT_FOUND), StatusCode::kNotFound);
  EXPECT_EQ(NvmlStatusCode(NVML_ERROR_INSUFFICIENT_SIZE), StatusCode::kOutOfRange);
  EXPECT_EQ(NvmlStatusCode(NVML_ERROR_TIMEOUT), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(NvmlStatusCode(NVML_ERROR_NO_PERMISSION), StatusCode::kPermissionDenied);
  EXPECT_EQ(NvmlStatusCode(NVML_ERROR_UNKNOWN), StatusCode::kInternal);
}

TEST(NvmlReader, MigProfileFromName) {
  EXPECT_EQ(MigProfileFromName("NVIDIA A100-SXM4-80GB MIG 1g.10gb"), "1g.10gb");
  EXPECT_EQ(MigProfileFromName("NVIDIA H100 80GB HBM3 MIG 1c.3g.40gb"), "3g.40gb");
  EXPECT_EQ(MigProfileFromName("NVIDIA H100 80GB HBM3"), "");
}

TEST(NvmlLibrary, MissingLibraryIsNotFound) {
  auto lib = NvmlLibrary::Load("/nonexistent/libnvidia-ml.so.1");
  ASSERT_FALSE(lib.ok());
  EXPECT_EQ(lib.error().code(), StatusCode::kNotFound);
  EXPECT_NE(lib.error().message().find("/nonexistent/libnvidia-ml.so.1"), std::string::npos);
}

TEST(NvmlLibrary, LibraryWithoutNvmlSymbolsIsRefused) {
  auto lib = NvmlLibrary::Load("libc.so.6");
  ASSERT_FALSE(lib.ok());
  EXPECT_EQ(lib.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(lib.error().message().find("nvmlInit_v2"), std::string::npos);
}

TEST_F(NvmlSessionTest, ReadsGpusMigNvlinkAndProcesses) {
  Scenario(kScenario);
  auto session = NvmlSession::Open({.library_path = FakeLibrary()});
  ASSERT_EQ(session->state(), NvmlState::kUp) << session->last_error().ToString();
  auto snap = session->Poll();
  ASSERT_TRUE(snap.ok()) << snap.error().ToString();
  ASSERT_EQ(snap->gpus.size(), 4u);
  const GpuSample& g0 = snap->gpus[0];
  EXPECT_EQ(g0.uuid, "GPU-00000000-0000-4000-8000-000000000000");
  EXPECT_EQ(g0.name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(g0.pci_bus_id, "00000000:10:00.0");
  EXPECT_EQ(g0.memory_total_bytes, 81559ull << 20);
  EXPECT_EQ(g0.memory_used_bytes, 1024ull << 20);
  EXPECT_EQ(g0.util_gpu, 37u);
  EXPECT_FALSE(g0.mig_enabled);
  EXPECT_EQ(g0.nvlink_remote_bus_ids, std::vector<std::string>{"00000000:11:00.0"});
  ASSERT_EQ(g0.processes.size(), 2u);
  EXPECT_EQ(g0.processes[0].pid, 100u);
  EXPECT_EQ(g0.processes[0].used_memory_bytes, 1000ull << 20);
  EXPECT_EQ(g0.processes[0].sm_util, 30u);
  EXPECT_EQ(g0.processes[1].sm_util, 7u);
  EXPECT_TRUE(g0.errors.empty());

  const GpuSample& g2 = snap->gpus[2];
  EXPECT_TRUE(g2.mig_enabled);
  EXPECT_FALSE(g2.util_gpu.has_value());  // NOT_SUPPORTED under MIG: empty, not an error
  ASSERT_EQ(g2.mig_devices.size(), 2u);
  EXPECT_EQ(g2.mig_devices[0].profile, "1g.10gb");
  EXPECT_EQ(g2.mig_devices[0].gpu_instance_id, 9u);
  EXPECT_EQ(g2.mig_devices[0].memory_used_bytes, 512ull << 20);
  EXPECT_EQ(g2.mig_devices[1].profile, "3g.40gb");
  ASSERT_EQ(g2.processes.size(), 1u);
  EXPECT_EQ(g2.processes[0].gpu_instance_id, 9u);
  EXPECT_TRUE(g2.errors.empty());
  EXPECT_TRUE(snap->gpus[3].nvlink_remote_bus_ids.empty());
}

// The fake replays series one sample per poll (the GenTD26 traces drive it
// in the attribution test and the benchmark). Its poll counter is global to
// the process, so the check is that consecutive polls step through the series.
TEST_F(NvmlSessionTest, SeriesAdvanceOneSamplePerPoll) {
  Scenario(R"({"gpus": [{"memoryMiB": 1000, "utilSeries": [10, 20, 30],
                          "usedMiBSeries": [100, 200, 300],
                          "processes": [{"pid": 7, "smUtilSeries": [1, 2, 3],
                                         "usedMiBSeries": [5, 6, 7]}]}]})");
  auto session = NvmlSession::Open({.library_path = FakeLibrary()});
  ASSERT_EQ(session->state(), NvmlState::kUp) << session->last_error().ToString();
  std::vector<unsigned> util;
  for (int i = 0; i < 4; ++i) {
    auto snap = session->Poll();
    ASSERT_TRUE(snap.ok()) << snap.error().ToString();
    const GpuSample& g = snap->gpus[0];
    ASSERT_TRUE(g.util_gpu.has_value());
    util.push_back(*g.util_gpu);
    // The GPU's memory and the process's figures come from the same sample.
    EXPECT_EQ(g.memory_used_bytes, uint64_t{*g.util_gpu} * 10 << 20);
    ASSERT_EQ(g.processes.size(), 1u);
    EXPECT_EQ(g.processes[0].sm_util, *g.util_gpu / 10);
    EXPECT_EQ(g.processes[0].used_memory_bytes, uint64_t{*g.util_gpu / 10 + 4} << 20);
  }
  for (int i = 1; i < 4; ++i)
    EXPECT_EQ(util[i], util[i - 1] % 30 + 10) << "poll " << i;
}

TEST_F(NvmlSessionTest, ABadSeriesNamesItsPath) {
  Scenario(R"({"gpus": [{"utilSeries": [10, 101]}]})");
  auto session = NvmlSession::Open({.library_path = FakeLibrary()});
  EXPECT_EQ(session->state(), NvmlState::kInitFailed);
  auto parsed = fake_nvml::ParseScenario(R"({"gpus": [{"utilSeries": [10, 101]}]})");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message().find("gpus[0].utilSeries[1]"), std::string::npos)
      << parsed.error().message();
}

TEST_F(NvmlSessionTest, MissingLibraryIsAStateNotAFailure) {
  auto session = NvmlSession::Open({.library_path = dir_ + "/libnvidia-ml.so.1"});
  EXPECT_EQ(session->state(), NvmlState::kNoLibrary);
  auto snap = session->Poll();
  ASSERT_FALSE(snap.ok());
  EXPECT_EQ(snap.error().code(), StatusCode::kUnavailable);
  EXPECT_NE(snap.error().message().find("libnvidia-ml.so.1"), std::string::npos);
}

TEST_F(NvmlSessionTest, BadScenarioFailsInit) {
  Scenario(R"({"gpus": [{"memoryMiB": "lots"}]})");
  auto session = NvmlSession::Open({.library_path = FakeLibrary()});
  EXPECT_EQ(session->state(), NvmlState::kInitFailed);
  EXPECT_NE(session->last_error().message().find("NVML_ERROR_UNKNOWN"), std::string::npos);
}

TEST_F(NvmlSessionTest, AFailingCallIsKeptPerGpuAndThePollGoesOn) {
  Scenario(R"({"gpus": [{}, {}], "faults": [{"function": "nvmlDeviceGetUtilizationRates",
                "gpu": 1, "error": "NVML_ERROR_GPU_IS_LOST"}]})");
  auto session = NvmlSession::Open({.library_path = FakeLibrary()});
  auto snap = session->Poll();
  ASSERT_TRUE(snap.ok()) << snap.error().ToString();
  EXPECT_EQ(session->state(), NvmlState::kUp);
  EXPECT_TRUE(snap->gpus[0].errors.empty());
  ASSERT_EQ(snap->gpus[1].errors.size(), 1u);
  EXPECT_EQ(snap->gpus[1].errors[0],
            "nvmlDeviceGetUtilizationRates(gpu 1): NVML_ERROR_GPU_IS_LOST: GPU is lost");
  EXPECT_EQ(snap->gpus[1].memory_total_bytes, 81920ull << 20);  // the rest was read
}

TEST_F(NvmlSessionTest, FailingToCountGpusFailsThePoll) {
  Scenario(R"({"gpus": [{}], "faults": [{"function": "nvmlDeviceGetCount_v2",
                "error": "NVML_ERROR_DRIVER_NOT_LOADED"}]})");
  auto session = NvmlSession::Open({.library_path = FakeLibrary()});
  auto snap = session->Poll();
  ASSERT_FALSE(snap.ok());
  EXPECT_EQ(session->state(), NvmlState::kFailed);
  EXPECT_NE(snap.error().message().find("nvmlDeviceGetCount_v2: NVML_ERROR_DRIVER_NOT_LOADED"),
            std::string::npos)
      << snap.error().message();
}

TEST_F(NvmlSessionTest, AHungCallTimesOutAndNvmlComesBackWhenItReturns) {
  Scenario(R"({"gpus": [{}], "faults": [{"function": "nvmlDeviceGetMemoryInfo",
                "hang": true, "hangMs": 1500, "afterCalls": 1, "count": 1}]})");
  auto session = NvmlSession::Open(
      {.library_path = FakeLibrary(), .call_timeout = std::chrono::milliseconds(200)});
  ASSERT_TRUE(session->Poll().ok());  // the first call answers
  auto hung = session->Poll();
  ASSERT_FALSE(hung.ok());
  EXPECT_EQ(hung.error().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(hung.error().message().find("nvmlDeviceGetMemoryInfo"), std::string::npos)
      << hung.error().message();
  EXPECT_EQ(session->state(), NvmlState::kHung);
  EXPECT_EQ(session->timeouts(), 1u);
  // While the call is stuck, polls answer at once.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(session->Poll().ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(100));
  // Once it returns, polling resumes.
  ASSERT_TRUE(testing::WaitFor([&] { return session->Poll().ok(); }, std::chrono::seconds(5)));
  EXPECT_EQ(session->state(), NvmlState::kUp);
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent::nvml
