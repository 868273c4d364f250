// Fuzzes the embedded API server's --token-auth-file parser
// (apiserver/access_review.h) and the TokenReview built from its table: any
// bytes must give a table or an InvalidArgument error naming the line, never
// a crash; every token and user parsed is non-empty with no empty group, and
// a review of any parsed token authenticates its user.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "apiserver/access_review.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gpu_autoscaler;
  using namespace gpu_autoscaler::apiserver;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto table = ParseTokenAuthFile(text);
  if (!table.ok()) {
    if (table.error().code() != StatusCode::kInvalidArgument ||
        table.error().message().find("line ") == std::string::npos) {
      std::abort();
    }
    return 0;
  }
  for (const auto& [token, user] : *table) {
    if (token.empty() || user.name.empty()) std::abort();
    for (const std::string& group : user.groups) {
      if (group.empty()) std::abort();
    }
    nlohmann::json review = {{"apiVersion", "authentication.k8s.io/v1"},
                             {"kind", "TokenReview"},
                             {"spec", {{"token", token}}}};
    auto reviewed = ReviewToken(review, *table);
    if (!reviewed.ok()) std::abort();
    const nlohmann::json& status = (*reviewed)["status"];
    if (!status.value("authenticated", false) ||
        status["user"].value("username", "") != user.name) {
      std::abort();
    }
  }
  return 0;
}
