// Fuzzes a pod's inter-pod rules from its JSON (scheduler/pod_topology.h):
// podAffinity, podAntiAffinity and topologySpreadConstraints in any shape
// must decode, parse to rules or to a clear error, and filter a small fixed
// cluster (the pod also placed there with its own rules, so the existing
// pods' side runs too) without a crash, an exception or a hang; every
// verdict is "" or one of kube-scheduler's reasons, and a verdict with pods
// removed (preemption's dry run) is the verdict of a cluster without them,
// and one with pods added (nominated) the verdict of a cluster with them.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kube/object_codec.h"
#include "scheduler/pod_topology.h"

namespace {

using gpu_autoscaler::kube::NodeView;
using gpu_autoscaler::kube::PodView;
namespace sched = gpu_autoscaler::scheduler;

std::shared_ptr<const NodeView> MakeNode(const std::string& name, const std::string& labels) {
  const std::string json = R"({"metadata":{"name":")" + name + R"(","labels":)" + labels +
                           R"(},"status":{"conditions":[{"type":"Ready","status":"True"}]}})";
  return std::make_shared<const NodeView>(
      std::move(gpu_autoscaler::kube::DecodeNode(json)).value());
}

std::shared_ptr<const PodView> MakePod(const std::string& name, const std::string& ns,
                                       const std::string& labels) {
  const std::string json = R"({"metadata":{"name":")" + name + R"(","namespace":")" + ns +
                           R"(","labels":)" + labels + R"(},"spec":{"containers":[]}})";
  return std::make_shared<const PodView>(std::move(gpu_autoscaler::kube::DecodePod(json)).value());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto* nodes = new std::vector<std::shared_ptr<const NodeView>>{
      MakeNode("a", R"({"zone":"z1","host":"a"})"), MakeNode("b", R"({"zone":"z2","host":"b"})"),
      MakeNode("bare", "{}")};
  static const auto* pods = new std::vector<std::shared_ptr<const PodView>>{
      MakePod("web-0", "default", R"({"app":"web"})"),
      MakePod("db-0", "team", R"({"app":"db","tier":"x"})")};

  auto decoded =
      gpu_autoscaler::kube::DecodePod(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!decoded.ok()) return 0;
  const PodView& pod = *decoded;
  auto rules = sched::ParsePodTopology(pod);
  if (!rules.ok()) {
    if (rules.error().message().empty()) std::abort();  // an error says what
    return 0;
  }
  std::vector<sched::PlacedPod> placed = {
      {.pod = (*pods)[0].get(), .node = (*nodes)[0].get(), .rules = nullptr},
      {.pod = (*pods)[1].get(), .node = (*nodes)[1].get(), .rules = nullptr},
      {.pod = &pod, .node = (*nodes)[0].get(), .rules = &*rules}};
  std::vector<const NodeView*> views;
  for (const auto& n : *nodes)
    views.push_back(n.get());
  sched::TopologyFilter filter(pod, *rules, placed, views);
  for (const NodeView* n : views) {
    const std::string_view why = filter.Failure(*n);
    if (!why.empty() && why != sched::kAffinityRulesNotMatch &&
        why != sched::kAntiAffinityRulesNotMatch && why != sched::kExistingAntiAffinityNotMatch &&
        why != sched::kSpreadNotMatch && why != sched::kSpreadMissingLabel) {
      std::abort();
    }
  }
  // Preemption's view, checked against a filter built without the removed
  // pods: taking pods off node a must give the same verdict there.
  const NodeView& a = *(*nodes)[0];
  const std::vector<std::vector<size_t>> removals = {{2}, {0}, {0, 2}};
  for (const std::vector<size_t>& removal : removals) {
    std::vector<sched::PlacedPod> removed;
    std::vector<sched::PlacedPod> kept;
    for (size_t i = 0; i < placed.size(); ++i) {
      const bool gone = std::find(removal.begin(), removal.end(), i) != removal.end();
      (gone ? removed : kept).push_back(placed[i]);
    }
    sched::TopologyFilter without(pod, *rules, kept, views);
    if (filter.Failure(a, removed) != without.Failure(a)) std::abort();
    // And the other way round: adding them back (as pods nominated to a).
    if (without.Failure(a, {}, removed) != filter.Failure(a)) std::abort();
  }
  return 0;
}
