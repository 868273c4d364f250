// Decodes v1 Pod JSON into PodView with simdjson on-demand.

#include "kube/decode_internal.h"
#include "kube/object_codec.h"
#include "kube/pod_view.h"

namespace gpu_autoscaler::kube {

using namespace decode_internal;  // NOLINT

class PodViewBuilder {
 public:
  // Decodes one Pod object into `pod`. Scratch vectors are reused across
  // calls on the same thread.
  error_code Decode(od::object& obj, PodView* pod, DecodeContext* ctx) {
    ClearScratch();
    GPA_SJ_RETURN_IF_ERROR(ForEachField(obj, [&](std::string_view key, od::value& v) {
      if (key == "metadata") {
        ctx->where = "metadata";
        return GetMeta(v, &meta_, /*keep_annotations=*/true, ctx);
      }
      if (key == "spec") return DecodeSpec(v, pod, ctx);
      if (key == "status") return DecodeStatus(v, pod, ctx);
      return simdjson::SUCCESS;
    }));
    pod->ns_ = InternedString::Make(meta_.ns);
    pod->name_ = meta_.name;
    pod->uid_ = meta_.uid;
    pod->resource_version_ = meta_.resource_version;
    pod->generation_ = meta_.generation;
    pod->creation_timestamp_ = meta_.creation_timestamp;
    pod->deletion_timestamp_ = meta_.deletion_timestamp;
    pod->labels_ = PackedArray<Label>(&meta_.labels);
    pod->annotations_ = PackedArray<Annotation>(&meta_.annotations);
    pod->owners_ = PackedArray<OwnerReference>(&meta_.owners);

    // Copy every string that still points into parser memory into the arena.
    fields_.clear();
    fields_.push_back(&pod->name_);
    fields_.push_back(&pod->uid_);
    fields_.push_back(&pod->resource_version_);
    for (Annotation& a : pod->annotations_)
      fields_.push_back(&a.value);
    for (OwnerReference& o : pod->owners_) {
      fields_.push_back(&o.name);
      fields_.push_back(&o.uid);
    }
    for (ContainerResources& c : pod->containers_)
      fields_.push_back(&c.name);
    for (ContainerResources& c : pod->init_containers_)
      fields_.push_back(&c.name);
    fields_.push_back(&pod->pod_affinity_json_);
    fields_.push_back(&pod->pod_anti_affinity_json_);
    fields_.push_back(&pod->topology_spread_json_);
    pod->strings_.Adopt(fields_);
    return simdjson::SUCCESS;
  }

 private:
  error_code DecodeSpec(od::value& spec, PodView* pod, DecodeContext* ctx) {
    return ForEachField(spec, [&](std::string_view key, od::value& v) -> error_code {
      std::string_view text;
      if (key == "nodeName") {
        GPA_SJ_RETURN_IF_ERROR(GetString(v, &text));
        pod->node_name_ = InternedString::Make(text);
      } else if (key == "schedulerName") {
        GPA_SJ_RETURN_IF_ERROR(GetString(v, &text));
        pod->scheduler_name_ = InternedString::Make(text);
      } else if (key == "priority") {
        od::json_type type;
        GPA_SJ_RETURN_IF_ERROR(v.type().get(type));
        if (type == od::json_type::null) return simdjson::SUCCESS;
        int64_t priority;
        GPA_SJ_RETURN_IF_ERROR(v.get_int64().get(priority));
        pod->priority_ = static_cast<int32_t>(priority);
        pod->has_priority_ = true;
      } else if (key == "preemptionPolicy") {
        GPA_SJ_RETURN_IF_ERROR(GetString(v, &text));
        pod->never_preempts_ = text == "Never";
      } else if (key == "nodeSelector") {
        ctx->where = "spec.nodeSelector";
        GPA_SJ_RETURN_IF_ERROR(GetLabels(v, &labels_));
        pod->node_selector_ = PackedArray<Label>(&labels_);
      } else if (key == "tolerations") {
        ctx->where = "spec.tolerations";
        GPA_SJ_RETURN_IF_ERROR(DecodeTolerations(v));
        pod->tolerations_ = PackedArray<Toleration>(&tolerations_);
      } else if (key == "affinity") {
        ctx->where = "spec.affinity";
        GPA_SJ_RETURN_IF_ERROR(DecodeAffinity(v, pod));
      } else if (key == "topologySpreadConstraints") {
        ctx->where = "spec.topologySpreadConstraints";
        GPA_SJ_RETURN_IF_ERROR(RawJson(v, &pod->topology_spread_json_));
      } else if (key == "containers") {
        ctx->where = "spec.containers";
        GPA_SJ_RETURN_IF_ERROR(DecodeContainers(v, ctx));
        pod->containers_ = PackedArray<ContainerResources>(&containers_);
      } else if (key == "initContainers") {
        ctx->where = "spec.initContainers";
        GPA_SJ_RETURN_IF_ERROR(DecodeContainers(v, ctx));
        pod->init_containers_ = PackedArray<ContainerResources>(&containers_);
      } else if (key == "overhead") {
        ctx->where = "spec.overhead";
        GPA_SJ_RETURN_IF_ERROR(GetResourceList(v, &quantities_, ctx));
        pod->overhead_ = PackedArray<ResourceQuantity>(&quantities_);
      }
      return simdjson::SUCCESS;
    });
  }

