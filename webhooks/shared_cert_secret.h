// File: webhooks/shared_cert_secret.h
//
// The --self-signed-secret mode: every webhook replica serves the serving
// certificate held in one shared `kubernetes.io/tls` Secret (keys ca.crt,
// ca.key, tls.crt, tls.key), the approach of controller-runtime's
// cert-controller. Whoever finds the Secret absent, unusable or near expiry
// writes a new one; the API server's create (409 AlreadyExists) and
// resourceVersion-checked update (409 Conflict) make exactly one writer win
// and the others re-read and use the winner's certificates.
//
//   CertPolicy policy{.dns_names = net::ServiceDnsNames("svc", "ns")};
//   SharedCertSecret secret(client, "ns", "svc-tls", policy, RealClock::Instance());
//   GPU_ASSIGN_OR_RETURN(SharedCertSecret::Outcome got, secret.Sync());  // at start, then polled
//   got.certs.cert_pem / got.certs.ca_bundle_pem  -> serve / caBundle
//
// A leaf renewal keeps the CA (the caBundle does not change). A new CA is
// written with the previous CA still appended to ca.crt when it has not
// expired, so kube-apiserver trusts both until the next CA rotation.
//
// Thread-safety: DecideSecretCertificates is pure; a SharedCertSecret is used
// from one thread at a time.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/clock.h"
#include "common/status.h"

namespace gpu_autoscaler::kube {
class RestClient;
}

namespace gpu_autoscaler::webhooks {

struct CertPolicy {
  std::vector<std::string> dns_names{};     // the serving certificate must certify all
  std::vector<std::string> ip_addresses{};  // likewise
  // Rotate when less than this is left; zero: a third of the certificate's lifetime.
  std::chrono::seconds rotate_before{0};
  std::chrono::hours validity{24 * 365};  // of newly generated certificates
};

// The Secret's data, decoded.
struct SecretCertificates {
  std::string ca_bundle_pem;  // ca.crt: the signing CA first, then a previous CA
  std::string ca_key_pem;     // ca.key: key of the first CA in ca.crt
  std::string cert_pem;       // tls.crt
  std::string key_pem;        // tls.key
};

enum class SecretAction {
  kUse,         // serve it as is
  kRenewLeaf,   // new tls.crt/tls.key from the same CA
  kRegenerate,  // new CA and serving certificate
};

struct SecretDecision {
  SecretAction action = SecretAction::kRegenerate;
  std::string reason;  // why not kUse, for the log ("tls.crt expires ...")
};

// What to do with the Secret's decoded data (nullopt: no Secret) at `now`.
SecretDecision DecideSecretCertificates(const std::optional<SecretCertificates>& current,
                                        std::chrono::system_clock::time_point now,
                                        const CertPolicy& policy);

// The certificates to write for `decision` (kUse returns `current`).
Result<SecretCertificates> BuildSecretCertificates(const SecretDecision& decision,
                                                   const std::optional<SecretCertificates>& current,
                                                   std::chrono::system_clock::time_point now,
                                                   const CertPolicy& policy);

// Decodes a Secret object's data; an error names the missing or undecodable key.
Result<SecretCertificates> DecodeSecretCertificates(const nlohmann::json& secret);

class SharedCertSecret {
 public:
  struct Outcome {
    SecretCertificates certs;  // what the Secret holds now
    bool wrote = false;        // this call created or updated the Secret
    std::string reason;        // why it was written (empty when not)
  };

  SharedCertSecret(kube::RestClient* client, std::string ns, std::string name, CertPolicy policy,
                   Clock& clock);

  // GET the Secret; create, renew or regenerate it when needed (losing a
  // race re-reads the winner's); returns what it now holds.
  Result<Outcome> Sync();

 private:
  kube::RestClient* client_;
  const std::string namespace_, name_;
  const CertPolicy policy_;
  Clock& clock_;
};

}  // namespace gpu_autoscaler::webhooks
