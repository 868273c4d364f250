// Checks the shipped webhook registrations (config/webhook/*.yaml) against the
// rules in docs/webhooks.md: mutation fails open, validation fails closed
// only where namespaceSelector and objectSelector scope it, nothing can ever
// match kube-system, 5 s timeouts, no side effects, v1 reviews, and every
// path is one the server serves.
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/selector.h"
#include "support/test_paths.h"
#include "webhooks/server.h"

namespace gpu_autoscaler::webhooks {
namespace {

// Scalars become strings: enough for selectors, names and enums.
nlohmann::json ToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node)
        out[kv.first.as<std::string>()] = ToJson(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node)
        out.push_back(ToJson(item));
      return out;
    }
    case YAML::NodeType::Scalar:
      return node.as<std::string>();
    default:
      return nullptr;
  }
}

struct Document {
  std::string file;
  nlohmann::json object;
};

std::vector<Document> LoadManifests() {
  std::vector<Document> docs;
  std::string dir = testing::SourcePath("config/webhook");
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    try {
      for (const YAML::Node& node : YAML::LoadAllFromFile(entry.path().string())) {
        if (node.IsNull()) continue;
        docs.push_back({entry.path().filename().string(), ToJson(node)});
      }
    } catch (const YAML::Exception& e) {
      ADD_FAILURE() << entry.path() << ": " << e.what();
    }
  }
  return docs;
}

// Labels a namespace carries; kube-apiserver sets kubernetes.io/metadata.name.
std::map<std::string, std::string> NamespaceLabels(const std::string& name,
                                                   bool opted_into_sharing) {
  std::map<std::string, std::string> labels = {{"kubernetes.io/metadata.name", name}};
  if (opted_into_sharing) labels["gpuautoscaler.io/gpu-sharing"] = "enabled";
  return labels;
}

bool SelectorMatches(const nlohmann::json& webhook, const char* field,
                     const std::map<std::string, std::string>& labels) {
  auto it = webhook.find(field);
  if (it == webhook.end()) return true;  // absent selector: everything
  auto selector = kube::LabelSelector::FromJson(it->dump());
  EXPECT_TRUE(selector.ok()) << field << ": " << selector.error().ToString();
  return selector.ok() && selector->Matches(labels);
}

TEST(WebhookManifests, EveryWebhookFollowsTheFailurePolicyAndScopingRules) {
  std::vector<Document> docs = LoadManifests();
  int mutating = 0, validating = 0, fail_closed = 0;
  std::set<std::string> paths;
  std::string service_name, service_namespace;
  for (const auto& doc : docs) {
    if (doc.object.value("kind", "") == "Service") {
      service_name = doc.object["metadata"].value("name", "");
      service_namespace = doc.object["metadata"].value("namespace", "");
    }
  }
  for (const auto& doc : docs) {
    const std::string kind = doc.object.value("kind", "");
    const bool is_mutating = kind == "MutatingWebhookConfiguration";
    if (!is_mutating && kind != "ValidatingWebhookConfiguration") continue;
    ASSERT_TRUE(doc.object.contains("webhooks")) << doc.file;
    for (const auto& hook : doc.object["webhooks"]) {
      const std::string name = hook.value("name", "");
      SCOPED_TRACE(doc.file + ": " + kind + " " + name);
      (is_mutating ? mutating : validating)++;
      EXPECT_EQ(hook["admissionReviewVersions"], nlohmann::json::array({"v1"}));
      EXPECT_EQ(hook.value("sideEffects", ""), "None");
      EXPECT_EQ(hook.value("timeoutSeconds", ""), "5");
      const std::string failure = hook.value("failurePolicy", "");
      if (is_mutating) {
        EXPECT_EQ(failure, "Ignore") << "mutation must fail open";
        EXPECT_EQ(hook.value("reinvocationPolicy", ""), "IfNeeded");
      } else {
        EXPECT_TRUE(failure == "Ignore" || failure == "Fail") << failure;
      }
      if (failure == "Fail") {
        ++fail_closed;
        EXPECT_TRUE(hook.contains("namespaceSelector")) << "Fail needs a namespaceSelector";
        EXPECT_TRUE(hook.contains("objectSelector")) << "Fail needs an objectSelector";
        EXPECT_FALSE(hook["objectSelector"].empty());
      }
      // Whatever its failure policy, no webhook may match a system namespace,
      // even one that was (wrongly) labelled for GPU sharing.
      for (const char* system : {"kube-system", "kube-public", "kube-node-lease"}) {
        for (bool opted_in : {false, true}) {
          EXPECT_FALSE(
              SelectorMatches(hook, "namespaceSelector", NamespaceLabels(system, opted_in)))
              << "matches namespace " << system;
        }
      }
      // ...while it does reach ordinary workloads.
      EXPECT_TRUE(SelectorMatches(hook, "namespaceSelector", NamespaceLabels("ml-team", true)) ||
                  SelectorMatches(hook, "namespaceSelector", NamespaceLabels("ml-team", false)));
      EXPECT_TRUE(SelectorMatches(hook, "objectSelector", {{"app", "trainer"}}));
      // The opt-out label silences every pod webhook.
      if (hook["rules"][0]["resources"][0] == "pods") {
        EXPECT_FALSE(
            SelectorMatches(hook, "objectSelector", {{"gpuautoscaler.io/sharing", "disabled"}}));
      }

      const auto& service = hook["clientConfig"]["service"];
      EXPECT_EQ(service.value("name", ""), service_name);
      EXPECT_EQ(service.value("namespace", ""), service_namespace);
      AdmissionEndpoint endpoint;
      std::string path = service.value("path", "");
      EXPECT_TRUE(AdmissionEndpointForPath(path, &endpoint)) << "server has no " << path;
      paths.insert(path);
      // Invalid policies and Budgets must not get in; only their writes wait.
      if (path == "/validate-gpusharingpolicies" || path == "/validate-budgets") {
        EXPECT_EQ(failure, "Fail");
        EXPECT_EQ(hook["rules"][0]["operations"], nlohmann::json::array({"CREATE", "UPDATE"}));
        EXPECT_EQ(hook["rules"][0]["resources"],
                  path == "/validate-budgets" ? nlohmann::json::array({"budgets", "clusterbudgets"})
                                              : nlohmann::json::array({"gpusharingpolicies"}));
      }
    }
  }
  EXPECT_EQ(mutating, 1);
  EXPECT_GE(validating, 2);
  EXPECT_GE(fail_closed, 1);
  EXPECT_EQ(paths, (std::set<std::string>{"/mutate-pods", "/validate-pods",
                                          "/validate-gpusharingpolicies", "/validate-budgets"}));
}

}  // namespace
}  // namespace gpu_autoscaler::webhooks
