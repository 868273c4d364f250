// In-process admission decisions per second: AdmissionService::Review on one
// body (decode, policy match, MIG sizing, patch, encode), no network.
//
//   BM_MutateRecorded        the AdmissionReview kube-apiserver v1.20.2 sent for
//                            a GPU pod (tests/golden/admission, ~4 KB) -> patched
//   BM_MutateLargePod        a 6-container pod with env, volumes, a big
//                            last-applied annotation and managedFields (~40 KB)
//   BM_MutateNoMatch         the recorded review when no policy selects it
//   BM_ValidatePods          /validate-pods on the recorded review
//   BM_DecodeSimdjson        the decoder alone (what Review uses)
//   BM_DecodeNlohmann        nlohmann::json::parse of the same body, for comparison
//   BM_MutateRecorded/threads:2  two threads sharing one service
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "webhooks/admission_service.h"
#include "webhooks/review.h"

namespace gpu_autoscaler::webhooks {
namespace {

using nlohmann::json;

json RecordedReview() {
  std::ifstream in(std::string(GPA_SOURCE_DIR) + "/tests/golden/admission/admission-review-2.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str())["review"];
}

const std::string& RecordedBody() {
  static const std::string body = RecordedReview().dump();
  return body;
}

const std::string& LargeBody() {
  static const std::string body = [] {
    json review = RecordedReview();
    json& pod = review["request"]["object"];
    json container = pod["spec"]["containers"][0];
    for (int i = 0; i < 40; ++i) {
      container["env"].push_back(
          {{"name", "VAR_" + std::to_string(i)}, {"value", std::string(32, 'a' + i % 26)}});
    }
    for (int i = 0; i < 6; ++i) {
      container["volumeMounts"].push_back(
          {{"name", "vol-" + std::to_string(i)}, {"mountPath", "/mnt/data-" + std::to_string(i)}});
    }
    json containers = json::array();
    for (int i = 0; i < 6; ++i) {
      json c = container;
      c["name"] = "worker-" + std::to_string(i);
      if (i >= 2) c["resources"]["limits"].erase("nvidia.com/gpu");
      if (i >= 2) c["resources"]["requests"].erase("nvidia.com/gpu");
      containers.push_back(c);
    }
    pod["spec"]["containers"] = containers;
    for (int i = 0; i < 6; ++i) {
      pod["spec"]["volumes"].push_back(
          {{"name", "vol-" + std::to_string(i)},
           {"persistentVolumeClaim", {{"claimName", "data-" + std::to_string(i)}}}});
    }
    for (int i = 0; i < 20; ++i) {
      pod["metadata"]["labels"]["label-" + std::to_string(i)] = "value-" + std::to_string(i);
    }
    pod["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = pod.dump();
    for (int i = 0; i < 4; ++i)
      pod["metadata"]["managedFields"].push_back(pod["metadata"]["managedFields"][0]);
    return review.dump();
  }();
  return body;
}

AdmissionService& Service(bool with_policy) {
  static AdmissionService* with = nullptr;
  static AdmissionService* without = nullptr;
  if (with == nullptr) {
    with = new AdmissionService(AdmissionConfig{});
    without = new AdmissionService(AdmissionConfig{});
    std::vector<GpuSharingPolicy> policies;
    // A few policies that do not match, then the one that does.
    for (int i = 0; i < 8; ++i) {
      json cr = {{"kind", "GPUSharingPolicy"},
                 {"metadata", {{"name", "other-" + std::to_string(i)}}},
                 {"spec",
                  {{"priority", 100 + i},
                   {"podSelector", {{"matchLabels", {{"team", "t" + std::to_string(i)}}}}},
                   {"strategy", {{"type", "timeSlicing"}, {"timeSlicing", {{"replicas", 4}}}}}}}};
      policies.push_back(AdmissionService::ParsePolicy(cr.dump()).value());
    }
    policies.push_back(AdmissionService::ParsePolicy(R"({"kind":"GPUSharingPolicy",
      "metadata":{"name":"nlp-mig"},"spec":{"priority":10,
      "podSelector":{"matchLabels":{"team":"nlp"}},"gpuModels":["A100-80GB","H100-80GB"],
      "strategy":{"type":"mig","mig":{"allowedProfiles":[
        {"gpuModel":"A100-80GB","profiles":["1g.10gb","2g.20gb","3g.40gb","7g.80gb"]},
        {"gpuModel":"H100-80GB","profiles":["1g.10gb","1g.20gb","3g.40gb"]}]}}}})")
                           .value());
    with->SetPolicies(policies);
    policies.pop_back();
    without->SetPolicies(policies);
  }
  return with_policy ? *with : *without;
}

void RunReview(benchmark::State& state, AdmissionEndpoint endpoint, const std::string& body,
               bool with_policy, AdmissionVerdict expected) {
  AdmissionService& service = Service(with_policy);
  if (service.Review(endpoint, body).verdict != expected) {
    state.SkipWithError("unexpected verdict");
    return;
  }
  for (auto _ : state) {
    AdmissionOutcome out = service.Review(endpoint, body);
    benchmark::DoNotOptimize(out.body.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}

void BM_MutateRecorded(benchmark::State& state) {
  RunReview(state, AdmissionEndpoint::kMutatePods, RecordedBody(), true,
            AdmissionVerdict::kPatched);
}
BENCHMARK(BM_MutateRecorded);
BENCHMARK(BM_MutateRecorded)->Threads(2)->UseRealTime();

void BM_MutateLargePod(benchmark::State& state) {
  RunReview(state, AdmissionEndpoint::kMutatePods, LargeBody(), true, AdmissionVerdict::kPatched);
}
BENCHMARK(BM_MutateLargePod);

void BM_MutateNoMatch(benchmark::State& state) {
  RunReview(state, AdmissionEndpoint::kMutatePods, RecordedBody(), false,
            AdmissionVerdict::kAllowed);
}
BENCHMARK(BM_MutateNoMatch);

void BM_ValidatePods(benchmark::State& state) {
  RunReview(state, AdmissionEndpoint::kValidatePods, RecordedBody(), true,
            AdmissionVerdict::kAllowed);
}
BENCHMARK(BM_ValidatePods);

void BM_DecodeSimdjson(benchmark::State& state) {
  const std::string& body = state.range(0) == 0 ? RecordedBody() : LargeBody();
  for (auto _ : state) {
    auto review = DecodeAdmissionReview(body, ObjectDecoding::kPod);
    benchmark::DoNotOptimize(review.ok());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}
BENCHMARK(BM_DecodeSimdjson)->Arg(0)->Arg(1);

void BM_DecodeNlohmann(benchmark::State& state) {
  const std::string& body = state.range(0) == 0 ? RecordedBody() : LargeBody();
  for (auto _ : state) {
    json doc = json::parse(body);
    benchmark::DoNotOptimize(doc.is_object());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}
BENCHMARK(BM_DecodeNlohmann)->Arg(0)->Arg(1);

}  // namespace
}  // namespace gpu_autoscaler::webhooks

BENCHMARK_MAIN();
