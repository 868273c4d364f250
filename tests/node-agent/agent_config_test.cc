#include "node-agent/agent_config.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::node_agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(AgentConfigTest, EmptyDocumentIsTheDefaults) {
  for (const char* text : {"", "# nothing\n", "apiVersion: gpuautoscaler.io/v1alpha1\n"}) {
    auto cfg = ParseAgentConfig(text, "test");
    ASSERT_TRUE(cfg.ok()) << cfg.error().ToString();
    EXPECT_EQ(*cfg, AgentConfig{});
  }
  const PressureEvictionConfig d;
  EXPECT_TRUE(d.enabled);
  EXPECT_EQ(d.interval, seconds(5));
  EXPECT_EQ(d.max_evictions, 1);
  EXPECT_EQ(d.rate_window, seconds(300));
  EXPECT_EQ(d.cool_down, seconds(60));
  EXPECT_EQ(d.trigger(PressureResource::kMemory).threshold, 25);
  EXPECT_EQ(d.trigger(PressureResource::kMemory).disarm_below, 10);
  EXPECT_EQ(d.trigger(PressureResource::kMemory).window, seconds(60));
  EXPECT_EQ(d.trigger(PressureResource::kCpu).threshold, 90);
  EXPECT_EQ(d.trigger(PressureResource::kIo).threshold, 60);
}

TEST(AgentConfigTest, EveryField) {
  auto cfg = ParseAgentConfig(R"(
apiVersion: gpuautoscaler.io/v1alpha1
kind: NodeAgentConfig
pressureEviction:
  enabled: true
  interval: 500ms
  maxEvictions: 3
  rateWindow: 10m
  coolDown: 30s
  memory: {line: full, average: avg60, threshold: 12.5, disarmBelow: 5, window: 90s}
  cpu: {enabled: false}
  io: {average: total, threshold: 70, disarmBelow: 70, window: 2m}
qos: {}
)",
                              "test");
  ASSERT_TRUE(cfg.ok()) << cfg.error().ToString();
  const PressureEvictionConfig& c = cfg->pressure_eviction;
  EXPECT_EQ(c.interval, milliseconds(500));
  EXPECT_EQ(c.max_evictions, 3);
  EXPECT_EQ(c.rate_window, seconds(600));
  EXPECT_EQ(c.cool_down, seconds(30));
  const PressureTrigger& m = c.trigger(PressureResource::kMemory);
  EXPECT_EQ(m.line, PsiLineKind::kFull);
  EXPECT_EQ(m.average, PsiAverage::kAvg60);
  EXPECT_DOUBLE_EQ(m.threshold, 12.5);
  EXPECT_DOUBLE_EQ(m.disarm_below, 5);
  EXPECT_EQ(m.window, seconds(90));
  EXPECT_FALSE(c.trigger(PressureResource::kCpu).enabled);
  EXPECT_EQ(c.trigger(PressureResource::kCpu).threshold, 90);  // the rest stays default
  const PressureTrigger& io = c.trigger(PressureResource::kIo);
  EXPECT_EQ(io.average, PsiAverage::kTotal);
  EXPECT_EQ(io.window, seconds(120));
}

TEST(AgentConfigTest, BadConfigurationsNameTheField) {
  struct Case {
    const char* yaml;
    const char* want;
  } cases[] = {
      {"pressureEviction: [1, 2", "ConfigMap x: not valid YAML"},
      {"- a\n- b\n", "(document): expected a mapping"},
      {"kind: ManagerConfig\n", "kind: must be NodeAgentConfig"},
      {"pressureEvictoin: {}\n", "pressureEvictoin: unknown field"},
      {"pressureEviction: {memory: {treshold: 5}}\n",
       "pressureEviction.memory.treshold: unknown field"},
      {"pressureEviction: {memory: {window: -60s}}\n",
       "pressureEviction.memory.window: must not be negative"},
      {"pressureEviction: {coolDown: 0s}\n", "pressureEviction.coolDown: \"0s\" is not a positive"},
      {"pressureEviction: {interval: 10ms}\n", "pressureEviction.interval: must be at least 100ms"},
      {"pressureEviction: {memory: {threshold: 20, disarmBelow: 30}}\n",
       "pressureEviction.memory.disarmBelow: must not be above threshold"},
      {"pressureEviction: {cpu: {threshold: 101}}\n",
       "pressureEviction.cpu.threshold: expected a percentage"},
      {"pressureEviction: {cpu: {threshold: 0, disarmBelow: 0}}\n",
       "pressureEviction.cpu.threshold: must be above 0"},
      {"pressureEviction: {io: {line: most}}\n", "pressureEviction.io.line: expected some or full"},
      {"pressureEviction: {io: {average: avg5}}\n", "pressureEviction.io.average: expected avg10"},
      {"pressureEviction: {maxEvictions: -1}\n", "pressureEviction.maxEvictions: expected a whole"},
      {"pressureEviction: {enabled: yes}\n", "pressureEviction.enabled: expected true or false"},
      {"qos: {reserve: 2}\n", "qos.reserve: unknown field"},
  };
  for (const Case& c : cases) {
    auto cfg = ParseAgentConfig(c.yaml, "ConfigMap x");
    ASSERT_FALSE(cfg.ok()) << c.yaml;
    EXPECT_NE(cfg.error().message().find(c.want), std::string::npos)
        << c.yaml << " -> " << cfg.error().message();
  }
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
