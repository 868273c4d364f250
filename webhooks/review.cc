#include "webhooks/review.h"

#include <algorithm>
#include <array>
#include <utility>

#include <simdjson.h>

#include "common/base64.h"

namespace gpu_autoscaler::webhooks {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

constexpr std::string_view kOurAnnotationPrefix = "gpuautoscaler.io/";
constexpr std::string_view kKatalystAnnotationPrefix = "katalyst.kubewharf.io/";
constexpr std::string_view kNvidiaResourcePrefix = "nvidia.com/";
constexpr std::string_view kKatalystResourcePrefix = "resource.katalyst.kubewharf.io/";

simdjson::dom::parser& ThreadParser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

// Takes a simdjson_result so that a lookup on a non-object (an error) reads
// as "absent" instead of throwing.
std::string_view StringOr(simdjson::simdjson_result<element> e) {
  std::string_view s;
  if (e.get_string().get(s) != simdjson::SUCCESS) return {};
  return s;
}
std::string_view StringOr(element e) {
  std::string_view s;
  if (e.get_string().get(s) != simdjson::SUCCESS) return {};
  return s;
}

// A quantity as text: quantities are JSON strings, but accept numbers too.
std::string QuantityText(element e) {
  std::string_view s;
  if (e.get_string().get(s) == simdjson::SUCCESS) return std::string(s);
  if (e.is_number()) return simdjson::to_string(e);
  return {};
}

void ReadStringMap(element e, std::map<std::string, std::string>& out,
                   std::string_view key_prefix = {}, std::string_view other_prefix = {}) {
  object obj;
  if (e.get_object().get(obj) != simdjson::SUCCESS) return;
  for (auto field : obj) {
    if (!field.key.starts_with(key_prefix) &&
        (other_prefix.empty() || !field.key.starts_with(other_prefix))) {
      continue;
    }
    out.emplace(std::string(field.key), std::string(StringOr(field.value)));
  }
}

void ReadResourceList(element e, std::vector<std::pair<std::string, std::string>>& out,
                      std::vector<std::pair<std::string, std::string>>& core) {
  object obj;
  if (e.get_object().get(obj) != simdjson::SUCCESS) return;
  for (auto field : obj) {
    if (field.key.starts_with(kNvidiaResourcePrefix)) {
      out.emplace_back(std::string(field.key), QuantityText(field.value));
    } else if (field.key == "cpu" || field.key == "memory" ||
               field.key.starts_with(kKatalystResourcePrefix)) {
      core.emplace_back(std::string(field.key), QuantityText(field.value));
    }
  }
}

// Type checks for the fields the patch builder writes under: a mismatch
// clears `ok` (PodInfo::shape_ok), a missing or null field does not.
// Duplicate keys are valid JSON that kube-apiserver never sends; parsers
// disagree on which one counts, so a patch could miss. Objects that have them
// count as the wrong type.
bool HasDuplicateKeys(element e) {
  std::vector<std::string_view> keys;
  for (auto field : object(e))
    keys.push_back(field.key);
  std::sort(keys.begin(), keys.end());
  return std::adjacent_find(keys.begin(), keys.end()) != keys.end();
}

bool IsA(element e, simdjson::dom::element_type type, bool& ok) {
  if (e.type() == type && (type != simdjson::dom::element_type::OBJECT || !HasDuplicateKeys(e))) {
    return true;
  }
  if (!e.is_null()) ok = false;
  return false;
}
constexpr auto kObject = simdjson::dom::element_type::OBJECT;
constexpr auto kArray = simdjson::dom::element_type::ARRAY;

void ReadContainers(element e, std::vector<ContainerInfo>& out, bool& ok) {
  if (!IsA(e, kArray, ok)) return;
  for (element item : array(e)) {
    ContainerInfo info;
    if (IsA(item, kObject, ok)) {
      for (auto field : object(item)) {
        if (field.key == "name") {
          info.name = std::string(StringOr(field.value));
        } else if (field.key == "resources") {
          if (!IsA(field.value, kObject, ok)) continue;
          info.has_resources = true;
          for (auto r : object(field.value)) {
            if (r.key == "limits" && IsA(r.value, kObject, ok)) {
              info.has_limits = true;
              ReadResourceList(r.value, info.limits, info.core_limits);
            } else if (r.key == "requests" && IsA(r.value, kObject, ok)) {
              info.has_requests = true;
              ReadResourceList(r.value, info.requests, info.core_requests);
            }
          }
        } else if (field.key == "env") {
          if (!IsA(field.value, kArray, ok)) continue;
          info.has_env = true;
          for (element var : array(field.value)) {
            info.env_names.emplace_back(StringOr(var["name"]));
          }
        }
      }
    }
    out.push_back(std::move(info));
  }
}

void ReadNodeAffinity(element affinity, PodInfo& pod) {
  bool& ok = pod.shape_ok;
  if (!IsA(affinity, kObject, ok)) return;
  pod.has_affinity = true;
  element node_affinity;
  if (affinity["nodeAffinity"].get(node_affinity) != simdjson::SUCCESS ||
      !IsA(node_affinity, kObject, ok)) {
    return;
  }
  pod.has_node_affinity = true;
  element required;
  if (node_affinity["requiredDuringSchedulingIgnoredDuringExecution"].get(required) !=
          simdjson::SUCCESS ||
      !IsA(required, kObject, ok)) {
    return;
  }
  pod.has_required = true;
  element terms;
  if (required["nodeSelectorTerms"].get(terms) != simdjson::SUCCESS || !IsA(terms, kArray, ok)) {
    return;
  }
  pod.has_terms = true;
  for (element t : array(terms)) {
    NodeSelectorTermInfo term;
    element exprs;
    if (IsA(t, kObject, ok) && t["matchExpressions"].get(exprs) == simdjson::SUCCESS &&
        IsA(exprs, kArray, ok)) {
      term.has_match_expressions = true;
      for (element x : array(exprs)) {
        NodeSelectorRequirementInfo req;
        req.key = std::string(StringOr(x["key"]));
        req.op = std::string(StringOr(x["operator"]));
        array values;
        if (x["values"].get_array().get(values) == simdjson::SUCCESS) {
          for (element v : values)
            req.values.emplace_back(StringOr(v));
        }
        term.match_expressions.push_back(std::move(req));
      }
    }
    pod.terms.push_back(std::move(term));
  }
}

Result<PodInfo> ReadPod(element e) {
  if (e.type() != kObject) return InvalidArgumentError("request.object must be a JSON object");
  PodInfo pod;
  bool& ok = pod.shape_ok;
  if (HasDuplicateKeys(e)) ok = false;
  for (auto field : object(e)) {
    if (field.key == "metadata") {
      if (!IsA(field.value, kObject, ok)) continue;
      pod.has_metadata = true;
      for (auto m : object(field.value)) {
        if (m.key == "name") {
          pod.name = std::string(StringOr(m.value));
        } else if (m.key == "generateName") {
          pod.generate_name = std::string(StringOr(m.value));
        } else if (m.key == "namespace") {
          pod.ns = std::string(StringOr(m.value));
        } else if (m.key == "labels" && IsA(m.value, kObject, ok)) {
          pod.has_labels = true;
          ReadStringMap(m.value, pod.labels);
        } else if (m.key == "annotations" && IsA(m.value, kObject, ok)) {
          pod.has_annotations = true;
          ReadStringMap(m.value, pod.annotations, kOurAnnotationPrefix, kKatalystAnnotationPrefix);
        }
      }
    } else if (field.key == "spec") {
      if (!IsA(field.value, kObject, ok)) continue;
      for (auto s : object(field.value)) {
        if (s.key == "containers") {
          ReadContainers(s.value, pod.containers, ok);
        } else if (s.key == "initContainers") {
          ReadContainers(s.value, pod.init_containers, ok);
        } else if (s.key == "affinity") {
          ReadNodeAffinity(s.value, pod);
        } else if (s.key == "nodeSelector") {
          pod.node_selector_gpu_product = std::string(StringOr(s.value["nvidia.com/gpu.product"]));
        }
      }
    }
  }
  return pod;
}

std::string_view ErrorReason(simdjson::error_code code) {
  return simdjson::error_message(code);
}

}  // namespace

