#include "apiserver/access_review.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;

TEST(TokenAuthFileTest, ParsesKubeApiserversFormat) {
  auto tokens = ParseTokenAuthFile(
      "# comment\n"
      "t1,alice,uid-1,\"dev,ops\"\n"
      "\n"
      "t2,bob,uid-2\r\n");
  ASSERT_TRUE(tokens.ok()) << tokens.error().ToString();
  ASSERT_EQ(tokens->size(), 2u);
  EXPECT_EQ(tokens->at("t1").name, "alice");
  EXPECT_EQ(tokens->at("t1").uid, "uid-1");
  EXPECT_EQ(tokens->at("t1").groups, (std::vector<std::string>{"dev", "ops"}));
  EXPECT_TRUE(tokens->at("t2").groups.empty());
  auto bad = ParseTokenAuthFile("t1,alice,u\nonly-a-token\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("line 2"), std::string::npos);
  EXPECT_FALSE(ParseTokenAuthFile("t,a,u,\"unterminated\n").ok());
}

TEST(ReviewTokenTest, AuthenticatesKnownTokensWithoutEchoingThem) {
  TokenTable tokens = {{"t1", {"alice", "uid-1", {"dev"}}}};
  json review = {{"apiVersion", "authentication.k8s.io/v1"},
                 {"kind", "TokenReview"},
                 {"spec", {{"token", "t1"}}}};
  auto ok = ReviewToken(review, tokens);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)["status"]["authenticated"], true);
  EXPECT_EQ((*ok)["status"]["user"]["username"], "alice");
  EXPECT_EQ((*ok)["status"]["user"]["groups"], json({"dev", "system:authenticated"}));
  EXPECT_EQ(ok->dump().find("t1"), std::string::npos);
  review["spec"]["token"] = "nope";
  EXPECT_EQ((*ReviewToken(review, tokens))["status"]["authenticated"], false);
  EXPECT_FALSE(ReviewToken(json{{"kind", "TokenReview"}, {"spec", json::object()}}, tokens).ok());
  EXPECT_FALSE(ReviewToken(json::array(), tokens).ok());
}

json Rule(json verbs, json groups, json resources, json names = json()) {
  json r = {{"verbs", verbs}, {"apiGroups", groups}, {"resources", resources}};
  if (!names.is_null()) r["resourceNames"] = names;
  return r;
}

json Binding(const std::string& kind, const std::string& name, const std::string& ns,
             const std::string& role_kind, const std::string& role, json subjects) {
  json meta = {{"name", name}};
  if (!ns.empty()) meta["namespace"] = ns;
  return {{"kind", kind},
          {"metadata", meta},
          {"roleRef", {{"kind", role_kind}, {"name", role}}},
          {"subjects", subjects}};
}

class ReviewAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rbac_.cluster_roles = {
        {{"metadata", {{"name", "metrics-reader"}}},
         {"rules", {{{"nonResourceURLs", {"/metrics", "/debug/*"}}, {"verbs", {"get"}}}}}},
        {{"metadata", {{"name", "pod-evictor"}}},
         {"rules",
          {Rule({"create"}, {""}, {"pods/eviction"}), Rule({"get", "list"}, {""}, {"pods"})}}}};
    rbac_.roles = {{{"metadata", {{"name", "lease"}, {"namespace", "gpa"}}},
                    {"rules", {Rule({"*"}, {"coordination.k8s.io"}, {"leases"}, {"mgr"})}}}};
    rbac_.cluster_role_bindings = {
        Binding("ClusterRoleBinding", "prom", "", "ClusterRole", "metrics-reader",
                {{{"kind", "ServiceAccount"}, {"name", "prometheus"}, {"namespace", "mon"}}}),
        Binding("ClusterRoleBinding", "ops-evict", "", "ClusterRole", "pod-evictor",
                {{{"kind", "Group"}, {"name", "ops"}}})};
    rbac_.role_bindings = {Binding("RoleBinding", "mgr-lease", "gpa", "Role", "lease",
                                   {{{"kind", "ServiceAccount"}, {"name", "manager"}}})};
  }

  json Ask(const std::string& user, json groups, json attributes, bool resource) {
    json spec = {{"user", user}, {"groups", groups}};
    spec[resource ? "resourceAttributes" : "nonResourceAttributes"] = attributes;
    auto answer = ReviewAccess({{"kind", "SubjectAccessReview"}, {"spec", spec}}, rbac_);
    EXPECT_TRUE(answer.ok());
    return answer.ok() ? (*answer)["status"] : json();
  }
  bool Allowed(const std::string& user, json groups, json attributes, bool resource) {
    return Ask(user, groups, attributes, resource)["allowed"].get<bool>();
  }

  RbacObjects rbac_;
};

