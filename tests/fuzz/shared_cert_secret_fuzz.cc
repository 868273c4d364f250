// Fuzzes the --self-signed-secret decoder and decision (outside input: a
// Secret anyone with write access to it may have edited). The input is the
// Secret's data as JSON, or four PEM texts separated by "\n--\n" (ca.crt,
// ca.key, tls.crt, tls.key). Properties: no crash or exception; a decode error
// has a message; any action but "use" gives a reason; "use" builds to the same
// certificates.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "webhooks/shared_cert_secret.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gpu_autoscaler::webhooks;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  static const CertPolicy policy{.dns_names = {"svc", "svc.ns", "svc.ns.svc"},
                                 .ip_addresses = {"127.0.0.1"}};
  const auto now = std::chrono::system_clock::from_time_t(1'800'000'000);

  SecretCertificates certs;
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_discarded() && doc.is_object()) {
    auto decoded = DecodeSecretCertificates(doc);
    if (!decoded.ok()) {
      if (decoded.error().message().empty()) std::abort();
      return 0;
    }
    certs = std::move(decoded).value();
  } else {
    std::string* fields[] = {&certs.ca_bundle_pem, &certs.ca_key_pem, &certs.cert_pem,
                             &certs.key_pem};
    for (std::string* field : fields) {
      size_t sep = text.find("\n--\n");
      *field = std::string(text.substr(0, sep));
      text = sep == std::string_view::npos ? std::string_view() : text.substr(sep + 4);
    }
  }
  SecretDecision decision = DecideSecretCertificates(certs, now, policy);
  if (decision.action != SecretAction::kUse && decision.reason.empty()) std::abort();
  if (decision.action == SecretAction::kUse) {
    auto same = BuildSecretCertificates(decision, certs, now, policy);
    if (!same.ok() || same->cert_pem != certs.cert_pem) std::abort();
  }
  return 0;
}
