// File: tests/scheduler/scheduler_test_util.h
//
// Builders for the scheduler's unit tests: Pod and Node views from small
// JSON descriptions, decoded by the same codec the informers use.
//
// Thread-safety: pure functions.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/node_view.h"
#include "kube/object_codec.h"
#include "kube/pod_view.h"

namespace gpu_autoscaler::scheduler::testutil {

using nlohmann::json;

struct NodeArgs {
  std::string name{};
  int cpu = 64;  // cores
  int memory_gi = 256;
  json allocatable_extra = json::object();  // e.g. {"nvidia.com/gpu": "8"}
  json labels = json::object();
  json taints = json::array();
  bool ready = true;
  bool unschedulable = false;
};

inline json NodeJson(const NodeArgs& a) {
  json allocatable = {{"cpu", std::to_string(a.cpu)},
                      {"memory", std::to_string(a.memory_gi) + "Gi"},
                      {"pods", "110"}};
  for (auto& [k, v] : a.allocatable_extra.items())
    allocatable[k] = v;
  json node = {{"apiVersion", "v1"},
               {"kind", "Node"},
               {"metadata", {{"name", a.name}, {"labels", a.labels}}},
               {"spec", json::object()},
               {"status",
                {{"capacity", allocatable},
                 {"allocatable", allocatable},
                 {"conditions", {{{"type", "Ready"}, {"status", a.ready ? "True" : "False"}}}}}}};
  if (!a.taints.empty()) node["spec"]["taints"] = a.taints;
  if (a.unschedulable) node["spec"]["unschedulable"] = true;
  return node;
}

inline std::shared_ptr<const kube::NodeView> Node(const NodeArgs& a) {
  auto view = kube::DecodeNode(NodeJson(a).dump());
  EXPECT_TRUE(view.ok()) << view.error().message();
  return std::make_shared<const kube::NodeView>(std::move(view).value());
}

struct PodArgs {
  std::string name{};
  std::string ns = "default";
  json requests = json::object();  // e.g. {"nvidia.com/gpu": "1"}
  json annotations = json::object();
  std::string node{};                // bound when set
  json spec_extra = json::object();  // nodeSelector, affinity, tolerations, schedulerName
  std::string phase = "Pending";
  json metadata_extra = json::object();  // e.g. ownerReferences
};

inline json PodJson(const PodArgs& a) {
  json requests = {{"cpu", "1"}, {"memory", "1Gi"}};
  json limits = json::object();
  for (auto& [k, v] : a.requests.items()) {
    requests[k] = v;
    if (k.find("nvidia.com/") == 0) limits[k] = v;
  }
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata",
               {{"name", a.name},
                {"namespace", a.ns},
                {"uid", "uid-" + a.name},
                {"annotations", a.annotations}}},
              {"spec",
               {{"containers",
                 {{{"name", "main"},
                   {"image", "busybox"},
                   {"resources", {{"requests", requests}, {"limits", limits}}}}}}}},
              {"status", {{"phase", a.phase}}}};
  if (!a.node.empty()) pod["spec"]["nodeName"] = a.node;
  for (auto& [k, v] : a.metadata_extra.items())
    pod["metadata"][k] = v;
  for (auto& [k, v] : a.spec_extra.items())
    pod["spec"][k] = v;
  return pod;
}

inline std::shared_ptr<const kube::PodView> Pod(const PodArgs& a) {
  auto view = kube::DecodePod(PodJson(a).dump());
  EXPECT_TRUE(view.ok()) << view.error().message();
  return std::make_shared<const kube::PodView>(std::move(view).value());
}

}  // namespace gpu_autoscaler::scheduler::testutil
