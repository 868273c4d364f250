// File: src/kube/generic_object.h
//
// An untyped cached object for resources without a trimmed view (custom
// resources, ConfigMaps, Leases...): the metadata informers and indexes need,
// plus the object's raw JSON text, parsed on demand.
//
//   GPU_ASSIGN_OR_RETURN(GenericObject obj, DecodeGenericObject(json));  // object_codec.h
//   auto tree = obj.Parse();   // Result<nlohmann::json>
//   if (tree.ok()) replicas = tree->at("spec").value("replicas", 1);
//
// Thread-safety: immutable after decoding; safe to read from many threads.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "kube/error.h"
#include "kube/view_types.h"

namespace gpu_autoscaler::kube {

class GenericObject {
 public:
  std::string_view ns() const { return ns_.view(); }
  std::string_view name() const { return name_; }
  std::string_view uid() const { return uid_; }
  std::string_view resource_version() const { return resource_version_; }
  int64_t generation() const { return generation_; }
  int64_t deletion_timestamp() const { return deletion_timestamp_; }
  std::span<const Label> labels() const { return labels_.span(); }
  std::optional<std::string_view> label(std::string_view key) const {
    return FindLabel(labels(), key);
  }
  std::span<const OwnerReference> owner_references() const { return owners_.span(); }
  // The whole object as the server sent it.
  const std::string& json() const { return json_; }
  // Parses json(); an error (never an exception) when it is not valid JSON.
  Result<nlohmann::json> Parse() const;

 private:
  friend class GenericObjectBuilder;

  InternedString ns_;
  std::string name_;
  std::string uid_;
  std::string resource_version_;
  int64_t generation_ = 0;
  int64_t deletion_timestamp_ = kNoTime;
  PackedArray<Label> labels_;
  PackedArray<OwnerReference> owners_;
  StringArena strings_;  // owner names and uids
  std::string json_;
};

}  // namespace gpu_autoscaler::kube
