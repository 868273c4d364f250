// File: src/kube/object_codec.h
//
// Fast decoders from API JSON bytes to the informer's cached types: PodView,
// NodeView and GenericObject, for one object (a GET body or a watch event's
// object) and for a whole List page (items + metadata.resourceVersion +
// continue). Built on simdjson's on-demand parser, which skips what a view
// does not keep (managedFields, most of spec and status) without building a
// tree; simdjson stays inside the .cc files.
//
//   GPU_ASSIGN_OR_RETURN(auto page, DecodePodList(body));
//   for (PodView& pod : page.items) ...
//   next.continue_token = page.meta.continue_token;
//
// A `Codec<T>` bundles the two decoders so an informer can cache any type:
//   auto pods = factory.Informer(resources::kPods, PodViewCodec());
//
// Errors are kDecode kube::Errors naming the failing field.
//
// Thread-safety: all functions are safe to call concurrently (each thread
// keeps its own parser).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "kube/error.h"
#include "kube/generic_object.h"
#include "kube/node_view.h"
#include "kube/pod_view.h"

namespace gpu_autoscaler::kube {

struct ListMeta {
  std::string resource_version;
  std::string continue_token;
};

template <typename T>
struct DecodedList {
  std::vector<T> items;
  ListMeta meta;
};

Result<PodView> DecodePod(std::string_view json);
Result<DecodedList<PodView>> DecodePodList(std::string_view json);

Result<NodeView> DecodeNode(std::string_view json);
Result<DecodedList<NodeView>> DecodeNodeList(std::string_view json);

Result<GenericObject> DecodeGenericObject(std::string_view json);
Result<DecodedList<GenericObject>> DecodeGenericList(std::string_view json);

// metadata.resourceVersion of any object (a BOOKMARK carries only this).
Result<std::string> DecodeResourceVersion(std::string_view object_json);

// How an informer turns bytes into cached objects of type T. `name` tells
// informers for the same resource with different transforms apart.
template <typename T>
struct Codec {
  std::string name;
  std::function<Result<T>(std::string_view)> decode;
  std::function<Result<DecodedList<T>>(std::string_view)> decode_list;
};

Codec<PodView> PodViewCodec();
Codec<NodeView> NodeViewCodec();
Codec<GenericObject> GenericObjectCodec();

}  // namespace gpu_autoscaler::kube
