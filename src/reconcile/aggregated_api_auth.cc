#include "reconcile/aggregated_api_auth.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "kube/error.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "net/http_server.h"

namespace gpu_autoscaler::reconcile {
namespace {

using nlohmann::json;

Status PermissionDeniedError(std::string m) {
  return {StatusCode::kPermissionDenied, std::move(m)};
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && Lower(s.substr(0, prefix.size())) == Lower(prefix);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// url.PathUnescape, as the request-header authenticator decodes extra keys;
// a bad escape is kept as written.
std::string PathUnescape(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && HexValue(in[i + 1]) >= 0 && HexValue(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2])));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

Result<std::vector<std::string>> StringArray(const json& data, const char* key,
                                             std::vector<std::string> fallback) {
  auto it = data.find(key);
  if (it == data.end()) return fallback;
  if (!it->is_string()) return InvalidArgumentError(std::string(key) + ": not a string");
  const json parsed = json::parse(it->get<std::string>(), nullptr, false);
  if (!parsed.is_array()) {
    return InvalidArgumentError(std::string(key) + ": not a JSON array of strings");
  }
  std::vector<std::string> out;
  for (const json& v : parsed) {
    if (!v.is_string()) return InvalidArgumentError(std::string(key) + ": not a string array");
    out.push_back(v.get<std::string>());
  }
  return out;
}

std::string Pem(const json& data, const char* key) {
  auto it = data.find(key);
  return it != data.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string NameEntry(X509_NAME* name, int nid, int* last) {
  *last = X509_NAME_get_index_by_NID(name, nid, *last);
  if (*last < 0) return "";
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, *last));
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, data);
  std::string out = n > 0 ? std::string(reinterpret_cast<char*>(utf8), static_cast<size_t>(n)) : "";
  OPENSSL_free(utf8);
  return out;
}

struct X509Free {
  void operator()(X509* c) const { X509_free(c); }
};
using UniqueX509 = std::unique_ptr<X509, X509Free>;

UniqueX509 FromDer(const std::string& der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  return UniqueX509(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
}

}  // namespace

Result<DelegatedAuthConfig> ParseAuthenticationConfigMap(std::string_view configmap_json) {
  const json cm = json::parse(configmap_json, nullptr, false);
  // Pem() reads a string member or nothing; json::value() would throw on a
  // "kind" that is not a string (found by aggregated_api_auth_fuzz).
  if (!cm.is_object() || Pem(cm, "kind") != "ConfigMap") {
    return InvalidArgumentError("extension-apiserver-authentication: not a ConfigMap");
  }
  auto data_it = cm.find("data");
  const json data = data_it != cm.end() && data_it->is_object() ? *data_it : json::object();
  DelegatedAuthConfig config;
  config.client_ca_pem = Pem(data, "client-ca-file");
  RequestHeaderConfig& rh = config.request_header;
  rh.client_ca_pem = Pem(data, "requestheader-client-ca-file");
  GPU_ASSIGN_OR_RETURN(rh.allowed_names, StringArray(data, "requestheader-allowed-names", {}));
  GPU_ASSIGN_OR_RETURN(rh.username_headers,
                       StringArray(data, "requestheader-username-headers", rh.username_headers));
  GPU_ASSIGN_OR_RETURN(rh.group_headers,
                       StringArray(data, "requestheader-group-headers", rh.group_headers));
  GPU_ASSIGN_OR_RETURN(
      rh.extra_headers_prefix,
      StringArray(data, "requestheader-extra-headers-prefix", rh.extra_headers_prefix));
  return config;
}

Result<DelegatedAuthConfig> FetchAuthenticationConfig(kube::RestClient& client) {
  const std::string where = std::string(kAuthenticationConfigMapNamespace) + "/" +
                            std::string(kAuthenticationConfigMapName);
  auto cm =
      client.Get({kube::resources::kConfigMaps, std::string(kAuthenticationConfigMapNamespace),
                  std::string(kAuthenticationConfigMapName)});
  if (!cm.ok()) {
    if (kube::IsNotFound(cm.error())) {
      return NotFoundError("ConfigMap " + where +
                           " not found: kube-apiserver publishes it when the aggregation layer is "
                           "enabled (--requestheader-client-ca-file); or give "
                           "--requestheader-client-ca-file to the manager");
    }
    if (kube::IsForbidden(cm.error())) {
      return PermissionDeniedError(
          "cannot read ConfigMap " + where +
          ": bind the Role kube-system/extension-apiserver-authentication-reader to the "
          "manager's service account (" +
          cm.error().ToString() + ")");
    }
    return UnavailableError("reading ConfigMap " + where + ": " + cm.error().ToString());
  }
  auto parsed = ParseAuthenticationConfigMap(cm->dump());
  if (!parsed.ok()) return parsed.error().WithContext("ConfigMap " + where);
  return parsed;
}

struct ClientCertificateVerifier::Store {
  X509_STORE* store = nullptr;
  ~Store() { X509_STORE_free(store); }
};

ClientCertificateVerifier::~ClientCertificateVerifier() = default;

