// Fuzzes what an aggregated API server reads from outside: the
// extension-apiserver-authentication ConfigMap, a client's certificate chain
// (arbitrary DER, verified against a fixed CA) and front-proxy headers (the
// input's lines as "Name: value"). Invariants: no crash; a ConfigMap that does
// not parse is InvalidArgument; random bytes never verify as a certificate;
// every extra key is lower-case.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/self_signed_cert.h"
#include "reconcile/aggregated_api_auth.h"

using namespace gpu_autoscaler;
using namespace gpu_autoscaler::reconcile;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = ParseAuthenticationConfigMap(text);
  if (!config.ok() && config.error().code() != StatusCode::kInvalidArgument) std::abort();

  static const auto* verifier = [] {
    auto ca = net::GenerateSelfSignedCertificates({.dns_names = {"fuzz"}});
    if (!ca.ok()) std::abort();
    auto v = ClientCertificateVerifier::FromPem(ca->ca_cert_pem);
    if (!v.ok()) std::abort();
    return v->release();
  }();
  if (verifier->Verify({text}).ok()) std::abort();
  if (verifier->Verify({text, text}).ok()) std::abort();

  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view rest = text;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ')
      value.remove_prefix(1);
    headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  const RequestUser user = UserFromRequestHeaders(RequestHeaderConfig{}, headers);
  for (const auto& [key, values] : user.extra) {
    for (char c : key) {
      if (std::isupper(static_cast<unsigned char>(c))) std::abort();
    }
    if (values.empty()) std::abort();
  }
  return 0;
}
