// Subresources: eviction, access reviews, binding and scale.
#include "apiserver/api_server_internal.h"

namespace gpu_autoscaler::apiserver {

// ---------------------------------------------------------------------------
// Subresources.

namespace {

bool PodHealthy(const json& pod) {
  if (IsTerminating(pod)) return false;
  const json status = pod.value("status", json::object());
  if (status.value("phase", "") != "Running") return false;
  for (const auto& cond : status.value("conditions", json::array())) {
    if (cond.value("type", "") == "Ready") return cond.value("status", "") == "True";
  }
  return false;
}

// An int or a percentage of `total` (rounded up, as the disruption controller does).
int64_t IntOrPercent(const json& v, int64_t total) {
  if (v.is_number()) return v.get<int64_t>();
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (!s.empty() && s.back() == '%') {
      auto pct = ParseInt(s.substr(0, s.size() - 1));
      if (pct) return static_cast<int64_t>(std::ceil(static_cast<double>(*pct * total) / 100.0));
    }
    auto n = ParseInt(s);
    if (n) return *n;
  }
  return 0;
}

const char* kSuccessCreated =
    R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201})";

// kube-apiserver v1.20 registers Eviction in policy/v1beta1 only (policy/v1
// from 1.22, `emulated_minor`), and its pods/eviction discovery entry says so.
// Another apiVersion fails to decode, before the pod is looked up, with the
// 400 that the handler's transformDecodeError makes of the scheme's error.
std::optional<Error> CheckEvictionVersion(const json& body, int emulated_minor) {
  const auto kind_it = body.find("kind");
  const auto version_it = body.find("apiVersion");
  std::string kind =
      kind_it != body.end() && kind_it->is_string() ? kind_it->get<std::string>() : "";
  std::string api_version =
      version_it != body.end() && version_it->is_string() ? version_it->get<std::string>() : "";
  if (kind.empty()) kind = "Eviction";  // defaulted from the endpoint, as apiVersion is
  if (kind != "Eviction" || api_version.empty() || api_version == "policy/v1beta1" ||
      (api_version == "policy/v1" && emulated_minor >= 22)) {
    return std::nullopt;
  }
  size_t slash = api_version.find('/');
  std::string version = slash == std::string::npos ? api_version : api_version.substr(slash + 1);
  return BadRequestErr("Eviction in version \"" + version +
                       "\" cannot be handled as a Eviction: no kind \"Eviction\" is registered "
                       "for version \"" +
                       api_version + "\" in scheme \"pkg/api/legacyscheme/scheme.go:30\"");
}

}  // namespace

void ApiServer::Impl::Evict(Call& c) {
  auto body = json::parse(c.req.body.empty() ? "{}" : c.req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return RespondError(c.w, UnrecognizedBody("Eviction", c.req.body, "invalid JSON"));
  }
  if (auto bad = CheckEvictionVersion(body, opts.emulated_minor)) return RespondError(c.w, *bad);
  ObjectPtr pod = store.Get(c.info->StorageKey(), c.Key());
  if (!pod) return RespondError(c.w, NotFoundErr("", "pods", c.name));
  json pod_obj = pod->Parse();
  std::string phase = pod_obj.value("status", json::object()).value("phase", "");
  json options = body.value("deleteOptions", json::object());
  if (!options.is_object()) options = json::object();
  if (phase != "Succeeded" && phase != "Failed" && phase != "Pending") {
    // Budgets that select this pod.
    ListRequest pdbs;
    pdbs.storage_key = "policy/poddisruptionbudgets";
    pdbs.prefix = c.ns + "/";
    auto budgets = store.List(pdbs);
    std::vector<json> matching;
    if (budgets.ok()) {
      for (const auto& b : budgets->items) {
        json pdb = b->Parse();
        auto sel = kube::LabelSelector::FromJson(
            pdb.value("spec", json::object()).value("selector", json::object()).dump());
        if (!sel.ok() || sel->empty()) continue;
        if (sel->Matches(pod->labels)) matching.push_back(std::move(pdb));
      }
    }
    if (matching.size() > 1) {
      return RespondError(c.w, InternalErr("This pod has more than one PodDisruptionBudget, "
                                           "which the eviction subresource does not support."));
    }
    if (matching.size() == 1) {
      const json& pdb = matching[0];
      const json spec = pdb.value("spec", json::object());
      auto sel = kube::LabelSelector::FromJson(spec.value("selector", json::object()).dump());
      ListRequest pods;
      pods.storage_key = c.info->StorageKey();
      pods.prefix = c.ns + "/";
      auto listed = store.List(pods);
      int64_t expected = 0, healthy = 0;
      if (listed.ok() && sel.ok()) {
        for (const auto& p : listed->items) {
          if (!sel->Matches(p->labels)) continue;
          ++expected;
          if (PodHealthy(p->Parse())) ++healthy;
        }
      }
      int64_t desired = 0;
      if (spec.contains("minAvailable")) {
        desired = IntOrPercent(spec["minAvailable"], expected);
      } else if (spec.contains("maxUnavailable")) {
        desired = std::max<int64_t>(0, expected - IntOrPercent(spec["maxUnavailable"], expected));
      }
      bool pod_healthy = PodHealthy(pod_obj);
      if (pod_healthy && healthy - desired <= 0) {
        Error e = ApiErr(429, "TooManyRequests",
                         "Cannot evict pod as it would violate the pod's disruption budget.");
        e.mutable_details().causes.push_back({"DisruptionBudget",
                                              "The disruption budget " + MetaString(pdb, "name") +
                                                  " needs " + std::to_string(desired) +
                                                  " healthy pods and has " +
                                                  std::to_string(healthy) + " currently",
                                              ""});
        return RespondError(c.w, e);
      }
    }
  }
  // The eviction deletes the pod without calling admission on the pod again.
  auto reply = DeleteObject(*c.info, c.ns, c.name, options, c.DryRun(), /*admit=*/false);
  if (!reply.ok()) return RespondError(c.w, reply.error());
  Respond(c.w, 201, kSuccessCreated);
}

