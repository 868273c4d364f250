#include "cloud/gcp_auth.h"
#include "common/base64.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace gpu_autoscaler::cloud {

using namespace std::chrono_literals;

Result<GcpServiceAccountKey> ParseGcpServiceAccountKey(std::string_view json) {
  try {
    auto doc = nlohmann::json::parse(json);
    if (!doc.is_object()) return InvalidArgumentError("service-account key: not a JSON object");
    auto text = [&](const char* field) -> std::string {
      auto it = doc.find(field);
      return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (text("type") != "service_account") {
      return InvalidArgumentError("service-account key: \"type\" is not \"service_account\"");
    }
    GcpServiceAccountKey key;
    key.client_email = text("client_email");
    key.private_key_pem = text("private_key");
    key.private_key_id = text("private_key_id");
    key.project_id = text("project_id");
    if (std::string uri = text("token_uri"); !uri.empty()) key.token_uri = uri;
    if (key.client_email.empty()) {
      return InvalidArgumentError("service-account key: client_email is missing");
    }
    if (key.private_key_pem.find("-----BEGIN") == std::string::npos) {
      return InvalidArgumentError("service-account key: private_key is not PEM");
    }
    if (!key.token_uri.starts_with("https://") && !key.token_uri.starts_with("http://")) {
      return InvalidArgumentError("service-account key: token_uri is not an http(s) URL");
    }
    return key;
  } catch (const nlohmann::json::exception&) {
    return InvalidArgumentError("service-account key: not valid JSON");
  }
}

Result<std::string> SignJwtRs256(std::string_view header_json, std::string_view claims_json,
                                 const std::string& private_key_pem) {
  std::string signing_input = Base64UrlEncode(header_json) + "." + Base64UrlEncode(claims_json);
  BIO* bio = BIO_new_mem_buf(private_key_pem.data(), static_cast<int>(private_key_pem.size()));
  if (bio == nullptr) return InternalError("out of memory");
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (pkey == nullptr || EVP_PKEY_base_id(pkey) != EVP_PKEY_RSA) {
    EVP_PKEY_free(pkey);
    return InvalidArgumentError("private key is not a PEM RSA key");
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  std::string signature;
  bool ok = ctx != nullptr && EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, pkey) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len,
                           reinterpret_cast<const unsigned char*>(signing_input.data()),
                           signing_input.size()) == 1;
  if (ok) {
    signature.resize(len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(signature.data()), &len,
                        reinterpret_cast<const unsigned char*>(signing_input.data()),
                        signing_input.size()) == 1;
    signature.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  if (!ok) return InternalError("RS256 signing failed");
  return signing_input + "." + Base64UrlEncode(signature);
}

Result<std::string> MakeGcpJwtAssertion(const GcpServiceAccountKey& key, std::string_view scope,
                                        Clock::WallTime now) {
  nlohmann::json header = {{"alg", "RS256"}, {"typ", "JWT"}};
  if (!key.private_key_id.empty()) header["kid"] = key.private_key_id;
  int64_t iat = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  nlohmann::json claims = {{"iss", key.client_email},
                           {"scope", std::string(scope)},
                           {"aud", key.token_uri},
                           {"iat", iat},
                           {"exp", iat + 3600}};
  return SignJwtRs256(header.dump(), claims.dump(), key.private_key_pem);
}

namespace {

class ServiceAccountTokenSource final : public AccessTokenSource {
 public:
  ServiceAccountTokenSource(GcpServiceAccountKey key, std::shared_ptr<kube::HttpTransport> t,
                            Clock& clock, std::string scope)
      : key_(std::move(key)),
        transport_(std::move(t)),
        clock_(clock),
        scope_(std::move(scope)),
        cache_(clock) {}

  Result<std::string> Token() override {
    return cache_.Get([&]() -> Result<TokenGrant> {
      GPU_ASSIGN_OR_RETURN(std::string assertion,
                           MakeGcpJwtAssertion(key_, scope_, clock_.WallNow()));
      kube::HttpRequest req;
      req.method = "POST";
      req.url = key_.token_uri;
      req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
      req.body = FormEncode({{"grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"},
                             {"assertion", assertion}});
      return FetchToken(*transport_, std::move(req),
                        "gcp token for service account " + key_.client_email);
    });
  }

 private:
  GcpServiceAccountKey key_;
  std::shared_ptr<kube::HttpTransport> transport_;
  Clock& clock_;
  std::string scope_;
  CachedAccessToken cache_;
};

class MetadataTokenSource final : public AccessTokenSource {
 public:
  MetadataTokenSource(std::string endpoint, std::shared_ptr<kube::HttpTransport> t, Clock& clock)
      : endpoint_(std::move(endpoint)), transport_(std::move(t)), cache_(clock) {}

  Result<std::string> Token() override {
    return cache_.Get([&]() -> Result<TokenGrant> {
      kube::HttpRequest req;
      req.method = "GET";
      req.url = endpoint_ + "/computeMetadata/v1/instance/service-accounts/default/token";
      req.headers = {{"Metadata-Flavor", "Google"}};
      req.timeout = 10s;
      return FetchToken(*transport_, std::move(req), "gcp metadata-server token");
    });
  }

 private:
  std::string endpoint_;
  std::shared_ptr<kube::HttpTransport> transport_;
  CachedAccessToken cache_;
};

}  // namespace

std::shared_ptr<AccessTokenSource> NewGcpServiceAccountTokenSource(
    GcpServiceAccountKey key, std::shared_ptr<kube::HttpTransport> transport, Clock& clock,
    std::string scope) {
  return std::make_shared<ServiceAccountTokenSource>(std::move(key), std::move(transport), clock,
                                                     std::move(scope));
}

Result<std::shared_ptr<AccessTokenSource>> NewGcpServiceAccountTokenSource(
    const std::string& key_file, std::shared_ptr<kube::HttpTransport> transport, Clock& clock,
    std::string scope) {
  std::ifstream in(key_file, std::ios::binary);
  if (!in) return InvalidArgumentError("cannot read service-account key file " + key_file);
  std::stringstream text;
  text << in.rdbuf();
  auto key = ParseGcpServiceAccountKey(text.str());
  if (!key.ok()) return key.error().WithContext(key_file);
  return NewGcpServiceAccountTokenSource(std::move(key).value(), std::move(transport), clock,
                                         std::move(scope));
}

std::shared_ptr<AccessTokenSource> NewGcpMetadataTokenSource(
    std::string metadata_endpoint, std::shared_ptr<kube::HttpTransport> transport, Clock& clock) {
  return std::make_shared<MetadataTokenSource>(std::move(metadata_endpoint), std::move(transport),
                                               clock);
}

}  // namespace gpu_autoscaler::cloud
