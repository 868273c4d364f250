// Fuzzes the embedded API server's decoder of AdmissionReview responses
// (outside input: whatever a registered webhook answers). Properties: no crash
// or exception; a decoded response echoes the uid; a validating decode never
// carries a patch; a mutating patch applies to a pod or fails with an error
// value; a denial built from the response's status is at least 400 and names
// the webhook.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "apiserver/admission_webhooks.h"
#include "apiserver/patch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gpu_autoscaler::apiserver;
  std::string_view body(reinterpret_cast<const char*>(data), size);
  static const nlohmann::json pod = nlohmann::json::parse(
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"a":"b"}},
          "spec":{"containers":[{"name":"c","image":"i"}]}})");
  for (bool mutating : {true, false}) {
    auto verdict = DecodeAdmissionResponse(body, "u-1", mutating);
    if (!verdict.ok()) {
      if (verdict.error().message().empty()) std::abort();
      continue;
    }
    if (!mutating && !verdict->patch.empty()) std::abort();
    if (!verdict->patch.empty()) (void)ApplyJsonPatch(pod, verdict->patch);
    if (!verdict->allowed) {
      auto denied = WebhookDeniedError("fuzz.example.com", verdict->result);
      if (denied.code() < 400) std::abort();
      if (denied.message().rfind("admission webhook \"fuzz.example.com\" denied the request", 0) !=
          0) {
        std::abort();
      }
      (void)denied.ToStatusJson().dump();
    }
  }
  return 0;
}
