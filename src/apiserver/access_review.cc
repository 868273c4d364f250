#include "apiserver/access_review.h"

#include <algorithm>

#include "common/json_read.h"

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;

bool Has(const std::vector<std::string>& values, std::string_view v) {
  return std::find(values.begin(), values.end(), v) != values.end();
}

bool HasOrStar(const std::vector<std::string>& values, std::string_view v) {
  return Has(values, "*") || Has(values, v);
}

struct Request {
  std::string user;
  std::vector<std::string> groups;
  bool resource = false;
  std::string ns, verb, group, kind, subresource, name, path;
};

bool SubjectMatches(const json& subject, const Request& r, const std::string& binding_ns) {
  const std::string kind = json_read::String(subject, "kind"),
                    name = json_read::String(subject, "name");
  if (kind == "User") return name == r.user;
  if (kind == "Group") return Has(r.groups, name);
  if (kind == "ServiceAccount") {
    std::string ns = json_read::String(subject, "namespace");
    if (ns.empty()) ns = binding_ns;
    return r.user == "system:serviceaccount:" + ns + ":" + name;
  }
  return false;
}

bool RuleAllows(const json& rule, const Request& r) {
  const std::vector<std::string> verbs = json_read::Strings(rule, "verbs");
  if (!HasOrStar(verbs, r.verb)) return false;
  if (!r.resource) {
    for (const std::string& url : json_read::Strings(rule, "nonResourceURLs")) {
      if (url == "*" || url == r.path) return true;
      if (url.size() > 1 && url.back() == '*' &&
          r.path.compare(0, url.size() - 1, url, 0, url.size() - 1) == 0) {
        return true;
      }
    }
    return false;
  }
  if (!HasOrStar(json_read::Strings(rule, "apiGroups"), r.group)) return false;
  const std::vector<std::string> resources = json_read::Strings(rule, "resources");
  const std::string combined = r.subresource.empty() ? r.kind : r.kind + "/" + r.subresource;
  const bool resource_ok = Has(resources, "*") || Has(resources, combined) ||
                           (!r.subresource.empty() && Has(resources, "*/" + r.subresource)) ||
                           (r.subresource.empty() && Has(resources, r.kind));
  if (!resource_ok) return false;
  const std::vector<std::string> names = json_read::Strings(rule, "resourceNames");
  return names.empty() || Has(names, r.name);
}

const json* FindRole(const std::vector<json>& roles, const std::string& name,
                     const std::string& ns) {
  for (const json& role : roles) {
    const json& meta = json_read::Member(role, "metadata");
    if (json_read::String(meta, "name") == name &&
        (ns.empty() || json_read::String(meta, "namespace") == ns))
      return &role;
  }
  return nullptr;
}

// "allowed by ClusterRoleBinding "b" of ClusterRole "r" to User "u"", or "".
std::string AllowedBy(const json& binding, const std::string& binding_kind, const Request& r,
                      const RbacObjects& rbac) {
  const json& meta = json_read::Member(binding, "metadata");
  const std::string binding_ns = json_read::String(meta, "namespace");
  const json& subjects = json_read::Member(binding, "subjects");
  const json* matched = nullptr;
  for (const json& subject : subjects) {
    if (subject.is_object() && SubjectMatches(subject, r, binding_ns)) {
      matched = &subject;
      break;
    }
  }
  if (!matched) return "";
  const json& ref = json_read::Member(binding, "roleRef");
  const std::string role_kind = json_read::String(ref, "kind"),
                    role_name = json_read::String(ref, "name");
  const json* role = role_kind == "ClusterRole" ? FindRole(rbac.cluster_roles, role_name, "")
                     : role_kind == "Role"      ? FindRole(rbac.roles, role_name, binding_ns)
                                                : nullptr;
  if (!role) return "";
  const json& rules = json_read::Member(*role, "rules");
  for (const json& rule : rules) {
    if (rule.is_object() && RuleAllows(rule, r)) {
      std::string binding_name = json_read::String(meta, "name");
      if (!binding_ns.empty()) binding_name += "/" + binding_ns;
      return "RBAC: allowed by " + binding_kind + " \"" + binding_name + "\" of " + role_kind +
             " \"" + role_name + "\" to " + json_read::String(*matched, "kind") + " \"" +
             json_read::String(*matched, "name") + "\"";
    }
  }
  return "";
}

}  // namespace

