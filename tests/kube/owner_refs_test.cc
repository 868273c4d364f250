#include "kube/owner_refs.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace gpu_autoscaler::kube {
namespace {

using json = nlohmann::json;

json Pool(std::string name, std::string uid) {
  return {{"apiVersion", "gpu-autoscaler.io/v1alpha1"},
          {"kind", "GpuPool"},
          {"metadata", {{"name", name}, {"namespace", "ns"}, {"uid", uid}}}};
}

TEST(OwnerRefsTest, BuildsControllerReference) {
  auto ref = ControllerReferenceFor(Pool("p1", "u1"));
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref->api_version, "gpu-autoscaler.io/v1alpha1");
  EXPECT_EQ(ref->kind, "GpuPool");
  EXPECT_EQ(ref->name, "p1");
  EXPECT_EQ(ref->uid, "u1");
  EXPECT_TRUE(ref->controller);
  EXPECT_TRUE(ref->block_owner_deletion);
  EXPECT_EQ(OwnerRefToJson(*ref),
            json::parse(R"({"apiVersion":"gpu-autoscaler.io/v1alpha1","kind":"GpuPool",
                           "name":"p1","uid":"u1","controller":true,"blockOwnerDeletion":true})"));
}

TEST(OwnerRefsTest, RejectsOwnerWithoutIdentity) {
  json no_uid = Pool("p1", "");
  EXPECT_FALSE(ControllerReferenceFor(no_uid).ok());
  EXPECT_FALSE(ControllerReferenceFor(json::array()).ok());
  EXPECT_FALSE(ControllerReferenceFor(json{{"metadata", {{"name", "x"}, {"uid", "u"}}}}).ok());
}

TEST(OwnerRefsTest, SetsControllerOnceAndRefusesToSteal) {
  json pod = {{"metadata", {{"name", "pod-1"}}}};
  auto p1 = *ControllerReferenceFor(Pool("p1", "u1"));
  ASSERT_TRUE(SetControllerReference(&pod, p1).ok());
  ASSERT_TRUE(SetControllerReference(&pod, p1).ok());  // idempotent
  EXPECT_EQ(pod["metadata"]["ownerReferences"].size(), 1u);
  auto controller = GetControllerOf(pod);
  ASSERT_TRUE(controller);
  EXPECT_EQ(*controller, p1);
  EXPECT_TRUE(IsOwnedBy(pod, Pool("p1", "u1")));
  EXPECT_FALSE(IsOwnedBy(pod, Pool("p2", "u2")));

  auto p2 = *ControllerReferenceFor(Pool("p2", "u2"));
  Status s = SetControllerReference(&pod, p2);
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(s.message().find("GpuPool p1"), std::string::npos);
  // A plain owner reference is allowed alongside.
  ASSERT_TRUE(SetOwnerReference(&pod, p2).ok());
  auto refs = GetOwnerReferences(pod);
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_FALSE(refs[1].controller);
  EXPECT_EQ(GetControllerOf(pod)->name, "p1");
}

TEST(OwnerRefsTest, ToleratesMalformedObjects) {
  EXPECT_FALSE(GetControllerOf(json("x")));
  EXPECT_TRUE(GetOwnerReferences(json{{"metadata", {{"ownerReferences", 5}}}}).empty());
  json bad = {{"metadata", {{"ownerReferences", "nope"}}}};
  EXPECT_FALSE(SetControllerReference(&bad, *ControllerReferenceFor(Pool("p", "u"))).ok());
  json skip = {{"metadata", {{"ownerReferences", json::array({1, {{"kind", "X"}}})}}}};
  EXPECT_TRUE(GetOwnerReferences(skip).empty());
}

}  // namespace
}  // namespace gpu_autoscaler::kube