Result<std::unique_ptr<ClientCertificateVerifier>> ClientCertificateVerifier::FromPem(
    std::string_view ca_pem) {
  std::unique_ptr<ClientCertificateVerifier> v(new ClientCertificateVerifier());
  v->store_ = std::make_unique<Store>();
  v->store_->store = X509_STORE_new();
  BIO* bio = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
  int added = 0;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    if (X509_STORE_add_cert(v->store_->store, cert) == 1) ++added;
    X509_free(cert);
  }
  BIO_free(bio);
  ERR_clear_error();  // the read that ended the loop
  if (added == 0) return InvalidArgumentError("CA bundle holds no PEM certificate");
  return v;
}

Result<CertificateSubject> ClientCertificateVerifier::Verify(
    const std::vector<std::string>& chain_der) const {
  if (chain_der.empty()) return PermissionDeniedError("no client certificate");
  UniqueX509 leaf = FromDer(chain_der[0]);
  if (!leaf) return PermissionDeniedError("client certificate does not parse");
  STACK_OF(X509)* intermediates = sk_X509_new_null();
  for (size_t i = 1; i < chain_der.size(); ++i) {
    if (X509* cert = FromDer(chain_der[i]).release()) sk_X509_push(intermediates, cert);
  }
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  int ok = 0;
  int error = X509_V_ERR_UNSPECIFIED;
  if (ctx != nullptr && X509_STORE_CTX_init(ctx, store_->store, leaf.get(), intermediates) == 1) {
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    ok = X509_verify_cert(ctx);
    error = X509_STORE_CTX_get_error(ctx);
  }
  X509_STORE_CTX_free(ctx);
  sk_X509_pop_free(intermediates, X509_free);
  ERR_clear_error();
  if (ok != 1) {
    return PermissionDeniedError(std::string("client certificate: ") +
                                 X509_verify_cert_error_string(error));
  }
  CertificateSubject subject;
  X509_NAME* name = X509_get_subject_name(leaf.get());
  int index = -1;
  subject.common_name = NameEntry(name, NID_commonName, &index);
  index = -1;
  for (;;) {
    std::string o = NameEntry(name, NID_organizationName, &index);
    if (index < 0) break;
    subject.organizations.push_back(std::move(o));
  }
  return subject;
}

RequestUser UserFromRequestHeaders(
    const RequestHeaderConfig& config,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  RequestUser user;
  for (const std::string& wanted : config.username_headers) {
    for (const auto& [name, value] : headers) {
      if (user.name.empty() && !value.empty() && Lower(name) == Lower(wanted)) user.name = value;
    }
  }
  for (const std::string& wanted : config.group_headers) {
    for (const auto& [name, value] : headers) {
      if (Lower(name) == Lower(wanted)) user.groups.push_back(value);
    }
  }
  for (const std::string& prefix : config.extra_headers_prefix) {
    if (prefix.empty()) continue;
    for (const auto& [name, value] : headers) {
      if (name.size() > prefix.size() && StartsWithIgnoreCase(name, prefix)) {
        user.extra[Lower(PathUnescape(std::string_view(name).substr(prefix.size())))].push_back(
            value);
      }
    }
  }
  return user;
}

AggregatedApiAuthenticator::~AggregatedApiAuthenticator() = default;

Result<std::unique_ptr<AggregatedApiAuthenticator>> AggregatedApiAuthenticator::Create(
    const DelegatedAuthConfig& config, RequestAuthorizer& tokens) {
  std::unique_ptr<AggregatedApiAuthenticator> a(new AggregatedApiAuthenticator(config, tokens));
  if (!config.request_header.client_ca_pem.empty()) {
    auto verifier = ClientCertificateVerifier::FromPem(config.request_header.client_ca_pem);
    if (!verifier.ok()) return verifier.error().WithContext("requestheader-client-ca-file");
    a->front_proxy_ = std::move(*verifier);
  }
  if (!config.client_ca_pem.empty()) {
    auto verifier = ClientCertificateVerifier::FromPem(config.client_ca_pem);
    if (!verifier.ok()) return verifier.error().WithContext("client-ca-file");
    a->client_ca_ = std::move(*verifier);
  }
  return a;
}

Authentication AggregatedApiAuthenticator::Authenticate(const net::ServerRequest& request) const {
  const auto& chain = request.peer_certificates_der;
  if (!chain.empty() && front_proxy_) {
    auto subject = front_proxy_->Verify(chain);
    const auto& allowed = config_.request_header.allowed_names;
    if (subject.ok() && (allowed.empty() || std::find(allowed.begin(), allowed.end(),
                                                      subject->common_name) != allowed.end())) {
      RequestUser user = UserFromRequestHeaders(config_.request_header, request.headers);
      if (!user.name.empty()) return {200, std::move(user), ""};
    }
  }
  if (!chain.empty() && client_ca_) {
    auto subject = client_ca_->Verify(chain);
    if (subject.ok() && !subject->common_name.empty()) {
      RequestUser user{.name = subject->common_name, .groups = subject->organizations};
      return {200, std::move(user), ""};
    }
  }
  if (request.Header("Authorization").empty()) {
    return {401, {}, "Unauthorized: no valid client certificate or bearer token"};
  }
  return tokens_.AuthenticateBearer(request.Header("Authorization"));
}

}  // namespace gpu_autoscaler::reconcile
