#include "kube/object_codec.h"

#include <nlohmann/json.hpp>

#include <memory>

#include "kube/decode_internal.h"
#include "kube/quantity.h"

namespace gpu_autoscaler::kube {
namespace decode_internal {
namespace {

// Documents up to this size reuse a per-thread parser and buffer (their
// capacity follows the largest document the thread decoded: a list page for
// informers); larger ones get their own so a thread does not keep their
// memory forever.
constexpr size_t kReusableDocumentBytes = 64 << 20;

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

error_code GetString(od::value& v, std::string_view* out) {
  od::json_type type;
  GPA_SJ_RETURN_IF_ERROR(v.type().get(type));
  if (type == od::json_type::null) {
    *out = {};
    return simdjson::SUCCESS;
  }
  return v.get_string().get(*out);
}

error_code GetInt64(od::value& v, int64_t* out) {
  od::json_type type;
  GPA_SJ_RETURN_IF_ERROR(v.type().get(type));
  if (type == od::json_type::null) {
    *out = 0;
    return simdjson::SUCCESS;
  }
  return v.get_int64().get(*out);
}

error_code GetBool(od::value& v, bool* out) {
  od::json_type type;
  GPA_SJ_RETURN_IF_ERROR(v.type().get(type));
  if (type == od::json_type::null) {
    *out = false;
    return simdjson::SUCCESS;
  }
  return v.get_bool().get(*out);
}

error_code GetTimestamp(od::value& v, int64_t* out, DecodeContext* ctx) {
  std::string_view text;
  GPA_SJ_RETURN_IF_ERROR(GetString(v, &text));
  if (text.empty()) {
    *out = kNoTime;
    return simdjson::SUCCESS;
  }
  auto seconds = Rfc3339ToUnixSeconds(text);
  if (!seconds) {
    ctx->detail = "invalid timestamp \"" + std::string(text) + "\"";
    return kSemanticError;
  }
  *out = *seconds;
  return simdjson::SUCCESS;
}

error_code GetResourceList(od::value& v, std::vector<ResourceQuantity>* out, DecodeContext* ctx) {
  return ForEachField(v, [&](std::string_view name, od::value& q) -> error_code {
    od::json_type type;
    GPA_SJ_RETURN_IF_ERROR(q.type().get(type));
    std::string_view text;
    if (type == od::json_type::number) {
      text = TrimSpace(q.raw_json_token());  // a client may send 4 instead of "4"
    } else {
      GPA_SJ_RETURN_IF_ERROR(q.get_string().get(text));
    }
    auto amount = ResourceAmount(name, text);
    if (!amount.ok()) {
      ctx->detail = std::string(name) + ": " + amount.error().message();
      return kSemanticError;
    }
    out->push_back({InternedString::Make(name), *amount});
    return simdjson::SUCCESS;
  });
}

error_code GetLabels(od::value& v, std::vector<Label>* out) {
  return ForEachField(v, [&](std::string_view key, od::value& value) -> error_code {
    InternedString k = InternedString::Make(key);  // before the value reuses the buffer
    std::string_view text;
    GPA_SJ_RETURN_IF_ERROR(GetString(value, &text));
    out->push_back({std::move(k), InternedString::Make(text)});
    return simdjson::SUCCESS;
  });
}

error_code GetConditions(od::value& v, std::vector<Condition>* out) {
  return ForEachElement(v, [&](od::value& item) -> error_code {
    Condition c;
    GPA_SJ_RETURN_IF_ERROR(ForEachField(item, [&](std::string_view key, od::value& f) {
      std::string_view text;
      if (key == "type") {
        GPA_SJ_RETURN_IF_ERROR(GetString(f, &text));
        c.type = InternedString::Make(text);
      } else if (key == "status") {
        GPA_SJ_RETURN_IF_ERROR(GetString(f, &text));
        c.status = ParseConditionStatus(text);
      } else if (key == "reason") {
        GPA_SJ_RETURN_IF_ERROR(GetString(f, &text));
        c.reason = InternedString::Make(text);
      }
      return simdjson::SUCCESS;
    }));
    out->push_back(std::move(c));
    return simdjson::SUCCESS;
  });
}

void MetaScratch::Reset() {
  name = ns = uid = resource_version = {};
  generation = 0;
  creation_timestamp = deletion_timestamp = kNoTime;
  labels.clear();
  annotations.clear();
  owners.clear();
}

error_code GetMeta(od::value& v, MetaScratch* meta, bool keep_annotations, DecodeContext* ctx) {
  return ForEachField(v, [&](std::string_view key, od::value& f) -> error_code {
    if (key == "name") return GetString(f, &meta->name);
    if (key == "namespace") return GetString(f, &meta->ns);
    if (key == "uid") return GetString(f, &meta->uid);
    if (key == "resourceVersion") return GetString(f, &meta->resource_version);
    if (key == "generation") return GetInt64(f, &meta->generation);
    if (key == "creationTimestamp") {
      ctx->where = "metadata.creationTimestamp";
      return GetTimestamp(f, &meta->creation_timestamp, ctx);
    }
    if (key == "deletionTimestamp") {
      ctx->where = "metadata.deletionTimestamp";
      return GetTimestamp(f, &meta->deletion_timestamp, ctx);
    }
    if (key == "labels") {
      ctx->where = "metadata.labels";
      return GetLabels(f, &meta->labels);
    }
    if (key == "annotations" && keep_annotations) {
      ctx->where = "metadata.annotations";
      return ForEachField(f, [&](std::string_view akey, od::value& value) -> error_code {
        // A copy of the whole spec; no controller reads it.
        if (akey == "kubectl.kubernetes.io/last-applied-configuration") return simdjson::SUCCESS;
        InternedString k = InternedString::Make(akey);
        std::string_view text;
        GPA_SJ_RETURN_IF_ERROR(GetString(value, &text));
        meta->annotations.push_back({std::move(k), text});
        return simdjson::SUCCESS;
      });
    }
    if (key == "ownerReferences") {
      ctx->where = "metadata.ownerReferences";
      return ForEachElement(f, [&](od::value& item) -> error_code {
        OwnerReference owner;
        GPA_SJ_RETURN_IF_ERROR(ForEachField(item, [&](std::string_view okey, od::value& o) {
          std::string_view text;
          if (okey == "apiVersion") {
            GPA_SJ_RETURN_IF_ERROR(GetString(o, &text));
            owner.api_version = InternedString::Make(text);
          } else if (okey == "kind") {
            GPA_SJ_RETURN_IF_ERROR(GetString(o, &text));
            owner.kind = InternedString::Make(text);
          } else if (okey == "name") {
            return GetString(o, &owner.name);
          } else if (okey == "uid") {
            return GetString(o, &owner.uid);
          } else if (okey == "controller") {
            return GetBool(o, &owner.controller);
          }
          return simdjson::SUCCESS;
        }));
        meta->owners.push_back(std::move(owner));
        return simdjson::SUCCESS;
      });
    }
    return simdjson::SUCCESS;
  });
}

Error MakeDecodeError(std::string_view what, error_code code, const DecodeContext& ctx) {
  std::string msg = "decode " + std::string(what);
  if (ctx.where[0] != '\0') msg += std::string(": ") + ctx.where;
  msg += ": ";
  msg += code == kSemanticError ? ctx.detail : simdjson::error_message(code);
  return Error::Decode(std::move(msg));
}

error_code WithTopLevelObject(std::string_view json,
                              const std::function<error_code(od::object&)>& fn) {
  thread_local od::parser reusable_parser;
  thread_local std::string reusable_buffer;
  std::unique_ptr<od::parser> own_parser;
  std::string own_buffer;
  od::parser* parser = &reusable_parser;
  std::string* buffer = &reusable_buffer;
  if (json.size() > kReusableDocumentBytes) {
    own_parser = std::make_unique<od::parser>();
    parser = own_parser.get();
    buffer = &own_buffer;
  }
  buffer->reserve(json.size() + simdjson::SIMDJSON_PADDING);
  buffer->assign(json.data(), json.size());
  od::document doc;
  GPA_SJ_RETURN_IF_ERROR(
      parser->iterate(simdjson::padded_string_view(buffer->data(), json.size(), buffer->capacity()))
          .get(doc));
  od::object obj;
  GPA_SJ_RETURN_IF_ERROR(doc.get_object().get(obj));
  GPA_SJ_RETURN_IF_ERROR(fn(obj));
  const char* rest;
  if (doc.current_location().get(rest) == simdjson::SUCCESS) return simdjson::TRAILING_CONTENT;
  return simdjson::SUCCESS;
}

error_code DecodeListBody(std::string_view json, ListMeta* meta,
                          const std::function<error_code(od::object&)>& item_fn) {
  return WithTopLevelObject(json, [&](od::object& list) -> error_code {
    return ForEachField(list, [&](std::string_view key, od::value& v) -> error_code {
      if (key == "metadata") {
        return ForEachField(v, [&](std::string_view mkey, od::value& m) -> error_code {
          std::string_view text;
          if (mkey == "resourceVersion") {
            GPA_SJ_RETURN_IF_ERROR(GetString(m, &text));
            meta->resource_version.assign(text);
          } else if (mkey == "continue") {
            GPA_SJ_RETURN_IF_ERROR(GetString(m, &text));
            meta->continue_token.assign(text);
          }
          return simdjson::SUCCESS;
        });
      }
      if (key == "items") {
        return ForEachElement(v, [&](od::value& item) -> error_code {
          od::object obj;
          GPA_SJ_RETURN_IF_ERROR(item.get_object().get(obj));
          return item_fn(obj);
        });
      }
      return simdjson::SUCCESS;
    });
  });
}

}  // namespace decode_internal

using namespace decode_internal;  // NOLINT: the helpers above

// Builds a GenericObject from metadata plus the raw object text.
class GenericObjectBuilder {
 public:
  static error_code Decode(od::object& obj, GenericObject* out, DecodeContext* ctx) {
    std::string_view raw;
    GPA_SJ_RETURN_IF_ERROR(obj.raw_json().get(raw));
    out->json_.assign(raw);
    bool has_elements;
    GPA_SJ_RETURN_IF_ERROR(obj.reset().get(has_elements));
    thread_local MetaScratch meta;
    meta.Reset();
    GPA_SJ_RETURN_IF_ERROR(ForEachField(obj, [&](std::string_view key, od::value& v) {
      if (key == "metadata") return GetMeta(v, &meta, /*keep_annotations=*/false, ctx);
      return simdjson::SUCCESS;
    }));
    out->ns_ = InternedString::Make(meta.ns);
    out->name_.assign(meta.name);
    out->uid_.assign(meta.uid);
    out->resource_version_.assign(meta.resource_version);
    out->generation_ = meta.generation;
    out->deletion_timestamp_ = meta.deletion_timestamp;
    out->labels_ = PackedArray<Label>(&meta.labels);
    out->owners_ = PackedArray<OwnerReference>(&meta.owners);
    // Owner names and uids point into parser memory until adopted.
    thread_local std::vector<std::string_view*> fields;
    fields.clear();
    for (OwnerReference& o : out->owners_) {
      fields.push_back(&o.name);
      fields.push_back(&o.uid);
    }
    out->strings_.Adopt(fields);
    return simdjson::SUCCESS;
  }
};

Result<nlohmann::json> GenericObject::Parse() const {
  try {
    return nlohmann::json::parse(json_);
  } catch (const nlohmann::json::exception& e) {
    return Error::Decode(std::string("parse ") + std::string(name()) + ": " + e.what());
  }
}

Result<GenericObject> DecodeGenericObject(std::string_view json) {
  GenericObject obj;
  DecodeContext ctx;
  error_code err = WithTopLevelObject(
      json, [&](od::object& o) { return GenericObjectBuilder::Decode(o, &obj, &ctx); });
  if (err) return MakeDecodeError("object", err, ctx);
  return obj;
}

Result<DecodedList<GenericObject>> DecodeGenericList(std::string_view json) {
  DecodedList<GenericObject> list;
  DecodeContext ctx;
  error_code err = DecodeListBody(json, &list.meta, [&](od::object& o) -> error_code {
    GenericObject obj;
    GPA_SJ_RETURN_IF_ERROR(GenericObjectBuilder::Decode(o, &obj, &ctx));
    list.items.push_back(std::move(obj));
    return simdjson::SUCCESS;
  });
  if (err) return MakeDecodeError("list", err, ctx);
  return list;
}

Result<std::string> DecodeResourceVersion(std::string_view object_json) {
  std::string rv;
  DecodeContext ctx;
  error_code err = WithTopLevelObject(object_json, [&](od::object& o) {
    return ForEachField(o, [&](std::string_view key, od::value& v) -> error_code {
      if (key != "metadata") return simdjson::SUCCESS;
      return ForEachField(v, [&](std::string_view mkey, od::value& m) -> error_code {
        if (mkey != "resourceVersion") return simdjson::SUCCESS;
        std::string_view text;
        GPA_SJ_RETURN_IF_ERROR(GetString(m, &text));
        rv.assign(text);
        return simdjson::SUCCESS;
      });
    });
  });
  if (err) return MakeDecodeError("object metadata", err, ctx);
  return rv;
}

Codec<PodView> PodViewCodec() {
  return {"pod-view", DecodePod, DecodePodList};
}
Codec<NodeView> NodeViewCodec() {
  return {"node-view", DecodeNode, DecodeNodeList};
}
Codec<GenericObject> GenericObjectCodec() {
  return {"generic", DecodeGenericObject, DecodeGenericList};
}

}  // namespace gpu_autoscaler::kube
