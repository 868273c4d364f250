// Decodes v1 Node JSON into NodeView with simdjson on-demand.

#include "kube/decode_internal.h"
#include "kube/node_view.h"
#include "kube/object_codec.h"

namespace gpu_autoscaler::kube {

using namespace decode_internal;  // NOLINT

class NodeViewBuilder {
 public:
  error_code Decode(od::object& obj, NodeView* node, DecodeContext* ctx) {
    ClearScratch();
    GPA_SJ_RETURN_IF_ERROR(ForEachField(obj, [&](std::string_view key, od::value& v) {
      if (key == "metadata") {
        ctx->where = "metadata";
        return GetMeta(v, &meta_, /*keep_annotations=*/true, ctx);
      }
      if (key == "spec") return DecodeSpec(v, node, ctx);
      if (key == "status") return DecodeStatus(v, node, ctx);
      return simdjson::SUCCESS;
    }));
    node->name_ = InternedString::Make(meta_.name);
    node->uid_ = meta_.uid;
    node->resource_version_ = meta_.resource_version;
    node->generation_ = meta_.generation;
    node->creation_timestamp_ = meta_.creation_timestamp;
    node->deletion_timestamp_ = meta_.deletion_timestamp;
    node->labels_ = PackedArray<Label>(&meta_.labels);
    node->annotations_ = PackedArray<Annotation>(&meta_.annotations);
    for (const Condition& c : node->conditions_) {
      if (c.type.view() == "Ready") node->ready_ = c.status;
    }
    fields_.clear();
    fields_.push_back(&node->uid_);
    fields_.push_back(&node->resource_version_);
    fields_.push_back(&node->provider_id_);
    for (Annotation& a : node->annotations_)
      fields_.push_back(&a.value);
    for (NodeAddress& a : node->addresses_)
      fields_.push_back(&a.address);
    node->strings_.Adopt(fields_);
    return simdjson::SUCCESS;
  }

 private:
  error_code DecodeSpec(od::value& spec, NodeView* node, DecodeContext* ctx) {
    return ForEachField(spec, [&](std::string_view key, od::value& v) -> error_code {
      if (key == "unschedulable") return GetBool(v, &node->unschedulable_);
      if (key == "providerID") return GetString(v, &node->provider_id_);
      if (key != "taints") return simdjson::SUCCESS;
      ctx->where = "spec.taints";
      GPA_SJ_RETURN_IF_ERROR(ForEachElement(v, [&](od::value& item) -> error_code {
        Taint t;
        GPA_SJ_RETURN_IF_ERROR(ForEachField(item, [&](std::string_view tkey, od::value& f) {
          std::string_view text;
          if (tkey != "key" && tkey != "value" && tkey != "effect") return simdjson::SUCCESS;
          GPA_SJ_RETURN_IF_ERROR(GetString(f, &text));
          if (tkey == "key") t.key = InternedString::Make(text);
          if (tkey == "value") t.value = InternedString::Make(text);
          if (tkey == "effect") t.effect = ParseTaintEffect(text);
          return simdjson::SUCCESS;
        }));
        taints_.push_back(std::move(t));
        return simdjson::SUCCESS;
      }));
      node->taints_ = PackedArray<Taint>(&taints_);
      return simdjson::SUCCESS;
    });
  }

  error_code DecodeStatus(od::value& status, NodeView* node, DecodeContext* ctx) {
    return ForEachField(status, [&](std::string_view key, od::value& v) -> error_code {
      if (key == "capacity") {
        ctx->where = "status.capacity";
        GPA_SJ_RETURN_IF_ERROR(GetResourceList(v, &quantities_, ctx));
        node->capacity_ = PackedArray<ResourceQuantity>(&quantities_);
      } else if (key == "allocatable") {
        ctx->where = "status.allocatable";
        GPA_SJ_RETURN_IF_ERROR(GetResourceList(v, &quantities_, ctx));
        node->allocatable_ = PackedArray<ResourceQuantity>(&quantities_);
      } else if (key == "conditions") {
        ctx->where = "status.conditions";
        GPA_SJ_RETURN_IF_ERROR(GetConditions(v, &conditions_));
        node->conditions_ = PackedArray<Condition>(&conditions_);
      } else if (key == "addresses") {
        ctx->where = "status.addresses";
        GPA_SJ_RETURN_IF_ERROR(ForEachElement(v, [&](od::value& item) -> error_code {
          NodeAddress a;
          GPA_SJ_RETURN_IF_ERROR(ForEachField(item, [&](std::string_view akey, od::value& f) {
            std::string_view text;
            if (akey == "type") {
              GPA_SJ_RETURN_IF_ERROR(GetString(f, &text));
              a.type = InternedString::Make(text);
            } else if (akey == "address") {
              return GetString(f, &a.address);
            }
            return simdjson::SUCCESS;
          }));
          addresses_.push_back(std::move(a));
          return simdjson::SUCCESS;
        }));
        node->addresses_ = PackedArray<NodeAddress>(&addresses_);
      }
      return simdjson::SUCCESS;
    });
  }

  void ClearScratch() {  // an earlier failed decode may have left items behind
    meta_.Reset();
    taints_.clear();
    quantities_.clear();
    conditions_.clear();
    addresses_.clear();
  }

  MetaScratch meta_;
  std::vector<Taint> taints_;
  std::vector<ResourceQuantity> quantities_;
  std::vector<Condition> conditions_;
  std::vector<NodeAddress> addresses_;
  std::vector<std::string_view*> fields_;
};

namespace {
NodeViewBuilder& ThreadBuilder() {
  thread_local NodeViewBuilder builder;
  return builder;
}
}  // namespace

Result<NodeView> DecodeNode(std::string_view json) {
  NodeView node;
  DecodeContext ctx;
  error_code err = WithTopLevelObject(
      json, [&](od::object& obj) { return ThreadBuilder().Decode(obj, &node, &ctx); });
  if (err) return MakeDecodeError("Node", err, ctx);
  return node;
}

Result<DecodedList<NodeView>> DecodeNodeList(std::string_view json) {
  DecodedList<NodeView> list;
  DecodeContext ctx;
  NodeViewBuilder& builder = ThreadBuilder();
  error_code err = DecodeListBody(json, &list.meta, [&](od::object& obj) -> error_code {
    NodeView& node = list.items.emplace_back();
    return builder.Decode(obj, &node, &ctx);
  });
  if (err) return MakeDecodeError("NodeList", err, ctx);
  return list;
}

}  // namespace gpu_autoscaler::kube
