// File: tests/node-agent/agent_process_support.h
//
// What the node agent's process tests share: the files of the fake proc,
// sysfs and cgroup trees, a GenTD26 series for the fake NVML to replay, and
// reading the agent's /metrics and the Events it records.
//
//   WriteNumaSysfs(dir + "/sys", {"0-7", "8-15"}, 16777216);
//   WriteFile(dir + "/proc/pressure/memory", PsiText(41.2));
//   auto util = GenTdSeries("gpu_util.csv", kTracePod, 100);
//   std::string m = AgentGet(agent, "metrics_port", "/metrics");
//   EXPECT_EQ(ReadTrimmed(pod_dir / "cpuset.cpus"), "2-5");
//
// Thread-safety: plain functions; use from the test's main thread.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cost/usage_trace.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "support/child_process.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::testing {

// A file's text without its trailing newlines ("" when it cannot be read).
inline std::string ReadTrimmed(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && s.back() == '\n')
    s.pop_back();
  return s;
}

// Writes `text` to `path`, creating the directories above it.
inline void WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// A sysfs tree with one NUMA node per cpulist, each with `mem_kb` of memory.
inline void WriteNumaSysfs(const std::string& sysfs_root, const std::vector<std::string>& cpulists,
                           long long mem_kb) {
  for (size_t n = 0; n < cpulists.size(); ++n) {
    const std::filesystem::path d =
        std::filesystem::path(sysfs_root) / "devices/system/node" / ("node" + std::to_string(n));
    WriteFile(d / "cpulist", cpulists[n] + "\n");
    WriteFile(d / "meminfo",
              "Node " + std::to_string(n) + " MemTotal: " + std::to_string(mem_kb) + " kB\n");
  }
}

// A PSI file (/proc/pressure/* or a cgroup's *.pressure) whose "some avg10" is `some_avg10`.
inline std::string PsiText(double some_avg10) {
  char text[160];
  std::snprintf(text, sizeof text,
                "some avg10=%.2f avg60=0.00 avg300=0.00 total=100\n"
                "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
                some_avg10);
  return text;
}

// One pod's series from a GenTD26 usage file (tests/data/genai/recommend_slice),
// values clamped to [0, max_value].
inline std::vector<double> GenTdSeries(const std::string& file, const std::string& pod,
                                       double max_value) {
  const std::string text = ReadFileOrDie(SourcePath("tests/data/genai/recommend_slice/" + file));
  auto trace = cost::ParseUsageTraceCsv(text, file, 0, max_value);
  EXPECT_TRUE(trace.ok()) << trace.error().ToString();
  std::vector<double> out;
  if (!trace.ok()) return out;
  for (const auto& s : trace->samples)
    if (trace->pods[s.pod] == pod) out.push_back(s.value);
  return out;
}

// GET http://127.0.0.1:<port the agent logged as port_key><path>.
inline std::string AgentGet(const ChildProcess& agent, const std::string& port_key,
                            const std::string& path) {
  return RunCommand({"/usr/bin/curl", "-s",
                     "http://127.0.0.1:" + std::to_string(agent.PortFromLog(port_key)) + path})
      .out;
}

// The Events in `ns` about `kind`/`name`, as "reason: message".
inline std::vector<std::string> EventsAbout(kube::RestClient& client, const std::string& ns,
                                            const std::string& kind, const std::string& name) {
  std::vector<std::string> out;
  auto list = client.List({kube::resources::kEvents, ns});
  if (!list.ok()) return out;
  for (const nlohmann::json& e : (*list)["items"])
    if (e["involvedObject"].value("kind", "") == kind &&
        e["involvedObject"].value("name", "") == name)
      out.push_back(e.value("reason", "") + ": " + e.value("message", ""));
  return out;
}

}  // namespace gpu_autoscaler::testing