TEST_F(ReviewAccessTest, NonResourceUrlsExactAndPrefix) {
  const std::string prom = "system:serviceaccount:mon:prometheus";
  json status = Ask(prom, json::array(), {{"path", "/metrics"}, {"verb", "get"}}, false);
  EXPECT_EQ(status["allowed"], true);
  EXPECT_EQ(status["reason"],
            "RBAC: allowed by ClusterRoleBinding \"prom\" of ClusterRole \"metrics-reader\" to "
            "ServiceAccount \"prometheus\"");
  EXPECT_TRUE(Allowed(prom, json::array(), {{"path", "/debug/pprof"}, {"verb", "get"}}, false));
  EXPECT_FALSE(Allowed(prom, json::array(), {{"path", "/metrics"}, {"verb", "create"}}, false));
  EXPECT_FALSE(Allowed(prom, json::array(), {{"path", "/metricsx"}, {"verb", "get"}}, false));
  EXPECT_FALSE(Allowed("system:serviceaccount:other:prometheus", json::array(),
                       {{"path", "/metrics"}, {"verb", "get"}}, false));
  EXPECT_TRUE(
      Allowed("root", {"system:masters"}, {{"path", "/anything"}, {"verb", "delete"}}, false));
}

TEST_F(ReviewAccessTest, ResourcesSubresourcesNamesAndNamespaces) {
  json evict = {{"namespace", "team-a"}, {"verb", "create"},          {"group", ""},
                {"resource", "pods"},    {"subresource", "eviction"}, {"name", "web-1"}};
  EXPECT_TRUE(Allowed("carol", {"ops"}, evict, true));
  json del = evict;
  del["subresource"] = "";
  del["verb"] = "delete";
  EXPECT_FALSE(Allowed("carol", {"ops"}, del, true));
  EXPECT_FALSE(Allowed("carol", {"dev"}, evict, true));

  json lease = {{"namespace", "gpa"},
                {"verb", "update"},
                {"group", "coordination.k8s.io"},
                {"resource", "leases"},
                {"name", "mgr"}};
  const std::string manager = "system:serviceaccount:gpa:manager";
  json status = Ask(manager, json::array(), lease, true);
  EXPECT_EQ(status["allowed"], true);
  EXPECT_EQ(status["reason"],
            "RBAC: allowed by RoleBinding \"mgr-lease/gpa\" of Role \"lease\" to ServiceAccount "
            "\"manager\"");
  json other_name = lease;
  other_name["name"] = "other";
  EXPECT_FALSE(Allowed(manager, json::array(), other_name, true));
  json other_ns = lease;
  other_ns["namespace"] = "default";
  EXPECT_FALSE(Allowed(manager, json::array(), other_ns, true));
}

TEST_F(ReviewAccessTest, RejectsMalformedReviews) {
  json no_attributes = {{"kind", "SubjectAccessReview"}, {"spec", {{"user", "a"}}}};
  EXPECT_FALSE(ReviewAccess(no_attributes, rbac_).ok());
  json no_subject = {{"kind", "SubjectAccessReview"}};
  no_subject["spec"]["nonResourceAttributes"] = {{"path", "/"}, {"verb", "get"}};
  EXPECT_FALSE(ReviewAccess(no_subject, rbac_).ok());
  EXPECT_FALSE(ReviewAccess(json{{"kind", "TokenReview"}}, rbac_).ok());
}

}  // namespace
}  // namespace gpu_autoscaler::apiserver
