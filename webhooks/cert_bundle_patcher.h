// File: webhooks/cert_bundle_patcher.h
//
// Keeps the caBundle of the webhook's MutatingWebhookConfiguration and
// ValidatingWebhookConfiguration equal to the CA that signed the serving
// certificate (the --self-signed mode), so kube-apiserver trusts the server.
//
//   CaBundlePatcher patcher(client.get(), "gpu-autoscaler-webhook", certs.ca_cert_pem);
//   Status s = patcher.Sync();   // GET both, JSON-patch the webhooks whose caBundle differs
//
// Each configuration is patched with one RFC 6902 JSON patch that first
// tests metadata.resourceVersion, so a concurrent edit makes the patch fail
// (422) instead of clobbering it; Sync() then re-reads and retries. A
// configuration whose every webhook already carries the bundle is not written.
//
// Thread-safety: Sync() may be called from one thread at a time.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace gpu_autoscaler::kube {
class RestClient;
}

namespace gpu_autoscaler::webhooks {

// The caBundle value for a PEM CA: standard base64 with padding, as
// Kubernetes renders []byte fields.
std::string EncodeCaBundle(std::string_view pem);

class CaBundlePatcher {
 public:
  CaBundlePatcher(kube::RestClient* client, std::string config_name, std::string ca_pem);

  // Makes both configurations carry the bundle. An error (NotFound included)
  // when either could not be brought up to date; the caller retries later.
  Status Sync();
  // Configurations written by Sync() so far (0 when already up to date).
  int patches_applied() const { return patches_applied_; }

 private:
  Status SyncOne(bool mutating);

  kube::RestClient* client_;
  const std::string config_name_;
  const std::string ca_bundle_;  // base64 of the PEM
  int patches_applied_ = 0;
};

}  // namespace gpu_autoscaler::webhooks