void ApiServer::Impl::Review(Call& c) {
  json review = json::parse(c.req.body.empty() ? "{}" : c.req.body, nullptr, false);
  if (!review.is_object()) {
    return RespondError(c.w, UnrecognizedBody(c.info->kind, c.req.body, "invalid JSON"));
  }
  Result<json> answer = InvalidArgumentError("unreachable");
  if (c.info->resource == "tokenreviews") {
    answer = ReviewToken(review, tokens);
  } else {
    RbacObjects rbac;
    auto load = [&](const char* resource, std::vector<json>* out) {
      ListRequest lr;
      lr.storage_key = std::string("rbac.authorization.k8s.io/") + resource;
      auto listed = store.List(lr);
      if (!listed.ok()) return;
      for (const auto& item : listed->items)
        out->push_back(item->Parse());
    };
    load("roles", &rbac.roles);
    load("clusterroles", &rbac.cluster_roles);
    load("rolebindings", &rbac.role_bindings);
    load("clusterrolebindings", &rbac.cluster_role_bindings);
    answer = ReviewAccess(review, rbac);
  }
  if (!answer.ok()) {
    return RespondError(c.w, ApiErr(422, "Invalid", answer.error().message()));
  }
  Respond(c.w, 201, answer->dump());
}

// BindingREST.assignPod in kube-apiserver: the binding's uid and
// resourceVersion are preconditions; the pod gets spec.nodeName, the binding's
// annotations and PodScheduled=True. Any refusal is a 409 on pods/binding.
void ApiServer::Impl::Bind(Call& c) {
  auto body = ParseBody(c);
  if (!body.ok()) return RespondError(c.w, body.error());
  std::string pod_name = c.name.empty() ? MetaString(*body, "name") : c.name;
  std::string node = body->value("target", json::object()).value("name", "");
  if (node.empty()) {
    Error e = ApiErr(422, "Invalid",
                     "Binding.core \"" + pod_name + "\" is invalid: target.name: Required value");
    e.mutable_details().causes.push_back({"FieldValueRequired", "Required value", "target.name"});
    return RespondError(c.w, WithDetails(e, "", "Binding", pod_name));
  }
  const std::string want_uid = MetaString(*body, "uid");
  const std::string want_rv = MetaString(*body, "resourceVersion");
  json annotations = json::object();
  if (const json* meta = MetaOf(*body);
      meta != nullptr && meta->contains("annotations") && (*meta)["annotations"].is_object()) {
    annotations = (*meta)["annotations"];
  }
  auto conflict = [&](const std::string& why) {
    return ConflictErr("", "pods/binding", pod_name, why);
  };
  const std::string now = Now();
  auto pods = registry.Find("", "v1", "pods");
  auto reply = UpdateObject(
      *pods, c.ns, pod_name, "binding",
      [&](const json* current) -> kube::Result<json> {
        json pod = *current;
        const json& meta = pod["metadata"];
        if (!want_uid.empty() && meta.value("uid", "") != want_uid) {
          return conflict("Precondition failed: UID in precondition: " + want_uid +
                          ", UID in object meta: " + meta.value("uid", ""));
        }
        if (!want_rv.empty() && meta.value("resourceVersion", "") != want_rv) {
          return conflict("Precondition failed: ResourceVersion in precondition: " + want_rv +
                          ", ResourceVersion in object meta: " + meta.value("resourceVersion", ""));
        }
        if (meta.contains("deletionTimestamp")) {
          return conflict("pod " + pod_name + " is being deleted, cannot be assigned to a host");
        }
        std::string bound = pod["spec"].value("nodeName", "");
        if (!bound.empty()) {
          return conflict("pod " + pod_name + " is already assigned to node \"" + bound + "\"");
        }
        pod["spec"]["nodeName"] = node;
        for (auto& [key, value] : annotations.items())
          pod["metadata"]["annotations"][key] = value;
        json& conditions = pod["status"]["conditions"];
        if (!conditions.is_array()) conditions = json::array();
        json scheduled = {{"type", "PodScheduled"},
                          {"status", "True"},
                          {"lastProbeTime", nullptr},
                          {"lastTransitionTime", now}};
        bool replaced = false;
        for (json& condition : conditions) {
          if (condition.value("type", "") != "PodScheduled") continue;
          if (condition.value("status", "") == "True")
            scheduled["lastTransitionTime"] = condition.value("lastTransitionTime", now);
          condition = scheduled;
          replaced = true;
        }
        if (!replaced) conditions.push_back(scheduled);
        return pod;
      },
      false, c.DryRun(), FieldManager(c), /*admit=*/false);  // pods/binding: not admitted here
  if (!reply.ok()) return RespondError(c.w, reply.error());
  Respond(c.w, 201, kSuccessCreated);
}