Result<TokenTable> ParseTokenAuthFile(std::string_view text) {
  TokenTable out;
  int line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string line(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    // CSV with an optional quoted last field.
    std::vector<std::string> fields;
    std::string field;
    bool quoted = false;
    for (char ch : line) {
      if (ch == '"') {
        quoted = !quoted;
      } else if (ch == ',' && !quoted) {
        fields.push_back(field);
        field.clear();
      } else {
        field += ch;
      }
    }
    fields.push_back(field);
    if (quoted || fields.size() < 3 || fields[0].empty() || fields[1].empty()) {
      return InvalidArgumentError("token auth file line " + std::to_string(line_no) +
                                  ": want token,user,uid[,\"group1,group2\"]");
    }
    TokenUser user{fields[1], fields[2], {}};
    if (fields.size() > 3) {
      std::string groups = fields[3];
      size_t start = 0;
      while (start <= groups.size()) {
        size_t comma = groups.find(',', start);
        std::string g = groups.substr(start, comma - start);
        if (!g.empty()) user.groups.push_back(g);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    }
    out[fields[0]] = std::move(user);
  }
  return out;
}

Result<json> ReviewToken(const json& review, const TokenTable& tokens) {
  if (!review.is_object() || json_read::String(review, "kind") != "TokenReview" ||
      !json_read::Member(review, "spec").is_object() ||
      json_read::String(json_read::Member(review, "spec"), "token").empty()) {
    return InvalidArgumentError("TokenReview: spec.token: Required value");
  }
  json out = review;
  out["apiVersion"] = "authentication.k8s.io/v1";
  out["metadata"] = json::object();
  // The token is not echoed back.
  out["spec"] = json::object();
  auto it = tokens.find(json_read::String(review["spec"], "token"));
  if (it == tokens.end()) {
    out["status"] = {{"authenticated", false}, {"user", json::object()}};
    return out;
  }
  std::vector<std::string> groups = it->second.groups;
  if (!Has(groups, "system:authenticated")) groups.push_back("system:authenticated");
  out["status"] = {
      {"authenticated", true},
      {"user", {{"username", it->second.name}, {"uid", it->second.uid}, {"groups", groups}}},
      {"audiences", json::array()}};
  return out;
}

Result<json> ReviewAccess(const json& review, const RbacObjects& rbac) {
  if (!review.is_object() || json_read::String(review, "kind") != "SubjectAccessReview") {
    return InvalidArgumentError("SubjectAccessReview: not a SubjectAccessReview");
  }
  const json spec = review.value("spec", json::object());
  if (!spec.is_object()) return InvalidArgumentError("SubjectAccessReview: spec: Invalid value");
  Request r;
  r.user = json_read::String(spec, "user");
  r.groups = json_read::Strings(spec, "groups");
  const json resource = spec.value("resourceAttributes", json());
  const json non_resource = spec.value("nonResourceAttributes", json());
  if (resource.is_object() == non_resource.is_object()) {
    return InvalidArgumentError(
        "SubjectAccessReview: spec: Invalid value: exactly one of nonResourceAttributes or "
        "resourceAttributes must be specified");
  }
  if (r.user.empty() && r.groups.empty()) {
    return InvalidArgumentError(
        "SubjectAccessReview: spec.user: Invalid value: at least one of user or group must be "
        "specified");
  }
  if (resource.is_object()) {
    r.resource = true;
    r.ns = json_read::String(resource, "namespace");
    r.verb = json_read::String(resource, "verb");
    r.group = json_read::String(resource, "group");
    r.kind = json_read::String(resource, "resource");
    r.subresource = json_read::String(resource, "subresource");
    r.name = json_read::String(resource, "name");
  } else {
    r.path = json_read::String(non_resource, "path");
    r.verb = json_read::String(non_resource, "verb");
  }
  json out = review;
  out["apiVersion"] = "authorization.k8s.io/v1";
  out["metadata"] = json::object();
  if (Has(r.groups, "system:masters")) {
    out["status"] = {{"allowed", true}};
    return out;
  }
  std::string reason;
  for (const json& b : rbac.cluster_role_bindings) {
    if (!(reason = AllowedBy(b, "ClusterRoleBinding", r, rbac)).empty()) break;
  }
  if (reason.empty() && r.resource && !r.ns.empty()) {
    for (const json& b : rbac.role_bindings) {
      if (json_read::String(json_read::Member(b, "metadata"), "namespace") != r.ns) continue;
      if (!(reason = AllowedBy(b, "RoleBinding", r, rbac)).empty()) break;
    }
  }
  if (reason.empty()) {
    out["status"] = {{"allowed", false}};
  } else {
    out["status"] = {{"allowed", true}, {"reason", reason}};
  }
  return out;
}

}  // namespace gpu_autoscaler::apiserver
