#include "soak_cluster.h"

#include <yaml-cpp/yaml.h>

#include "api/nvidia.h"
#include "cost/pricing.h"

namespace gpu_autoscaler::bench {

using nlohmann::json;

Result<std::vector<NodeShape>> CatalogueGpuShapes() {
  std::vector<NodeShape> out;
  try {
    const YAML::Node root = YAML::Load(std::string(cost::BuiltinCatalogYaml()));
    for (const YAML::Node& family : root["families"]) {
      const std::string model = family["gpu_model"].as<std::string>("");
      for (const YAML::Node& instance : family["instances"]) {
        NodeShape s;
        s.instance_type = instance["type"].as<std::string>("");
        s.gpu_model = instance["gpu_model"].as<std::string>(model);
        s.gpus = instance["gpus"].as<int>(0);
        s.vcpus = instance["vcpus"].as<double>(0);
        s.memory_gib = instance["memory_gib"].as<double>(0);
        if (s.gpus > 0 && !s.instance_type.empty()) out.push_back(std::move(s));
      }
    }
  } catch (const YAML::Exception& e) {
    return InternalError(std::string("pricing catalogue: ") + e.what());
  }
  if (out.empty()) return InternalError("pricing catalogue: no instance type with GPUs");
  return out;
}

SoakCluster::SoakCluster(std::vector<NodeShape> shapes, int64_t nodes, int64_t pods, int namespaces)
    : shapes_(std::move(shapes)),
      nodes_(std::max<int64_t>(1, nodes)),
      namespaces_(std::max(1, namespaces)),
      generation_(static_cast<size_t>(std::max<int64_t>(0, pods)), 0) {}

std::string SoakCluster::NodeName(int64_t node) const {
  return "gpu-node-" + std::to_string(node);
}

const NodeShape& SoakCluster::Shape(int64_t node) const {
  // Spread so that neighbouring nodes differ (and time-sliced ones, node % 4 == 1, vary too).
  return shapes_[static_cast<size_t>((node * 7 + node / 4) % static_cast<int64_t>(shapes_.size()))];
}

int64_t SoakCluster::AdvertisedGpus(int64_t node) const {
  return static_cast<int64_t>(Shape(node).gpus) * (TimeSliced(node) ? kTimeSlicingReplicas : 1);
}

json SoakCluster::NodeObject(int64_t node) const {
  const NodeShape& shape = Shape(node);
  json labels = {{"node.kubernetes.io/instance-type", shape.instance_type},
                 {std::string(api::kGpuProductLabel), shape.gpu_model},
                 {"karpenter.sh/capacity-type", node % 3 == 0 ? "spot" : "on-demand"},
                 {"topology.kubernetes.io/zone", "zone-" + std::to_string(node % 3)}};
  if (TimeSliced(node))
    labels[std::string(api::kGpuReplicasLabel)] = std::to_string(kTimeSlicingReplicas);
  const json resources = {{"cpu", std::to_string(static_cast<int64_t>(shape.vcpus))},
                          {"memory", std::to_string(static_cast<int64_t>(shape.memory_gib)) + "Gi"},
                          {"pods", "250"},
                          {"nvidia.com/gpu", std::to_string(AdvertisedGpus(node))}};
  return {
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata", {{"name", NodeName(node)}, {"labels", labels}}},
      {"status",
       {{"capacity", resources},
        {"allocatable", resources},
        {"conditions", {{{"type", "Ready"}, {"status", "True"}, {"reason", "KubeletReady"}}}}}}};
}

json SoakCluster::NodeStatusPatch(int64_t node, bool degraded, bool ready) const {
  // One physical GPU gone is `replicas` advertised GPUs on a time-sliced node.
  const int64_t lost = degraded ? (TimeSliced(node) ? kTimeSlicingReplicas : 1) : 0;
  return {{"status",
           {{"allocatable", {{"nvidia.com/gpu", std::to_string(AdvertisedGpus(node) - lost)}}},
            {"conditions",
             {{{"type", "Ready"},
               {"status", ready ? "True" : "False"},
               {"reason", ready ? "KubeletReady" : "KubeletNotReady"}}}}}}};
}

std::string SoakCluster::PodNamespace(int64_t slot) const {
  return "soak-" + std::to_string(slot % namespaces_);
}

std::string SoakCluster::PodName(int64_t slot) const {
  return "pod-" + std::to_string(slot) + "-" +
         std::to_string(generation_[static_cast<size_t>(slot)]);
}

bool SoakCluster::HoldsGpu(int64_t slot) const {
  return slot / nodes_ < AdvertisedGpus(NodeOfSlot(slot));
}

json SoakCluster::PodObject(int64_t slot) const {
  const bool gpu = HoldsGpu(slot);
  const bool shared = SharesGpu(slot);
  json requests = gpu ? json{{"cpu", "1"}, {"memory", "4Gi"}, {"nvidia.com/gpu", "1"}}
                      : json{{"cpu", "100m"}, {"memory", "256Mi"}};
  json labels = {{"team", "team-" + std::to_string(slot % 40)},
                 {"project", "project-" + std::to_string(slot % 120)},
                 {"workload", shared ? "notebook" : (gpu ? "training" : "sidecar")}};
  json annotations = json::object();
  if (shared) {
    annotations = {{"gpuautoscaler.io/mode", "timeSlicing"},
                   {"gpuautoscaler.io/replicas", std::to_string(kTimeSlicingReplicas)},
                   {"gpuautoscaler.io/policy", kSharingPolicyName}};
  }
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", PodName(slot)},
            {"namespace", PodNamespace(slot)},
            {"labels", labels},
            {"annotations", annotations}}},
          {"spec",
           {{"nodeName", NodeName(NodeOfSlot(slot))},
            {"terminationGracePeriodSeconds", 0},
            {"containers",
             {{{"name", "main"},
               {"image", "registry.example/train:1"},
               {"resources", {{"requests", requests}, {"limits", requests}}}}}}}}};
}

}  // namespace gpu_autoscaler::bench