  error_code DecodeTolerations(od::value& v) {
    return ForEachElement(v, [&](od::value& item) -> error_code {
      Toleration t;
      GPA_SJ_RETURN_IF_ERROR(ForEachField(item, [&](std::string_view key, od::value& f) {
        std::string_view text;
        InternedString* target = key == "key"        ? &t.key
                                 : key == "operator" ? &t.op
                                 : key == "value"    ? &t.value
                                 : key == "effect"   ? &t.effect
                                                     : nullptr;
        if (target == nullptr) return simdjson::SUCCESS;
        GPA_SJ_RETURN_IF_ERROR(GetString(f, &text));
        *target = InternedString::Make(text);
        return simdjson::SUCCESS;
      }));
      tolerations_.push_back(std::move(t));
      return simdjson::SUCCESS;
    });
  }

  // An object or array's text, for the few fields kept unparsed; null is "".
  static error_code RawJson(od::value& v, std::string_view* out) {
    od::json_type type;
    GPA_SJ_RETURN_IF_ERROR(v.type().get(type));
    if (type == od::json_type::null) return simdjson::SUCCESS;
    if (type == od::json_type::object) {
      od::object object;
      GPA_SJ_RETURN_IF_ERROR(v.get_object().get(object));
      return object.raw_json().get(*out);
    }
    if (type != od::json_type::array) return simdjson::INCORRECT_TYPE;
    od::array array;
    GPA_SJ_RETURN_IF_ERROR(v.get_array().get(array));
    return array.raw_json().get(*out);
  }

  // Keeps nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution, and
  // podAffinity and podAntiAffinity as their text.
  error_code DecodeAffinity(od::value& v, PodView* pod) {
    int terms = 0;
    GPA_SJ_RETURN_IF_ERROR(ForEachField(v, [&](std::string_view key, od::value& a) {
      if (key == "podAffinity") return RawJson(a, &pod->pod_affinity_json_);
      if (key == "podAntiAffinity") return RawJson(a, &pod->pod_anti_affinity_json_);
      if (key != "nodeAffinity") return simdjson::SUCCESS;
      return ForEachField(a, [&](std::string_view nkey, od::value& n) {
        if (nkey != "requiredDuringSchedulingIgnoredDuringExecution") return simdjson::SUCCESS;
        return ForEachField(n, [&](std::string_view tkey, od::value& t) {
          if (tkey != "nodeSelectorTerms") return simdjson::SUCCESS;
          return ForEachElement(t, [&](od::value& term) -> error_code {
            const auto index = static_cast<uint16_t>(terms++);
            return ForEachField(term, [&](std::string_view fkey, od::value& list) {
              if (fkey != "matchExpressions" && fkey != "matchFields") return simdjson::SUCCESS;
              const bool field = fkey == "matchFields";
              return ForEachElement(list, [&](od::value& expr) -> error_code {
                NodeSelectorRequirement r{.term = index, .field = field};
                std::string joined;
                GPA_SJ_RETURN_IF_ERROR(ForEachField(expr, [&](std::string_view k, od::value& f) {
                  std::string_view text;
                  if (k == "key" || k == "operator") {
                    GPA_SJ_RETURN_IF_ERROR(GetString(f, &text));
                    (k == "key" ? r.key : r.op) = InternedString::Make(text);
                  } else if (k == "values") {
                    return ForEachElement(f, [&](od::value& item) -> error_code {
                      GPA_SJ_RETURN_IF_ERROR(GetString(item, &text));
                      if (!joined.empty()) joined += '\n';
                      joined += text;
                      return simdjson::SUCCESS;
                    });
                  }
                  return simdjson::SUCCESS;
                }));
                r.values = InternedString::Make(joined);
                affinity_.push_back(std::move(r));
                return simdjson::SUCCESS;
              });
            });
          });
        });
      });
    }));
    pod->node_affinity_ = PackedArray<NodeSelectorRequirement>(&affinity_);
    pod->node_affinity_terms_ = terms;
    return simdjson::SUCCESS;
  }

