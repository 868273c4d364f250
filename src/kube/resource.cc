#include "kube/resource.h"

namespace gpu_autoscaler::kube {
namespace {

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

void AppendPercentEncoded(std::string* out, std::string_view value, bool path_segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    // RFC 3986 allows sub-delims and ':' '@' unescaped inside a path segment;
    // only the characters that would change the URL's structure are escaped.
    bool keep =
        IsUnreserved(c) ||
        (path_segment && (c == ':' || c == '@' || c == '!' || c == '$' || c == '\'' || c == '(' ||
                          c == ')' || c == '*' || c == '+' || c == ',' || c == ';' || c == '='));
    if (keep) {
      out->push_back(ch);
    } else {
      out->push_back('%');
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 0xF]);
    }
  }
}

}  // namespace

std::string GroupVersionResource::ToString() const {
  std::string out = resource + "." + version;
  if (!group.empty()) out += "." + group;
  return out;
}

namespace resources {
const GroupVersionResource kPods{"", "v1", "pods", true};
const GroupVersionResource kNodes{"", "v1", "nodes", false};
const GroupVersionResource kNamespaces{"", "v1", "namespaces", false};
const GroupVersionResource kEvents{"", "v1", "events", true};
const GroupVersionResource kConfigMaps{"", "v1", "configmaps", true};
const GroupVersionResource kSecrets{"", "v1", "secrets", true};
const GroupVersionResource kLeases{"coordination.k8s.io", "v1", "leases", true};
const GroupVersionResource kPodDisruptionBudgets{"policy", "v1", "poddisruptionbudgets", true};
const GroupVersionResource kPriorityClasses{"scheduling.k8s.io", "v1", "priorityclasses", false};
const GroupVersionResource kDeployments{"apps", "v1", "deployments", true};
const GroupVersionResource kCustomResourceDefinitions{"apiextensions.k8s.io", "v1",
                                                      "customresourcedefinitions", false};
}  // namespace resources

std::string ResourcePath(const ObjectRef& ref) {
  const GroupVersionResource& gvr = ref.gvr;
  std::string path;
  path.reserve(64 + ref.ns.size() + ref.name.size());
  if (gvr.group.empty()) {
    path = "/api/";
  } else {
    path = "/apis/";
    path += gvr.group;
    path += '/';
  }
  path += gvr.version;
  if (gvr.namespaced && !ref.ns.empty()) {
    path += "/namespaces/";
    AppendPercentEncoded(&path, ref.ns, /*path_segment=*/true);
  }
  path += '/';
  path += gvr.resource;
  if (!ref.name.empty()) {
    path += '/';
    AppendPercentEncoded(&path, ref.name, /*path_segment=*/true);
    if (!ref.subresource.empty()) {
      path += '/';
      path += ref.subresource;
    }
  }
  return path;
}

void SplitKey(std::string_view key, std::string_view* ns, std::string_view* name) {
  size_t slash = key.find('/');
  if (slash == std::string_view::npos) {
    *ns = std::string_view();
    *name = key;
    return;
  }
  *ns = key.substr(0, slash);
  *name = key.substr(slash + 1);
}

std::string UrlEncode(std::string_view value) {
  std::string out;
  out.reserve(value.size() + value.size() / 4);
  AppendPercentEncoded(&out, value, /*path_segment=*/false);
  return out;
}

}  // namespace gpu_autoscaler::kube
