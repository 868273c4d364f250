// File: src/reconcile/aggregated_api_auth.h
//
// Authentication for an aggregated API server (the manager's
// custom.metrics.k8s.io), as k8s.io/apiserver's delegating authenticator does
// it, in this order:
//  1. front proxy: a client certificate that chains to the request-header CA
//     (kube-apiserver's --requestheader-client-ca-file, the kube-aggregator's
//     --proxy-client-cert-file) with a CN in requestheader-allowed-names
//     (empty: any) proves the kube-aggregator; the user is then the first
//     non-empty username header (X-Remote-User), the groups every group header
//     value (X-Remote-Group), extras the prefixed headers
//     (X-Remote-Extra-<key>, key percent-decoded and lower-cased). Without
//     such a certificate these headers are ignored, never trusted;
//  2. x509: a client certificate that chains to client-ca-file: user CN,
//     groups O;
//  3. bearer token: TokenReview (RequestAuthorizer::AuthenticateBearer).
// The configuration is kube-apiserver's ConfigMap
// kube-system/extension-apiserver-authentication (readable with the Role
// extension-apiserver-authentication-reader), or flags.
//
//   GPU_ASSIGN_OR_RETURN(DelegatedAuthConfig cfg, FetchAuthenticationConfig(client));
//   GPU_ASSIGN_OR_RETURN(auto authn, AggregatedApiAuthenticator::Create(cfg, authorizer));
//   Authentication who = authn->Authenticate(request);   // 200 or 401
//   AuthDecision d = authorizer.Authorize(who.user, attributes);
//
// Thread-safety: Authenticate may be called from many threads at once.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "reconcile/request_auth.h"

namespace gpu_autoscaler::kube {
class RestClient;
}
namespace gpu_autoscaler::net {
struct ServerRequest;
}

namespace gpu_autoscaler::reconcile {

inline constexpr std::string_view kAuthenticationConfigMapNamespace = "kube-system";
inline constexpr std::string_view kAuthenticationConfigMapName =
    "extension-apiserver-authentication";

struct RequestHeaderConfig {
  std::string client_ca_pem;               // empty: no front-proxy authentication
  std::vector<std::string> allowed_names;  // empty: any CN the CA signed
  std::vector<std::string> username_headers{"X-Remote-User"};
  std::vector<std::string> group_headers{"X-Remote-Group"};
  std::vector<std::string> extra_headers_prefix{"X-Remote-Extra-"};
};

struct DelegatedAuthConfig {
  RequestHeaderConfig request_header;
  std::string client_ca_pem;  // empty: no x509 client-certificate users
};

// The ConfigMap object (JSON) kube-apiserver publishes: data keys
// client-ca-file, requestheader-client-ca-file (PEM) and
// requestheader-{allowed-names,username-headers,group-headers,
// extra-headers-prefix} (JSON string arrays). Missing keys keep the defaults
// (headers) or disable that method (CAs). InvalidArgument for a body that is
// not a ConfigMap, or a key that is not what it should be.
Result<DelegatedAuthConfig> ParseAuthenticationConfigMap(std::string_view configmap_json);

// GETs and parses the ConfigMap. NotFound / PermissionDenied with what to do
// (enable the aggregation layer, bind extension-apiserver-authentication-reader,
// or pass --requestheader-client-ca-file).
Result<DelegatedAuthConfig> FetchAuthenticationConfig(kube::RestClient& client);

// The subject of a verified client certificate.
struct CertificateSubject {
  std::string common_name;
  std::vector<std::string> organizations;
};

// Verifies DER chains (leaf first) against a PEM CA bundle for TLS client
// authentication (extendedKeyUsage clientAuth or none), as Go's
// x509.Certificate.Verify with ExtKeyUsageClientAuth.
class ClientCertificateVerifier {
 public:
  // InvalidArgument when the bundle holds no certificate.
  static Result<std::unique_ptr<ClientCertificateVerifier>> FromPem(std::string_view ca_pem);
  ~ClientCertificateVerifier();
  // PermissionDenied naming why (no certificate, unknown authority, expired...).
  Result<CertificateSubject> Verify(const std::vector<std::string>& chain_der) const;

 private:
  ClientCertificateVerifier() = default;
  struct Store;
  std::unique_ptr<Store> store_;
};

class AggregatedApiAuthenticator {
 public:
  // `tokens` (bearer tokens) must outlive the authenticator. InvalidArgument
  // for a CA that does not parse.
  static Result<std::unique_ptr<AggregatedApiAuthenticator>> Create(
      const DelegatedAuthConfig& config, RequestAuthorizer& tokens);
  ~AggregatedApiAuthenticator();

  Authentication Authenticate(const net::ServerRequest& request) const;

 private:
  AggregatedApiAuthenticator(const DelegatedAuthConfig& config, RequestAuthorizer& tokens)
      : config_(config), tokens_(tokens) {}
  DelegatedAuthConfig config_;
  RequestAuthorizer& tokens_;
  std::unique_ptr<ClientCertificateVerifier> front_proxy_;  // null: disabled
  std::unique_ptr<ClientCertificateVerifier> client_ca_;    // null: disabled
};

// The user a verified front proxy names in `headers` (name, value pairs as
// received; repeated headers kept). An empty name when no username header is set.
RequestUser UserFromRequestHeaders(const RequestHeaderConfig& config,
                                   const std::vector<std::pair<std::string, std::string>>& headers);

}  // namespace gpu_autoscaler::reconcile