  error_code DecodeContainers(od::value& v, DecodeContext* ctx) {
    return ForEachElement(v, [&](od::value& item) -> error_code {
      ContainerResources c;
      GPA_SJ_RETURN_IF_ERROR(ForEachField(item, [&](std::string_view key, od::value& f) {
        if (key == "name") return GetString(f, &c.name);
        if (key != "resources") return simdjson::SUCCESS;
        return ForEachField(f, [&](std::string_view rkey, od::value& r) -> error_code {
          if (rkey == "requests") {
            GPA_SJ_RETURN_IF_ERROR(GetResourceList(r, &quantities_, ctx));
            c.requests = PackedArray<ResourceQuantity>(&quantities_);
          } else if (rkey == "limits") {
            GPA_SJ_RETURN_IF_ERROR(GetResourceList(r, &quantities_, ctx));
            c.limits = PackedArray<ResourceQuantity>(&quantities_);
          }
          return simdjson::SUCCESS;
        });
      }));
      containers_.push_back(std::move(c));
      return simdjson::SUCCESS;
    });
  }

  error_code DecodeStatus(od::value& status, PodView* pod, DecodeContext* ctx) {
    return ForEachField(status, [&](std::string_view key, od::value& v) -> error_code {
      if (key == "phase") {
        std::string_view text;
        GPA_SJ_RETURN_IF_ERROR(GetString(v, &text));
        pod->phase_ = ParsePodPhase(text);
      } else if (key == "nominatedNodeName") {
        std::string_view text;
        GPA_SJ_RETURN_IF_ERROR(GetString(v, &text));
        pod->nominated_node_name_ = InternedString::Make(text);
      } else if (key == "startTime") {
        ctx->where = "status.startTime";
        GPA_SJ_RETURN_IF_ERROR(GetTimestamp(v, &pod->start_time_, ctx));
      } else if (key == "conditions") {
        ctx->where = "status.conditions";
        GPA_SJ_RETURN_IF_ERROR(GetConditions(v, &conditions_));
        pod->conditions_ = PackedArray<Condition>(&conditions_);
      }
      return simdjson::SUCCESS;
    });
  }

  void ClearScratch() {  // an earlier failed decode may have left items behind
    meta_.Reset();
    labels_.clear();
    tolerations_.clear();
    affinity_.clear();
    containers_.clear();
    quantities_.clear();
    conditions_.clear();
  }

  MetaScratch meta_;
  std::vector<Label> labels_;
  std::vector<Toleration> tolerations_;
  std::vector<NodeSelectorRequirement> affinity_;
  std::vector<ContainerResources> containers_;
  std::vector<ResourceQuantity> quantities_;
  std::vector<Condition> conditions_;
  std::vector<std::string_view*> fields_;
};

namespace {
PodViewBuilder& ThreadBuilder() {
  thread_local PodViewBuilder builder;
  return builder;
}
}  // namespace

Result<PodView> DecodePod(std::string_view json) {
  PodView pod;
  DecodeContext ctx;
  error_code err = WithTopLevelObject(
      json, [&](od::object& obj) { return ThreadBuilder().Decode(obj, &pod, &ctx); });
  if (err) return MakeDecodeError("Pod", err, ctx);
  return pod;
}

Result<DecodedList<PodView>> DecodePodList(std::string_view json) {
  DecodedList<PodView> list;
  DecodeContext ctx;
  PodViewBuilder& builder = ThreadBuilder();
  error_code err = DecodeListBody(json, &list.meta, [&](od::object& obj) -> error_code {
    PodView& pod = list.items.emplace_back();
    return builder.Decode(obj, &pod, &ctx);
  });
  if (err) return MakeDecodeError("PodList", err, ctx);
  return list;
}

}  // namespace gpu_autoscaler::kube
