// File: tests/support/fake_pod_resources/fake_pod_resources.h
//
// A fake kubelet PodResources server (v1 gRPC on a unix socket) for the node
// agent's tests and benchmark: answers List and GetAllocatableResources from
// values the test sets, and can hang both calls (a stuck kubelet) until told
// to answer again or destroyed. Pods can also come from JSON (ParsePodsJson):
//   {"pods": [{"namespace": "ml", "name": "train-0", "containers": [
//       {"name": "main", "devices": [{"resource": "nvidia.com/gpu",
//                                     "ids": ["GPU-...::1"]}]}]}],
//    "allocatable": [{"resource": "nvidia.com/gpu", "ids": ["GPU-...::0", "..."]}]}
//
//   auto server = FakePodResourcesServer::Start(dir + "/kubelet.sock");
//   (*server)->SetPods({{.namespace_name = "ml", .name = "train-0", .containers = {...}}});
//   (*server)->SetHang(true);
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "node-agent/podresources/pod_resources_client.h"

namespace gpu_autoscaler::testing {

struct FakePodResourcesData {
  std::vector<node_agent::podresources::PodDevices> pods{};
  node_agent::podresources::AllocatableResources allocatable{};
};

Result<FakePodResourcesData> ParsePodResourcesJson(std::string_view json);

class FakePodResourcesServer {
 public:
  static Result<std::unique_ptr<FakePodResourcesServer>> Start(const std::string& socket_path);
  ~FakePodResourcesServer();

  void Set(FakePodResourcesData data);
  void SetPods(std::vector<node_agent::podresources::PodDevices> pods);
  // While true, calls block until it turns false or the server is destroyed.
  void SetHang(bool hang);
  int list_calls() const;
  const std::string& socket_path() const;

 private:
  struct Impl;
  explicit FakePodResourcesServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gpu_autoscaler::testing
