// File: src/apiserver/access_review.h
//
// The embedded API server's answers to TokenReview (authentication.k8s.io/v1)
// and SubjectAccessReview (authorization.k8s.io/v1), so programs that
// delegate authentication and authorisation to the API server (the manager's
// secure /metrics) can be tested against it:
//  * tokens: the server's --token is the cluster admin (groups system:masters,
//    system:authenticated); --token-auth-file adds users in kube-apiserver's
//    static token file format: token,user,uid,"group1,group2";
//  * authorisation: Kubernetes RBAC over the stored Roles, ClusterRoles,
//    RoleBindings and ClusterRoleBindings (rules for resources with apiGroups,
//    resources and subresources, resourceNames and verbs; nonResourceURLs with
//    a trailing * as a prefix), and system:masters allowed everything, as
//    kube-apiserver's RBAC authorizer decides.
//
//   TokenTable tokens;  ... ParseTokenAuthFile(text) ...
//   json answer = ReviewToken(review_json, tokens);
//   json answer = ReviewAccess(review_json, rbac_objects);
//
// Thread-safety: pure functions over their arguments.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace gpu_autoscaler::apiserver {

struct TokenUser {
  std::string name;
  std::string uid;
  std::vector<std::string> groups;
};
using TokenTable = std::map<std::string, TokenUser, std::less<>>;

// kube-apiserver's --token-auth-file: one "token,user,uid[,\"g1,g2\"]" per
// line; blank lines and lines starting with # are skipped. Errors name the line.
Result<TokenTable> ParseTokenAuthFile(std::string_view text);

// The TokenReview with its status filled. InvalidArgument when `review` is not
// a TokenReview with spec.token.
Result<nlohmann::json> ReviewToken(const nlohmann::json& review, const TokenTable& tokens);

// What RBAC decides from: all stored objects of the four RBAC kinds.
struct RbacObjects {
  std::vector<nlohmann::json> roles, cluster_roles, role_bindings, cluster_role_bindings;
};

// The SubjectAccessReview with status.allowed (and a reason naming the
// binding and role that allowed it, as kube-apiserver's RBAC authorizer
// words it). InvalidArgument when neither resourceAttributes nor
// nonResourceAttributes is given, or no user or group.
Result<nlohmann::json> ReviewAccess(const nlohmann::json& review, const RbacObjects& rbac);

}  // namespace gpu_autoscaler::apiserver
