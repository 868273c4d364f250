#include "autoscale/trace.h"

#include <gtest/gtest.h>

#include "support/test_paths.h"

namespace gpu_autoscaler::autoscale {
namespace {

TEST(TraceTest, ParsesNodes) {
  Result<std::vector<NodeSpec>> nodes = ParseNodeCsv(
      "sn,cpu_milli,memory_mib,gpu,model\r\nn-1,64000,262144,2,P100\r\n\nn-2,96000,786432,0,\n",
      "nodes.csv");
  ASSERT_TRUE(nodes.ok()) << nodes.error().ToString();
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_EQ((*nodes)[0].name, "n-1");
  EXPECT_EQ((*nodes)[0].cpu_milli, 64000);
  EXPECT_EQ((*nodes)[0].memory_mib, 262144);
  EXPECT_EQ((*nodes)[0].gpu_count, 2);
  EXPECT_EQ((*nodes)[0].gpu_model, "P100");
  EXPECT_EQ((*nodes)[1].gpu_count, 0);
}

TEST(TraceTest, ParsesPodsWithReorderedAndMissingOptionalColumns) {
  Result<std::vector<PodSpec>> pods = ParsePodCsv(
      "gpu_milli,name,num_gpu,cpu_milli,memory_mib,gpu_spec,qos\n"
      "460,p-1,1,6000,12288,,LS\n"
      "1500,p-2,1,1000,1,V100M16|V100M32,BE\n"
      "-5,p-3,0,2000,1,,BE\n",
      "pods.csv");
  ASSERT_TRUE(pods.ok()) << pods.error().ToString();
  ASSERT_EQ(pods->size(), 3u);
  EXPECT_EQ((*pods)[0].name, "p-1");
  EXPECT_EQ((*pods)[0].gpu_milli, 460);
  EXPECT_TRUE((*pods)[0].gpu_models.empty());
  EXPECT_EQ((*pods)[1].gpu_milli, 1000);  // clamped
  EXPECT_EQ((*pods)[1].gpu_models, (std::vector<std::string>{"V100M16", "V100M32"}));
  EXPECT_EQ((*pods)[2].gpu_milli, 0);

  Result<std::vector<PodSpec>> multigpu =
      ParsePodCsv("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1000,1,8,1000\n", "m.csv");
  ASSERT_TRUE(multigpu.ok());
  EXPECT_EQ((*multigpu)[0].num_gpu, 8);
}

struct BadCase {
  const char* text;
  const char* expected;
};

TEST(TraceTest, BadRowsReportFileAndLine) {
  const BadCase cases[] = {
      {"", "pods.csv:1: empty file"},
      {"name,cpu_milli,memory_mib,num_gpu\n", "pods.csv:1: header lacks column \"gpu_milli\""},
      {"name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,1,500\np,x,1,1,500\n",
       "pods.csv:3: cpu_milli \"x\" is not an integer"},
      {"name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,1\n",
       "pods.csv:2: expected 5 fields, found 4"},
      {"name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,-1,1,1,500\n",
       "pods.csv:2: cpu_milli -1 is outside"},
      {"name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,17,1000\n",
       "pods.csv:2: num_gpu 17 is outside"},
      {"name,cpu_milli,memory_mib,num_gpu,gpu_milli\n,1,1,1,1000\n",
       "pods.csv:2: pod name is empty"},
      {"name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\np,1,1,1,1000,T4||A10\n",
       "pods.csv:2: gpu_spec \"T4||A10\" has an empty model"},
      {"name,cpu_milli,memory_mib,num_gpu,gpu_milli\n\"p\",1,1,1,1000\n",
       "pods.csv:2: quoted fields"},
      {"name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1.5,1,1,1000\n",
       "pods.csv:2: cpu_milli \"1.5\" is not an integer"},
  };
  for (const BadCase& c : cases) {
    Result<std::vector<PodSpec>> pods = ParsePodCsv(c.text, "pods.csv");
    ASSERT_FALSE(pods.ok()) << c.text;
    EXPECT_EQ(pods.error().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(pods.error().message().rfind(c.expected, 0), 0u)
        << "got: " << pods.error().message() << "\nwant prefix: " << c.expected;
  }
  Result<std::vector<NodeSpec>> dup =
      ParseNodeCsv("sn,cpu_milli,memory_mib,gpu,model\na,1,1,1,T4\na,1,1,1,T4\n", "nodes.csv");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().message(), "nodes.csv:3: duplicate node name \"a\"");
  Result<std::vector<NodeSpec>> no_model =
      ParseNodeCsv("sn,cpu_milli,memory_mib,gpu,model\na,1,1,2,\n", "nodes.csv");
  ASSERT_FALSE(no_model.ok());
  EXPECT_EQ(no_model.error().message(), "nodes.csv:2: node has GPUs but no model");
}

TEST(TraceTest, LoadsTheCheckedInOpenbTrace) {
  Result<std::vector<NodeSpec>> nodes =
      LoadNodeCsv(testing::SourcePath("bench/data/openb/openb_node_list_gpu_node.csv"));
  ASSERT_TRUE(nodes.ok()) << nodes.error().ToString();
  EXPECT_EQ(nodes->size(), 1213u);
  int gpus = 0;
  for (const NodeSpec& n : *nodes)
    gpus += n.gpu_count;
  EXPECT_EQ(gpus, 6212);
  Result<std::vector<PodSpec>> pods =
      LoadPodCsv(testing::SourcePath("bench/data/openb/openb_pod_list_default.csv"));
  ASSERT_TRUE(pods.ok()) << pods.error().ToString();
  EXPECT_EQ(pods->size(), 8152u);
  EXPECT_EQ(LoadPodCsv("/nonexistent/pods.csv").error().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
