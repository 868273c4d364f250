#include "kube/resource.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::kube {
namespace {

TEST(ResourceTest, CorePaths) {
  ObjectRef pod{resources::kPods, "default", "web-1"};
  EXPECT_EQ(ResourcePath(pod), "/api/v1/namespaces/default/pods/web-1");
  EXPECT_EQ(ResourcePath(pod.WithSub("status")), "/api/v1/namespaces/default/pods/web-1/status");
  EXPECT_EQ(ResourcePath(pod.WithSub("eviction")),
            "/api/v1/namespaces/default/pods/web-1/eviction");
  EXPECT_EQ(ResourcePath({resources::kPods, "default", ""}), "/api/v1/namespaces/default/pods");
  EXPECT_EQ(ResourcePath({resources::kPods, "", ""}), "/api/v1/pods");
  EXPECT_EQ(ResourcePath({resources::kNodes, "", "n1"}), "/api/v1/nodes/n1");
  EXPECT_EQ(ResourcePath({resources::kNamespaces, "", "gpu"}), "/api/v1/namespaces/gpu");
  // A namespace on a cluster-scoped resource is ignored.
  EXPECT_EQ(ResourcePath({resources::kNodes, "default", "n1"}), "/api/v1/nodes/n1");
}

TEST(ResourceTest, GroupPaths) {
  EXPECT_EQ(ResourcePath({resources::kLeases, "gpu-golden", "gpu-autoscaler-leader"}),
            "/apis/coordination.k8s.io/v1/namespaces/gpu-golden/leases/gpu-autoscaler-leader");
  EXPECT_EQ(ResourcePath(ObjectRef{resources::kDeployments, "ns", "none"}.WithSub("scale")),
            "/apis/apps/v1/namespaces/ns/deployments/none/scale");
  EXPECT_EQ(ResourcePath({resources::kCustomResourceDefinitions, "", ""}),
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions");
  GroupVersionResource widgets{"example.gpuautoscaler.io", "v1alpha1", "widgets", true};
  EXPECT_EQ(ResourcePath(ObjectRef{widgets, "gpu-golden", "w1"}.WithSub("status")),
            "/apis/example.gpuautoscaler.io/v1alpha1/namespaces/gpu-golden/widgets/w1/status");
}

TEST(ResourceTest, SubresourceWithoutNameIsIgnored) {
  ObjectRef ref{resources::kPods, "ns", ""};
  EXPECT_EQ(ResourcePath(ref.WithSub("status")), "/api/v1/namespaces/ns/pods");
}

TEST(ResourceTest, NamesAreEscapedInPaths) {
  EXPECT_EQ(ResourcePath({resources::kConfigMaps, "ns", "a b/c?d"}),
            "/api/v1/namespaces/ns/configmaps/a%20b%2Fc%3Fd");
}

TEST(ResourceTest, GvrStrings) {
  EXPECT_EQ(resources::kPods.ToString(), "pods.v1");
  EXPECT_EQ(resources::kLeases.ToString(), "leases.v1.coordination.k8s.io");
  EXPECT_EQ(resources::kPods.ApiVersion(), "v1");
  EXPECT_EQ(resources::kDeployments.ApiVersion(), "apps/v1");
  EXPECT_FALSE(resources::kNodes.namespaced);
  EXPECT_TRUE(resources::kPodDisruptionBudgets.namespaced);
  EXPECT_EQ(resources::kPodDisruptionBudgets.group, "policy");
}

TEST(ResourceTest, KeysSplitAndJoin) {
  std::string_view ns, name;
  SplitKey("default/web-1", &ns, &name);
  EXPECT_EQ(ns, "default");
  EXPECT_EQ(name, "web-1");
  SplitKey("node-a", &ns, &name);
  EXPECT_EQ(ns, "");
  EXPECT_EQ(name, "node-a");
  SplitKey("", &ns, &name);
  EXPECT_EQ(ns, "");
  EXPECT_EQ(name, "");
  EXPECT_EQ((ObjectRef{resources::kPods, "default", "web-1"}.Key()), "default/web-1");
  EXPECT_EQ((ObjectRef{resources::kNodes, "", "n"}.Key()), "n");
}

TEST(ResourceTest, UrlEncode) {
  EXPECT_EQ(UrlEncode("app=train"), "app%3Dtrain");
  EXPECT_EQ(UrlEncode("app in (web),tier!=3"), "app%20in%20%28web%29%2Ctier%21%3D3");
  EXPECT_EQ(UrlEncode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(UrlEncode("\xff/+&"), "%FF%2F%2B%26");
  EXPECT_EQ(UrlEncode(""), "");
}

}  // namespace
}  // namespace gpu_autoscaler::kube
