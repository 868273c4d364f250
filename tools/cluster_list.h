// File: tools/cluster_list.h
//
// Lists every object of a resource, page by page, decoded into shared views
// (kube::NodeView, kube::PodView): what `status` and `report` read.
//
//   auto nodes = ListViews<kube::NodeView>(client, kube::resources::kNodes,
//                                          [](std::string_view b) { return kube::DecodeNodeList(b);
//                                          });
//
// Thread-safety: as the RestClient.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "kube/object_codec.h"
#include "kube/rest_client.h"

namespace gpu_autoscaler::cli {

template <typename T, typename Decode>
Result<std::vector<std::shared_ptr<const T>>> ListViews(kube::RestClient& client,
                                                        const kube::GroupVersionResource& gvr,
                                                        Decode decode) {
  std::vector<std::shared_ptr<const T>> out;
  kube::ListOptions opts{.limit = 5000};
  while (true) {
    auto page = client.ListPage(kube::ObjectRef{gvr, "", "", ""}, opts);
    if (!page.ok()) return page.error().ToStatus().WithContext("listing " + gvr.resource);
    auto decoded = decode(*page);
    if (!decoded.ok()) return decoded.error().ToStatus().WithContext("decoding " + gvr.resource);
    for (T& item : decoded->items)
      out.push_back(std::make_shared<const T>(std::move(item)));
    if (decoded->meta.continue_token.empty()) break;
    opts.continue_token = decoded->meta.continue_token;
  }
  return out;
}

}  // namespace gpu_autoscaler::cli
