// The extender against the exchanges recorded from a real kube-scheduler
// v1.20.2 (tests/golden/extender/): every request is answered in the shape
// the scheduler got from the recording extender. Only the reasons and scores
// are ours: gpu-node-bad is full here instead of failing a health check.
#include "scheduler/extender.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "scheduler/scheduler_test_util.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::scheduler {
namespace {

using testutil::json;
using testutil::Node;
using testutil::Pod;

std::vector<std::string> GoldenFiles() {
  std::vector<std::string> files;
  for (const auto& e :
       std::filesystem::directory_iterator(testing::SourcePath("tests/golden/extender"))) {
    const std::string name = e.path().filename().string();
    if (name.size() > 3 && std::isdigit(static_cast<unsigned char>(name[0])) &&
        e.path().extension() == ".json") {
      files.push_back(e.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

json Load(const std::string& path) {
  return json::parse(testing::ReadFileOrDie(path));
}

std::vector<std::string> Keys(const json& object) {
  std::vector<std::string> keys;
  for (auto& [k, v] : object.items()) {
    std::string lower = k;
    for (char& c : lower)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    keys.push_back(lower);
  }
  return keys;
}

// The recorded cluster: three 8-GPU nodes; gpu-node-bad has no GPU left.
std::unique_ptr<ClusterCache> RecordedCluster() {
  auto cache = std::move(ClusterCache::Create({})).value();
  for (const char* name : {"gpu-node-a", "gpu-node-b", "gpu-node-bad"}) {
    cache->UpsertNode(
        Node({.name = name, .cpu = 32, .allocatable_extra = {{"nvidia.com/gpu", "8"}}}));
  }
  cache->UpsertNode(Node({.name = "cpu-node-1", .cpu = 32}));
  cache->UpsertPod(Pod({.name = "filler",
                        .ns = "other",
                        .requests = {{"nvidia.com/gpu", "8"}},
                        .node = "gpu-node-bad",
                        .phase = "Running"}));
  return cache;
}

// nlohmann's object keeps keys sorted; the wire order is what we compare.
std::vector<std::string> WireKeys(const std::string& body) {
  std::vector<std::string> keys;
  int depth = 0;
  bool in_string = false;
  std::string current;
  bool reading_key = false;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
        continue;
      }
      if (c == '"') {
        in_string = false;
        if (reading_key) keys.push_back(current);
        continue;
      }
      current += c;
      continue;
    }
    if (c == '"') {
      in_string = true;
      current.clear();
      size_t j = i + 1;
      while (j < body.size() && body[j] != '"')
        j += body[j] == '\\' ? 2 : 1;
      reading_key = depth == 1 && j + 1 < body.size() && body[j + 1] == ':';
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return keys;
}

TEST(ExtenderGoldenTest, AnswersEveryRecordedRequestInTheRecordedShape) {
  std::map<std::string, json> pods_by_uid;
  for (const std::string& file : GoldenFiles()) {
    json golden = Load(file);
    const json& body = golden["request"]["body"];
    if (body.contains("Pod")) pods_by_uid[body["Pod"]["metadata"]["uid"]] = body["Pod"];
  }
  int checked = 0;
  for (const std::string& file : GoldenFiles()) {
    SCOPED_TRACE(file);
    json golden = Load(file);
    const std::string path = golden["request"]["path"];
    const std::string verb = path.substr(1);
    auto cache = RecordedCluster();
    std::vector<BindRequest> binds;
    Extender extender(
        *cache, {.bind =
                     [&](const BindRequest& r) {
                       binds.push_back(r);
                       return Status::Ok();
                     },
                 .find_pod = [&](std::string_view,
                                 std::string_view name) -> std::shared_ptr<const kube::PodView> {
                   for (auto& [uid, pod] : pods_by_uid) {
                     if (pod["metadata"]["name"] == name &&
                         uid == golden["request"]["body"].value("PodUID", "")) {
                       return std::make_shared<const kube::PodView>(
                           std::move(kube::DecodePod(pod.dump())).value());
                     }
                   }
                   return nullptr;
                 }});
    ExtenderReply reply = extender.Handle(verb, golden["request"]["body"].dump());
    ASSERT_EQ(reply.status, golden["response"]["status"].get<int>());
    json ours = json::parse(reply.body);
    const json& theirs = golden["response"]["body"];
    if (verb == "filter") {
      EXPECT_EQ(WireKeys(reply.body),
                (std::vector<std::string>{"Nodes", "NodeNames", "FailedNodes", "Error"}));
      EXPECT_EQ(Keys(ours), Keys(theirs));
      const bool cache_mode = theirs.contains("NodeNames") ? !theirs["NodeNames"].is_null()
                                                           : !theirs["nodeNames"].is_null();
      std::set<std::string> kept_ours;
      std::set<std::string> kept_theirs;
      if (cache_mode) {
        EXPECT_TRUE(ours["Nodes"].is_null());
        for (const auto& n : ours["NodeNames"])
          kept_ours.insert(n);
        for (const auto& n :
             theirs.contains("NodeNames") ? theirs["NodeNames"] : theirs["nodeNames"])
          kept_theirs.insert(n);
      } else {
        EXPECT_TRUE(ours["NodeNames"].is_null());
        EXPECT_EQ(Keys(ours["Nodes"]), Keys(theirs["Nodes"]));
        for (const auto& n : ours["Nodes"]["items"]) {
          kept_ours.insert(n["metadata"]["name"]);
          EXPECT_TRUE(n.contains("status"));  // the whole Node is echoed
        }
        for (const auto& n : theirs["Nodes"]["items"])
          kept_theirs.insert(n["metadata"]["name"]);
      }
      EXPECT_EQ(kept_ours, kept_theirs);
      const json& failed =
          theirs.contains("FailedNodes") ? theirs["FailedNodes"] : theirs["failedNodes"];
      EXPECT_EQ(Keys(ours["FailedNodes"]), Keys(failed));
      for (auto& [node, reason] : ours["FailedNodes"].items())
        EXPECT_EQ(reason, "Insufficient nvidia.com/gpu") << node;
      EXPECT_EQ(ours["Error"], "");
    } else if (verb == "prioritize") {
      ASSERT_TRUE(ours.is_array());
      ASSERT_EQ(ours.size(), theirs.size());
      for (size_t i = 0; i < ours.size(); ++i) {
        EXPECT_EQ(Keys(ours[i]), Keys(theirs[i]));
        const json& args = golden["request"]["body"];
        EXPECT_EQ(ours[i]["Host"], args["NodeNames"].is_null()
                                       ? args["Nodes"]["items"][i]["metadata"]["name"]
                                       : args["NodeNames"][i]);
        EXPECT_GE(ours[i]["Score"].get<int>(), 1);
        EXPECT_LE(ours[i]["Score"].get<int>(), 10);
      }
    } else {
      ASSERT_EQ(verb, "bind");
      EXPECT_EQ(reply.body, R"({"Error":""})");
      EXPECT_EQ(Keys(ours), Keys(theirs));
      ASSERT_EQ(binds.size(), 1u);
      const json& args = golden["request"]["body"];
      EXPECT_EQ(binds[0].node, args["Node"]);
      EXPECT_EQ(binds[0].uid, args["PodUID"]);
      EXPECT_EQ(binds[0].ns, args["PodNamespace"]);
      const size_t want = args["PodName"] == "gpu-2"           ? 2
                          : args["PodName"] == "gpu-preemptor" ? 4
                                                               : 1;
      EXPECT_EQ(binds[0].gpus.size(), want);
    }
    ++checked;
  }
  EXPECT_EQ(checked, 21);
}

TEST(ExtenderTest, AnswersEscapeEveryName) {
  ExtenderArgs args;
  args.node_cache_capable = true;
  const std::string odd = "a\"b\\c\n\x01\xc3\xa9";  // quote, backslash, newline, control, UTF-8
  args.node_names = {odd, "plain"};
  FilterOutcome outcome;
  outcome.feasible = {odd};
  outcome.failed = {{"plain", "why \"not\""}, {"plain", "the later reason wins"}};
  json filter = json::parse(FilterResultJson(args, outcome, "e\"rr"));
  EXPECT_EQ(filter["NodeNames"], json({odd}));
  EXPECT_EQ(filter["FailedNodes"], json({{"plain", "the later reason wins"}}));
  EXPECT_EQ(filter["Error"], "e\"rr");
  std::vector<std::string> hosts = {odd, "plain"};
  std::vector<int> scores = {10, 3};
  json list = json::parse(HostPriorityListJson(hosts, scores));
  EXPECT_EQ(list,
            json::parse(R"([{"Host":")" + json(odd).dump().substr(1, json(odd).dump().size() - 2) +
                        R"(","Score":10},{"Host":"plain","Score":3}])"));
  EXPECT_EQ(json::parse(BindingResultJson("x\ty"))["Error"], "x\ty");
}

TEST(ExtenderTest, AcceptsAnyKeyCase) {
  auto cache = RecordedCluster();
  Extender extender(*cache, {});
  json args = {{"pod", testutil::PodJson({.name = "p", .requests = {{"nvidia.com/gpu", "1"}}})},
               {"nodes", nullptr},
               {"nodenames", {"gpu-node-a", "gpu-node-bad"}}};
  ExtenderReply reply = extender.Handle("filter", args.dump());
  ASSERT_EQ(reply.status, 200) << reply.body;
  json out = json::parse(reply.body);
  EXPECT_EQ(out["NodeNames"], json({"gpu-node-a"}));
}

TEST(ExtenderTest, MalformedRequestsGetAClearError) {
  auto cache = RecordedCluster();
  Extender extender(*cache, {});
  struct Case {
    std::string verb;
    std::string body;
    std::string want;
  };
  for (const Case& c : std::vector<Case>{
           {"filter", "{", "ExtenderArgs"},
           {"filter", "[]", "must be a JSON object"},
           {"filter", R"({"NodeNames":["a"]})", "has no Pod"},
           {"filter", R"({"Pod":{},"NodeNames":null,"Nodes":null})", "neither NodeNames nor Nodes"},
           {"filter", R"({"Pod":{},"NodeNames":[1]})", "NodeNames[] must be strings"},
           {"filter", R"({"Pod":{"spec":{"containers":7}},"NodeNames":["a"]})", "Pod:"},
           {"prioritize", R"({"Pod":{},"Nodes":{"items":[{"metadata":{}}]}})", "metadata.name"},
           {"bind", R"({"PodName":"x"})", "needs PodName and Node"},
           {"bind", R"({"PodName":5,"Node":"n"})", "values are strings"},
           {"preempt", "{}", "has no Pod"},
           {"reserve", "{}", "unknown extender verb"},
       }) {
    SCOPED_TRACE(c.verb + " " + c.body);
    ExtenderReply reply = extender.Handle(c.verb, c.body);
    EXPECT_NE(reply.status, 200);
    json out = json::parse(reply.body);
    EXPECT_NE(out["Error"].get<std::string>().find(c.want), std::string::npos) << reply.body;
  }
}

TEST(ExtenderTest, BindRefusesAPodThatFitsNoLongerOrWasRecreated) {
  auto cache = RecordedCluster();
  auto pod = testutil::PodJson({.name = "p", .requests = {{"nvidia.com/gpu", "1"}}});
  int binds = 0;
  Extender extender(*cache, {.bind =
                                 [&](const BindRequest&) {
                                   ++binds;
                                   return Status::Ok();
                                 },
                             .find_pod =
                                 [&](std::string_view, std::string_view) {
                                   return std::make_shared<const kube::PodView>(
                                       std::move(kube::DecodePod(pod.dump())).value());
                                 }});
  json full = {
      {"PodName", "p"}, {"PodNamespace", "default"}, {"PodUID", "uid-p"}, {"Node", "gpu-node-bad"}};
  json out = json::parse(extender.Handle("bind", full.dump()).body);
  EXPECT_NE(out["Error"].get<std::string>().find("Insufficient nvidia.com/gpu"), std::string::npos);
  json recreated = {
      {"PodName", "p"}, {"PodNamespace", "default"}, {"PodUID", "other"}, {"Node", "gpu-node-a"}};
  out = json::parse(extender.Handle("bind", recreated.dump()).body);
  EXPECT_NE(out["Error"].get<std::string>().find("recreated"), std::string::npos);
  json unknown = {{"PodName", "p"}, {"PodNamespace", "default"}, {"Node", "ghost"}};
  out = json::parse(extender.Handle("bind", unknown.dump()).body);
  EXPECT_NE(out["Error"].get<std::string>().find("not in gpu-autoscaler's cache"),
            std::string::npos);
  EXPECT_EQ(binds, 0);
}

}  // namespace
}  // namespace gpu_autoscaler::scheduler
