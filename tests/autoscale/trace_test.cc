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
      "0,p-3,0,2000,1,,BE\n",
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
      // A negative share used to become 0 without a word (a CPU-only pod).
      {"name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,1,500\np,1,1,1,-5\n",
       "pods.csv:3: gpu_milli -5 is negative; want thousandths of a GPU, 0 to 1000"},
      // A header and nothing else used to be an empty, accepted trace.
      {"name,cpu_milli,memory_mib,num_gpu,gpu_milli\n", "pods.csv:1: no pods after the header"},
      {"name,cpu_milli,memory_mib,num_gpu,gpu_milli\r\n\r\n  \n",
       "pods.csv:1: no pods after the header"},
      // A byte order mark alone is still an empty file.
      {"\xEF\xBB\xBF", "pods.csv:1: empty file"},
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
  Result<std::vector<NodeSpec>> header_only =
      ParseNodeCsv("sn,cpu_milli,memory_mib,gpu,model\n", "nodes.csv");
  ASSERT_FALSE(header_only.ok());
  EXPECT_EQ(header_only.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(header_only.error().message(), "nodes.csv:1: no nodes after the header");
}

// Spreadsheets save "CSV UTF-8" with a byte order mark; it used to make the
// first column "\xEF\xBB\xBFname" and fail with "header lacks column".
TEST(TraceTest, SkipsAUtf8ByteOrderMark) {
  Result<std::vector<PodSpec>> pods =
      ParsePodCsv("\xEF\xBB\xBFname,cpu_milli,memory_mib,num_gpu,gpu_milli\r\np-1,1000,1,1,500\r\n",
                  "pods.csv");
  ASSERT_TRUE(pods.ok()) << pods.error().ToString();
  ASSERT_EQ(pods->size(), 1u);
  EXPECT_EQ((*pods)[0].name, "p-1");
  EXPECT_EQ((*pods)[0].gpu_milli, 500);
  Result<std::vector<NodeSpec>> nodes =
      ParseNodeCsv("\xEF\xBB\xBFsn,cpu_milli,memory_mib,gpu,model\nn-1,1,1,1,T4\n", "nodes.csv");
  ASSERT_TRUE(nodes.ok()) << nodes.error().ToString();
  ASSERT_EQ(nodes->size(), 1u);
  EXPECT_EQ((*nodes)[0].name, "n-1");
  // Only at the very start: elsewhere it is part of a field.
  Result<std::vector<NodeSpec>> late =
      ParseNodeCsv("sn,cpu_milli,memory_mib,gpu,model\n\xEF\xBB\xBFn-1,1,1,1,T4\n", "nodes.csv");
  ASSERT_TRUE(late.ok());
  EXPECT_EQ((*late)[0].name, "\xEF\xBB\xBFn-1");
}

// A directory used to open, read as nothing and be reported as "empty file".
TEST(TraceTest, ADirectoryIsNotAnEmptyFile) {
  const std::string dir = testing::SourcePath("bench/data/openb");
  Result<std::vector<PodSpec>> pods = LoadPodCsv(dir);
  ASSERT_FALSE(pods.ok());
  EXPECT_EQ(pods.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(pods.error().message(), dir + " is a directory, not a CSV file");
  Result<std::vector<NodeSpec>> nodes = LoadNodeCsv(dir);
  ASSERT_FALSE(nodes.ok());
  EXPECT_EQ(nodes.error().message(), dir + " is a directory, not a CSV file");
  Result<std::vector<PodSpec>> missing = LoadPodCsv("/nonexistent/pods.csv");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.error().message(),
            "cannot open /nonexistent/pods.csv: No such file or directory");
}

TEST(TraceTest, UnknownGpuModelsCountsPodsPerModelNoNodeHas) {
  std::vector<NodeSpec> nodes(3);
  nodes[0].name = "a";
  nodes[0].gpu_count = 2;
  nodes[0].gpu_model = "T4";
  nodes[1].name = "b";
  nodes[1].gpu_count = 8;
  nodes[1].gpu_model = "V100M32";
  nodes[2].name = "cpu";  // no GPUs: its (cleared) model counts for nothing
  auto pod = [](std::vector<std::string> models) {
    PodSpec p;
    p.name = "p";
    p.num_gpu = 1;
    p.gpu_milli = 1000;
    p.gpu_models = std::move(models);
    return p;
  };
  std::vector<PodSpec> pods = {
      pod({}),                      // any model
      pod({"T4"}),                  // known
      pod({"H800"}),                // unknown, never placeable
      pod({"H800", "H800"}),        // counted once
      pod({"V100M16", "V100M32"}),  // V100M16 unknown, but placeable on b
      pod({"V100M16", "H800"}),     // both unknown
      pod({"t4"}),                  // models match exactly, as the simulator does
  };
  std::vector<UnknownGpuModel> unknown = UnknownGpuModels(nodes, pods);
  ASSERT_EQ(unknown.size(), 3u);
  EXPECT_EQ(unknown[0].model, "H800");
  EXPECT_EQ(unknown[0].pods, 3);
  EXPECT_EQ(unknown[0].unplaceable_pods, 3);
  EXPECT_EQ(unknown[1].model, "V100M16");
  EXPECT_EQ(unknown[1].pods, 2);
  EXPECT_EQ(unknown[1].unplaceable_pods, 1);
  EXPECT_EQ(unknown[2].model, "t4");
  EXPECT_EQ(unknown[2].pods, 1);
  EXPECT_EQ(unknown[2].unplaceable_pods, 1);
  EXPECT_TRUE(UnknownGpuModels(nodes, std::vector<PodSpec>{pod({"T4"}), pod({})}).empty());
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