void ApiServer::Impl::Scale(Call& c) {
  const ResourceInfo& info = *c.info;
  std::string spec_path = info.custom ? info.scale_spec_path : ".spec.replicas";
  std::string status_path = info.custom ? info.scale_status_path : ".status.replicas";
  auto json_ptr = [](const std::string& path) {
    std::string p = path;
    for (char& ch : p) {
      if (ch == '.') ch = '/';
    }
    return json::json_pointer(p);
  };
  auto to_scale = [&](const json& obj) {
    json scale = {{"kind", "Scale"},
                  {"apiVersion", "autoscaling/v1"},
                  {"metadata",
                   {{"name", MetaString(obj, "name")},
                    {"uid", MetaString(obj, "uid")},
                    {"resourceVersion", MetaString(obj, "resourceVersion")},
                    {"creationTimestamp", MetaString(obj, "creationTimestamp")}}},
                  {"spec", json::object()},
                  {"status", {{"replicas", 0}}}};
    if (!MetaString(obj, "namespace").empty()) {
      scale["metadata"]["namespace"] = MetaString(obj, "namespace");
    }
    if (obj.contains(json_ptr(spec_path))) scale["spec"]["replicas"] = obj[json_ptr(spec_path)];
    if (!status_path.empty() && obj.contains(json_ptr(status_path))) {
      scale["status"]["replicas"] = obj[json_ptr(status_path)];
    }
    if (obj.contains("spec") && obj["spec"].contains("selector")) {
      auto sel = kube::LabelSelector::FromJson(obj["spec"]["selector"].dump());
      if (sel.ok()) scale["status"]["selector"] = sel->ToString();
    }
    return scale;
  };
  std::string sub_resource = info.resource + "/scale";
  if (c.verb == "get") {
    ObjectPtr obj = store.Get(info.StorageKey(), c.Key());
    if (!obj) return RespondError(c.w, NotFoundErr(info.group, sub_resource, c.name));
    return Respond(c.w, 200, to_scale(ParseStored(*obj, info)).dump());
  }
  if (c.verb != "update" && c.verb != "patch") return RespondError(c.w, MethodNotAllowedErr());
  std::string media = MediaType(c.req.Header("Content-Type"));
  auto reply = UpdateObject(
      info, c.ns, c.name, "",
      [&](const json* current) -> kube::Result<json> {
        json scale = to_scale(*current);
        if (c.verb == "update") {
          auto parsed = json::parse(c.req.body, nullptr, false);
          if (parsed.is_discarded()) return UnrecognizedBody("Scale", c.req.body, "invalid JSON");
          scale = std::move(parsed);
        } else {
          kube::Result<json> patched = media == "application/json-patch+json"
                                           ? ApplyJsonPatch(scale, c.req.body)
                                           : ApplyMergePatch(scale, c.req.body);
          if (!patched.ok()) return patched.error();
          scale = std::move(patched).value();
        }
        std::string rv = MetaString(scale, "resourceVersion");
        if (!rv.empty() && rv != MetaString(*current, "resourceVersion")) {
          return ConflictErr(info.group, sub_resource, c.name, kModified);
        }
        json obj = *current;
        obj["metadata"].erase("resourceVersion");
        if (scale.contains("spec") && scale["spec"].contains("replicas")) {
          obj[json_ptr(spec_path)] = scale["spec"]["replicas"];
        }
        return obj;
      },
      false, c.DryRun(), FieldManager(c), /*admit=*/false);  // <r>/scale: not admitted here
  if (!reply.ok()) {
    if (reply.error().code() == 404) {
      return RespondError(c.w, NotFoundErr(info.group, sub_resource, c.name));
    }
    return RespondError(c.w, reply.error());
  }
  ObjectPtr obj = store.Get(info.StorageKey(), c.Key());
  if (!obj) return RespondError(c.w, NotFoundErr(info.group, sub_resource, c.name));
  Respond(c.w, 200, to_scale(ParseStored(*obj, info)).dump());
}

}  // namespace gpu_autoscaler::apiserver
