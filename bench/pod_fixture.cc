#include "pod_fixture.h"

#include <nlohmann/json.hpp>

#include <cstdio>

namespace gpu_autoscaler::bench {
namespace {

using nlohmann::json;

std::string Hex(uint64_t v, int digits) {
  static const char kHex[] = "0123456789abcdef";
  std::string out(digits, '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4)
    out[i] = kHex[v & 15];
  return out;
}

std::string Uid(int index, int salt) {
  uint64_t a = Mix(static_cast<uint64_t>(index) * 31 + salt), b = Mix(a);
  return Hex(a >> 32, 8) + "-" + Hex(a >> 16, 4) + "-4" + Hex(a, 3) + "-a" + Hex(b >> 48, 3) + "-" +
         Hex(b, 12);
}

int JobIndex(int index) {
  return index / 8;
}  // 8 workers per job

json Labels(int index) {
  int job = JobIndex(index);
  return {{"app.kubernetes.io/name", "trainer"},
          {"app.kubernetes.io/part-of", "ml-platform"},
          {"team", "team-" + std::to_string(index % 20)},
          {"job-name", "train-" + std::to_string(job)},
          {"controller-uid", Uid(job, 7)},
          {"gpu-autoscaler.io/pool", Mix(index) % 3 == 0 ? "a100" : "h100"}};
}

json Annotations(int index) {
  return {{"prometheus.io/scrape", "true"},
          {"prometheus.io/port", "9400"},
          {"gpu-autoscaler.io/queue", "batch-" + std::to_string(index % 4)},
          {"checksum/config", Hex(Mix(JobIndex(index)), 16) + Hex(Mix(index / 3), 16)}};
}

json Container(int index, bool main) {
  int gpus = 1 << (Mix(index) % 4);  // 1, 2, 4 or 8
  json resources = main ? json{{"requests",
                                {{"cpu", std::to_string(gpus * 4)},
                                 {"memory", std::to_string(gpus * 32) + "Gi"},
                                 {"nvidia.com/gpu", std::to_string(gpus)}}},
                               {"limits",
                                {{"memory", std::to_string(gpus * 32) + "Gi"},
                                 {"nvidia.com/gpu", std::to_string(gpus)}}}}
                        : json{{"requests", {{"cpu", "100m"}, {"memory", "128Mi"}}},
                               {"limits", {{"cpu", "200m"}, {"memory", "256Mi"}}}};
  json c = {{"name", main ? "trainer" : "metrics-exporter"},
            {"image", main ? "registry.example.com/ml/trainer:2.14.1"
                           : "nvcr.io/nvidia/k8s/dcgm-exporter:3.1.7"},
            {"imagePullPolicy", "IfNotPresent"},
            {"resources", resources},
            {"terminationMessagePath", "/dev/termination-log"},
            {"terminationMessagePolicy", "File"},
            {"volumeMounts",
             {{{"name", "data"}, {"mountPath", "/data"}},
              {{"name", "kube-api-access"},
               {"mountPath", "/var/run/secrets/kubernetes.io/serviceaccount"},
               {"readOnly", true}}}}};
  if (main) {
    c["command"] = {"torchrun"};
    c["args"] = {"--nproc_per_node=" + std::to_string(gpus), "train.py", "--epochs=90",
                 "--batch-size=256"};
    c["env"] = {
        {{"name", "NCCL_DEBUG"}, {"value", "WARN"}},
        {{"name", "MASTER_ADDR"}, {"value", "train-" + std::to_string(JobIndex(index)) + "-0"}},
        {{"name", "MASTER_PORT"}, {"value", "29500"}},
        {{"name", "WORLD_SIZE"}, {"value", "8"}},
        {{"name", "RANK"}, {"value", std::to_string(index % 8)}}};
    c["ports"] = {{{"containerPort", 29500}, {"name", "dist"}, {"protocol", "TCP"}}};
  } else {
    c["ports"] = {{{"containerPort", 9400}, {"name", "metrics"}, {"protocol", "TCP"}}};
  }
  return c;
}

json Spec(int index, bool bound) {
  json containers = {Container(index, true)};
  if (index % 2 == 0) containers.push_back(Container(index, false));  // 1-2 containers
  json spec = {
      {"containers", containers},
      {"volumes",
       {{{"name", "data"}, {"persistentVolumeClaim", {{"claimName", "dataset-imagenet"}}}},
        {{"name", "kube-api-access"},
         {"projected",
          {{"defaultMode", 420},
           {"sources",
            {{{"serviceAccountToken", {{"expirationSeconds", 3607}, {"path", "token"}}}}}}}}}}},
      {"restartPolicy", "Never"},
      {"terminationGracePeriodSeconds", 30},
      {"dnsPolicy", "ClusterFirst"},
      {"serviceAccountName", "trainer"},
      {"schedulerName", "default-scheduler"},
      {"securityContext", json::object()},
      {"priorityClassName", "batch-high"},
      {"priority", 1000},
      {"enableServiceLinks", true},
      {"preemptionPolicy", "PreemptLowerPriority"},
      {"nodeSelector", {{"nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB"}}},
      {"tolerations",
       {{{"key", "nvidia.com/gpu"}, {"operator", "Exists"}, {"effect", "NoSchedule"}},
        {{"key", "node.kubernetes.io/not-ready"},
         {"operator", "Exists"},
         {"effect", "NoExecute"},
         {"tolerationSeconds", 300}}}}};
  if (bound) spec["nodeName"] = "gpu-node-" + std::to_string(Mix(index) % 500);
  return spec;
}

std::string Timestamp(int index, int offset_seconds) {
  int s = (index + offset_seconds) % 86400;
  char buf[32];
  std::snprintf(buf, sizeof buf, "2026-11-22T%02d:%02d:%02dZ", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}

}  // namespace

std::string PodNamespace(int index, int namespaces) {
  return "team-" + std::to_string(index % namespaces);
}

std::string PodName(int index) {
  return "train-" + std::to_string(JobIndex(index)) + "-worker-" + std::to_string(index % 8) + "-" +
         Hex(Mix(index), 5);
}

json PodObject(int index) {
  const std::string created = Timestamp(index, 0);
  json pod = {{"kind", "Pod"},
              {"apiVersion", "v1"},
              {"metadata",
               {{"name", PodName(index)},
                {"generateName", "train-" + std::to_string(JobIndex(index)) + "-worker-"},
                {"namespace", PodNamespace(index)},
                {"uid", Uid(index, 1)},
                {"resourceVersion", std::to_string(100'000 + index)},
                {"creationTimestamp", created},
                {"labels", Labels(index)},
                {"annotations", Annotations(index)},
                {"ownerReferences",
                 {{{"apiVersion", "batch/v1"},
                   {"kind", "Job"},
                   {"name", "train-" + std::to_string(JobIndex(index))},
                   {"uid", Uid(JobIndex(index), 7)},
                   {"controller", true},
                   {"blockOwnerDeletion", true}}}},
                {"managedFields",
                 {{{"manager", "kube-controller-manager"},
                   {"operation", "Update"},
                   {"apiVersion", "v1"},
                   {"time", created},
                   {"fieldsType", "FieldsV1"},
                   {"fieldsV1",
                    {{"f:metadata",
                      {{"f:generateName", json::object()},
                       {"f:labels",
                        {{".", json::object()},
                         {"f:controller-uid", json::object()},
                         {"f:job-name", json::object()}}},
                       {"f:ownerReferences",
                        {{".", json::object()},
                         {"k:{\"uid\":\"" + Uid(JobIndex(index), 7) + "\"}", json::object()}}}}},
                     {"f:spec",
                      {{"f:containers",
                        {{"k:{\"name\":\"trainer\"}",
                          {{".", json::object()},
                           {"f:args", json::object()},
                           {"f:command", json::object()},
                           {"f:env", json::object()},
                           {"f:image", json::object()},
                           {"f:resources", json::object()}}}}},
                       {"f:restartPolicy", json::object()},
                       {"f:tolerations", json::object()}}}}}},
                  {{"manager", "kubelet"},
                   {"operation", "Update"},
                   {"apiVersion", "v1"},
                   {"time", Timestamp(index, 42)},
                   {"fieldsType", "FieldsV1"},
                   {"subresource", "status"},
                   {"fieldsV1",
                    {{"f:status",
                      {{"f:conditions",
                        {{"k:{\"type\":\"ContainersReady\"}", json::object()},
                         {"k:{\"type\":\"Ready\"}", json::object()}}},
                       {"f:containerStatuses", json::object()},
                       {"f:hostIP", json::object()},
                       {"f:phase", json::object()},
                       {"f:podIP", json::object()},
                       {"f:startTime", json::object()}}}}}}}}}},
              {"spec", Spec(index, true)}};
  const std::string ip = "10." + std::to_string(index / 65536 % 256) + "." +
                         std::to_string(index / 256 % 256) + "." + std::to_string(index % 256);
  json statuses = json::array();
  for (const json& c : pod["spec"]["containers"]) {
    statuses.push_back(
        {{"name", c["name"]},
         {"state", {{"running", {{"startedAt", Timestamp(index, 40)}}}}},
         {"lastState", json::object()},
         {"ready", true},
         {"restartCount", 0},
         {"image", c["image"]},
         {"imageID", "registry.example.com/ml/trainer@sha256:" + Hex(Mix(7), 16) + Hex(Mix(8), 16) +
                         Hex(Mix(9), 16) + Hex(Mix(10), 16)},
         {"containerID", "containerd://" + Hex(Mix(index * 3), 16) + Hex(Mix(index * 5), 16) +
                             Hex(Mix(index * 7), 16) + Hex(Mix(index * 11), 16)},
         {"started", true}});
  }
  pod["status"] = {{"phase", "Running"},
                   {"conditions",
                    {{{"type", "Initialized"},
                      {"status", "True"},
                      {"lastProbeTime", nullptr},
                      {"lastTransitionTime", created}},
                     {{"type", "Ready"},
                      {"status", "True"},
                      {"lastProbeTime", nullptr},
                      {"lastTransitionTime", Timestamp(index, 41)}},
                     {{"type", "ContainersReady"},
                      {"status", "True"},
                      {"lastProbeTime", nullptr},
                      {"lastTransitionTime", Timestamp(index, 41)}},
                     {{"type", "PodScheduled"},
                      {"status", "True"},
                      {"lastProbeTime", nullptr},
                      {"lastTransitionTime", created}}}},
                   {"hostIP", "172.31." + std::to_string(Mix(index) % 250) + ".17"},
                   {"podIP", ip},
                   {"podIPs", {{{"ip", ip}}}},
                   {"startTime", created},
                   {"containerStatuses", statuses},
                   {"qosClass", "Burstable"}};
  return pod;
}

json PodCreateBody(int index, const std::string& ns) {
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata",
               {{"name", PodName(index)},
                {"namespace", ns},
                {"labels", Labels(index)},
                {"annotations", Annotations(index)}}},
              {"spec", Spec(index, true)}};
  return pod;
}

json BatchHighPriorityClass() {
  return {{"apiVersion", "scheduling.k8s.io/v1"},       {"kind", "PriorityClass"},
          {"metadata", {{"name", "batch-high"}}},       {"value", 1000},
          {"preemptionPolicy", "PreemptLowerPriority"}, {"description", "Batch training jobs."}};
}

std::string PodListJson(int first, int count, const std::string& resource_version,
                        const std::string& continue_token) {
  std::string out = R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":")" +
                    resource_version + "\"";
  if (!continue_token.empty()) out += R"(,"continue":")" + continue_token + "\"";
  out += R"(},"items":[)";
  for (int i = first; i < first + count; ++i) {
    if (i != first) out += ',';
    out += PodObject(i).dump();
  }
  out += "]}";
  return out;
}

uint64_t Mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace gpu_autoscaler::bench
