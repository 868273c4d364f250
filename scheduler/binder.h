// File: scheduler/binder.h
//
// Binds a pod to a node through the pods/binding subresource, as
// kube-scheduler does, carrying the chosen GPUs as Binding annotations: the
// API server copies them onto the pod in the same write that sets
// spec.nodeName, so no reader ever sees a bound pod without its GPUs.
//
//   Binder binder(*client);
//   Status s = binder.Bind({.ns = "ml", .name = "train-0", .uid = uid, .node = "gpu-3",
//                           .gpus = {0, 1}, .placement = "FragLookahead score 87"});
//   if (s.code() == StatusCode::kAborted) ... 409: bound elsewhere, or recreated ...
//
// Errors: Aborted for a 409 (the pod is already bound, being deleted, or its
// uid changed), NotFound when the pod is gone, Unavailable for everything
// else (network, 5xx after the client's retries).
//
// Thread-safety: Bind is safe from many threads at once.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace gpu_autoscaler::kube {
class RestClient;
}

namespace gpu_autoscaler::scheduler {

struct BindRequest {
  std::string ns{};
  std::string name{};
  std::string uid{};  // precondition; empty: none
  std::string node{};
  std::vector<int> gpus{};  // written as gpuautoscaler.io/gpu-indices when non-empty
  std::string placement{};  // written as gpuautoscaler.io/placement when non-empty
};

class Binder {
 public:
  explicit Binder(kube::RestClient& client) : client_(client) {}
  Status Bind(const BindRequest& request);

 private:
  kube::RestClient& client_;
};

}  // namespace gpu_autoscaler::scheduler
