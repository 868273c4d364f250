#include "controllers/secret_data.h"

#include "common/base64.h"
#include "kube/error.h"
#include "kube/rest_client.h"

namespace gpu_autoscaler::controllers {

Result<SecretData> SecretData::Read(kube::RestClient& client, const std::string& ns,
                                    const std::string& name) {
  std::string where = "Secret " + ns + "/" + name;
  auto secret = client.Get(kube::ObjectRef{kube::resources::kSecrets, ns, name});
  if (!secret.ok()) {
    if (kube::IsNotFound(secret.error())) return NotFoundError(where + " not found");
    return UnavailableError("reading " + where + ": " + secret.error().ToString());
  }
  nlohmann::json data = secret->value("data", nlohmann::json::object());
  if (!data.is_object()) data = nlohmann::json::object();
  return SecretData(std::move(where), std::move(data));
}

Result<std::string> SecretData::Value(std::string_view key, bool required) const {
  auto it = data_.find(key);
  if (it == data_.end() || !it->is_string()) {
    if (!required) return std::string();
    return NotFoundError(where_ + " has no key \"" + std::string(key) + "\"");
  }
  auto decoded = Base64Decode(it->get_ref<const std::string&>());
  if (!decoded.has_value()) {
    return InvalidArgumentError(where_ + " key \"" + std::string(key) + "\" is not valid base64");
  }
  while (!decoded->empty() && (decoded->back() == '\n' || decoded->back() == '\r'))
    decoded->pop_back();
  return *decoded;
}

}  // namespace gpu_autoscaler::controllers