Result<DecodedReview> DecodeAdmissionReview(std::string_view body, ObjectDecoding mode) {
  element doc;
  if (auto err = ThreadParser().parse(body.data(), body.size()).get(doc);
      err != simdjson::SUCCESS) {
    return InvalidArgumentError("malformed AdmissionReview JSON: " + std::string(ErrorReason(err)));
  }
  object root;
  if (doc.get_object().get(root) != simdjson::SUCCESS) {
    return InvalidArgumentError("AdmissionReview must be a JSON object");
  }
  std::string_view api_version, kind;
  element request;
  bool has_request = false;
  for (auto field : root) {
    if (field.key == "apiVersion") {
      api_version = StringOr(field.value);
    } else if (field.key == "kind") {
      kind = StringOr(field.value);
    } else if (field.key == "request") {
      request = field.value;
      has_request = !field.value.is_null();
    }
  }
  if (api_version != "admission.k8s.io/v1") {
    return InvalidArgumentError("unsupported AdmissionReview apiVersion \"" +
                                std::string(api_version) + "\": expected admission.k8s.io/v1");
  }
  if (kind != "AdmissionReview") {
    return InvalidArgumentError("unsupported kind \"" + std::string(kind) +
                                "\": expected AdmissionReview");
  }
  object req;
  if (!has_request || request.get_object().get(req) != simdjson::SUCCESS) {
    return InvalidArgumentError("AdmissionReview has no request object");
  }
  DecodedReview out;
  element object_el, old_object_el;
  bool has_old = false;
  for (auto field : req) {
    const std::string_view key = field.key;
    if (key == "uid") {
      out.uid = std::string(StringOr(field.value));
    } else if (key == "operation") {
      out.operation = std::string(StringOr(field.value));
    } else if (key == "kind") {
      out.kind = std::string(StringOr(field.value["kind"]));
      out.group = std::string(StringOr(field.value["group"]));
    } else if (key == "subResource") {
      out.sub_resource = std::string(StringOr(field.value));
    } else if (key == "name") {
      out.name = std::string(StringOr(field.value));
    } else if (key == "namespace") {
      out.ns = std::string(StringOr(field.value));
    } else if (key == "dryRun") {
      bool dry = false;
      if (field.value.get_bool().get(dry) == simdjson::SUCCESS) out.dry_run = dry;
    } else if (key == "object") {
      object_el = field.value;
      out.has_object = !field.value.is_null();
    } else if (key == "oldObject") {
      old_object_el = field.value;
      has_old = !field.value.is_null();
    }
  }
  if (out.uid.empty()) return InvalidArgumentError("AdmissionReview request.uid is missing");
  if (out.has_object && mode == ObjectDecoding::kPod) {
    GPU_ASSIGN_OR_RETURN(PodInfo pod, ReadPod(object_el));
    if (pod.ns.empty()) pod.ns = out.ns;
    out.pod = std::move(pod);
  } else if (mode == ObjectDecoding::kRaw) {
    if (out.has_object) out.object_json = simdjson::to_string(object_el);
    if (has_old) out.old_object_json = simdjson::to_string(old_object_el);
  }
  return out;
}

