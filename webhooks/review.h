// File: webhooks/review.h
//
// AdmissionReview (admission.k8s.io/v1) decoding and encoding. Decoding reads
// only what admission needs: the request's identity and, for pods, a compact
// PodInfo (labels, our annotations, GPU resources, env names, node affinity
// shape) so that the patch builder knows exactly which paths exist.
//
//   auto review = DecodeAdmissionReview(body, ObjectDecoding::kPod);
//   if (!review.ok()) return Respond(400, review.error().message());
//   std::string out = EncodeAllowed(review->uid, patch_json, /*warnings=*/{});
//
// Malformed JSON, another apiVersion or kind, and a missing request or uid are
// InvalidArgument errors whose message is the reason for the HTTP 400.
// The decoder uses simdjson (a per-thread parser): the review is the hot path.
//
// Thread-safety: pure functions, safe to call concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_string.h"
#include "common/status.h"

namespace gpu_autoscaler::webhooks {

// One container (or init container) as far as GPU admission cares.
struct ContainerInfo {
  std::string name{};
  bool has_resources = false;
  bool has_limits = false;
  bool has_requests = false;
  // Only `nvidia.com/*` resources, in document order: {name, quantity}.
  std::vector<std::pair<std::string, std::string>> limits{};
  std::vector<std::pair<std::string, std::string>> requests{};
  // `cpu`, `memory` and Katalyst's `resource.katalyst.kubewharf.io/*`, in
  // document order (what profile and QoS admission rewrite).
  std::vector<std::pair<std::string, std::string>> core_limits{};
  std::vector<std::pair<std::string, std::string>> core_requests{};
  bool has_env = false;
  std::vector<std::string> env_names{};
};

struct NodeSelectorRequirementInfo {
  std::string key{};
  std::string op{};
  std::vector<std::string> values{};
};

struct NodeSelectorTermInfo {
  bool has_match_expressions = false;
  std::vector<NodeSelectorRequirementInfo> match_expressions{};
};

struct PodInfo {
  std::string name{};
  std::string generate_name{};
  std::string ns{};
  bool has_metadata = false;  // an object at "metadata"; JSON Patch cannot add below a missing one
  bool has_labels = false;
  std::map<std::string, std::string> labels{};
  bool has_annotations = false;
  // Only annotations under "gpuautoscaler.io/" and "katalyst.kubewharf.io/"
  // (the ones admission reads).
  std::map<std::string, std::string> annotations{};
  std::string node_selector_gpu_product{};  // spec.nodeSelector["nvidia.com/gpu.product"]
  std::vector<ContainerInfo> containers{};
  std::vector<ContainerInfo> init_containers{};
  // spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms
  bool has_affinity = false;
  bool has_node_affinity = false;
  bool has_required = false;
  bool has_terms = false;
  std::vector<NodeSelectorTermInfo> terms{};
  // False when a field the patch would write under has the wrong JSON type
  // (containers not an array, annotations not an object...). A real API server
  // decodes pods into typed objects before admission, so only hand-made
  // reviews get here; admission leaves such pods alone.
  bool shape_ok = true;
};

enum class ObjectDecoding {
  kNone,  // identity only
  kPod,   // fill `pod` from request.object
  kRaw,   // copy request.object (and oldObject) as minified JSON text
};

struct DecodedReview {
  std::string uid{};
  std::string operation{};  // CREATE, UPDATE, DELETE, CONNECT
  std::string kind{};       // request.kind.kind, e.g. "Pod"
  std::string group{};      // request.kind.group
  std::string sub_resource{};
  std::string name{};
  std::string ns{};
  bool dry_run = false;
  bool has_object = false;
  std::optional<PodInfo> pod{};
  std::string object_json{};      // kRaw
  std::string old_object_json{};  // kRaw, "" when null
};

Result<DecodedReview> DecodeAdmissionReview(std::string_view body, ObjectDecoding mode);

// Reads a pod object (not a review) into PodInfo: used by tests and benchmarks.
Result<PodInfo> DecodePod(std::string_view pod_json);

// An AdmissionReview response that allows the request, with a JSONPatch
// (`patch_json` is the patch array text; empty for none) and warnings.
std::string EncodeAllowed(std::string_view uid, std::string_view patch_json,
                          const std::vector<std::string>& warnings = {});
// An AdmissionReview response that denies the request with `code` and `message`.
std::string EncodeDenied(std::string_view uid, int code, std::string_view message);

// JSON string literal (with quotes) for `s`, escaping as RFC 8259 requires.
using ::gpu_autoscaler::AppendJsonString;

}  // namespace gpu_autoscaler::webhooks
