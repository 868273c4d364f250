// libFuzzer target for the embedded API server's batch/v1 Job handling.
//
// Input: the first line is a Job as a client would POST it, the rest an
// updated Job. The first goes through create's defaulting, selector
// generation and validation, the second through update validation against
// it. Every call must return a value or an error: no crash, no exception.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "apiserver/defaults.h"
#include "apiserver/validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gpu_autoscaler::apiserver;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  const std::string_view created_text = input.substr(0, newline);
  const std::string_view updated_text =
      newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);

  nlohmann::json job = nlohmann::json::parse(created_text, nullptr, /*allow_exceptions=*/false);
  if (job.is_discarded()) return 0;
  const ValidationTarget target{"batch", "v1", "jobs", "Job", true, ""};
  ApplyDefaults("batch", "Job", job);
  if (job.is_object() && job.contains("metadata") && job["metadata"].is_object()) {
    job["metadata"]["uid"] = "fuzz-uid";
  }
  PrepareForValidation("batch", "Job", job);
  (void)ValidateCreate(target, job, nullptr);

  nlohmann::json updated = nlohmann::json::parse(updated_text, nullptr, false);
  if (updated.is_discarded()) return 0;
  ApplyDecodeDefaults("batch", "Job", updated);
  (void)ValidateUpdate(target, job, updated, nullptr);
  return 0;
}