Result<PodInfo> DecodePod(std::string_view pod_json) {
  element doc;
  if (auto err = ThreadParser().parse(pod_json.data(), pod_json.size()).get(doc);
      err != simdjson::SUCCESS) {
    return InvalidArgumentError("malformed pod JSON: " + std::string(ErrorReason(err)));
  }
  return ReadPod(doc);
}

namespace {
void AppendResponseHead(std::string& out, std::string_view uid, bool allowed) {
  out += R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":)";
  AppendJsonString(out, uid);
  out += allowed ? R"(,"allowed":true)" : R"(,"allowed":false)";
}
}  // namespace

std::string EncodeAllowed(std::string_view uid, std::string_view patch_json,
                          const std::vector<std::string>& warnings) {
  std::string out;
  out.reserve(160 + patch_json.size() * 4 / 3);
  AppendResponseHead(out, uid, true);
  if (!patch_json.empty()) {
    out += R"(,"patchType":"JSONPatch","patch":")";
    out += Base64Encode(patch_json);
    out.push_back('"');
  }
  if (!warnings.empty()) {
    out += R"(,"warnings":[)";
    for (size_t i = 0; i < warnings.size(); ++i) {
      if (i > 0) out.push_back(',');
      AppendJsonString(out, warnings[i]);
    }
    out.push_back(']');
  }
  out += "}}";
  return out;
}

std::string EncodeDenied(std::string_view uid, int code, std::string_view message) {
  std::string out;
  AppendResponseHead(out, uid, false);
  out += R"(,"status":{"code":)";
  out += std::to_string(code);
  out += R"(,"message":)";
  AppendJsonString(out, message);
  out += "}}}";
  return out;
}

}  // namespace gpu_autoscaler::webhooks
