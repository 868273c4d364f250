// File: controllers/secret_data.h
//
// A Secret's data, read once and decoded on demand: what the budget
// controller's channels and the manager's --cost-db-secret take their
// credentials from.
//
//   GPU_ASSIGN_OR_RETURN(SecretData secret, SecretData::Read(client, "ml", "alerts"));
//   GPU_ASSIGN_OR_RETURN(std::string url, secret.Value("slack-url"));
//   GPU_ASSIGN_OR_RETURN(std::string hmac, secret.Value("hmac-key", /*required=*/false));
//
// Values are base64-decoded and lose trailing newlines (Secrets written by
// hand often end in one). Errors name the Secret and key, never the value.
//
// Thread-safety: a SecretData is an immutable value.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace gpu_autoscaler::kube {
class RestClient;
}

namespace gpu_autoscaler::controllers {

class SecretData {
 public:
  // NotFound when the Secret does not exist; Unavailable when it cannot be read.
  static Result<SecretData> Read(kube::RestClient& client, const std::string& ns,
                                 const std::string& name);

  // The decoded value of `key`; "" for a missing key that is not required.
  Result<std::string> Value(std::string_view key, bool required = true) const;

 private:
  SecretData(std::string where, nlohmann::json data)
      : where_(std::move(where)), data_(std::move(data)) {}

  std::string where_;  // "Secret ns/name"
  nlohmann::json data_;
};

}  // namespace gpu_autoscaler::controllers
