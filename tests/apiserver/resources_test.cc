// Unit tests of the resource registry (built-ins, CRD registration, discovery
// documents) and of the YAML loader used for --crd-dir.
#include "apiserver/resources.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apiserver/yaml_json.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;

json Golden(const std::string& file) {
  return json::parse(testing::ReadFileOrDie(testing::SourcePath("tests/golden/kube/" + file)));
}

json WidgetCrd() {
  return Golden("50-create-crd.json")["request"]["body"];
}

TEST(ResourceRegistryTest, StorageVersionHashMatchesKubeApiserver) {
  EXPECT_EQ(StorageVersionHash("", "v1", "Pod"), "xPOwRZ+Yhw8=");
  EXPECT_EQ(StorageVersionHash("coordination.k8s.io", "v1beta1", "Lease"), "/sY7hl8ol1U=");
  EXPECT_EQ(StorageVersionHash("example.gpuautoscaler.io", "v1alpha1", "Widget"), "mi6Dy2cgflw=");
}

TEST(ResourceRegistryTest, FindsBuiltInsWithTheirSemantics) {
  ResourceRegistry registry;
  auto pods = registry.Find("", "v1", "pods");
  ASSERT_NE(pods, nullptr);
  EXPECT_EQ(pods->kind, "Pod");
  EXPECT_TRUE(pods->namespaced);
  EXPECT_TRUE(pods->HasSubresource("eviction"));
  EXPECT_TRUE(pods->HasSubresource("status"));
  EXPECT_EQ(pods->StorageKey(), "/pods");
  // v1.20: PodDisruptionBudgets in policy/v1beta1 only.
  EXPECT_EQ(registry.Find("policy", "v1", "poddisruptionbudgets"), nullptr);
  ASSERT_NE(registry.Find("policy", "v1beta1", "poddisruptionbudgets"), nullptr);
  EXPECT_FALSE(registry.HasGroupVersion("policy", "v1"));
  // 1.21 adds policy/v1 (preferred), sharing storage with v1beta1.
  ResourceRegistry v121(21);
  auto pdb_v1 = v121.Find("policy", "v1", "poddisruptionbudgets");
  auto pdb_beta = v121.Find("policy", "v1beta1", "poddisruptionbudgets");
  ASSERT_NE(pdb_v1, nullptr);
  ASSERT_NE(pdb_beta, nullptr);
  EXPECT_EQ(pdb_v1->StorageKey(), pdb_beta->StorageKey());
  // PriorityClasses: v1 and v1beta1 share storage until 1.22 drops v1beta1.
  ASSERT_NE(registry.Find("scheduling.k8s.io", "v1beta1", "priorityclasses"), nullptr);
  EXPECT_EQ(registry.Find("scheduling.k8s.io", "v1beta1", "priorityclasses")->StorageKey(),
            registry.Find("scheduling.k8s.io", "v1", "priorityclasses")->StorageKey());
  ResourceRegistry v122(22);
  EXPECT_EQ(v122.Find("scheduling.k8s.io", "v1beta1", "priorityclasses"), nullptr);
  EXPECT_NE(v122.Find("scheduling.k8s.io", "v1", "priorityclasses"), nullptr);
  EXPECT_EQ(registry.Find("coordination.k8s.io", "v1", "leases")->GroupResource(),
            "leases.coordination.k8s.io");
  EXPECT_FALSE(registry.Find("", "v1", "namespaces")->namespaced);
  EXPECT_EQ(registry.Find("", "v1", "widgets"), nullptr);
  EXPECT_TRUE(registry.HasGroupVersion("apps", "v1"));
  EXPECT_FALSE(registry.HasGroupVersion("apps", "v1beta2"));
}

TEST(ResourceRegistryTest, CoordinationDiscoveryEqualsTheRecording) {
  ResourceRegistry registry;
  auto doc = registry.ResourceListJson("coordination.k8s.io", "v1");
  ASSERT_TRUE(doc);
  EXPECT_EQ(json::parse(*doc), Golden("04-discovery-coordination.json")["response"]["body"]);
}

TEST(ResourceRegistryTest, CrdRegistrationServesItsGroupVersion) {
  ResourceRegistry registry;
  EXPECT_FALSE(registry.ResourceListJson("example.gpuautoscaler.io", "v1alpha1"));
  auto key = registry.RegisterCrd(WidgetCrd());
  ASSERT_TRUE(key.ok()) << key.error().ToString();
  EXPECT_EQ(*key, "example.gpuautoscaler.io/widgets");
  auto widgets = registry.Find("example.gpuautoscaler.io", "v1alpha1", "widgets");
  ASSERT_NE(widgets, nullptr);
  EXPECT_TRUE(widgets->custom);
  EXPECT_TRUE(widgets->HasSubresource("status"));
  EXPECT_EQ(json::parse(widgets->schema_json)["properties"]["spec"]["required"][0], "size");
  auto doc = registry.ResourceListJson("example.gpuautoscaler.io", "v1alpha1");
  ASSERT_TRUE(doc);
  EXPECT_EQ(json::parse(*doc), Golden("51-discovery-crd-group.json")["response"]["body"]);
  json groups = json::parse(registry.GroupListJson());
  EXPECT_EQ(groups["groups"].back()["name"], "example.gpuautoscaler.io");

  registry.UnregisterCrd("widgets.example.gpuautoscaler.io");
  EXPECT_EQ(registry.Find("example.gpuautoscaler.io", "v1alpha1", "widgets"), nullptr);
  EXPECT_FALSE(registry.GroupJson("example.gpuautoscaler.io"));
  EXPECT_TRUE(registry.GroupJson("apps"));
}

TEST(ResourceRegistryTest, MalformedCrdIsAnError) {
  ResourceRegistry registry;
  json crd = WidgetCrd();
  crd["spec"].erase("names");
  auto r = registry.RegisterCrd(crd);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("CustomResourceDefinition"), std::string::npos);
}

TEST(ResourceRegistryTest, CoreDiscoveryListsPodSubresources) {
  ResourceRegistry registry;
  json doc = json::parse(*registry.ResourceListJson("", "v1"));
  EXPECT_FALSE(doc.contains("apiVersion"));  // as kube-apiserver renders /api/v1
  std::map<std::string, json> byName;
  for (const auto& r : doc["resources"])
    byName[r["name"]] = r;
  EXPECT_EQ(byName["pods"]["storageVersionHash"], "xPOwRZ+Yhw8=");
  EXPECT_EQ(byName["pods/eviction"]["group"], "policy");
  EXPECT_EQ(byName["pods/status"]["verbs"], json({"get", "patch", "update"}));
  EXPECT_EQ(byName["namespaces"]["verbs"].size(), 7u);  // no deletecollection
}

TEST(YamlJsonTest, ConvertsMultiDocumentYamlWithCoreSchemaScalars) {
  auto docs = YamlDocumentsToJson(R"(
a: 1
b: "2"
c: true
d: ~
e: 1.5
f: [x, 'y']
---
# empty documents are skipped
---
g: {h: no}
)");
  ASSERT_TRUE(docs.ok()) << docs.error().ToString();
  ASSERT_EQ(docs->size(), 2u);
  EXPECT_EQ((*docs)[0], json::parse(R"({"a":1,"b":"2","c":true,"d":null,"e":1.5,"f":["x","y"]})"));
  EXPECT_EQ((*docs)[1]["g"]["h"], "no");  // YAML 1.2: "no" is a string
  EXPECT_FALSE(YamlDocumentsToJson("a: [unclosed").ok());
}

}  // namespace
}  // namespace gpu_autoscaler::apiserver
