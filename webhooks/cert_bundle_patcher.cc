#include "webhooks/cert_bundle_patcher.h"

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "common/json_read.h"
#include "kube/rest_client.h"

namespace gpu_autoscaler::webhooks {
namespace {

const kube::GroupVersionResource kMutatingWebhookConfigurations{
    "admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", false};
const kube::GroupVersionResource kValidatingWebhookConfigurations{
    "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", false};

constexpr int kConflictRetries = 5;

}  // namespace

std::string EncodeCaBundle(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

CaBundlePatcher::CaBundlePatcher(kube::RestClient* client, std::string config_name,
                                 std::string ca_pem)
    : client_(client), config_name_(std::move(config_name)), ca_bundle_(EncodeCaBundle(ca_pem)) {}

Status CaBundlePatcher::Sync() {
  Status mutating = SyncOne(true);
  Status validating = SyncOne(false);
  GPU_RETURN_IF_ERROR(mutating);
  return validating;
}

Status CaBundlePatcher::SyncOne(bool mutating) {
  kube::ObjectRef ref{mutating ? kMutatingWebhookConfigurations : kValidatingWebhookConfigurations,
                      "", config_name_};
  std::string what =
      (mutating ? "MutatingWebhookConfiguration " : "ValidatingWebhookConfiguration ") +
      config_name_;
  for (int attempt = 0;; ++attempt) {
    auto current = client_->Get(ref);
    if (!current.ok()) return current.error().ToStatus().WithContext(what);
    try {
      const nlohmann::json& obj = *current;
      auto webhooks = obj.find("webhooks");
      if (webhooks == obj.end() || !webhooks->is_array() || webhooks->empty()) {
        return FailedPreconditionError(what + " has no webhooks to patch");
      }
      nlohmann::json patch = nlohmann::json::array();
      patch.push_back(
          {{"op", "test"},
           {"path", "/metadata/resourceVersion"},
           {"value", json_read::String(json_read::Object(obj, "metadata"), "resourceVersion")}});
      for (size_t i = 0; i < webhooks->size(); ++i) {
        const nlohmann::json& hook = (*webhooks)[i];
        auto client_config = hook.find("clientConfig");
        std::string base = "/webhooks/" + std::to_string(i) + "/clientConfig";
        if (client_config == hook.end() || !client_config->is_object()) {
          patch.push_back({{"op", "add"}, {"path", base}, {"value", {{"caBundle", ca_bundle_}}}});
        } else if (client_config->value("caBundle", "") != ca_bundle_) {
          patch.push_back({{"op", "add"}, {"path", base + "/caBundle"}, {"value", ca_bundle_}});
        }
      }
      if (patch.size() == 1) return Status::Ok();  // already current
      auto patched = client_->Patch(ref, kube::PatchType::kJson, patch.dump());
      if (patched.ok()) {
        ++patches_applied_;
        return Status::Ok();
      }
      // A failed resourceVersion test (422) or a conflict means someone else
      // wrote in between: re-read and try again.
      bool raced = kube::IsInvalid(patched.error()) || kube::IsConflict(patched.error());
      if (!raced || attempt + 1 >= kConflictRetries) {
        return patched.error().ToStatus().WithContext("patch caBundle of " + what);
      }
    } catch (const nlohmann::json::exception& e) {
      return InvalidArgumentError(what + ": unexpected object shape: " + e.what());
    }
  }
}

}  // namespace gpu_autoscaler::webhooks
