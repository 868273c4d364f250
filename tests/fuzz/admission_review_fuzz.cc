// Fuzzes AdmissionService::Review: the AdmissionReview decoder and the JSON
// patch builder. Every endpoint sees the input with a fixed set of policies
// (one per strategy) and an exhausted blockNewGPUPods ClusterBudget over every
// namespace (so /validate-pods runs the budget check; /validate-budgets
// parses the object as a Budget or ClusterBudget). Properties: no crash; a
// 400 carries a reason; a 200 is an AdmissionReview that echoes the request
// uid; a patch is a JSON array that the API server's RFC 6902 implementation
// applies to request.object, and the patched pod, reviewed again, gets no
// further patch.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "apiserver/patch.h"
#include "common/base64.h"
#include "webhooks/admission_service.h"

namespace {

using gpu_autoscaler::webhooks::AdmissionConfig;
using gpu_autoscaler::webhooks::AdmissionEndpoint;
using gpu_autoscaler::webhooks::AdmissionOutcome;
using gpu_autoscaler::webhooks::AdmissionService;
using gpu_autoscaler::webhooks::AdmissionVerdict;
using gpu_autoscaler::webhooks::GpuSharingPolicy;
using nlohmann::json;

const AdmissionService& Service() {
  static AdmissionService* service = [] {
    AdmissionConfig config;
    auto gate = std::make_shared<gpu_autoscaler::webhooks::BudgetGate>();
    const std::vector<std::string> budgets = {
        R"({"apiVersion":"gpuautoscaler.io/v1alpha1","kind":"Budget",
            "metadata":{"name":"all","namespace":"ops","generation":1},
            "spec":{"amount":1,"enforcement":"blockNewGPUPods"},
            "status":{"currentSpend":2,"periodStart":"2000-01-01T00:00:00Z",
                      "periodEnd":"2200-01-01T00:00:00Z","observedGeneration":1}})",
        R"({"apiVersion":"gpuautoscaler.io/v1alpha1","kind":"ClusterBudget",
            "metadata":{"name":"everywhere","generation":1},
            "spec":{"amount":1,"enforcement":"blockNewGPUPods"},
            "status":{"currentSpend":2,"periodStart":"2000-01-01T00:00:00Z",
                      "periodEnd":"2200-01-01T00:00:00Z","observedGeneration":1}})"};
    auto load = gpu_autoscaler::webhooks::LoadBudgets(budgets);
    if (!load.errors.empty()) std::abort();
    gate->SetBudgets(std::move(load.budgets));
    config.budgets = gate;
    auto* s = new AdmissionService(std::move(config));
    std::vector<GpuSharingPolicy> policies;
    for (const char* cr : {
             R"({"kind":"GPUSharingPolicy","metadata":{"name":"mig"},"spec":{"priority":4,
                "podSelector":{"matchLabels":{"mode":"mig"}},"gpuModels":["A100-80GB","H100-80GB"],
                "strategy":{"type":"mig","mig":{"allowedProfiles":[
                  {"gpuModel":"A100-80GB","profiles":["1g.10gb","2g.20gb","7g.80gb"]},
                  {"gpuModel":"H100-80GB","profiles":["1g.10gb+me","1g.20gb","3g.40gb"]}]}}}})",
             R"({"kind":"GPUSharingPolicy","metadata":{"name":"mps"},"spec":{"priority":3,
                "podSelector":{"matchLabels":{"mode":"mps"}},
                "strategy":{"type":"mps","mps":{"maxClients":4,"activeThreadPercentage":50,
                "pinnedMemoryLimit":"20Gi"}}}})",
             R"({"kind":"GPUSharingPolicy","metadata":{"name":"ts"},"spec":{"priority":2,
                "podSelector":{"matchLabels":{"mode":"ts"}},
                "strategy":{"type":"timeSlicing","timeSlicing":{"replicas":4}}}})",
             R"({"kind":"GPUSharingPolicy","metadata":{"name":"any"},"spec":{"priority":1,
                "gpuModels":["H200-141GB"],"strategy":{"type":"exclusive"}}})"}) {
      policies.push_back(AdmissionService::ParsePolicy(cr).value());
    }
    s->SetPolicies(std::move(policies));
    return s;
  }();
  return *service;
}

void Check(AdmissionEndpoint endpoint, std::string_view body, bool recheck) {
  AdmissionOutcome out = Service().Review(endpoint, body);
  if (out.http_status == 400) {
    if (out.body.empty() || out.verdict != AdmissionVerdict::kBadRequest) std::abort();
    return;
  }
  if (out.http_status != 200) std::abort();
  json response = json::parse(out.body, nullptr, false);
  if (response.is_discarded() || response["kind"] != "AdmissionReview") std::abort();
  json request = json::parse(body, nullptr, false);
  if (request.is_discarded()) return;  // simdjson accepted what nlohmann refuses (depth...)
  if (response["response"]["uid"] != request["request"]["uid"]) std::abort();
  if (out.verdict != AdmissionVerdict::kPatched) return;
  const std::string patch =
      gpu_autoscaler::Base64Decode(response["response"]["patch"].get<std::string>()).value_or("");
  json ops = json::parse(patch, nullptr, false);
  if (ops.is_discarded() || !ops.is_array() || ops.empty()) std::abort();
  auto patched = gpu_autoscaler::apiserver::ApplyJsonPatch(request["request"]["object"], patch);
  if (!patched.ok()) std::abort();
  if (recheck) {
    request["request"]["object"] = *patched;
    const std::string again = request.dump();
    AdmissionOutcome second = Service().Review(endpoint, again);
    if (second.verdict == AdmissionVerdict::kPatched) std::abort();  // not idempotent
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  Check(AdmissionEndpoint::kMutatePods, body, /*recheck=*/true);
  Check(AdmissionEndpoint::kValidatePods, body, false);
  Check(AdmissionEndpoint::kValidateGpuSharingPolicies, body, false);
  Check(AdmissionEndpoint::kValidateBudgets, body, false);
  return 0;
}
